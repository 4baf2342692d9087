//! A reader's address and the values that reach a header: what the list
//! accepts as an address (stricter than lettre about domains) and how a
//! value is made one line. Shared with `settings` (the unsubscribe
//! mailbox), issue records, `check` and the renderer.

use lettre::Address;

/// Parses a subscriber's address, or says why it cannot be one. Beyond
/// lettre's syntax check, the domain must be a DNS name with a dot: address
/// literals (`a@[127.0.0.1]`) and bare IPs would make the relay deliver to
/// that IP (possibly itself) instead of the domain's MX, and a one-label
/// domain (`a@localhost`) is never a reader's mailbox.
pub fn parse_address(raw: &str) -> Result<Address, String> {
    if raw.is_empty() {
        return Err("no email address in this row; fill it in or delete the row".into());
    }
    let invalid = || format!("`{raw}` is not a valid email address; fix it or delete the row");
    let address: Address = raw.parse().map_err(|_| invalid())?;
    let domain = address.domain();
    if domain.starts_with('[') || domain.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "`{raw}` is an address literal; a newsletter is sent to domain names only (an IP would bypass DNS and MX): fix it or delete the row"
        ));
    }
    // lettre's domain check lets through characters such as `?` and `/`.
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    };
    if !domain.contains('.') || !domain.split('.').all(label_ok) || raw.len() > 254 {
        return Err(invalid());
    }
    Ok(address)
}

/// Replaces line breaks and other control characters with spaces, so a value
/// can never start a new header line.
pub fn clean_line(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

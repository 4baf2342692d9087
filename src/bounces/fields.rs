//! The field blocks inside reports: a `message/delivery-status` body
//! (RFC 3464: a per-message block, then one block per recipient, blank
//! lines between) and a `message/feedback-report` body (RFC 5965: one
//! block). Their fields have header syntax (names, colons, folding), so
//! each block is read by mail-parser's header parser; this module only
//! splits the blocks and unfolds the values.

use mail_parser::MessageParser;

/// One block's fields: names lower-cased, values unfolded and trimmed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Fields(Vec<(String, String)>);

impl Fields {
    /// The first value of field `name` (any case), if not empty.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n.eq_ignore_ascii_case(name) && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of field `name`.
    pub(super) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// An address-typed field (`rfc822; ada@example.org`): the address.
    pub(super) fn address(&self, name: &str) -> Option<String> {
        let value = self.get(name)?;
        let address = match value.split_once(';') {
            Some((_, address)) => address,
            None => value,
        };
        let address = address.trim().trim_matches(['<', '>']).trim();
        address.contains('@').then(|| address.to_string())
    }
}

/// Parses one block of fields.
pub(super) fn block(text: &[u8]) -> Fields {
    let Some(parsed) = MessageParser::new().parse_headers(text) else {
        return Fields::default();
    };
    Fields(
        parsed
            .headers_raw()
            .map(|(name, value)| (name.to_ascii_lowercase(), unfold(value)))
            .collect(),
    )
}

/// The blocks of a body, split at blank lines.
pub(super) fn blocks(body: &[u8]) -> Vec<Fields> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.split('\n') {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(block(current.as_bytes()));
                current.clear();
            }
        } else {
            current.push_str(line.trim_end_matches('\r'));
            current.push_str("\r\n");
        }
    }
    if !current.is_empty() {
        out.push(block(current.as_bytes()));
    }
    out
}

/// One line: folding and runs of white space become one space.
pub(super) fn unfold(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every address-like word in `text` (in `<>` or bare, separated by
/// commas, semicolons or spaces).
pub(super) fn addresses(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';' | '"'))
        .filter(|w| w.contains('@') && !w.starts_with('@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_split_and_values_unfolded() {
        let body = b"Reporting-MTA: dns; mx.example.org\r\n\r\n\r\nFinal-Recipient: rfc822; <Ada@Example.org>\r\nAction: failed\r\nDiagnostic-Code: smtp; 550 5.1.1 no\r\n  such user\r\n\r\nFinal-Recipient: rfc822;bo@x.org\r\nStatus: 4.2.2\r\n";
        let b = blocks(body);
        assert_eq!(b.len(), 3);
        assert_eq!(b[0].get("reporting-mta"), Some("dns; mx.example.org"));
        assert_eq!(
            b[1].address("final-recipient").as_deref(),
            Some("Ada@Example.org")
        );
        assert_eq!(b[1].get("ACTION"), Some("failed"));
        assert_eq!(
            b[1].get("diagnostic-code"),
            Some("smtp; 550 5.1.1 no such user")
        );
        assert_eq!(b[2].address("Final-Recipient").as_deref(), Some("bo@x.org"));
        assert_eq!(b[2].get("action"), None);
    }

    #[test]
    fn addresses_are_picked_out_of_header_values() {
        let found: Vec<&str> =
            addresses("\"Ada\" <ada@x.org>, bo@y.org; rfc822;cy@z.org @nope").collect();
        assert_eq!(found, ["ada@x.org", "bo@y.org", "cy@z.org"]);
    }
}

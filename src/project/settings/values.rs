//! The rules single settings values follow, apart from the parser that
//! applies them: host names, URLs, environment variable names, durations,
//! the dates the project can hold, and the names templates reserve. Pure
//! functions, so `subscribers`, `content` and `cli` share them.
//!
//! URLs go through `url` and durations through humantime; host names are
//! checked here because `url::Host::parse` follows the URL standard, which
//! lets `smtp!.example.com` or `-x.org` through, while SMTP and DNS need
//! RFC 1123 names.

use chrono::NaiveDate;

/// The first and last day any date may name (CLI, front matter, records):
/// four-digit years, so that `issues/DATE.toml` stays a file every later
/// command can read back.
pub const FIRST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1000, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};
pub const LAST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(d) => d,
    None => NaiveDate::MAX,
};

pub fn date_in_range(date: NaiveDate) -> bool {
    (FIRST_DATE..=LAST_DATE).contains(&date)
}

/// Names the templates' contexts already use (the email's, the archive
/// pages', minijinja's own): a section with one of these names would shadow
/// it or be shadowed.
pub(super) const RESERVED: &[&str] = &[
    "issue",
    "newsletter",
    "subscriber",
    "sections",
    "section",
    "related",
    "appearances",
    "unsubscribe_url",
    "feedback_url",
    "subscribe",
    "previous",
    "next",
    "root",
    "nav",
    "canonical",
    "loop",
    "self",
    "super",
    "range",
    "dict",
    "namespace",
    "debug",
    "true",
    "false",
    "none",
];

/// `max_lateness` beyond this is a mistake (and date arithmetic would
/// overflow long before `i64` milliseconds do); 0 means no limit.
pub(super) const MAX_LATENESS: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// The delay doubles per retry, so more than this is never meant.
pub(super) const MAX_RETRIES: u32 = 10;

pub(super) fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A DNS name (ASCII labels of letters, digits, `-` and `_`, 1–63 long,
/// joined by dots) or an IP address: what may follow `HELO`, name an SMTP
/// server, a DKIM domain or selector, or a `List-Id`.
pub fn is_host(s: &str) -> bool {
    if s.trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_ok()
    {
        return true;
    }
    !s.is_empty()
        && s.len() <= 253
        && s.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

pub(super) fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Why `url` cannot be a base or unsubscribe URL, if it cannot: it must
/// parse as an absolute http(s) URL with a host, as written (no spaces,
/// control characters, quotes or angle brackets, which would break a link
/// or the `List-Unsubscribe` header); a base URL (`query_ok` false) has no
/// query or fragment, since paths are appended to it.
pub(super) fn url_problem(url: &str, query_ok: bool) -> Option<&'static str> {
    if url.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Some("it contains spaces, line breaks or control characters");
    }
    if url.contains(['<', '>', '"', '\\', '`']) {
        return Some("it contains <, >, \", \\ or `");
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Some("it does not start with https://");
    }
    match url::Url::parse(url) {
        Err(_) => Some("it does not parse as a URL"),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("it has no host"),
        Ok(u) if !query_ok && (u.query().is_some() || u.fragment().is_some()) => {
            Some("it has a ? query or # fragment, but paths are appended to it")
        }
        Ok(_) => None,
    }
}

pub(super) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Parses durations the way humantime reads them: a number and a unit,
/// several in a row, spaces allowed (`6h`, `90m`, `1h30m`, `1h 30m`,
/// `1.5h`, `45s`, `250ms`, `2d`), and `0` alone. humantime also knows
/// longer unit names (`min`, `sec`, `hours`, `days`, `w`) and `M` (months)
/// and `y` (years); the callers' upper limits (7 days, 1 hour) refuse
/// those long spans with their own message.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    humantime::parse_duration(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        use std::time::Duration;
        for (text, ms) in [
            ("6h", 21_600_000),
            ("90m", 5_400_000),
            ("1h30m", 5_400_000),
            ("45s", 45_000),
            ("250ms", 250),
            ("0", 0),
            ("2d", 172_800_000),
            // humantime's wider syntax, accepted since it replaced the
            // hand-written parser (README, "Settings").
            ("1h 30m", 5_400_000),
            (" 6h ", 21_600_000),
            ("90 min", 5_400_000),
            ("30sec", 30_000),
            ("1.5h", 5_400_000),
            ("2 days", 172_800_000),
            ("1w", 604_800_000),
        ] {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for text in [
            "",
            "6",
            "h",
            "6x",
            "1h30",
            "1H",
            "-5m",
            "1h,30m",
            "6 hours ago",
        ] {
            assert_eq!(parse_duration(text), None, "{text}");
        }
    }

    #[test]
    fn months_and_years_parse_so_the_limits_can_refuse_them() {
        // `M` is months, not minutes: far beyond every limit.
        assert!(parse_duration("6M").is_some_and(|d| d > MAX_LATENESS));
        assert!(parse_duration("1y").is_some_and(|d| d > MAX_LATENESS));
    }

    #[test]
    fn hosts_are_dns_names_or_ips() {
        for (host, ok) in [
            ("smtp.example.com", true),
            ("127.0.0.1", true),
            ("[::1]", true),
            ("_dmarc.example.com", true),
            ("", false),
            ("smtp example.com", false),
            ("smtp.example.com\r\n", false),
            ("-bad.example.com", false),
            ("bücher.example", false),
        ] {
            assert_eq!(is_host(host), ok, "{host:?}");
        }
    }

    #[test]
    fn urls_must_be_plain_absolute_http() {
        assert_eq!(url_problem("https://example.com/news", false), None);
        assert_eq!(url_problem("https://example.com/u/T?list=1", true), None);
        for (url, query_ok) in [
            ("example.com", false),
            ("https://", false),
            ("https://example.com/?page=1", false),
            ("https://example.com/u/T>, <https://evil.example", true),
            ("https://example.com/u/T\r\nBcc: x", true),
            ("javascript://example.com/%0Aalert(1)", true),
        ] {
            assert!(url_problem(url, query_ok).is_some(), "{url}");
        }
    }
}

//! The subscriber list: a CSV file with a header row.
//!
//! `email` is required; `name` and `status` (`active`, `unsubscribed`,
//! `bounced`) are optional; every other column reaches templates as
//! `subscriber.COLUMN`. Identity is the address trimmed and lower-cased. A
//! UTF-8 BOM is accepted.
//!
//! Two kinds of problems: a file whose *structure* is broken (a column named
//! twice, a quote never closed, a row with the wrong number of fields) is an
//! error as a whole, because rows may have been swallowed or shifted and no
//! row can be trusted; problems of single rows (invalid or duplicate address,
//! unknown status, an overlong field) leave that row out of the list, so
//! `send` can skip it while `check` fails on it. Both carry line numbers.

use std::collections::HashMap;
use std::path::Path;

use lettre::Address;

use crate::problem::Problem;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Unsubscribed,
    Bounced,
}

#[derive(Debug, Clone)]
pub struct Subscriber {
    pub email: Address,
    /// Lower-cased address: the identity used by the ledger and suppressions.
    pub key: String,
    /// Display name with line breaks and control characters removed; may be empty.
    pub name: String,
    pub status: Status,
    /// Every other column's value, in the order of [`List::columns`]. (A
    /// vector, not a map: a list of a million readers must stay small.)
    pub fields: Vec<String>,
    pub line: u64,
}

#[derive(Debug, Clone, Default)]
pub struct List {
    /// The extra columns (all but email, name, status), in header order.
    pub columns: Vec<String>,
    pub subscribers: Vec<Subscriber>,
    /// Rows left out, each with its line and reason.
    pub problems: Vec<Problem>,
}

impl Subscriber {
    /// A reader who is not on the list (test copies, previews), with every
    /// extra column empty.
    pub fn ad_hoc(email: Address, name: &str, columns: usize) -> Subscriber {
        Subscriber {
            key: email.to_string().to_lowercase(),
            email,
            name: clean_line(name),
            status: Status::Active,
            fields: vec![String::new(); columns],
            line: 0,
        }
    }
}

impl List {
    pub fn from_file(path_label: &Path, full_path: &Path) -> Result<List, Vec<Problem>> {
        let bytes = std::fs::read(full_path).map_err(|e| {
            vec![Problem::new(
                path_label,
                None,
                format!("cannot read the subscriber list ({e}); set `subscribers` in dailyissue.toml to its path"),
            )]
        })?;
        parse(&bytes, path_label)
    }

    pub fn active(&self) -> impl Iterator<Item = &Subscriber> {
        self.subscribers
            .iter()
            .filter(|s| s.status == Status::Active)
    }

    /// The listed reader with this address, or else an unnamed reader who is
    /// not on the list (test copies, previews), with whether it was listed.
    /// `None` when `address` is not an email address.
    pub fn reader(&self, address: &str) -> Option<(Subscriber, bool)> {
        if let Some(r) = self.find(address) {
            return Some((r.clone(), true));
        }
        let email = parse_address(address.trim()).ok()?;
        Some((Subscriber::ad_hoc(email, "", self.columns.len()), false))
    }

    pub fn find(&self, address: &str) -> Option<&Subscriber> {
        let key = address.trim().to_lowercase();
        self.subscribers.iter().find(|s| s.key == key)
    }
}

/// The most a single CSV field may hold. Every value is copied into each
/// reader's message, so an overgrown cell is a problem of its row, found
/// here, rather than an oversized issue blamed on the template later.
pub const MAX_FIELD: usize = 1000;

/// Parses CSV bytes. A broken file (unusable header, a quote that is never
/// closed, a row with the wrong number of fields, a line break inside an
/// address) is an error: every problem found, rows included, and nothing is
/// sent. Problems of single rows (invalid or duplicate address, unknown
/// status, an overlong field) are collected in [`List::problems`]; `send`
/// skips those rows and `check` fails on them.
pub fn parse(bytes: &[u8], path: &Path) -> Result<List, Vec<Problem>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Flexible so that a row of the wrong length reaches the checks below,
    // which say what is probably wrong with it.
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|h| h.trim().to_lowercase()).collect(),
        Err(e) => {
            return Err(vec![Problem::at(
                path,
                1,
                format!("cannot read the header row: {e}"),
            )]);
        }
    };
    let mut broken = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        if let Some(first) = headers[..i].iter().position(|x| x == h && !h.is_empty()) {
            broken.push(Problem::at(
                path,
                1,
                format!(
                    "the header row names the column `{h}` twice (columns {} and {}); give each column its own name",
                    first + 1,
                    i + 1
                ),
            ));
        }
    }
    let Some(email_col) = headers.iter().position(|h| h == "email") else {
        return Err(vec![Problem::at(
            path,
            1,
            format!(
                "the header row has no `email` column (found: {}); the first line must name the columns, e.g. email,name",
                if headers.is_empty() {
                    "nothing".to_string()
                } else {
                    headers.join(", ")
                }
            ),
        )]);
    };
    let name_col = headers.iter().position(|h| h == "name");
    let status_col = headers.iter().position(|h| h == "status");

    let mut list = List {
        columns: headers
            .iter()
            .enumerate()
            .filter(|(i, h)| {
                *i != email_col && Some(*i) != name_col && Some(*i) != status_col && !h.is_empty()
            })
            .map(|(_, h)| h.clone())
            .collect(),
        ..List::default()
    };
    let extra: Vec<usize> = headers
        .iter()
        .enumerate()
        .filter(|(i, h)| {
            *i != email_col && Some(*i) != name_col && Some(*i) != status_col && !h.is_empty()
        })
        .map(|(i, _)| i)
        .collect();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                list.problems.push(Problem::new(
                    path,
                    (line > 0).then_some(line as usize),
                    format!("unreadable row: {e}"),
                ));
                continue;
            }
        }
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        let start = record.position().map_or(0, |p| p.byte() as usize);
        let raw = bytes
            .get(start..reader.position().byte() as usize)
            .unwrap_or_default();
        let line = first_line(record.position().map_or(1, |p| p.line()), raw);
        let bad = |msg: String| Problem::at(path, line as usize, msg);
        if let Some(p) = structure(
            &record,
            raw,
            line,
            headers.len(),
            email_col,
            reader.position().byte() as usize >= bytes.len(),
        ) {
            broken.push(bad(p));
            continue;
        }
        if let Some((i, f)) = record.iter().enumerate().find(|(_, f)| f.len() > MAX_FIELD) {
            list.problems.push(bad(format!(
                "the `{}` field is {} long; a field may hold at most {MAX_FIELD} bytes (it is copied into every message): shorten it or delete the row",
                headers[i],
                size(f.len())
            )));
            continue;
        }
        let raw_email = record.get(email_col).unwrap_or("");
        let email = match parse_address(raw_email) {
            Ok(a) => a,
            Err(why) => {
                list.problems.push(bad(why));
                continue;
            }
        };
        let key = raw_email.to_lowercase();
        if let Some(first) = seen.get(&key) {
            list.problems.push(bad(format!(
                "duplicate address {raw_email} (first on line {first}); delete one of the rows"
            )));
            continue;
        }
        let status = match status_col.and_then(|c| record.get(c)).unwrap_or("") {
            "" | "active" => Status::Active,
            "unsubscribed" => Status::Unsubscribed,
            "bounced" => Status::Bounced,
            other => {
                list.problems.push(bad(format!(
                    "status `{other}` is not one of active, unsubscribed, bounced"
                )));
                continue;
            }
        };
        seen.insert(key.clone(), line);
        let name = name_col
            .and_then(|c| record.get(c))
            .map(clean_line)
            .unwrap_or_default();
        let fields = extra
            .iter()
            .map(|&i| record.get(i).unwrap_or("").to_string())
            .collect();
        list.subscribers.push(Subscriber {
            email,
            key,
            name,
            status,
            fields,
            line,
        });
    }
    if broken.is_empty() {
        Ok(list)
    } else {
        broken.append(&mut list.problems);
        broken.sort_by_key(|p| p.line);
        Err(broken)
    }
}

/// The line a record's text starts on: csv counts from the end of the
/// previous record, so blank lines before the row are skipped here.
fn first_line(from: u64, raw: &[u8]) -> u64 {
    let blank = raw
        .iter()
        .take_while(|b| matches!(b, b'\n' | b'\r' | b' ' | b'\t'))
        .filter(|b| **b == b'\n')
        .count();
    from + blank as u64
}

/// What is wrong with the shape of a record, if anything: a quote that is
/// never closed, a line break inside the address, the wrong number of fields.
///
/// The csv crate ends a quoted field silently at the end of the file, so an
/// unclosed quote shows as a field spanning lines in a record that has an
/// odd number of quote characters or the wrong number of fields (the rows
/// after it were swallowed into that field).
fn structure(
    record: &csv::StringRecord,
    raw: &[u8],
    line: u64,
    columns: usize,
    email_col: usize,
    at_end: bool,
) -> Option<String> {
    let spans_lines = record.iter().any(|f| f.contains(['\n', '\r']));
    let quotes = raw.iter().filter(|b| **b == b'"').count();
    if spans_lines && (quotes % 2 == 1 || record.len() != columns) {
        let text = raw.trim_ascii();
        let last = line + text.iter().filter(|b| **b == b'\n').count() as u64;
        return Some(format!(
            "a quote is probably not closed: the field that opens here runs on {}, taking the rows in between with it; close the quote (\"...\") or remove it",
            if at_end {
                "to the end of the file".to_string()
            } else {
                format!("to line {last}")
            }
        ));
    }
    if record
        .get(email_col)
        .is_some_and(|f| f.contains(['\n', '\r']))
    {
        return Some(
            "the email field spans several lines; an address is one line: remove the line break between the quotes"
                .into(),
        );
    }
    if record.len() != columns {
        return Some(format!(
            "this row has {} field{} but the header has {columns}; put quotes around a value that contains a comma (\"Park, Ada\"), or add the missing fields",
            record.len(),
            if record.len() == 1 { "" } else { "s" }
        ));
    }
    None
}

fn size(bytes: usize) -> String {
    if bytes >= 10 * 1024 {
        format!("{} KB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> List {
        parse(text.as_bytes(), Path::new("subscribers.csv")).expect("header ok")
    }

    #[test]
    fn reads_columns_and_accepts_a_bom() {
        let list = parse_str(
            "\u{feff}Email,name,status,city\nAda@Example.org , Ada Lovelace,,London\nbob@example.net,Bob,unsubscribed,\n",
        );
        assert!(list.problems.is_empty(), "{:?}", list.problems);
        assert_eq!(list.subscribers.len(), 2);
        let ada = &list.subscribers[0];
        assert_eq!(ada.email.to_string(), "Ada@Example.org");
        assert_eq!(ada.key, "ada@example.org");
        assert_eq!(ada.name, "Ada Lovelace");
        assert_eq!(list.columns, ["city"]);
        assert_eq!(ada.fields, ["London"]);
        assert_eq!(ada.line, 2);
        assert_eq!(list.active().count(), 1);
        assert!(list.find("ADA@example.org ").is_some());
    }

    #[test]
    fn reports_invalid_and_duplicate_rows_with_lines() {
        let list = parse_str(
            "email,name\na@example.org,A\nnot-an-address,B\n,C\nA@EXAMPLE.ORG,D\nc@example.org,E\nd@example.org,F\n",
        );
        let msgs: Vec<String> = list.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            msgs,
            [
                "subscribers.csv:3: `not-an-address` is not a valid email address; fix it or delete the row",
                "subscribers.csv:4: no email address in this row; fill it in or delete the row",
                "subscribers.csv:5: duplicate address A@EXAMPLE.ORG (first on line 2); delete one of the rows",
            ]
        );
        assert_eq!(list.subscribers.len(), 3);
    }

    #[test]
    fn a_header_without_email_is_an_error() {
        let err =
            parse(b"name,address\nA,a@example.org\n", Path::new("s.csv")).expect_err("no email");
        assert!(
            err[0]
                .to_string()
                .starts_with("s.csv:1: the header row has no `email` column")
        );
    }

    fn broken(text: &str) -> Vec<String> {
        parse(text.as_bytes(), Path::new("subscribers.csv"))
            .expect_err("a broken file")
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    fn valid_rows(n: usize) -> String {
        (1..=n)
            .map(|i| format!("r{i}@example.org,R{i},active\n"))
            .collect()
    }

    #[test]
    fn an_unclosed_quote_is_an_error_at_the_line_where_it_opens() {
        let errs = broken(&format!(
            "email,name,status\na1@example.org,\"A1,active\n{}",
            valid_rows(8)
        ));
        assert_eq!(
            errs,
            [
                "subscribers.csv:2: a quote is probably not closed: the field that opens here runs on to the end of the file, taking the rows in between with it; close the quote (\"...\") or remove it"
            ]
        );
        // A later quote closes it early: still one field across lines.
        let errs = broken(&format!(
            "email,name,status\n{}a1@example.org,\"A1,active\n{}z@example.org,\"Zed, Z\",active\nlast@example.org,L,active\n",
            valid_rows(1),
            valid_rows(3)
        ));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("subscribers.csv:3: a quote is probably not closed: the field that opens here runs on to line 7,"),
            "{errs:?}"
        );
    }

    #[test]
    fn rows_of_the_wrong_shape_are_errors_with_their_lines() {
        let errs = broken(&format!(
            "email,name,status\n{}c@example.org,Park, Ada,active\nd@example.org\n\"e@example.org\nx\",E,active\n",
            valid_rows(2)
        ));
        assert_eq!(
            errs,
            [
                "subscribers.csv:4: this row has 4 fields but the header has 3; put quotes around a value that contains a comma (\"Park, Ada\"), or add the missing fields",
                "subscribers.csv:5: this row has 1 field but the header has 3; put quotes around a value that contains a comma (\"Park, Ada\"), or add the missing fields",
                "subscribers.csv:6: the email field spans several lines; an address is one line: remove the line break between the quotes",
            ]
        );
    }

    #[test]
    fn a_column_named_twice_is_an_error() {
        let errs = broken("email,name,Email\na@example.org,A,b@example.org\n");
        assert_eq!(
            errs,
            [
                "subscribers.csv:1: the header row names the column `email` twice (columns 1 and 3); give each column its own name"
            ]
        );
    }

    #[test]
    fn an_overlong_field_is_a_problem_of_its_row() {
        let list = parse_str(&format!(
            "email,name\na@example.org,{}\nb@example.org,B\n",
            "x".repeat(20 * 1024)
        ));
        let msgs: Vec<String> = list.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            msgs,
            [
                "subscribers.csv:2: the `name` field is 20 KB long; a field may hold at most 1000 bytes (it is copied into every message): shorten it or delete the row"
            ]
        );
        assert_eq!(list.subscribers.len(), 1);
    }

    #[test]
    fn only_addresses_at_domain_names_are_accepted() {
        for (raw, ok) in [
            ("ada@example.org", true),
            ("\"a b\"@example.org", true),
            ("a@[127.0.0.1]", false),
            ("a@[IPv6:::1]", false),
            ("a@10.0.0.1", false),
            ("a@localhost", false),
            ("a@example..org", false),
            ("a@example.org?subject=x", false),
            ("a@exa/mple.org", false),
            ("a@bücher.example", true),
            ("", false),
        ] {
            assert_eq!(parse_address(raw).is_ok(), ok, "{raw}");
        }
        let list = parse_str("email\na@[127.0.0.1]\n");
        assert!(
            list.problems[0]
                .to_string()
                .starts_with("subscribers.csv:2: `a@[127.0.0.1]` is an address literal"),
            "{:?}",
            list.problems
        );
        assert!(list.reader("a@[127.0.0.1]").is_none());
    }

    #[test]
    fn lines_count_blank_lines_before_a_row() {
        let list = parse_str("email,name\n\n\nnope,A\n  \nb@example.org,B\n");
        assert_eq!(list.problems[0].line, Some(4), "{:?}", list.problems);
        assert_eq!(list.subscribers[0].line, 6);
    }

    #[test]
    fn line_breaks_in_names_are_neutralised() {
        let list = parse_str("email,name\na@example.org,\"Eve\r\nBcc: x@evil.example\"\n");
        assert_eq!(list.subscribers[0].name, "Eve Bcc: x@evil.example");
    }
}

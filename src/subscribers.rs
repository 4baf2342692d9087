//! The subscriber list: a CSV file with a header row.
//!
//! `email` is required; `name` and `status` (`active`, `unsubscribed`,
//! `bounced`) are optional; every other column reaches templates as
//! `subscriber.COLUMN`. Identity is the address trimmed and lower-cased. A
//! UTF-8 BOM is accepted. Invalid and duplicate rows are reported with their
//! line numbers and left out of the list, so `send` can skip them while
//! `check` fails on them.

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
    pub fn from_file(path_label: &Path, full_path: &Path) -> Result<List, Problem> {
        let bytes = std::fs::read(full_path).map_err(|e| {
            Problem::new(
                path_label,
                None,
                format!("cannot read the subscriber list ({e}); set `subscribers` in dailyissue.toml to its path"),
            )
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
        let email = address.trim().parse().ok()?;
        Some((Subscriber::ad_hoc(email, "", self.columns.len()), false))
    }

    pub fn find(&self, address: &str) -> Option<&Subscriber> {
        let key = address.trim().to_lowercase();
        self.subscribers.iter().find(|s| s.key == key)
    }
}

/// Parses CSV bytes. An unusable header is an error; bad rows are collected
/// in [`List::problems`].
pub fn parse(bytes: &[u8], path: &Path) -> Result<List, Problem> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|h| h.trim().to_lowercase()).collect(),
        Err(e) => {
            return Err(Problem::at(
                path,
                1,
                format!("cannot read the header row: {e}"),
            ));
        }
    };
    let Some(email_col) = headers.iter().position(|h| h == "email") else {
        return Err(Problem::at(
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
        ));
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
        let line = record.position().map_or(0, |p| p.line());
        let bad = |msg: String| Problem::at(path, line as usize, msg);
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        let raw = record.get(email_col).unwrap_or("");
        let email: Address = match raw.parse() {
            Ok(a) => a,
            Err(_) => {
                list.problems.push(bad(if raw.is_empty() {
                    "no email address in this row; fill it in or delete the row".to_string()
                } else {
                    format!("`{raw}` is not a valid email address; fix it or delete the row")
                }));
                continue;
            }
        };
        let key = raw.to_lowercase();
        if let Some(first) = seen.get(&key) {
            list.problems.push(bad(format!(
                "duplicate address {raw} (first on line {first}); delete one of the rows"
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
    Ok(list)
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
            "email,name\na@example.org,A\nnot-an-address,B\n,C\nA@EXAMPLE.ORG,D\nc@example.org,E,extra\nd@example.org,F\n",
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
            err.to_string()
                .starts_with("s.csv:1: the header row has no `email` column")
        );
    }

    #[test]
    fn line_breaks_in_names_are_neutralised() {
        let list = parse_str("email,name\na@example.org,\"Eve\r\nBcc: x@evil.example\"\n");
        assert_eq!(list.subscribers[0].name, "Eve Bcc: x@evil.example");
    }
}

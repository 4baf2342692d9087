//! `subscribers import FILE`: merges a CSV exported from another tool
//! (Mailchimp, Substack, Buttondown, a spreadsheet) into the signups, as
//! confirmed readers the operator vouches for.
//!
//! The address column is found by name (`email`, `Email Address`,
//! `e-mail`, ...), the name from `name` or from first and last name
//! columns. Every row is reported with its line: `new` (added), `existing`
//! (already on the CSV, already a signup, or earlier in the file),
//! `invalid` (not an address, by the list's own rules), `suppressed`
//! (unsubscribed, bounced or complained here: never added back). A file
//! whose structure is broken adds nothing and lists every problem.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::cmd::Report;
use crate::ledger::{Added, SignupSource};
use crate::problem::{Failure, Problem};
use crate::project::Project;
use crate::project::subscribers::{AddressKey, KeyDigest, clean_line, parse_address};

/// One row's fate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub line: u64,
    /// `new`, `existing`, `invalid`, `suppressed`.
    pub outcome: &'static str,
    /// The address as given (for an invalid row, the text that is not one).
    pub address: String,
    /// Why: where it already is, the suppression's reason, what is wrong.
    pub detail: Option<String>,
}

/// What `subscribers import` did.
#[derive(Debug, serde::Serialize)]
pub struct Imported {
    pub file: PathBuf,
    pub new: u64,
    pub existing: u64,
    pub invalid: u64,
    pub suppressed: u64,
    pub rows: Vec<Row>,
}

impl Report for Imported {
    fn text(&self) -> String {
        let mut out = format!(
            "{}: {} new, {} existing, {} invalid, {} suppressed\n",
            self.file.display(),
            self.new,
            self.existing,
            self.invalid,
            self.suppressed
        );
        // Values from the file are made one line: a quoted field with a
        // line break must not start a report line of its own.
        use crate::project::subscribers::clean_line;
        for r in &self.rows {
            out.push_str(&format!(
                "{}:{}: {} {}",
                self.file.display(),
                r.line,
                r.outcome,
                clean_line(&r.address)
            ));
            if let Some(d) = &r.detail {
                out.push_str(&format!(" ({})", clean_line(d)));
            }
            out.push('\n');
        }
        out
    }
}

/// Which columns hold what, found by name.
struct Columns {
    email: usize,
    name: Option<usize>,
    first: Option<usize>,
    last: Option<usize>,
}

fn columns(headers: &csv::StringRecord, path: &Path) -> Result<Columns, Failure> {
    let names: Vec<String> = headers
        .iter()
        .map(|h| {
            h.trim_start_matches('\u{feff}')
                .trim()
                .to_lowercase()
                .replace(['_', '-'], " ")
        })
        .collect();
    let find = |wanted: &[&str]| names.iter().position(|n| wanted.contains(&n.as_str()));
    let email = find(&["email", "email address", "e mail", "e mail address", "mail", "emailaddress"])
        .ok_or_else(|| {
            Failure::one(Problem::at(
                path,
                1,
                "no email column in the header (looked for `email`, `Email Address`, `e-mail`); name the address column `email`",
            ))
        })?;
    Ok(Columns {
        email,
        name: find(&["name", "full name", "fullname", "display name"]),
        first: find(&["first name", "firstname", "fname", "given name"]),
        last: find(&["last name", "lastname", "lname", "surname", "family name"]),
    })
}

/// The rows of `path`, each with its line: every structural problem of
/// the file, or the rows.
fn read(path: &Path, label: &Path) -> Result<Vec<(u64, String, String)>, Failure> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| Failure::one(Problem::new(label, None, format!("cannot read: {e}"))))?;
    let headers = reader
        .headers()
        .map_err(|e| Failure::one(Problem::at(label, 1, format!("unreadable header: {e}"))))?
        .clone();
    let cols = columns(&headers, label)?;
    let field = |r: &csv::StringRecord, i: Option<usize>| {
        i.and_then(|i| r.get(i))
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for record in reader.records() {
        match record {
            Ok(r) => {
                let line = r.position().map_or(0, |p| p.line());
                let name = match field(&r, cols.name) {
                    n if !n.is_empty() => n,
                    _ => format!("{} {}", field(&r, cols.first), field(&r, cols.last)),
                };
                rows.push((line, field(&r, Some(cols.email)), clean_line(&name)));
            }
            Err(e) => {
                let line = e.position().map_or(1, |p| p.line() as usize);
                problems.push(Problem::at(label, line, format!("{e}")));
            }
        }
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(Failure::input(problems))
    }
}

/// Merges the readers of `file` (a path as given on the command line,
/// `label` for messages) into the signups.
pub fn import(
    project: &Project,
    file: &Path,
    label: &Path,
    now: DateTime<Utc>,
) -> Result<Imported, Failure> {
    let rows = read(file, label)?;
    let csv = project.subscribers().map_err(Failure::input)?;
    let mut on_csv: HashSet<KeyDigest> = csv.readers().map(|r| KeyDigest::of(&r.key)).collect();
    let mut ledger = super::ledger(project, now)?;
    let suppressed: std::collections::HashMap<String, String> = ledger
        .suppressions()?
        .into_iter()
        .map(|s| (s.address, s.reason))
        .collect();
    let consent = format!(
        "imported by the operator from {} on {}",
        label.display(),
        now.date_naive()
    );
    let mut report = Imported {
        file: label.to_path_buf(),
        new: 0,
        existing: 0,
        invalid: 0,
        suppressed: 0,
        rows: Vec::new(),
    };
    for (line, text, name) in rows {
        let (outcome, detail) = match parse_address(&text) {
            Err(why) => ("invalid", Some(why)),
            Ok(a) => {
                let key = AddressKey::from(&a);
                if let Some(reason) = suppressed.get(key.as_str()) {
                    ("suppressed", Some(format!("{reason}: not added")))
                } else if !on_csv.insert(KeyDigest::of(&key)) {
                    ("existing", None)
                } else {
                    match ledger.add_signup(&key, &name, SignupSource::Imported, &consent, now)? {
                        Added::New | Added::Confirmed => ("new", None),
                        Added::Already => ("existing", None),
                    }
                }
            }
        };
        match outcome {
            "new" => report.new += 1,
            "existing" => report.existing += 1,
            "invalid" => report.invalid += 1,
            _ => report.suppressed += 1,
        }
        report.rows.push(Row {
            line,
            outcome,
            address: text,
            detail,
        });
    }
    Ok(report)
}

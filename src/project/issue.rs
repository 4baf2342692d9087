//! Issue records: `issues/YYYY-MM-DD.toml`, one per planned or sent issue.
//!
//! A record holds the issue number, its date, the subject and the slug picked
//! for each section. `plan` writes records; editors may change them before the
//! issue goes out; `send` freezes them by keeping their content hash in the
//! ledger. This module parses, formats, loads and checks records; it does not
//! pick (that is `pick`) and does not decide when a record is frozen.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::problem::{Problem, key_line, line_of};
use crate::project::content::Pool;
use crate::project::settings::toml_message;

pub use crate::project::settings::ISSUES_DIR as DIR;

/// Earlier issues' picks: date → section → slug, what `pick` looks at
/// (only dates before the day being picked).
pub type History = BTreeMap<NaiveDate, BTreeMap<String, String>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRecord {
    pub number: u32,
    pub date: NaiveDate,
    /// The subject as planned; when absent it is rendered from the settings.
    pub subject: Option<String>,
    /// Section name → slug.
    pub picks: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    number: u32,
    date: toml::value::Datetime,
    subject: Option<String>,
    picks: BTreeMap<String, String>,
}

/// A record as loaded from disk, with what is needed to report on it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub record: IssueRecord,
    pub path: PathBuf,
    pub text: String,
}

impl Stored {
    /// SHA-256 of the file's bytes, hex: what the ledger freezes.
    pub fn hash(&self) -> String {
        content_hash(&self.text)
    }
}

pub fn content_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn file_name(date: NaiveDate) -> String {
    format!("{date}.toml")
}

/// Where the record of `date` lives, relative to the project root.
pub fn path(date: NaiveDate) -> PathBuf {
    Path::new(DIR).join(file_name(date))
}

impl IssueRecord {
    pub fn parse(text: &str, path: &Path) -> Result<IssueRecord, Vec<Problem>> {
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            vec![Problem::at(path, line, toml_message(&e))]
        })?;
        let date = raw
            .date
            .date
            .filter(|_| raw.date.time.is_none())
            .and_then(|d| {
                NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
            });
        let Some(date) = date else {
            return Err(vec![Problem::at(
                path,
                key_line(text, "date").unwrap_or(1),
                "`date` must be a date such as 2027-03-01 (no quotes, no time)",
            )]);
        };
        if !crate::project::settings::date_in_range(date) {
            return Err(vec![Problem::at(
                path,
                key_line(text, "date").unwrap_or(1),
                "`date` must be from 1000-01-01 to 9999-12-31",
            )]);
        }
        let expected = file_name(date);
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy() != expected)
        {
            return Err(vec![Problem::at(
                path,
                key_line(text, "date").unwrap_or(1),
                format!(
                    "the record says date = {date} but the file is not named {expected}; rename the file or fix the date"
                ),
            )]);
        }
        let mut problems = Vec::new();
        if raw.number == 0 {
            problems.push(Problem::at(
                path,
                key_line(text, "number").unwrap_or(1),
                "`number` must be 1 or more: issues are numbered from 1",
            ));
        }
        if let Some(subject) = &raw.subject {
            let line = key_line(text, "subject").unwrap_or(1);
            if subject.trim().is_empty() {
                problems.push(Problem::at(
                    path,
                    line,
                    "`subject` must not be empty; write one, or delete the line to use the `subject` template of the settings",
                ));
            } else if subject.chars().any(char::is_control) {
                problems.push(Problem::at(
                    path,
                    line,
                    "`subject` must be one line without control characters: a mail subject is one line",
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(IssueRecord {
            number: raw.number,
            date,
            subject: raw.subject,
            picks: raw.picks,
        })
    }

    /// The record's file text. Stable: the same record always gives the same bytes.
    pub fn to_toml(&self, newsletter: &str) -> String {
        let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
        // The name goes into a comment: one line, or the rest would be TOML.
        let mut out = format!(
            "# {}, issue {}. Written by `dailyissue plan`.\n\
             # Edit the picks (file names without .md) or the subject before the issue\n\
             # is sent; once delivery starts, the record is frozen.\n\
             number = {}\ndate = {}\n",
            crate::project::subscribers::clean_line(newsletter),
            self.number,
            self.number,
            self.date
        );
        if let Some(subject) = &self.subject {
            out.push_str(&format!("subject = {}\n", quote(subject)));
        }
        out.push_str("\n[picks]\n");
        for (section, slug) in &self.picks {
            out.push_str(&format!("{section} = {}\n", quote(slug)));
        }
        out
    }

    /// Problems with the picks against the pool: unknown sections, unknown
    /// slugs, missing sections.
    pub fn check_against(&self, pool: &Pool, path: &Path, text: &str) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (section, slug) in &self.picks {
            let line = key_line(text, section).unwrap_or(1);
            match pool.section(section) {
                None => problems.push(Problem::at(
                    path,
                    line,
                    format!(
                        "no section is named `{section}`; the sections are {}",
                        section_names(pool)
                    ),
                )),
                Some(s) => match s.items.iter().find(|i| &i.slug == slug) {
                    None => problems.push(Problem::at(
                        path,
                        line,
                        format!(
                            "section `{section}` has no item `{slug}`; use the name of a file in {} without .md",
                            s.dir.display()
                        ),
                    )),
                    Some(item) if item.draft => problems.push(Problem::at(
                        path,
                        line,
                        format!("`{slug}` is a draft; remove `draft = true` from {} or pick another item", item.path.display()),
                    )),
                    Some(_) => {}
                },
            }
        }
        for s in &pool.sections {
            if !self.picks.contains_key(&s.name) {
                problems.push(Problem::at(
                    path,
                    key_line(text, "[picks]").unwrap_or(1),
                    format!(
                        "no pick for section `{}`; add {} = \"SLUG\" under [picks]",
                        s.name, s.name
                    ),
                ));
            }
        }
        problems
    }
}

fn section_names(pool: &Pool) -> String {
    pool.sections
        .iter()
        .map(|s| format!("`{}`", s.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every record in the issues folder, by date.
#[derive(Debug, Clone, Default)]
pub struct Issues {
    pub dir: PathBuf,
    pub records: BTreeMap<NaiveDate, Stored>,
}

impl Issues {
    /// Loads `root/issues/*.toml`; `dir` in messages is relative to `root`.
    pub fn load(root: &Path) -> Result<Issues, Vec<Problem>> {
        let dir = PathBuf::from(DIR);
        let mut records = BTreeMap::new();
        let mut problems = Vec::new();
        let entries = match std::fs::read_dir(root.join(&dir)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Issues { dir, records });
            }
            Err(e) => return Err(vec![Problem::new(&dir, None, format!("cannot read: {e}"))]),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml") && !n.starts_with('.'))
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let text = match std::fs::read_to_string(root.join(&path)) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(Problem::new(&path, None, format!("cannot read: {e}")));
                    continue;
                }
            };
            if name.trim_end_matches(".toml").parse::<NaiveDate>().is_err() {
                problems.push(Problem::new(
                    &path,
                    None,
                    "issue records must be named YYYY-MM-DD.toml after their date",
                ));
                continue;
            }
            match IssueRecord::parse(&text, &path) {
                Ok(record) => {
                    records.insert(record.date, Stored { record, path, text });
                }
                Err(mut p) => problems.append(&mut p),
            }
        }
        if problems.is_empty() {
            Ok(Issues { dir, records })
        } else {
            Err(problems)
        }
    }

    /// Every record's picks, for `pick`.
    pub fn history(&self) -> History {
        self.records
            .iter()
            .map(|(d, s)| (*d, s.record.picks.clone()))
            .collect()
    }

    /// The number the issue of `date` gets when it is first planned: one more
    /// than the latest record before it, or 1. `None` past `u32::MAX`.
    pub fn next_number(&self, date: NaiveDate) -> Option<u32> {
        match self.records.range(..date).next_back() {
            Some((_, s)) => s.record.number.checked_add(1),
            None => Some(1),
        }
    }

    /// Records whose number does not grow with the date: a number already
    /// taken, or one not above every number of an earlier record. Readers
    /// see "No. 1" twice otherwise.
    pub fn number_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut taken: BTreeMap<u32, &Stored> = BTreeMap::new();
        // The highest number so far, and its record.
        let mut highest: Option<&Stored> = None;
        for stored in self.records.values() {
            let n = stored.record.number;
            let line = key_line(&stored.text, "number").unwrap_or(1);
            if let Some(first) = taken.get(&n) {
                problems.push(Problem::at(
                    &stored.path,
                    line,
                    format!(
                        "no. {n} is also the number of {}; every issue needs its own number, growing with the date: renumber this record (or the other) unless it has gone out",
                        first.path.display()
                    ),
                ));
            } else if let Some(high) = highest.filter(|h| h.record.number > n) {
                problems.push(Problem::at(
                    &stored.path,
                    line,
                    format!(
                        "no. {n} comes after no. {} of {}, an earlier issue; numbers grow with the date: renumber this record (or the earlier one) unless it has gone out",
                        high.record.number,
                        high.path.display()
                    ),
                ));
            }
            taken.entry(n).or_insert(stored);
            if highest.is_none_or(|h| n > h.record.number) {
                highest = Some(stored);
            }
        }
        problems
    }

    pub fn get(&self, date: NaiveDate) -> Option<&Stored> {
        self.records.get(&date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> IssueRecord {
        IssueRecord {
            number: 12,
            date: "2027-03-01".parse().expect("date"),
            subject: Some("Token, \"Claude\", and one tip".into()),
            picks: [
                ("term".to_string(), "token".to_string()),
                ("tip".to_string(), "ask-for-sources".to_string()),
            ]
            .into(),
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let text = record().to_toml("Beginners in AI");
        let parsed = IssueRecord::parse(&text, Path::new("issues/2027-03-01.toml")).expect("valid");
        assert_eq!(parsed, record());
        assert!(
            text.contains("subject = 'Token, \"Claude\", and one tip'\n"),
            "{text}"
        );
    }

    #[test]
    fn file_name_must_match_the_date() {
        let text = record().to_toml("x");
        let errs =
            IssueRecord::parse(&text, Path::new("issues/2027-03-02.toml")).expect_err("mismatch");
        assert!(
            errs[0]
                .to_string()
                .contains(":5: the record says date = 2027-03-01"),
            "{errs:?}"
        );
    }

    #[test]
    fn a_name_with_a_line_break_still_gives_a_readable_record() {
        let text = record().to_toml("Beginners\nin AI");
        let parsed = IssueRecord::parse(&text, Path::new("issues/2027-03-01.toml")).expect("valid");
        assert_eq!(parsed, record());
    }

    #[test]
    fn numbers_subjects_and_dates_are_checked_with_their_lines() {
        let path = Path::new("issues/2027-03-01.toml");
        for (text, expected) in [
            (
                "number = 0\ndate = 2027-03-01\n[picks]\n",
                ":1: `number` must be 1 or more",
            ),
            (
                "number = 1\ndate = 2027-03-01\nsubject = \"\"\n[picks]\n",
                ":3: `subject` must not be empty",
            ),
            (
                "number = 1\ndate = 2027-03-01\nsubject = \"a\\r\\nBcc: x\"\n[picks]\n",
                ":3: `subject` must be one line",
            ),
        ] {
            let errs = IssueRecord::parse(text, path).expect_err(text);
            assert!(errs[0].to_string().contains(expected), "{text}: {errs:?}");
        }
        let errs = IssueRecord::parse(
            "number = 1\ndate = 0999-03-01\n[picks]\n",
            Path::new("issues/0999-03-01.toml"),
        )
        .expect_err("year 999");
        assert!(
            errs[0]
                .to_string()
                .contains(":2: `date` must be from 1000-01-01"),
            "{errs:?}"
        );
    }

    fn issues(numbers: &[(&str, u32)]) -> Issues {
        let mut issues = Issues::default();
        for (date, number) in numbers {
            let record = IssueRecord {
                number: *number,
                date: date.parse().expect("date"),
                ..record()
            };
            issues.records.insert(
                record.date,
                Stored {
                    path: path(record.date),
                    text: record.to_toml("x"),
                    record,
                },
            );
        }
        issues
    }

    #[test]
    fn numbers_must_grow_with_the_date() {
        let ok = issues(&[("2027-03-01", 1), ("2027-03-02", 2), ("2027-03-05", 7)]);
        assert!(ok.number_problems().is_empty());
        let bad = issues(&[
            ("2027-03-01", 1),
            ("2027-03-02", 5),
            ("2027-03-03", 1),
            ("2027-03-04", 4),
        ]);
        let msgs: Vec<String> = bad
            .number_problems()
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(
            msgs[0].starts_with(
                "issues/2027-03-03.toml:4: no. 1 is also the number of issues/2027-03-01.toml"
            ),
            "{msgs:?}"
        );
        assert!(
            msgs[1].starts_with(
                "issues/2027-03-04.toml:4: no. 4 comes after no. 5 of issues/2027-03-02.toml"
            ),
            "{msgs:?}"
        );
        assert_eq!(
            bad.next_number("2027-03-10".parse().expect("date")),
            Some(5)
        );
        let full = issues(&[("2027-03-01", u32::MAX)]);
        assert_eq!(full.next_number("2027-03-02".parse().expect("date")), None);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = "number = 1\ndate = 2027-03-01\nsubjct = \"x\"\n[picks]\n";
        let errs = IssueRecord::parse(text, Path::new("issues/2027-03-01.toml")).expect_err("typo");
        assert!(
            errs[0].to_string().contains(":3: unknown key `subjct`"),
            "{errs:?}"
        );
    }
}

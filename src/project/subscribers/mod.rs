//! The subscriber list: a CSV file with a header row.
//!
//! `email` is required; `name` and `status` (`active`, `unsubscribed`,
//! `bounced`) are optional; `timezone`, if present, is the reader's IANA
//! zone (empty: the newsletter's); every column but email, name and status
//! reaches templates as `subscriber.COLUMN`. Identity is the address trimmed and lower-cased. A
//! UTF-8 BOM is accepted.
//!
//! Two kinds of problems: a file whose *structure* is broken (a column named
//! twice, a quote never closed, a row with the wrong number of fields) is an
//! error as a whole, because rows may have been swallowed or shifted and no
//! row can be trusted; problems of single rows (invalid or duplicate address,
//! unknown status, an overlong field) leave that row out of the list, so
//! `send` can skip it while `check` fails on it. Both carry line numbers.
//!
//! This file holds the values (readers, their identity, the checked list)
//! and the checking pass over a whole list, which finds duplicates; `scan`
//! reads and judges one row at a time, `source` gives it the bytes (the one
//! open file, or memory), and `address` has the rules for an address and
//! for a value that reaches a header.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lettre::Address;

use crate::problem::Problem;

mod address;
mod scan;
mod source;
#[cfg(test)]
mod tests;

pub use address::{clean_line, parse_address};
use scan::{Row, Scanner};
use source::Source;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStatus {
    Active,
    Unsubscribed,
    Bounced,
}

/// A reader's identity: the address trimmed and lower-cased. Ledger rows,
/// suppressions, link tokens and Message-IDs are all made from it, so
/// `Ada@Example.org` and `ada@example.org` are one reader everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct AddressKey(String);

impl AddressKey {
    pub fn new(address: &str) -> AddressKey {
        AddressKey(address.trim().to_lowercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for AddressKey {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AddressKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for AddressKey {
    fn from(a: &str) -> AddressKey {
        AddressKey::new(a)
    }
}

impl From<&Address> for AddressKey {
    fn from(a: &Address) -> AddressKey {
        AddressKey::new(a.as_ref())
    }
}

#[derive(Debug, Clone)]
pub struct Subscriber {
    pub email: Address,
    /// The identity used by the ledger and suppressions.
    pub key: AddressKey,
    /// Display name with line breaks and control characters removed; may be empty.
    pub name: String,
    pub status: ListStatus,
    /// Every other column's value, in the order of [`List::columns`]. (A
    /// vector, not a map: a list of a million readers must stay small.)
    pub fields: Vec<String>,
    /// The reader's own time zone (the `timezone` column, or the zone a
    /// signup brought); `None`: the newsletter's.
    pub zone: Option<chrono_tz::Tz>,
    pub line: u64,
}

impl Subscriber {
    /// Which personal values are empty: the name, the first name (a
    /// `first_name` column, at index `first_name` of the extra columns,
    /// wins over the name's first word), then each extra column. Templates
    /// may test a value for emptiness, so readers with the same blanks get
    /// the same rendering (a *shape*).
    pub fn blanks(&self, first_name: Option<usize>) -> Vec<bool> {
        let blank = |s: &str| s.chars().all(|c| c.is_control() || c.is_whitespace());
        let mut key = Vec::with_capacity(2 + self.fields.len());
        key.push(blank(&self.name));
        key.push(blank(self.first_name(first_name)));
        key.extend(self.fields.iter().map(|f| blank(f)));
        key
    }

    /// The first name: the `first_name` column (its index among the extra
    /// columns) when there is one, else the first word of the name.
    pub fn first_name(&self, column: Option<usize>) -> &str {
        match column {
            Some(i) => self.fields.get(i).map_or("", String::as_str),
            None => self.name.split_whitespace().next().unwrap_or(""),
        }
    }

    /// A reader who is not on the list (test copies, previews), with every
    /// extra column empty.
    pub fn ad_hoc(email: Address, name: &str, columns: usize) -> Subscriber {
        Subscriber {
            key: AddressKey::from(&email),
            email,
            name: clean_line(name),
            status: ListStatus::Active,
            fields: vec![String::new(); columns],
            zone: None,
            line: 0,
        }
    }
}

/// The list, checked: its columns, its problems, what it holds — but not
/// its rows. Rows are read again, one at a time, when they are needed
/// ([`List::readers`]), so a list of a million readers costs the same memory
/// as a list of ten: only what finding duplicates needs (a 12-byte digest
/// per address) lives while the file is checked, and is dropped after.
#[derive(Debug, Clone)]
pub struct List {
    /// The extra columns (all but email, name, status), in header order.
    pub columns: Vec<String>,
    /// Rows left out, each with its line and reason.
    pub problems: Vec<Problem>,
    /// Rows read (valid ones), and those of them that are active.
    pub rows: usize,
    pub active: usize,
    /// The first active reader of each shape of personal data (which
    /// values are empty), for checks that must see every shape.
    samples: Vec<Subscriber>,
    /// Lines of the rows left out.
    skip: HashSet<u64>,
    source: Source,
    path: PathBuf,
}

/// A compact, fixed-size stand-in for an address key (two independent
/// hashes, 96 bits), for sets over a whole list; a collision is about as
/// likely as 1 in 10^16 at a million readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDigest(u64, u32);

impl KeyDigest {
    pub fn of(key: &AddressKey) -> KeyDigest {
        KeyDigest::of_str(key.as_str())
    }

    fn of_str(key: &str) -> KeyDigest {
        use std::hash::{Hash, Hasher};
        let mut a = std::hash::DefaultHasher::new();
        key.hash(&mut a);
        let mut b = std::hash::DefaultHasher::new();
        (0x9E37_79B9_u32, key).hash(&mut b);
        KeyDigest(a.finish(), b.finish() as u32)
    }
}

impl List {
    pub fn from_file(path_label: &Path, full_path: &Path) -> Result<List, Vec<Problem>> {
        let file = std::fs::File::open(full_path).map_err(|e| {
            vec![Problem::new(
                path_label,
                None,
                format!("cannot read the subscriber list ({e}); set `subscribers` in dailyissue.toml to its path"),
            )]
        })?;
        check(Source::File(Arc::new(file)), path_label)
    }

    /// Every valid row, read again from the source in file order.
    pub fn readers(&self) -> Readers<'_> {
        Readers {
            scanner: Scanner::open(self.source.clone(), &self.path).ok(),
            skip: &self.skip,
        }
    }

    /// The active readers, read again from the source.
    pub fn active(&self) -> impl Iterator<Item = Subscriber> + '_ {
        self.readers().filter(|s| s.status == ListStatus::Active)
    }

    /// One active reader of each shape of personal data (see the field).
    pub fn samples(&self) -> &[Subscriber] {
        &self.samples
    }

    /// The listed reader with this address, or else an unnamed reader who is
    /// not on the list (test copies, previews), with whether it was listed.
    /// `None` when `address` is not an email address.
    pub fn reader(&self, address: &str) -> Option<(Subscriber, bool)> {
        if let Some(r) = self.find(address) {
            return Some((r, true));
        }
        let email = parse_address(address.trim()).ok()?;
        Some((Subscriber::ad_hoc(email, "", self.columns.len()), false))
    }

    pub fn find(&self, address: &str) -> Option<Subscriber> {
        let key = AddressKey::new(address);
        self.readers().find(|s| s.key == key)
    }
}

/// Rows of the list, read again (see [`List::readers`]).
pub struct Readers<'a> {
    scanner: Option<Scanner>,
    skip: &'a HashSet<u64>,
}

impl Iterator for Readers<'_> {
    type Item = Subscriber;

    fn next(&mut self) -> Option<Subscriber> {
        let scanner = self.scanner.as_mut()?;
        loop {
            match scanner.next_row()? {
                Row::Reader(s) if !self.skip.contains(&s.line) => return Some(s),
                _ => {}
            }
        }
    }
}

/// The most a single CSV field may hold. Every value is copied into each
/// reader's message, so an overgrown cell is a problem of its row, found
/// here, rather than an oversized issue blamed on the template later.
pub const MAX_FIELD: usize = 1000;

/// Checks a list held in memory (tests, and anything that has the bytes).
/// A broken file (unusable header, a quote that is never closed, a row with
/// the wrong number of fields, a line break inside an address) is an error:
/// every problem found, rows included, and nothing is sent. Problems of
/// single rows (invalid or duplicate address, unknown status, an overlong
/// field) are collected in [`List::problems`]; `send` skips those rows and
/// `check` fails on them.
pub fn parse(bytes: &[u8], path: &Path) -> Result<List, Vec<Problem>> {
    check(Source::Bytes(Arc::from(bytes)), path)
}

/// The most shapes of personal data [`List::samples`] keeps.
const MAX_SAMPLES: usize = 4096;

/// The checking pass over the whole list.
fn check(source: Source, path: &Path) -> Result<List, Vec<Problem>> {
    let mut scanner = Scanner::open(source.clone(), path)?;
    let mut broken = std::mem::take(&mut scanner.header_problems);
    let columns = scanner.extra_names();
    let first_name = columns.iter().position(|c| c == "first_name");
    let mut list = List {
        columns,
        problems: Vec::new(),
        rows: 0,
        active: 0,
        samples: Vec::new(),
        skip: HashSet::new(),
        source,
        path: path.to_path_buf(),
    };
    // Only what finding duplicates needs: a digest and a line per address.
    let mut seen: HashMap<KeyDigest, u32> = HashMap::new();
    let mut shapes: HashSet<Vec<bool>> = HashSet::new();
    while let Some(row) = scanner.next_row() {
        let s = match row {
            Row::Broken(p) => {
                broken.push(p);
                continue;
            }
            Row::Skipped(line, p) => {
                list.skip.insert(line);
                list.problems.push(p);
                continue;
            }
            Row::Reader(s) => s,
        };
        match seen.entry(KeyDigest::of(&s.key)) {
            std::collections::hash_map::Entry::Occupied(first) => {
                list.skip.insert(s.line);
                list.problems.push(Problem::at(
                    path,
                    s.line as usize,
                    format!(
                        "duplicate address {} (first on line {}); delete one of the rows",
                        s.email,
                        first.get()
                    ),
                ));
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(u32::try_from(s.line).unwrap_or(u32::MAX));
                list.rows += 1;
                if s.status == ListStatus::Active {
                    list.active += 1;
                    if list.samples.len() < MAX_SAMPLES && shapes.insert(s.blanks(first_name)) {
                        list.samples.push(s);
                    }
                }
            }
        }
    }
    if broken.is_empty() {
        Ok(list)
    } else {
        broken.append(&mut list.problems);
        broken.sort_by_key(|p| p.line);
        Err(broken)
    }
}

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

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lettre::Address;

use crate::problem::Problem;

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

/// Where the list's bytes come from: the file, read again through the one
/// handle opened when it was checked (a file replaced meanwhile, as editors
/// and exports do by renaming, is not seen), or bytes in memory.
#[derive(Debug, Clone)]
enum Source {
    File(Arc<std::fs::File>),
    Bytes(Arc<[u8]>),
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
        scan(Source::File(Arc::new(file)), path_label)
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
    scan(Source::Bytes(Arc::from(bytes)), path)
}

/// The most shapes of personal data [`List::samples`] keeps.
const MAX_SAMPLES: usize = 4096;

/// The checking pass over the whole list.
fn scan(source: Source, path: &Path) -> Result<List, Vec<Problem>> {
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

/// One row of the list, as the scanner judged it.
enum Row {
    Reader(Subscriber),
    /// A problem of this row only (its line): the row is left out.
    Skipped(u64, Problem),
    /// The file's structure is broken here.
    Broken(Problem),
}

/// Reads rows one at a time from a source, judging each.
struct Scanner {
    reader: csv::Reader<SourceReader>,
    path: PathBuf,
    headers: Vec<String>,
    header_problems: Vec<Problem>,
    email_col: usize,
    name_col: Option<usize>,
    status_col: Option<usize>,
    extra: Vec<usize>,
    record: csv::StringRecord,
    /// Bytes after the BOM, to tell a field running to the end of the file.
    len: u64,
}

impl Scanner {
    fn open(source: Source, path: &Path) -> Result<Scanner, Vec<Problem>> {
        let source_reader = SourceReader::new(source).map_err(|e| {
            vec![Problem::new(
                path,
                None,
                format!("cannot read the subscriber list ({e})"),
            )]
        })?;
        let len = source_reader.len;
        // Flexible so that a row of the wrong length reaches the checks
        // below, which say what is probably wrong with it.
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(source_reader);
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
        let mut header_problems = Vec::new();
        for (i, h) in headers.iter().enumerate() {
            if let Some(first) = headers[..i].iter().position(|x| x == h && !h.is_empty()) {
                header_problems.push(Problem::at(
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
        let extra = headers
            .iter()
            .enumerate()
            .filter(|(i, h)| {
                *i != email_col && Some(*i) != name_col && Some(*i) != status_col && !h.is_empty()
            })
            .map(|(i, _)| i)
            .collect();
        Ok(Scanner {
            reader,
            path: path.to_path_buf(),
            headers,
            header_problems,
            email_col,
            name_col,
            status_col,
            extra,
            record: csv::StringRecord::new(),
            len,
        })
    }

    /// The extra columns' names, in header order.
    fn extra_names(&self) -> Vec<String> {
        self.extra
            .iter()
            .map(|&i| self.headers[i].clone())
            .collect()
    }

    /// The next row, judged; `None` at the end.
    fn next_row(&mut self) -> Option<Row> {
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    return Some(Row::Skipped(
                        line,
                        Problem::new(
                            &self.path,
                            (line > 0).then_some(line as usize),
                            format!("unreadable row: {e}"),
                        ),
                    ));
                }
            }
            if !self.record.iter().all(|f| f.is_empty()) {
                return Some(self.judge());
            }
        }
    }

    fn judge(&self) -> Row {
        let record = &self.record;
        let start = record.position().map_or(0, |p| p.byte());
        let end = self.reader.position().byte();
        let raw = self.reader.get_ref().raw(start, end);
        let line = first_line(record.position().map_or(1, |p| p.line()), &raw);
        let bad = |msg: String| Problem::at(&self.path, line as usize, msg);
        if let Some(p) = structure(
            record,
            &raw,
            line,
            self.headers.len(),
            self.email_col,
            end >= self.len,
        ) {
            return Row::Broken(bad(p));
        }
        if let Some((i, f)) = record.iter().enumerate().find(|(_, f)| f.len() > MAX_FIELD) {
            return Row::Skipped(
                line,
                bad(format!(
                    "the `{}` field is {} long; a field may hold at most {MAX_FIELD} bytes (it is copied into every message): shorten it or delete the row",
                    self.headers[i],
                    size(f.len())
                )),
            );
        }
        let raw_email = record.get(self.email_col).unwrap_or("");
        let email = match parse_address(raw_email) {
            Ok(a) => a,
            Err(why) => return Row::Skipped(line, bad(why)),
        };
        let status = match self.status_col.and_then(|c| record.get(c)).unwrap_or("") {
            "" | "active" => ListStatus::Active,
            "unsubscribed" => ListStatus::Unsubscribed,
            "bounced" => ListStatus::Bounced,
            other => {
                return Row::Skipped(
                    line,
                    bad(format!(
                        "status `{other}` is not one of active, unsubscribed, bounced"
                    )),
                );
            }
        };
        Row::Reader(Subscriber {
            key: AddressKey::new(raw_email),
            email,
            name: self
                .name_col
                .and_then(|c| record.get(c))
                .map(clean_line)
                .unwrap_or_default(),
            status,
            fields: self
                .extra
                .iter()
                .map(|&i| record.get(i).unwrap_or("").to_string())
                .collect(),
            line,
        })
    }
}

/// Reads a [`Source`] from the start (after a UTF-8 BOM) with positioned
/// reads, keeping the last bytes read so the scanner can look at a record's
/// raw text (quotes, blank lines before it) without holding the file.
struct SourceReader {
    source: Source,
    /// Where the text starts (3 after a BOM).
    base: u64,
    /// Bytes of text in the source.
    len: u64,
    pos: u64,
    window: Vec<u8>,
    /// The position (from `base`) of `window[0]`.
    window_start: u64,
}

/// How much of the recently read text [`SourceReader`] keeps.
const WINDOW: usize = 256 * 1024;

impl SourceReader {
    fn new(source: Source) -> std::io::Result<SourceReader> {
        let total = match &source {
            Source::File(f) => f.metadata()?.len(),
            Source::Bytes(b) => b.len() as u64,
        };
        let mut head = [0u8; 3];
        let n = read_at(&source, &mut head, 0)?;
        let base = if n == 3 && head == *b"\xEF\xBB\xBF" {
            3
        } else {
            0
        };
        Ok(SourceReader {
            source,
            base,
            len: total - base,
            pos: 0,
            window: Vec::new(),
            window_start: 0,
        })
    }

    /// The text between two positions: from the window when it is still
    /// there, else read again.
    fn raw(&self, start: u64, end: u64) -> std::borrow::Cow<'_, [u8]> {
        let in_window = start >= self.window_start
            && end <= self.window_start + self.window.len() as u64
            && start <= end;
        if in_window {
            let from = (start - self.window_start) as usize;
            let to = (end - self.window_start) as usize;
            return std::borrow::Cow::Borrowed(&self.window[from..to]);
        }
        let mut buf = vec![0u8; end.saturating_sub(start) as usize];
        let n = read_at(&self.source, &mut buf, self.base + start).unwrap_or(0);
        buf.truncate(n);
        std::borrow::Cow::Owned(buf)
    }
}

impl std::io::Read for SourceReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = read_at(&self.source, buf, self.base + self.pos)?;
        self.pos += n as u64;
        self.window.extend_from_slice(&buf[..n]);
        if self.window.len() > 2 * WINDOW {
            let drop = self.window.len() - WINDOW;
            self.window.drain(..drop);
            self.window_start += drop as u64;
        }
        Ok(n)
    }
}

/// Reads at an absolute offset without moving a shared cursor, so any
/// number of passes can read one open file.
fn read_at(source: &Source, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    match source {
        Source::File(f) => {
            use std::os::unix::fs::FileExt;
            f.read_at(buf, offset)
        }
        Source::Bytes(b) => {
            let start = (offset as usize).min(b.len());
            let n = buf.len().min(b.len() - start);
            buf[..n].copy_from_slice(&b[start..start + n]);
            Ok(n)
        }
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
        assert_eq!(list.rows, 2);
        let all: Vec<Subscriber> = list.readers().collect();
        let ada = &all[0];
        assert_eq!(ada.email.to_string(), "Ada@Example.org");
        assert_eq!(ada.key.as_str(), "ada@example.org");
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
        assert_eq!(list.rows, 3);
        let keys: Vec<String> = list.readers().map(|s| s.key.to_string()).collect();
        assert_eq!(
            keys,
            ["a@example.org", "c@example.org", "d@example.org"],
            "skipped rows are not read back"
        );
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
        assert_eq!(list.readers().count(), 1);
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
        assert_eq!(list.readers().next().expect("a row").line, 6);
    }

    #[test]
    fn a_file_is_read_again_from_the_handle_it_was_checked_with() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("list.csv");
        let mut csv = String::from("\u{feff}email,name\n");
        for i in 0..3000 {
            csv.push_str(&format!("r{i}@example.org,\"Reader, {i}\"\n"));
        }
        csv.push_str("r7@example.org,dup\n");
        std::fs::write(&path, &csv).expect("write");
        let list = List::from_file(Path::new("list.csv"), &path).expect("valid");
        assert_eq!(
            (list.rows, list.active, list.problems.len()),
            (3000, 3000, 1)
        );
        // An editor replaces the file by renaming: the run keeps its copy.
        std::fs::write(dir.path().join("new.csv"), "email\nother@example.org\n").expect("write");
        std::fs::rename(dir.path().join("new.csv"), &path).expect("rename");
        let read: Vec<Subscriber> = list.active().collect();
        assert_eq!(read.len(), 3000);
        assert_eq!(read[2999].name, "Reader, 2999");
        assert_eq!(read[2999].line, 3001);
        assert_eq!(list.samples().len(), 1, "one shape: every row has a name");
    }

    #[test]
    fn line_breaks_in_names_are_neutralised() {
        let list = parse_str("email,name\na@example.org,\"Eve\r\nBcc: x@evil.example\"\n");
        assert_eq!(
            list.readers().next().expect("a row").name,
            "Eve Bcc: x@evil.example"
        );
    }
}

//! Reading the list one row at a time: the header (which column is which),
//! then each record judged — broken structure (an unclosed quote, a line
//! break in the address, the wrong number of fields), a problem of that row
//! only (an overlong field, an invalid address, an unknown status), or a
//! reader. Holds no more than one record; the checking pass and
//! [`super::List::readers`] both read through it.
//!
//! The csv crate parses the records; what it cannot tell (a quote it closed
//! silently at the end of the file, blank lines before a row) is read off
//! the record's raw text, which [`SourceReader`] keeps.

use std::path::{Path, PathBuf};

use super::source::{Source, SourceReader};
use super::{AddressKey, ListStatus, MAX_FIELD, Subscriber, clean_line, parse_address};
use crate::problem::Problem;

/// One row of the list, as the scanner judged it.
pub(super) enum Row {
    Reader(Subscriber),
    /// A problem of this row only (its line): the row is left out.
    Skipped(u64, Problem),
    /// The file's structure is broken here.
    Broken(Problem),
}

/// Reads rows one at a time from a source, judging each.
pub(super) struct Scanner {
    reader: csv::Reader<SourceReader>,
    path: PathBuf,
    headers: Vec<String>,
    pub(super) header_problems: Vec<Problem>,
    email_col: usize,
    name_col: Option<usize>,
    status_col: Option<usize>,
    /// The reader's time zone (also an extra column, for templates).
    zone_col: Option<usize>,
    extra: Vec<usize>,
    record: csv::StringRecord,
    /// Bytes after the BOM, to tell a field running to the end of the file.
    len: u64,
}

impl Scanner {
    pub(super) fn open(source: Source, path: &Path) -> Result<Scanner, Vec<Problem>> {
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
        let zone_col = headers.iter().position(|h| h == "timezone");
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
            zone_col,
            extra,
            record: csv::StringRecord::new(),
            len,
        })
    }

    /// The extra columns' names, in header order.
    pub(super) fn extra_names(&self) -> Vec<String> {
        self.extra
            .iter()
            .map(|&i| self.headers[i].clone())
            .collect()
    }

    /// The next row, judged; `None` at the end.
    pub(super) fn next_row(&mut self) -> Option<Row> {
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
        let zone = match reader_zone(self.zone_col.and_then(|c| record.get(c)).unwrap_or("")) {
            Ok(zone) => zone,
            Err(why) => return Row::Skipped(line, bad(why)),
        };
        Row::Reader(Subscriber {
            zone,
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

/// A reader's `timezone` cell: empty (the newsletter's zone) or an IANA
/// name; a name in the wrong case is refused with its right spelling.
pub(super) fn reader_zone(cell: &str) -> Result<Option<chrono_tz::Tz>, String> {
    if cell.is_empty() {
        return Ok(None);
    }
    if let Ok(zone) = cell.parse::<chrono_tz::Tz>() {
        return Ok(Some(zone));
    }
    let spelled = chrono_tz::TZ_VARIANTS
        .iter()
        .find(|z| z.name().eq_ignore_ascii_case(cell));
    Err(match spelled {
        Some(zone) => format!(
            "unknown time zone `{cell}`; did you mean `{}`?",
            zone.name()
        ),
        None => format!(
            "unknown time zone `{}`; use an IANA name such as Europe/Berlin or America/New_York, or leave the cell empty for the newsletter's zone",
            cell.escape_debug()
        ),
    })
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

#[cfg(test)]
mod zone_tests {
    use std::path::Path;

    #[test]
    fn a_readers_zone_comes_from_the_timezone_column() {
        let list = crate::project::subscribers::parse(
            b"email,timezone\na@example.org,Asia/Kathmandu\nb@example.org,\nc@example.org,Mars/Olympus\nd@example.org,europe/berlin\n",
            Path::new("subscribers.csv"),
        )
        .expect("structure is fine");
        let problems: Vec<String> = list.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("subscribers.csv:4: unknown time zone `Mars/Olympus`"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("subscribers.csv:5: unknown time zone `europe/berlin`; did you mean `Europe/Berlin`?"),
            "{problems:?}"
        );
        let readers: Vec<_> = list.readers().collect();
        assert_eq!(readers.len(), 2);
        assert_eq!(readers[0].zone, Some(chrono_tz::Asia::Kathmandu));
        assert_eq!(readers[1].zone, None, "empty: the newsletter's zone");
        assert_eq!(list.columns, ["timezone"], "templates still see the column");
    }
}

//! `subscribers`: the one list `send` uses — the CSV's rows and the
//! confirmed signups of the ledger, each address once (the CSV row wins),
//! suppressions marked — and the operator's hand on the signups:
//!
//! - `list [--pending]`: the merged list (or the pending signups);
//! - `add ADDRESS [--name N]`: a confirmed signup, no confirmation mail
//!   (the operator vouches for the reader's consent);
//! - `remove ADDRESS`: drops a signup (a CSV row is the CSV's business);
//! - `export [FILE]`: the merged list as a CSV `send` could read,
//!   suppressions marked in a column;
//! - `import FILE` (`import`): merges another tool's export, reporting
//!   each row.
//!
//! The CSV itself is never written: it stays the operator's file. Each
//! command that writes first lets pending signups past their link expire.

mod import;

pub use import::import;

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::cmd::Report;
use crate::ledger::{Ledger, Signup, SignupSource, SignupStatus};
use crate::problem::{Failure, Usage};
use crate::project::Project;
use crate::project::subscribers::{AddressKey, List, ListStatus, clean_line, parse_address};

/// One reader of the merged list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub address: String,
    pub name: String,
    /// `active`, `unsubscribed` or `bounced` for a CSV row; `confirmed` or
    /// `pending` for a signup.
    pub status: &'static str,
    /// `csv`, or how the signup came: `form`, `added`, `imported`.
    pub source: &'static str,
    /// The CSV row's line.
    pub line: Option<u64>,
    /// The suppression's reason, when the address is suppressed.
    pub suppressed: Option<String>,
    pub timezone: Option<String>,
    /// A signup's times (consent evidence).
    pub requested_at: Option<String>,
    pub confirmed_at: Option<String>,
    /// A CSV row's other columns, for `export`.
    #[serde(skip)]
    fields: Vec<String>,
}

impl Entry {
    fn from_signup(s: &Signup, suppressed: Option<String>) -> Entry {
        Entry {
            address: s.address.clone(),
            name: s.name.clone(),
            status: match s.status {
                SignupStatus::Confirmed => "confirmed",
                SignupStatus::Pending => "pending",
            },
            source: s.source.as_str(),
            line: None,
            suppressed,
            timezone: s.timezone.clone(),
            requested_at: Some(s.requested_at.clone()),
            confirmed_at: s.confirmed_at.clone(),
            fields: Vec::new(),
        }
    }
}

/// `subscribers list`.
#[derive(Debug, serde::Serialize)]
pub struct Listed {
    pub readers: Vec<Entry>,
    /// Of them: rows of the CSV, signups, suppressed.
    pub csv_rows: u64,
    pub signups: u64,
    pub suppressed: u64,
    /// The CSV's other columns, for `export`.
    #[serde(skip)]
    columns: Vec<String>,
}

impl Report for Listed {
    /// One line per reader: address, name, status, source, and the
    /// suppression if any, separated by tabs.
    fn text(&self) -> String {
        let mut out = String::new();
        for e in &self.readers {
            out.push_str(&format!(
                "{}\t{}\t{}\t{}",
                e.address, e.name, e.status, e.source
            ));
            if let Some(reason) = &e.suppressed {
                out.push_str(&format!("\tsuppressed ({reason})"));
            }
            out.push('\n');
        }
        out
    }
}

/// The suppression list by address.
fn suppressions(ledger: Option<&Ledger>) -> Result<HashMap<String, String>, Failure> {
    Ok(match ledger {
        Some(l) => l
            .suppressions()?
            .into_iter()
            .map(|s| (s.address, s.reason))
            .collect(),
        None => HashMap::new(),
    })
}

fn csv_entry(
    r: &crate::project::subscribers::Subscriber,
    list: &List,
    suppressed: Option<String>,
) -> Entry {
    Entry {
        address: r.key.to_string(),
        name: r.name.clone(),
        status: match r.status {
            ListStatus::Active => "active",
            ListStatus::Unsubscribed => "unsubscribed",
            ListStatus::Bounced => "bounced",
        },
        source: "csv",
        line: Some(r.line),
        suppressed,
        timezone: list
            .columns
            .iter()
            .position(|c| c == "timezone")
            .and_then(|i| r.fields.get(i))
            .filter(|z| !z.is_empty())
            .cloned(),
        requested_at: None,
        confirmed_at: None,
        fields: r.fields.clone(),
    }
}

/// The merged list: every valid CSV row, then the signups whose address
/// the CSV does not hold (with `pending`, only the pending signups).
pub fn list(project: &Project, pending: bool) -> Result<Listed, Failure> {
    let ledger = crate::ledger::read(project)?;
    let suppressed = suppressions(ledger.as_ref())?;
    let mut signups: Vec<Signup> = match &ledger {
        Some(l) => l.signups(pending)?,
        None => Vec::new(),
    };
    let mut readers = Vec::new();
    let mut csv_rows = 0;
    let mut columns = Vec::new();
    if !pending {
        let list = project.subscribers().map_err(Failure::input)?;
        let mut by_address: HashMap<String, usize> = signups
            .iter()
            .enumerate()
            .map(|(i, s)| (s.address.clone(), i))
            .collect();
        for r in list.readers() {
            by_address.remove(r.key.as_str());
            csv_rows += 1;
            readers.push(csv_entry(
                &r,
                &list,
                suppressed.get(r.key.as_str()).cloned(),
            ));
        }
        let mut keep: Vec<usize> = by_address.into_values().collect();
        keep.sort_unstable();
        signups = keep.into_iter().map(|i| signups[i].clone()).collect();
        columns = list.columns;
    }
    let n_signups = signups.len() as u64;
    for s in &signups {
        readers.push(Entry::from_signup(s, suppressed.get(&s.address).cloned()));
    }
    Ok(Listed {
        suppressed: readers.iter().filter(|e| e.suppressed.is_some()).count() as u64,
        readers,
        csv_rows,
        signups: n_signups,
        columns,
    })
}

/// An address as the list takes it (the CSV's rules).
fn address(text: &str) -> Result<AddressKey, Failure> {
    parse_address(text.trim())
        .map(|a| AddressKey::from(&a))
        .map_err(|_| Failure::Usage(Usage::NotAnAddressArg(text.to_string())))
}

/// The writable ledger, with expired pending signups let go.
fn ledger(project: &Project, now: DateTime<Utc>) -> Result<Ledger, Failure> {
    let mut l = crate::ledger::open(project)?;
    let expired = l.expire_signups(now)?;
    if expired > 0 {
        tracing::info!(
            "{expired} pending signup{} expired",
            crate::cmd::plural(expired)
        );
    }
    Ok(l)
}

/// What `subscribers add` or `remove` did, in a sentence.
#[derive(Debug, serde::Serialize)]
pub struct Changed {
    pub address: String,
    /// `added`, `confirmed` (a pending signup), `already on the list`,
    /// `removed`, `not a signup`.
    pub outcome: &'static str,
    /// Where the CSV holds the address, if it does.
    pub csv_line: Option<u64>,
    pub note: Option<String>,
}

impl Report for Changed {
    fn text(&self) -> String {
        let mut out = format!("{}: {}", self.address, self.outcome);
        if let Some(note) = &self.note {
            out.push_str(&format!(" ({note})"));
        }
        out.push('\n');
        out
    }
}

/// Adds a confirmed signup by hand; a suppressed address is refused (the
/// reader asked not to be mailed, or their mail bounced).
pub fn add(
    project: &Project,
    text: &str,
    name: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Changed, Failure> {
    let key = address(text)?;
    let csv = project.subscribers().map_err(Failure::input)?;
    let mut l = ledger(project, now)?;
    if let Some(s) = l
        .suppressions()?
        .into_iter()
        .find(|s| s.address == key.as_str())
    {
        return Err(Failure::Usage(Usage::Suppressed {
            address: key.to_string(),
            reason: s.reason,
        }));
    }
    let csv_line = csv.find(&key).map(|r| r.line);
    let in_csv = |line: u64| format!("{}:{line}", project.settings.subscribers.display());
    if let Some(line) = csv_line {
        return Ok(Changed {
            address: key.to_string(),
            outcome: "already on the list",
            csv_line,
            note: Some(format!("row {}", in_csv(line))),
        });
    }
    let name = clean_line(name.unwrap_or(""));
    let consent = format!(
        "added by the operator (`subscribers add`) on {}",
        now.date_naive()
    );
    let outcome = match l.add_signup(&key, &name, SignupSource::Added, &consent, now)? {
        crate::ledger::Added::New => "added",
        crate::ledger::Added::Confirmed => "confirmed",
        crate::ledger::Added::Already => "already on the list",
    };
    Ok(Changed {
        address: key.to_string(),
        outcome,
        csv_line: None,
        note: None,
    })
}

/// Removes a signup. An address the CSV holds stays until its row goes
/// (or it is suppressed): the message says where.
pub fn remove(project: &Project, text: &str, now: DateTime<Utc>) -> Result<Changed, Failure> {
    let key = address(text)?;
    let csv = project.subscribers().map_err(Failure::input)?;
    let removed = ledger(project, now)?.remove_signup(&key, now)?;
    let csv_line = csv.find(&key).map(|r| r.line);
    let note = csv_line.map(|line| {
        format!(
            "still in {}:{line}: delete that row, or `dailyissue suppressions add {key}`",
            project.settings.subscribers.display()
        )
    });
    Ok(Changed {
        address: key.to_string(),
        outcome: if removed { "removed" } else { "not a signup" },
        csv_line,
        note,
    })
}

/// What `subscribers export` wrote.
#[derive(Debug, serde::Serialize)]
pub struct Exported {
    /// Where, or `None` for stdout (the CSV is then the text).
    pub file: Option<PathBuf>,
    pub readers: u64,
    pub suppressed: u64,
    #[serde(skip)]
    csv: String,
}

impl Report for Exported {
    fn text(&self) -> String {
        match &self.file {
            None => self.csv.clone(),
            Some(f) => format!(
                "{} written to {} ({} marked suppressed)\n",
                crate::cmd::count(self.readers, "reader", "readers"),
                f.display(),
                self.suppressed
            ),
        }
    }
}

/// The merged list (pending signups left out) as a CSV that `send` can
/// read: `email,name,status,source,suppressed,subscribed_at,timezone`, then
/// the CSV's other columns. Written (atomically) to `out`, a path and its
/// label for messages, or printed.
pub fn export(project: &Project, out: Option<(PathBuf, PathBuf)>) -> Result<Exported, Failure> {
    const FIXED: [&str; 7] = [
        "email",
        "name",
        "status",
        "source",
        "suppressed",
        "subscribed_at",
        "timezone",
    ];
    let listed = list(project, false)?;
    let extra: Vec<usize> = (0..listed.columns.len())
        .filter(|&i| !FIXED.contains(&listed.columns[i].as_str()))
        .collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = FIXED.to_vec();
    header.extend(extra.iter().map(|&i| listed.columns[i].as_str()));
    w.write_record(&header).map_err(anyhow::Error::from)?;
    let (mut readers, mut suppressed) = (0, 0);
    for e in listed.readers.iter().filter(|e| e.status != "pending") {
        let status = if e.status == "confirmed" {
            "active"
        } else {
            e.status
        };
        let mut record = vec![
            e.address.as_str(),
            e.name.as_str(),
            status,
            e.source,
            e.suppressed.as_deref().unwrap_or(""),
            e.confirmed_at.as_deref().unwrap_or(""),
            e.timezone.as_deref().unwrap_or(""),
        ];
        record.extend(
            extra
                .iter()
                .map(|&i| e.fields.get(i).map_or("", String::as_str)),
        );
        w.write_record(&record).map_err(anyhow::Error::from)?;
        readers += 1;
        suppressed += u64::from(e.suppressed.is_some());
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some((path, _)) = &out {
        crate::atomic::write(path, &bytes)?;
    }
    Ok(Exported {
        file: out.map(|(_, label)| label),
        readers,
        suppressed,
        csv: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

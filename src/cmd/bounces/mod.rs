//! `bounces`: bounce and complaint mail that arrives after the relay's
//! 250 — one message on stdin (a Postfix `pipe` transport, procmail, a
//! `.forward`), the new messages of a maildir, or an mbox (read-only) —
//! classified (`bounces::message`), matched to its delivery and recorded
//! with its evidence (`Ledger::record_report`); and `bounces list`, the
//! events with their evidence.
//!
//! Exit codes for the mail server: 0 when the message was processed or
//! ignored (an auto-reply, mail that is not a bounce), 75 when it could
//! not be recorded now (a locked or unwritable ledger), so the server keeps
//! it and tries again. The same report twice is recorded once, so a retry
//! or a second run over the same mbox changes nothing.
//!
//! - `mailbox`: the maildir walk (handled mail moves from `new/` to `cur/`
//!   flagged seen; what is not recognised is never touched) and the mbox;
//! - `list`: `bounces list`.

mod list;
mod mailbox;

use std::io::Read;
use std::path::PathBuf;

pub use list::list;

use crate::bounces::message::{self, Verdict};
use crate::bounces::{Kind, Policy, Source};
use crate::cmd::Report;
use crate::ledger::{Ledger, Recorded};
use crate::problem::{Failure, Temporary};
use crate::project::Project;

/// The largest message read from stdin; the rest is read and dropped (a
/// bounce that large is an attachment bomb, not evidence).
const STDIN_LIMIT: u64 = 32 * 1024 * 1024;

/// Where the mail comes from.
#[derive(Debug, Clone)]
pub enum Input {
    Stdin,
    Maildir(PathBuf),
    Mbox(PathBuf),
}

/// What `bounces` did with each message.
#[derive(Debug, Default, serde::Serialize)]
pub struct Processed {
    pub messages: Vec<Message>,
    /// Events recorded now.
    pub recorded: u64,
    /// Events recorded before (the same report again).
    pub duplicates: u64,
    /// Reports about no delivery of ours.
    pub unmatched: u64,
    /// Addresses suppressed now.
    pub suppressed: u64,
    /// Auto-replies and other mail that needs nothing doing.
    pub ignored: u64,
    /// Mail that is not a bounce or complaint (left alone).
    pub unrecognised: u64,
}

/// One message and what became of it.
#[derive(Debug, serde::Serialize)]
pub struct Message {
    /// `stdin`, the maildir file name, or `message N` of the mbox.
    pub name: String,
    /// `report`, `ignored` or `unrecognised`.
    pub verdict: &'static str,
    /// The report's type, or why it was ignored or not recognised.
    pub detail: String,
    pub outcomes: Vec<Recorded>,
}

impl Report for Processed {
    fn text(&self) -> String {
        let mut out = String::new();
        for m in &self.messages {
            out.push_str(&format!("{}: {}\n", m.name, describe(m)));
        }
        out.push_str(&format!(
            "{} recorded ({} suppressed), {} already recorded, {} about no delivery of ours, {} ignored, {} not recognised (left alone)\n",
            self.recorded, self.suppressed, self.duplicates, self.unmatched, self.ignored, self.unrecognised
        ));
        out
    }
}

/// One line about a message.
fn describe(m: &Message) -> String {
    if m.outcomes.is_empty() {
        return format!("{}: {}", m.verdict, m.detail);
    }
    let each: Vec<String> = m.outcomes.iter().map(outcome_text).collect();
    format!("{}: {}", m.detail, each.join("; "))
}

fn kind_text(kind: Kind) -> &'static str {
    match kind {
        Kind::Hard => "hard bounce",
        Kind::Soft => "soft bounce",
        Kind::Unknown => "bounce of unknown kind",
        Kind::Complaint => "complaint",
    }
}

fn outcome_text(o: &Recorded) -> String {
    match o {
        Recorded::New {
            address,
            issue_date,
            kind,
            suppressed,
            ..
        } => format!(
            "{} for {address} (issue of {issue_date}){}",
            kind_text(*kind),
            suppressed
                .as_ref()
                .map(|r| format!(", suppressed ({r})"))
                .unwrap_or_default()
        ),
        Recorded::Duplicate { address, kind, .. } => {
            format!("{} for {address}, already recorded", kind_text(*kind))
        }
        Recorded::Unmatched { recipient, kind } => format!(
            "{} for {}, about no delivery of ours: nothing recorded",
            kind_text(*kind),
            recipient.as_deref().unwrap_or("an unnamed recipient")
        ),
    }
}

/// Reads and records the mail of `input`.
pub fn bounces(project: &Project, input: &Input) -> Result<Processed, Failure> {
    let mut run = Run {
        project,
        ledger: None,
        processed: Processed::default(),
    };
    match input {
        Input::Stdin => {
            let mut raw = Vec::new();
            let mut stdin = std::io::stdin().lock();
            (&mut stdin).take(STDIN_LIMIT).read_to_end(&mut raw)?;
            std::io::copy(&mut stdin, &mut std::io::sink())?;
            run.one("stdin".into(), &raw, Source::Stdin)?;
        }
        Input::Maildir(dir) => mailbox::maildir(&mut run, &project.root.join(dir))?,
        Input::Mbox(file) => mailbox::mbox(&mut run, &project.root.join(file))?,
    }
    Ok(run.processed)
}

/// One run over some mail: the ledger is opened at the first report.
struct Run<'a> {
    project: &'a Project,
    ledger: Option<Ledger>,
    processed: Processed,
}

impl Run<'_> {
    /// Classifies and records one message; returns whether it was handled
    /// (a report recorded or judged, or mail that needs nothing doing), as
    /// opposed to left alone.
    fn one(&mut self, name: String, raw: &[u8], source: Source) -> Result<bool, Failure> {
        let project = self.project;
        let settings = &project.settings;
        let verdict = message::classify(raw, settings.bounces.return_path.as_ref());
        let (verdict, detail, outcomes) = match verdict {
            Verdict::Report(report) => {
                let policy = Policy::of(&settings.bounces);
                let outcomes = self
                    .ledger()?
                    .record_report(&report, source, raw, policy)
                    .map_err(temporary)?;
                ("report", report.report_type, outcomes)
            }
            Verdict::Ignored(why) => ("ignored", why, Vec::new()),
            Verdict::Unrecognised(why) => ("unrecognised", why, Vec::new()),
        };
        self.count(verdict, &outcomes);
        for o in &outcomes {
            if let Recorded::New { address, kind, .. } = o {
                tracing::info!(
                    "{name}: {} for {}",
                    kind_text(*kind),
                    crate::log::mask(address)
                );
            }
        }
        self.processed.messages.push(Message {
            name,
            verdict,
            detail,
            outcomes,
        });
        Ok(verdict != "unrecognised")
    }

    fn count(&mut self, verdict: &str, outcomes: &[Recorded]) {
        let p = &mut self.processed;
        match verdict {
            "ignored" => p.ignored += 1,
            "unrecognised" => p.unrecognised += 1,
            _ => {}
        }
        for o in outcomes {
            match o {
                Recorded::New { suppressed, .. } => {
                    p.recorded += 1;
                    p.suppressed += u64::from(suppressed.is_some());
                }
                Recorded::Duplicate { .. } => p.duplicates += 1,
                Recorded::Unmatched { .. } => p.unmatched += 1,
            }
        }
    }

    fn ledger(&mut self) -> Result<&mut Ledger, Failure> {
        if self.ledger.is_none() {
            self.ledger = Some(crate::ledger::open(self.project).map_err(temporary)?);
        }
        self.ledger
            .as_mut()
            .ok_or_else(|| Failure::Other(anyhow::anyhow!("the ledger is not open")))
    }
}

/// Whatever keeps a report from the ledger is worth a retry: the mail
/// server keeps the message meanwhile.
fn temporary(e: anyhow::Error) -> Failure {
    Failure::Temporary(Temporary::Ledger {
        reason: format!("{e:#}"),
    })
}

/// The guard on the last issue before `date` (see `bounces::policy`):
/// `check` and `send` both ask here, so they agree. Nothing to judge
/// without a ledger or an earlier issue.
pub fn guard(project: &Project, date: chrono::NaiveDate) -> Result<crate::bounces::Guard, Failure> {
    let Some(ledger) = crate::ledger::read(project)? else {
        return Ok(crate::bounces::Guard::default());
    };
    let last = match ledger.issue_before(date)? {
        Some(day) => Some(ledger.issue_feedback(day)?),
        None => None,
    };
    Ok(crate::bounces::policy::guard(last.as_ref()))
}

/// The guard's refusal as the problem `check` and `send` report: it is
/// about the ledger's record of the last issue.
pub fn refusal_problem(project: &Project, why: &str) -> crate::problem::Problem {
    crate::problem::Problem::new(
        &project.settings.ledger,
        None,
        format!("complaint rate too high: {why}"),
    )
}

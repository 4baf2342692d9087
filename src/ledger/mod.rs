//! The ledger: an SQLite database (WAL) recording every delivery, the
//! suppression list, test sends, the frozen hash of each issue record,
//! signups and feedback votes.
//! Only this module writes SQL.
//!
//! Invariants:
//! - one `deliveries` row per (issue date, lower-cased address);
//! - a row is `sending` from before its SMTP transaction until the outcome
//!   is committed; `transmitting` is set (committed) just before the
//!   transaction starts, so after a crash [`Ledger::recover`] can tell rows
//!   that were never attempted (retried as usual) from rows that may have
//!   been delivered (`unknown`);
//! - `uncertain` counts the attempts of a row whose outcome is unknown (no
//!   reply after the whole message was sent, or a crash while sending).
//!   `send` attempts a row only while `uncertain < 2`, so no reader gets
//!   more than two copies of an issue whatever faults happen;
//! - a `bounced` outcome and its suppression are written in one transaction;
//! - the file says whose it is: `PRAGMA application_id` marks a dailyissue
//!   ledger, `meta.list_id` the newsletter it belongs to, and
//!   `PRAGMA user_version` the schema. A file that is not such a ledger (an
//!   empty file, another program's database, another newsletter's ledger)
//!   is refused, never silently replaced;
//! - a new ledger is built under a temporary name and renamed into place,
//!   so a crash while creating one never leaves an empty file behind.
//!
//! Several processes may open the ledger at once (`serve` writes
//! suppressions while `send` runs): every connection waits on locks
//! (`busy_timeout`) instead of failing.
//!
//! This file holds the vocabulary (statuses, rows, outcomes, writes) and
//! the entry points [`open()`] and [`read()`]; the rest sits beside it:
//! - `open`: creating, checking and opening the file (whose is it?);
//! - `schema`: the tables, the schema version, migrations;
//! - `deliveries`: a run's writes, crash recovery, what `send` and
//!   `status` read;
//! - `days`: local mornings: each reader's latest copy, publication
//!   instants;
//! - `events`: bounces and complaints that arrive later, matched to their
//!   delivery (VERP tokens, Message-IDs), the policy applied; per-issue
//!   feedback (rates, history);
//! - `suppressions`, `issues` (frozen records), `backup`;
//! - `signups` (the form's double opt-in, the operator's additions, the
//!   abuse limits), `feedback` (readers' votes, only ever read as counts),
//!   and `growth` (what `status` counts the list's growth from);
//! - `history`: each issue's deliveries summed up.

mod backup;
mod days;
mod deliveries;
mod events;
mod feedback;
mod growth;
mod history;
mod issues;
mod open;
mod schema;
mod signups;
mod suppressions;

use std::path::PathBuf;

use chrono::{SecondsFormat, Utc};
use rusqlite::Connection;

pub use deliveries::Undelivered;
pub use events::{Event, Recorded};
pub use feedback::{Vote, Votes};
pub use issues::Freeze;
pub use signups::{
    Added, Confirmed, Limits, Request, Requested, Signup, SignupReader, SignupSource, SignupStatus,
};
pub use suppressions::Suppression;

use crate::project::Project;
use crate::project::subscribers::AddressKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Sending,
    Sent,
    /// The whole message went out and no reply came: it may have arrived.
    Unknown,
    Deferred,
    Failed,
    Bounced,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 6] = [
        DeliveryStatus::Sending,
        DeliveryStatus::Sent,
        DeliveryStatus::Unknown,
        DeliveryStatus::Deferred,
        DeliveryStatus::Failed,
        DeliveryStatus::Bounced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Unknown => "unknown",
            DeliveryStatus::Deferred => "deferred",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Bounced => "bounced",
        }
    }

    fn parse(s: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// A row's state as `send` needs it to decide whether to attempt it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub status: DeliveryStatus,
    /// Attempts whose outcome is unknown (see the module doc).
    pub uncertain: u32,
}

/// Attempts with an unknown outcome after which a row is never attempted
/// again automatically: the bound on copies per reader and issue.
pub const MAX_UNCERTAIN: u32 = 2;

impl Row {
    /// Whether `send` may attempt this row (again). `retry_failed` and
    /// `retry_unknown` are the operator's explicit overrides.
    pub fn due(&self, retry_failed: bool, retry_unknown: bool) -> bool {
        let settled = self.uncertain >= MAX_UNCERTAIN && !retry_unknown;
        match self.status {
            DeliveryStatus::Sent | DeliveryStatus::Bounced => false,
            DeliveryStatus::Failed => retry_failed && !settled,
            DeliveryStatus::Unknown | DeliveryStatus::Sending | DeliveryStatus::Deferred => {
                !settled
            }
        }
    }
}

/// The outcome of one delivery attempt, to be recorded.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub address: AddressKey,
    pub status: DeliveryStatus,
    pub reply: Option<String>,
}

/// What [`Ledger::recover`] found of a run that stopped mid-send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Rows that were being sent: their outcome is unknown.
    pub unknown: u64,
    /// Rows claimed but never attempted: simply due again.
    pub unattempted: u64,
}

/// One change of a run's writer: applied together in one transaction.
#[derive(Debug, Clone)]
pub enum Write {
    /// Claim a batch for this run: `sending`, attempts + 1. (address, Message-ID)
    Claim(Vec<(AddressKey, String)>),
    /// The SMTP transaction for this address is about to start.
    Begin(AddressKey),
    Record(Outcome),
    /// A test copy (`send --to`), never a delivery. (outcome, Message-ID)
    Test(Outcome, String),
    /// The local date and zone claimed rows are for (see `days`):
    /// (address, local date, zone).
    Days(Vec<(AddressKey, chrono::NaiveDate, chrono_tz::Tz)>),
    /// The VERP tokens of claimed rows, so a bounce finds its delivery.
    /// (token, address)
    ReturnPaths(Vec<(String, AddressKey)>),
}

pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A timestamp as the ledger stores it: RFC 3339, UTC, milliseconds.
fn now() -> String {
    stamp(Utc::now())
}

/// `at` as the ledger stores times (so that they compare as text).
fn stamp(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The project's ledger, opened for writing (created when there is none).
pub fn open(project: &Project) -> anyhow::Result<Ledger> {
    Ledger::open(&project.ledger_path(), &project.settings.list_id)
}

/// The project's ledger for reading only; `None` when there is none yet.
pub fn read(project: &Project) -> anyhow::Result<Option<Ledger>> {
    Ledger::open_existing_read_only(&project.ledger_path(), &project.settings.list_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    pub(super) const LIST: &str = "daily.example.com";

    pub(super) fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    /// A new ledger in a folder that does not exist yet.
    pub(super) fn ledger() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = Ledger::open(&dir.path().join("sub/state.db"), LIST).expect("open");
        (dir, l)
    }

    pub(super) fn outcome(address: &str, status: DeliveryStatus, reply: &str) -> Write {
        Write::Record(Outcome {
            address: address.into(),
            status,
            reply: Some(reply.into()),
        })
    }

    pub(super) fn claim(addresses: &[&str]) -> Write {
        Write::Claim(
            addresses
                .iter()
                .map(|a| (AddressKey::new(a), format!("<{a}>")))
                .collect(),
        )
    }

    #[test]
    fn rows_are_due_until_two_uncertain_attempts() {
        let row = |status, uncertain| Row { status, uncertain };
        assert!(row(DeliveryStatus::Deferred, 0).due(false, false));
        assert!(row(DeliveryStatus::Unknown, 1).due(false, false));
        assert!(!row(DeliveryStatus::Unknown, 2).due(false, false));
        assert!(
            row(DeliveryStatus::Unknown, 2).due(false, true),
            "--retry-unknown"
        );
        assert!(
            row(DeliveryStatus::Unknown, 2).due(false, true),
            "--retry-unknown"
        );
        assert!(!row(DeliveryStatus::Deferred, 2).due(false, false));
        assert!(!row(DeliveryStatus::Sent, 0).due(true, true));
        assert!(!row(DeliveryStatus::Failed, 0).due(false, false));
        assert!(row(DeliveryStatus::Failed, 0).due(true, false));
        assert!(!row(DeliveryStatus::Bounced, 0).due(true, true));
    }
}

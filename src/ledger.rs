//! The ledger: an SQLite database (WAL) recording every delivery, the
//! suppression list, test sends, and the frozen hash of each issue record.
//! Only this module writes SQL.
//!
//! Invariants:
//! - one `deliveries` row per (issue date, lower-cased address);
//! - a row is `sending` from just before its SMTP transaction until the
//!   outcome is committed, so after a crash every `sending` row is retried
//!   and nothing is skipped;
//! - a `bounced` outcome and its suppression are written in one transaction;
//! - the schema version lives in `PRAGMA user_version`.
//!
//! Several processes may open the ledger at once (`serve` writes
//! suppressions while `send` runs): every connection waits on locks
//! (`busy_timeout`) instead of failing.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveDate, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};

const SCHEMA_VERSION: i32 = 1;

const SCHEMA: &str = "
CREATE TABLE deliveries (
    issue_date  TEXT NOT NULL,
    address     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'deferred', 'failed', 'bounced')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    reply       TEXT,
    message_id  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    sent_at     TEXT,
    sent_day    TEXT,
    PRIMARY KEY (issue_date, address)
) WITHOUT ROWID;
CREATE INDEX deliveries_sent_day ON deliveries (sent_day) WHERE sent_day IS NOT NULL;
CREATE TABLE issues (
    issue_date   TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    frozen_at    TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE suppressions (
    address    TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    note       TEXT,
    created_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE test_sends (
    id         INTEGER PRIMARY KEY,
    issue_date TEXT NOT NULL,
    address    TEXT NOT NULL,
    status     TEXT NOT NULL,
    reply      TEXT,
    message_id TEXT NOT NULL,
    at         TEXT NOT NULL
);
";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Sending,
    Sent,
    Deferred,
    Failed,
    Bounced,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Sending,
        Status::Sent,
        Status::Deferred,
        Status::Failed,
        Status::Bounced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::Deferred => "deferred",
            Status::Failed => "failed",
            Status::Bounced => "bounced",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// The outcome of one delivery attempt, to be recorded.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub address: String,
    pub status: Status,
    pub reply: Option<String>,
}

/// A row of `status`: an address that failed or bounced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    pub address: String,
    pub status: Status,
    pub attempts: u32,
    pub reply: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Suppression {
    pub address: String,
    pub reason: String,
    pub note: Option<String>,
    pub created_at: String,
}

/// How a frozen issue record compares with the one on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freeze {
    /// First delivery of this issue: the hash is now frozen.
    New,
    /// Same content as when delivery began.
    Same,
    /// The record changed after delivery began.
    Changed { frozen_at: String },
}

pub struct Ledger {
    conn: Connection,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").finish_non_exhaustive()
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Ledger {
    /// Opens (creating if needed) the ledger at `path` and migrates it.
    pub fn open(path: &Path) -> anyhow::Result<Ledger> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the ledger {}", path.display()))?;
        Ledger::setup(conn).with_context(|| format!("ledger {}", path.display()))
    }

    /// Opens an existing ledger without writing anything (dry runs); `None`
    /// when there is none.
    pub fn open_existing_read_only(path: &Path) -> anyhow::Result<Option<Ledger>> {
        if !path.exists() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open the ledger {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(60))?;
        Ok(Some(Ledger { conn }))
    }

    fn setup(conn: Connection) -> anyhow::Result<Ledger> {
        conn.busy_timeout(Duration::from_secs(60))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // WAL + NORMAL: a commit survives a crash of the process (kill -9);
        // only a power loss can lose the last commits.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        let version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            anyhow::bail!(
                "schema version {version} is newer than this dailyissue understands ({SCHEMA_VERSION}); upgrade dailyissue"
            );
        }
        if version < 1 {
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))?;
        }
        Ok(Ledger { conn })
    }

    /// Freezes the issue record's hash on first delivery, or compares.
    /// With `force`, a changed hash is replaced.
    pub fn freeze(&mut self, date: NaiveDate, hash: &str, force: bool) -> anyhow::Result<Freeze> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let existing: Option<(String, String)> = tx
            .query_row(
                "SELECT content_hash, frozen_at FROM issues WHERE issue_date = ?1",
                params![date.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let result = match existing {
            None => {
                tx.execute(
                    "INSERT INTO issues (issue_date, content_hash, frozen_at) VALUES (?1, ?2, ?3)",
                    params![date.to_string(), hash, now()],
                )?;
                Freeze::New
            }
            Some((h, _)) if h == hash => Freeze::Same,
            Some((_, frozen_at)) if !force => Freeze::Changed { frozen_at },
            Some(_) => {
                tx.execute(
                    "UPDATE issues SET content_hash = ?2, frozen_at = ?3 WHERE issue_date = ?1",
                    params![date.to_string(), hash, now()],
                )?;
                Freeze::Same
            }
        };
        tx.commit()?;
        Ok(result)
    }

    /// Issue dates with at least one delivered (`sent`) message.
    pub fn delivered_dates(&self) -> anyhow::Result<Vec<NaiveDate>> {
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT issue_date FROM deliveries WHERE status = 'sent' ORDER BY issue_date",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            if let Ok(d) = row?.parse() {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Every row's status for the issue, by address.
    pub fn statuses(&self, date: NaiveDate) -> anyhow::Result<HashMap<String, Status>> {
        let mut stmt = self
            .conn
            .prepare("SELECT address, status FROM deliveries WHERE issue_date = ?1")?;
        let rows = stmt.query_map(params![date.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (address, status) = row?;
            if let Some(s) = Status::parse(&status) {
                out.insert(address, s);
            }
        }
        Ok(out)
    }

    /// Marks a batch `sending` (attempts + 1) in one transaction, before any
    /// of them is handed to SMTP.
    pub fn mark_sending(
        &mut self,
        date: NaiveDate,
        batch: &[(String, String)],
    ) -> anyhow::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let now = now();
            let mut stmt = tx.prepare_cached(
                "INSERT INTO deliveries (issue_date, address, status, attempts, message_id, created_at, updated_at)
                 VALUES (?1, ?2, 'sending', 1, ?3, ?4, ?4)
                 ON CONFLICT (issue_date, address) DO UPDATE SET
                   status = 'sending', attempts = attempts + 1, updated_at = excluded.updated_at",
            )?;
            let date = date.to_string();
            for (address, message_id) in batch {
                stmt.execute(params![date, address, message_id, now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records outcomes in one transaction; `day` is the newsletter's
    /// current day, counted for `daily_cap`. Bounces are also suppressed.
    pub fn record(
        &mut self,
        date: NaiveDate,
        day: NaiveDate,
        outcomes: &[Outcome],
    ) -> anyhow::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let now = now();
            let date = date.to_string();
            let day = day.to_string();
            let mut update = tx.prepare_cached(
                "UPDATE deliveries SET status = ?3, reply = ?4, updated_at = ?5,
                   sent_at = CASE WHEN ?3 = 'sent' THEN ?5 ELSE sent_at END,
                   sent_day = CASE WHEN ?3 = 'sent' THEN ?6 ELSE sent_day END
                 WHERE issue_date = ?1 AND address = ?2",
            )?;
            let mut suppress = tx.prepare_cached(
                "INSERT INTO suppressions (address, reason, note, created_at) VALUES (?1, 'bounced', ?2, ?3)
                 ON CONFLICT (address) DO NOTHING",
            )?;
            for o in outcomes {
                update.execute(params![
                    date,
                    o.address,
                    o.status.as_str(),
                    o.reply,
                    now,
                    day
                ])?;
                if o.status == Status::Bounced {
                    suppress.execute(params![o.address, o.reply, now])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records a test copy (`send --to`); never a delivery.
    pub fn record_test(
        &mut self,
        date: NaiveDate,
        address: &str,
        status: Status,
        reply: Option<&str>,
        message_id: &str,
    ) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO test_sends (issue_date, address, status, reply, message_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![date.to_string(), address, status.as_str(), reply, message_id, now()],
        )?;
        Ok(())
    }

    /// Messages sent on the newsletter's day `day`, across issues and runs.
    pub fn sent_on(&self, day: NaiveDate) -> anyhow::Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM deliveries WHERE sent_day = ?1",
            params![day.to_string()],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    pub fn counts(&self, date: NaiveDate) -> anyhow::Result<HashMap<Status, u64>> {
        let mut stmt = self.conn.prepare(
            "SELECT status, count(*) FROM deliveries WHERE issue_date = ?1 GROUP BY status",
        )?;
        let rows = stmt.query_map(params![date.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (s, n) = row?;
            if let Some(s) = Status::parse(&s) {
                out.insert(s, n as u64);
            }
        }
        Ok(out)
    }

    /// Failed and bounced rows with their SMTP replies.
    pub fn failures(&self, date: NaiveDate) -> anyhow::Result<Vec<Failure>> {
        let mut stmt = self.conn.prepare(
            "SELECT address, status, attempts, coalesce(reply, '') FROM deliveries
             WHERE issue_date = ?1 AND status IN ('failed', 'bounced', 'deferred') ORDER BY status, address",
        )?;
        let rows = stmt.query_map(params![date.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (address, status, attempts, reply) = row?;
            if let Some(status) = Status::parse(&status) {
                out.push(Failure {
                    address,
                    status,
                    attempts,
                    reply,
                });
            }
        }
        Ok(out)
    }

    pub fn test_sends(&self, date: NaiveDate) -> anyhow::Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM test_sends WHERE issue_date = ?1",
            params![date.to_string()],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    pub fn suppressed(&self) -> anyhow::Result<HashSet<String>> {
        let mut stmt = self.conn.prepare("SELECT address FROM suppressions")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = HashSet::new();
        for row in rows {
            out.insert(row?);
        }
        Ok(out)
    }

    pub fn suppressions(&self) -> anyhow::Result<Vec<Suppression>> {
        let mut stmt = self.conn.prepare(
            "SELECT address, reason, note, created_at FROM suppressions ORDER BY address",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Suppression {
                address: r.get(0)?,
                reason: r.get(1)?,
                note: r.get(2)?,
                created_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Adds a suppression; returns false if the address was already suppressed.
    pub fn suppress(
        &mut self,
        address: &str,
        reason: &str,
        note: Option<&str>,
    ) -> anyhow::Result<bool> {
        let n = self.conn.execute(
            "INSERT INTO suppressions (address, reason, note, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (address) DO NOTHING",
            params![address.trim().to_lowercase(), reason, note, now()],
        )?;
        Ok(n > 0)
    }

    /// Removes a suppression; returns false if there was none.
    pub fn unsuppress(&mut self, address: &str) -> anyhow::Result<bool> {
        let n = self.conn.execute(
            "DELETE FROM suppressions WHERE address = ?1",
            params![address.trim().to_lowercase()],
        )?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    fn ledger() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = Ledger::open(&dir.path().join("sub/state.db")).expect("open");
        (dir, l)
    }

    #[test]
    fn schema_is_versioned_and_reopens() {
        let (dir, l) = ledger();
        drop(l);
        let l = Ledger::open(&dir.path().join("sub/state.db")).expect("reopen");
        let v: i32 = l
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("pragma");
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = l
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("pragma");
        assert_eq!(mode, "wal");
    }

    #[test]
    fn sending_then_outcomes_and_bounces_suppress() {
        let (_dir, mut l) = ledger();
        let date = d("2027-03-01");
        let batch: Vec<(String, String)> = ["a@x.org", "b@x.org", "c@x.org"]
            .iter()
            .map(|a| (a.to_string(), format!("<{a}>")))
            .collect();
        l.mark_sending(date, &batch).expect("mark");
        assert!(
            l.statuses(date)
                .expect("statuses")
                .values()
                .all(|s| *s == Status::Sending)
        );
        l.record(
            date,
            date,
            &[
                Outcome {
                    address: "a@x.org".into(),
                    status: Status::Sent,
                    reply: Some("250 ok".into()),
                },
                Outcome {
                    address: "b@x.org".into(),
                    status: Status::Bounced,
                    reply: Some("550 5.1.1 no".into()),
                },
                Outcome {
                    address: "c@x.org".into(),
                    status: Status::Deferred,
                    reply: Some("451 later".into()),
                },
            ],
        )
        .expect("record");
        let st = l.statuses(date).expect("statuses");
        assert_eq!(st["a@x.org"], Status::Sent);
        assert_eq!(st["b@x.org"], Status::Bounced);
        assert!(l.suppressed().expect("supp").contains("b@x.org"));
        assert_eq!(l.sent_on(date).expect("count"), 1);
        l.mark_sending(date, &batch[2..]).expect("again");
        let f = l.failures(date).expect("failures");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].address, "b@x.org");
        assert_eq!(l.counts(date).expect("counts")[&Status::Sending], 1);
    }

    #[test]
    fn freezing_detects_edits() {
        let (_dir, mut l) = ledger();
        let date = d("2027-03-01");
        assert_eq!(l.freeze(date, "h1", false).expect("freeze"), Freeze::New);
        assert_eq!(l.freeze(date, "h1", false).expect("freeze"), Freeze::Same);
        assert!(matches!(
            l.freeze(date, "h2", false).expect("freeze"),
            Freeze::Changed { .. }
        ));
        assert_eq!(l.freeze(date, "h2", true).expect("force"), Freeze::Same);
        assert_eq!(l.freeze(date, "h2", false).expect("freeze"), Freeze::Same);
    }

    #[test]
    fn suppressions_add_list_remove() {
        let (_dir, mut l) = ledger();
        assert!(
            l.suppress(" Ada@Example.org ", "unsubscribed", Some("by hand"))
                .expect("add")
        );
        assert!(
            !l.suppress("ada@example.org", "unsubscribed", None)
                .expect("again")
        );
        assert_eq!(
            l.suppressions().expect("list")[0].address,
            "ada@example.org"
        );
        assert!(l.unsuppress("ADA@example.org").expect("remove"));
        assert!(l.suppressions().expect("list").is_empty());
    }
}

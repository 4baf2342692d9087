//! The ledger: an SQLite database (WAL) recording every delivery, the
//! suppression list, test sends, and the frozen hash of each issue record.
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

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveDate, SecondsFormat, Utc};
use rusqlite::{CachedStatement, Connection, OpenFlags, OptionalExtension, Transaction, params};

use crate::project::Project;
use crate::project::subscribers::{AddressKey, KeyDigest};

const SCHEMA_VERSION: i32 = 2;

/// `PRAGMA application_id` of a dailyissue ledger: "DIsu" in ASCII.
const APPLICATION_ID: i32 = 0x4449_7375;

const DELIVERIES: &str = "
CREATE TABLE deliveries (
    issue_date   TEXT NOT NULL,
    address      TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'unknown', 'deferred', 'failed', 'bounced')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    transmitting INTEGER NOT NULL DEFAULT 0,
    uncertain    INTEGER NOT NULL DEFAULT 0,
    reply        TEXT,
    message_id   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    sent_at      TEXT,
    sent_day     TEXT,
    PRIMARY KEY (issue_date, address)
) WITHOUT ROWID;
CREATE INDEX deliveries_sent_day ON deliveries (sent_day) WHERE sent_day IS NOT NULL;
";

const SCHEMA: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
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

/// Schema 1 (no `unknown`, no meta) to 2. A v1 row left `sending` may have
/// been in flight when its run died, so it counts as transmitting.
const MIGRATE_1_TO_2: &str = "
DROP INDEX IF EXISTS deliveries_sent_day;
ALTER TABLE deliveries RENAME TO deliveries_v1;
{DELIVERIES}
INSERT INTO deliveries (issue_date, address, status, attempts, transmitting, reply, message_id,
                        created_at, updated_at, sent_at, sent_day)
    SELECT issue_date, address, status, attempts, status = 'sending', reply, message_id,
           created_at, updated_at, sent_at, sent_day FROM deliveries_v1;
DROP TABLE deliveries_v1;
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

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

/// A row of `status`: an address that did not get the issue (yet), or may have.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Undelivered {
    pub address: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub uncertain: u32,
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

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What to do when the ledger cannot be written for lack of permission.
fn permission_denied(path: &Path, detail: &dyn std::fmt::Display) -> anyhow::Error {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    anyhow::anyhow!(
        "cannot write the ledger {}: permission denied ({detail}). The user running dailyissue needs write access to the file and to its folder {} (SQLite keeps -wal and -shm files beside it): e.g. `chown -R $(id -un) {}`",
        path.display(),
        dir.display(),
        dir.display()
    )
}

/// Rewords SQLite's "readonly database" and "unable to open" errors into
/// what the operator can do about them.
fn explain(e: rusqlite::Error, path: &Path) -> anyhow::Error {
    use rusqlite::ErrorCode::{CannotOpen, PermissionDenied, ReadOnly};
    if matches!(
        e.sqlite_error_code(),
        Some(ReadOnly | PermissionDenied | CannotOpen)
    ) {
        return permission_denied(path, &e);
    }
    anyhow::Error::new(e).context(format!("ledger {}", path.display()))
}

/// Refuses, before SQLite touches it, a file that cannot be a ledger: an
/// empty file would otherwise be taken for a new, empty database.
fn verify_file(path: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the ledger {}", path.display()))?;
    if !meta.is_file() {
        anyhow::bail!(
            "the ledger {} is not a file; point `ledger` in dailyissue.toml at a file",
            path.display()
        );
    }
    if meta.len() == 0 {
        anyhow::bail!(
            "the ledger {} is empty (0 bytes): it is not a dailyissue ledger, and the delivery history it held is gone. Nothing was sent. Restore it from a backup (`dailyissue ledger backup` makes them), or delete the file to start a new, empty ledger (every reader would then get the current issue again)",
            path.display()
        );
    }
    Ok(())
}

/// Creates a new ledger at `path`: built under a temporary name in the same
/// folder, then moved into place (never over a file another process made
/// meanwhile).
fn create(path: &Path, list_id: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".dailyissue-ledger.")
        .permissions(crate::atomic::default_permissions())
        .tempfile_in(dir)
        .with_context(|| format!("cannot create the ledger in {}", dir.display()))?;
    {
        let mut conn = Connection::open(tmp.path()).map_err(|e| explain(e, path))?;
        let tx = conn.transaction()?;
        tx.execute_batch(SCHEMA)?;
        tx.execute_batch(DELIVERIES)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('list_id', ?1), ('created_at', ?2)",
            params![list_id, now()],
        )?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
    }
    tmp.as_file().sync_all()?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(()),
        // Another process (serve, a second send) created it first: use theirs.
        Err(_) if path.exists() => Ok(()),
        Err(e) => Err(anyhow::anyhow!(
            "cannot create the ledger {}: {}",
            path.display(),
            e.error
        )),
    }
}

/// The project's ledger, opened for writing (created when there is none).
pub fn open(project: &Project) -> anyhow::Result<Ledger> {
    Ledger::open(&project.ledger_path(), &project.settings.list_id)
}

/// The project's ledger for reading only; `None` when there is none yet.
pub fn read(project: &Project) -> anyhow::Result<Option<Ledger>> {
    Ledger::open_existing_read_only(&project.ledger_path(), &project.settings.list_id)
}

impl Ledger {
    /// Opens the ledger at `path` for reading and writing, creating it when
    /// there is no file yet. An existing file must be a dailyissue ledger
    /// of the newsletter with `list_id`; anything else is refused.
    pub fn open(path: &Path, list_id: &str) -> anyhow::Result<Ledger> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the ledger's folder {}", dir.display()))?;
        }
        if !path.exists() {
            create(path, list_id)?;
        }
        // SQLite would quietly fall back to read-only; say it plainly instead.
        if let Err(e) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            && e.kind() == std::io::ErrorKind::PermissionDenied
        {
            return Err(permission_denied(
                path,
                &"the file is read-only for this user",
            ));
        }
        verify_file(path)?;
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|e| explain(e, path))?;
        let mut ledger = Ledger {
            conn,
            path: path.to_path_buf(),
        };
        ledger.setup(list_id, true)?;
        Ok(ledger)
    }

    /// Opens an existing ledger without writing anything (dry runs,
    /// `status`, `archive`); `None` when there is none. It is checked like
    /// [`Ledger::open`] checks it.
    pub fn open_existing_read_only(path: &Path, list_id: &str) -> anyhow::Result<Option<Ledger>> {
        if !path.exists() {
            return Ok(None);
        }
        verify_file(path)?;
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| explain(e, path))?;
        let mut ledger = Ledger {
            conn,
            path: path.to_path_buf(),
        };
        ledger.setup(list_id, false)?;
        Ok(Some(ledger))
    }

    /// Checks whose ledger this is, migrates an older schema (when
    /// writable), and sets the connection up.
    fn setup(&mut self, list_id: &str, writable: bool) -> anyhow::Result<()> {
        let path = self.path.clone();
        self.conn.busy_timeout(Duration::from_secs(60))?;
        let version = self.schema_version()?;
        if writable {
            self.conn
                .pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| explain(e, &path))?;
            // WAL + NORMAL: a commit survives a crash of the process (kill -9);
            // only a power loss can lose the last commits.
            self.conn.pragma_update(None, "synchronous", "NORMAL")?;
            if version < SCHEMA_VERSION {
                self.migrate(version, list_id)
                    .map_err(|e| explain(e, &path))?;
            }
        }
        self.check_owner(list_id)
    }

    /// The file's schema version, once its header shows a dailyissue ledger
    /// (or one of schema 1, which had no mark) that this build understands.
    fn schema_version(&self) -> anyhow::Result<i32> {
        let path = &self.path;
        let not_ours = |why: String| {
            anyhow::anyhow!(
                "{} is not a dailyissue ledger ({why}); nothing was changed. Point `ledger` in dailyissue.toml at this newsletter's own ledger, or move the file away to start a new one",
                path.display()
            )
        };
        let header = |conn: &Connection| -> rusqlite::Result<(i32, i32)> {
            Ok((
                conn.pragma_query_value(None, "application_id", |r| r.get(0))?,
                conn.pragma_query_value(None, "user_version", |r| r.get(0))?,
            ))
        };
        let (app, version) = header(&self.conn).map_err(|e| not_ours(e.to_string()))?;
        let legacy = app == 0 && version == 1 && self.has_table("deliveries")?;
        if !(app == APPLICATION_ID || legacy) {
            return Err(not_ours(if version == 0 && app == 0 {
                "an SQLite database without dailyissue's tables".into()
            } else {
                format!("an SQLite database of another program, application_id {app:#x}")
            }));
        }
        if version > SCHEMA_VERSION {
            anyhow::bail!(
                "{}: schema version {version} is newer than this dailyissue understands ({SCHEMA_VERSION}); upgrade dailyissue",
                path.display()
            );
        }
        Ok(version)
    }

    /// Refuses another newsletter's ledger: `meta.list_id` names its owner
    /// (a schema 1 file opened read-only has no `meta` yet).
    fn check_owner(&self, list_id: &str) -> anyhow::Result<()> {
        let owner: Option<String> = if self.has_table("meta")? {
            self.conn
                .query_row("SELECT value FROM meta WHERE key = 'list_id'", [], |r| {
                    r.get(0)
                })
                .optional()?
        } else {
            None
        };
        if let Some(owner) = owner
            && owner != list_id
        {
            anyhow::bail!(
                "{} belongs to another newsletter (list_id `{owner}`; this one's is `{list_id}`); nothing was changed. Point `ledger` in dailyissue.toml at this newsletter's own ledger. If you changed `list_id` (or the `name` it is made from) on purpose, set list_id = \"{owner}\" to keep this ledger: unsubscribe links in mail already sent depend on it too",
                self.path.display()
            );
        }
        Ok(())
    }

    fn has_table(&self, name: &str) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                params![name],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn migrate(&mut self, from: i32, list_id: &str) -> rusqlite::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if from == 1 {
            tx.execute_batch(&MIGRATE_1_TO_2.replace("{DELIVERIES}", DELIVERIES))?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('list_id', ?1), ('created_at', ?2)",
                params![list_id, now()],
            )?;
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()
    }

    /// Copies the ledger into `dest` with SQLite's online backup: a
    /// consistent snapshot, safe while `send` or `serve` write to it. The
    /// copy is written under a temporary name, checked, then renamed.
    pub fn backup(&self, dest: &Path) -> anyhow::Result<()> {
        let dir = dest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".dailyissue-backup.")
            .permissions(crate::atomic::default_permissions())
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        {
            let mut copy = Connection::open(tmp.path())?;
            let backup = rusqlite::backup::Backup::new(&self.conn, &mut copy)?;
            // One step copies every page inside one read transaction: a
            // snapshot, and WAL lets writers go on meanwhile.
            backup.step(-1)?;
            drop(backup);
            let check: String = copy.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
            if check != "ok" {
                anyhow::bail!("the copy failed SQLite's quick_check: {check}");
            }
            copy.pragma_update(None, "journal_mode", "DELETE")?;
        }
        tmp.as_file().sync_all()?;
        tmp.persist(dest)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", dest.display(), e.error))?;
        Ok(())
    }

    /// After a run that stopped mid-send (crash, kill -9, power loss),
    /// settles its rows for `date`: those being sent become `unknown` (one
    /// more uncertain attempt), those only claimed become `deferred`.
    /// Called with the run lock held, before anything else is sent.
    pub fn recover(&mut self, date: NaiveDate) -> anyhow::Result<Recovered> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = now();
        let date = date.to_string();
        let unknown = tx.execute(
            "UPDATE deliveries SET status = 'unknown', uncertain = uncertain + 1, transmitting = 0,
               reply = 'the run stopped while this message was being sent; it may have been delivered',
               updated_at = ?2
             WHERE issue_date = ?1 AND status = 'sending' AND transmitting = 1",
            params![date, now],
        )?;
        let unattempted = tx.execute(
            "UPDATE deliveries SET status = 'deferred',
               reply = 'the run stopped before this message was sent', updated_at = ?2
             WHERE issue_date = ?1 AND status = 'sending'",
            params![date, now],
        )?;
        tx.commit()?;
        Ok(Recovered {
            unknown: unknown as u64,
            unattempted: unattempted as u64,
        })
    }

    /// Applies a run's changes in one transaction: `date` is the issue,
    /// `day` the newsletter's current day (counted for `daily_cap`).
    pub fn apply(
        &mut self,
        date: NaiveDate,
        day: NaiveDate,
        writes: &[Write],
    ) -> anyhow::Result<()> {
        let path = self.path.clone();
        self.apply_inner(date, day, writes)
            .map_err(|e| explain(e, &path).context("cannot record deliveries"))
    }

    fn apply_inner(
        &mut self,
        date: NaiveDate,
        day: NaiveDate,
        writes: &[Write],
    ) -> rusqlite::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let now = now();
            let date = date.to_string();
            let day = day.to_string();
            let mut statements = Statements::prepare(&tx)?;
            for w in writes {
                statements.run(w, &date, &day, &now)?;
            }
        }
        tx.commit()
    }

    /// Freezes the issue record's hash on first delivery, or compares.
    /// With `force`, a changed hash is replaced.
    pub fn freeze(&mut self, date: NaiveDate, hash: &str, force: bool) -> anyhow::Result<Freeze> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| explain(e, &path))?;
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

    /// Every row's state for the issue, by address digest (compact for a
    /// million readers; see `KeyDigest`).
    pub fn statuses(&self, date: NaiveDate) -> anyhow::Result<HashMap<KeyDigest, Row>> {
        let mut stmt = self
            .conn
            .prepare("SELECT address, status, uncertain FROM deliveries WHERE issue_date = ?1")?;
        let rows = stmt.query_map(params![date.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
            ))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (address, status, uncertain) = row?;
            if let Some(status) = DeliveryStatus::parse(&status) {
                out.insert(
                    KeyDigest::of(&AddressKey::new(&address)),
                    Row { status, uncertain },
                );
            }
        }
        Ok(out)
    }

    /// Messages sent on the newsletter's day `day`, across issues and runs.
    pub fn sent_on(&self, day: NaiveDate) -> anyhow::Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM deliveries WHERE sent_day = ?1",
            params![day.to_string()],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    pub fn counts(&self, date: NaiveDate) -> anyhow::Result<HashMap<DeliveryStatus, u64>> {
        let mut stmt = self.conn.prepare(
            "SELECT status, count(*) FROM deliveries WHERE issue_date = ?1 GROUP BY status",
        )?;
        let rows = stmt.query_map(params![date.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (s, n) = row?;
            if let Some(s) = DeliveryStatus::parse(&s) {
                out.insert(s, n as u64);
            }
        }
        Ok(out)
    }

    /// Rows that did not (certainly) get the issue, with their SMTP replies.
    pub fn failures(&self, date: NaiveDate) -> anyhow::Result<Vec<Undelivered>> {
        let mut stmt = self.conn.prepare(
            "SELECT address, status, attempts, uncertain, coalesce(reply, '') FROM deliveries
             WHERE issue_date = ?1 AND status IN ('failed', 'bounced', 'deferred', 'unknown')
             ORDER BY status, address",
        )?;
        let rows = stmt.query_map(params![date.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (address, status, attempts, uncertain, reply) = row?;
            if let Some(status) = DeliveryStatus::parse(&status) {
                out.push(Undelivered {
                    address,
                    status,
                    attempts,
                    uncertain,
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

    /// The suppressed addresses, by digest.
    pub fn suppressed(&self) -> anyhow::Result<HashSet<KeyDigest>> {
        let mut stmt = self.conn.prepare("SELECT address FROM suppressions")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = HashSet::new();
        for row in rows {
            out.insert(KeyDigest::of(&AddressKey::new(&row?)));
        }
        Ok(out)
    }

    /// How many addresses are suppressed.
    pub fn suppressed_count(&self) -> anyhow::Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM suppressions", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
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
        address: &AddressKey,
        reason: &str,
        note: Option<&str>,
    ) -> anyhow::Result<bool> {
        let n = self.conn.execute(
            "INSERT INTO suppressions (address, reason, note, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (address) DO NOTHING",
            params![address.as_str(), reason, note, now()],
        ).map_err(|e| explain(e, &self.path))?;
        Ok(n > 0)
    }

    /// Removes a suppression; returns false if there was none.
    pub fn unsuppress(&mut self, address: &AddressKey) -> anyhow::Result<bool> {
        let n = self
            .conn
            .execute(
                "DELETE FROM suppressions WHERE address = ?1",
                params![address.as_str()],
            )
            .map_err(|e| explain(e, &self.path))?;
        Ok(n > 0)
    }
}

/// The statements of [`Ledger::apply`], prepared once per transaction.
struct Statements<'tx> {
    claim: CachedStatement<'tx>,
    begin: CachedStatement<'tx>,
    record: CachedStatement<'tx>,
    suppress: CachedStatement<'tx>,
    test: CachedStatement<'tx>,
}

impl<'tx> Statements<'tx> {
    fn prepare(tx: &'tx Transaction<'_>) -> rusqlite::Result<Statements<'tx>> {
        Ok(Statements {
            claim: tx.prepare_cached(
                "INSERT INTO deliveries (issue_date, address, status, attempts, message_id, created_at, updated_at)
                 VALUES (?1, ?2, 'sending', 1, ?3, ?4, ?4)
                 ON CONFLICT (issue_date, address) DO UPDATE SET
                   status = 'sending', attempts = attempts + 1, transmitting = 0,
                   updated_at = excluded.updated_at",
            )?,
            begin: tx.prepare_cached(
                "UPDATE deliveries SET transmitting = 1, updated_at = ?3
                 WHERE issue_date = ?1 AND address = ?2",
            )?,
            record: tx.prepare_cached(
                "UPDATE deliveries SET status = ?3, reply = ?4, updated_at = ?5, transmitting = 0,
                   uncertain = uncertain + (?3 = 'unknown'),
                   sent_at = CASE WHEN ?3 = 'sent' THEN ?5 ELSE sent_at END,
                   sent_day = CASE WHEN ?3 IN ('sent', 'unknown') THEN ?6 ELSE sent_day END
                 WHERE issue_date = ?1 AND address = ?2",
            )?,
            suppress: tx.prepare_cached(
                "INSERT INTO suppressions (address, reason, note, created_at) VALUES (?1, 'bounced', ?2, ?3)
                 ON CONFLICT (address) DO NOTHING",
            )?,
            test: tx.prepare_cached(
                "INSERT INTO test_sends (issue_date, address, status, reply, message_id, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?,
        })
    }

    /// One write, for the issue `date` on the newsletter's day `day`.
    fn run(&mut self, w: &Write, date: &str, day: &str, now: &str) -> rusqlite::Result<()> {
        match w {
            Write::Claim(batch) => {
                for (address, message_id) in batch {
                    self.claim
                        .execute(params![date, address.as_str(), message_id, now])?;
                }
            }
            Write::Begin(address) => {
                self.begin.execute(params![date, address.as_str(), now])?;
            }
            Write::Record(o) => {
                self.record.execute(params![
                    date,
                    o.address.as_str(),
                    o.status.as_str(),
                    o.reply,
                    now,
                    day
                ])?;
                if o.status == DeliveryStatus::Bounced {
                    self.suppress
                        .execute(params![o.address.as_str(), o.reply, now])?;
                }
            }
            Write::Test(o, message_id) => {
                self.test.execute(params![
                    date,
                    o.address.as_str(),
                    o.status.as_str(),
                    o.reply,
                    message_id,
                    now
                ])?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "daily.example.com";

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    fn ledger() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = Ledger::open(&dir.path().join("sub/state.db"), LIST).expect("open");
        (dir, l)
    }

    fn outcome(address: &str, status: DeliveryStatus, reply: &str) -> Write {
        Write::Record(Outcome {
            address: address.into(),
            status,
            reply: Some(reply.into()),
        })
    }

    fn claim(addresses: &[&str]) -> Write {
        Write::Claim(
            addresses
                .iter()
                .map(|a| (AddressKey::new(a), format!("<{a}>")))
                .collect(),
        )
    }

    #[test]
    fn schema_is_versioned_marked_and_reopens() {
        let (dir, l) = ledger();
        drop(l);
        let l = Ledger::open(&dir.path().join("sub/state.db"), LIST).expect("reopen");
        let v: i32 = l
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("pragma");
        assert_eq!(v, SCHEMA_VERSION);
        let app: i32 = l
            .conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .expect("pragma");
        assert_eq!(app, APPLICATION_ID);
        let mode: String = l
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("pragma");
        assert_eq!(mode, "wal");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with(".dailyissue-ledger.")),
            "no temporary file left: {names:?}"
        );
    }

    #[test]
    fn outcomes_are_recorded_and_bounces_suppress() {
        let (_dir, mut l) = ledger();
        let date = d("2027-03-01");
        l.apply(
            date,
            date,
            &[claim(&["a@x.org", "b@x.org", "c@x.org", "d@x.org"])],
        )
        .expect("claim");
        assert!(
            l.statuses(date)
                .expect("statuses")
                .values()
                .all(|r| r.status == DeliveryStatus::Sending)
        );
        l.apply(
            date,
            date,
            &[
                outcome("a@x.org", DeliveryStatus::Sent, "250 ok"),
                outcome("b@x.org", DeliveryStatus::Bounced, "550 5.1.1 no"),
                outcome("c@x.org", DeliveryStatus::Deferred, "451 later"),
                outcome("d@x.org", DeliveryStatus::Unknown, "no reply"),
            ],
        )
        .expect("record");
        let st = l.statuses(date).expect("statuses");
        assert_eq!(
            st[&KeyDigest::of(&AddressKey::new("a@x.org"))].status,
            DeliveryStatus::Sent
        );
        assert_eq!(
            st[&KeyDigest::of(&AddressKey::new("b@x.org"))].status,
            DeliveryStatus::Bounced
        );
        assert_eq!(
            st[&KeyDigest::of(&AddressKey::new("d@x.org"))],
            Row {
                status: DeliveryStatus::Unknown,
                uncertain: 1
            }
        );
        assert!(
            l.suppressed()
                .expect("supp")
                .contains(&KeyDigest::of(&AddressKey::new("b@x.org")))
        );
        assert_eq!(
            l.sent_on(date).expect("count"),
            2,
            "sent and unknown count for the cap"
        );
        l.apply(date, date, &[claim(&["c@x.org"])]).expect("again");
        let f = l.failures(date).expect("failures");
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(l.counts(date).expect("counts")[&DeliveryStatus::Sending], 1);
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

    #[test]
    fn recovery_tells_interrupted_sends_from_unattempted_claims() {
        let (_dir, mut l) = ledger();
        let date = d("2027-03-01");
        l.apply(
            date,
            date,
            &[
                claim(&["a@x.org", "b@x.org", "c@x.org"]),
                Write::Begin("a@x.org".into()),
            ],
        )
        .expect("claim");
        // b went out and its outcome was recorded together with c's start.
        l.apply(date, date, &[Write::Begin("b@x.org".into())])
            .expect("begin");
        l.apply(
            date,
            date,
            &[
                outcome("b@x.org", DeliveryStatus::Sent, "250"),
                Write::Begin("c@x.org".into()),
            ],
        )
        .expect("record");
        // ...and the process dies here.
        let r = l.recover(date).expect("recover");
        assert_eq!(
            r,
            Recovered {
                unknown: 2,
                unattempted: 0
            }
        );
        let st = l.statuses(date).expect("statuses");
        assert_eq!(
            st[&KeyDigest::of(&AddressKey::new("a@x.org"))],
            Row {
                status: DeliveryStatus::Unknown,
                uncertain: 1
            }
        );
        assert_eq!(
            st[&KeyDigest::of(&AddressKey::new("b@x.org"))].status,
            DeliveryStatus::Sent
        );
        l.apply(date, date, &[claim(&["a@x.org", "d@x.org"])])
            .expect("claim");
        let r = l.recover(date).expect("recover");
        assert_eq!(
            r,
            Recovered {
                unknown: 0,
                unattempted: 2
            }
        );
        let st = l.statuses(date).expect("statuses");
        assert_eq!(
            st[&KeyDigest::of(&AddressKey::new("a@x.org"))],
            Row {
                status: DeliveryStatus::Deferred,
                uncertain: 1
            },
            "a claim that never started adds no uncertainty"
        );
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
            l.suppress(&" Ada@Example.org ".into(), "unsubscribed", Some("by hand"))
                .expect("add")
        );
        assert!(
            !l.suppress(&"ada@example.org".into(), "unsubscribed", None)
                .expect("again")
        );
        assert_eq!(
            l.suppressions().expect("list")[0].address,
            "ada@example.org"
        );
        assert!(l.unsuppress(&"ADA@example.org".into()).expect("remove"));
        assert!(l.suppressions().expect("list").is_empty());
    }

    #[test]
    fn files_that_are_not_this_newsletters_ledger_are_refused_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").expect("write");
        let err = Ledger::open(&empty, LIST).expect_err("empty");
        assert!(err.to_string().contains("is empty (0 bytes)"), "{err:#}");
        assert_eq!(
            std::fs::metadata(&empty).expect("meta").len(),
            0,
            "left as it was"
        );

        let text = dir.path().join("notes.db");
        std::fs::write(&text, b"hello, this is not a database at all").expect("write");
        let err = Ledger::open(&text, LIST).expect_err("text");
        assert!(
            err.to_string().contains("is not a dailyissue ledger"),
            "{err:#}"
        );

        let other_program = dir.path().join("other.db");
        Connection::open(&other_program)
            .expect("open")
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .expect("create");
        let err = Ledger::open(&other_program, LIST).expect_err("foreign");
        assert!(
            err.to_string().contains("is not a dailyissue ledger"),
            "{err:#}"
        );
        assert!(
            Ledger::open_existing_read_only(&other_program, LIST).is_err(),
            "read-only opens check too"
        );

        let theirs = dir.path().join("theirs.db");
        drop(Ledger::open(&theirs, "other.example.org").expect("create"));
        let err = Ledger::open(&theirs, LIST).expect_err("another newsletter");
        let msg = err.to_string();
        assert!(
            msg.contains("belongs to another newsletter (list_id `other.example.org`"),
            "{msg}"
        );
        assert!(Ledger::open(&theirs, "other.example.org").is_ok());
    }

    #[test]
    fn a_version_1_ledger_is_migrated_keeping_its_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(
            "CREATE TABLE deliveries (
                issue_date TEXT NOT NULL, address TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'deferred', 'failed', 'bounced')),
                attempts INTEGER NOT NULL DEFAULT 0, reply TEXT, message_id TEXT NOT NULL,
                created_at TEXT NOT NULL, updated_at TEXT NOT NULL, sent_at TEXT, sent_day TEXT,
                PRIMARY KEY (issue_date, address)) WITHOUT ROWID;
             CREATE INDEX deliveries_sent_day ON deliveries (sent_day) WHERE sent_day IS NOT NULL;
             CREATE TABLE issues (issue_date TEXT PRIMARY KEY, content_hash TEXT NOT NULL, frozen_at TEXT NOT NULL) WITHOUT ROWID;
             CREATE TABLE suppressions (address TEXT PRIMARY KEY, reason TEXT NOT NULL, note TEXT, created_at TEXT NOT NULL) WITHOUT ROWID;
             CREATE TABLE test_sends (id INTEGER PRIMARY KEY, issue_date TEXT NOT NULL, address TEXT NOT NULL, status TEXT NOT NULL, reply TEXT, message_id TEXT NOT NULL, at TEXT NOT NULL);
             INSERT INTO deliveries VALUES ('2027-03-01', 'a@x.org', 'sent', 1, '250', '<a>', 't', 't', 't', '2027-03-01');
             INSERT INTO deliveries VALUES ('2027-03-01', 'b@x.org', 'sending', 1, NULL, '<b>', 't', 't', NULL, NULL);
             PRAGMA user_version = 1;",
        )
        .expect("v1");
        drop(conn);
        let mut l = Ledger::open(&path, LIST).expect("migrates");
        let date = d("2027-03-01");
        assert_eq!(
            l.statuses(date).expect("rows")[&KeyDigest::of(&AddressKey::new("a@x.org"))].status,
            DeliveryStatus::Sent
        );
        assert_eq!(
            l.recover(date).expect("recover"),
            Recovered {
                unknown: 1,
                unattempted: 0
            },
            "a v1 row left sending may have been in flight"
        );
        drop(l);
        assert!(
            Ledger::open(&path, "another.list").is_err(),
            "now it knows whose it is"
        );
    }

    #[test]
    fn a_backup_is_a_complete_ledger() {
        let (dir, mut l) = ledger();
        let date = d("2027-03-01");
        l.apply(
            date,
            date,
            &[
                claim(&["a@x.org"]),
                outcome("a@x.org", DeliveryStatus::Sent, "250"),
            ],
        )
        .expect("write");
        let dest = dir.path().join("backup.db");
        l.backup(&dest).expect("backup");
        let copy = Ledger::open_existing_read_only(&dest, LIST)
            .expect("valid")
            .expect("exists");
        assert_eq!(
            copy.statuses(date).expect("rows")[&KeyDigest::of(&AddressKey::new("a@x.org"))].status,
            DeliveryStatus::Sent
        );
    }
}

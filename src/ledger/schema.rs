//! The ledger's tables, and how an older file is brought up to date.
//!
//! A ledger says what it is in its header: `PRAGMA application_id` marks
//! a dailyissue ledger and `PRAGMA user_version` its schema. A new column
//! or table bumps [`SCHEMA_VERSION`] and adds a step to [`migrate`], tested
//! from a copy of the old schema; every step runs in one transaction, so a
//! crash mid-migration leaves the old schema whole.

use rusqlite::{Connection, params};

use super::now;

/// The schema this build writes (`PRAGMA user_version`).
pub(super) const SCHEMA_VERSION: i32 = 5;

/// `PRAGMA application_id` of a dailyissue ledger: "DIsu" in ASCII.
pub(super) const APPLICATION_ID: i32 = 0x4449_7375;

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

/// Schema 3: bounces and complaints that arrive later. `return_paths`
/// maps each VERP token to the delivery it was made for (written when the
/// delivery is claimed); `bounce_events` keeps every bounce and complaint
/// with its evidence, linked to its delivery by (issue date, address), and
/// names each by `event_id` so the same report twice is recorded once.
/// `suppressed` is the suppression reason the event wrote, if it wrote
/// one; `cleared_at` is set when `suppressions remove` undid it (the event
/// then no longer counts towards a soft-bounce streak).
const BOUNCES: &str = "
CREATE TABLE return_paths (
    token      TEXT PRIMARY KEY,
    issue_date TEXT NOT NULL,
    address    TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE bounce_events (
    id            INTEGER PRIMARY KEY,
    event_id      TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    issue_date    TEXT NOT NULL,
    address       TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'unknown', 'complaint')),
    status        TEXT,
    diagnostic    TEXT,
    report_type   TEXT NOT NULL,
    source        TEXT NOT NULL,
    evidence      BLOB NOT NULL,
    evidence_size INTEGER NOT NULL,
    suppressed    TEXT,
    cleared_at    TEXT,
    UNIQUE (event_id, address)
);
CREATE INDEX bounce_events_delivery ON bounce_events (issue_date, address);
CREATE INDEX bounce_events_address ON bounce_events (address);
";

/// Signups (double opt-in from `serve`, or added and imported by the
/// operator), the log of signup events that the limits and the growth
/// figures count, and the readers' feedback votes. Added by schema 4.
///
/// What is kept is what consent and the limits need: the address, the name
/// given, where and when the signup was asked for and confirmed, and the
/// client's IP only as a keyed hash. Events name no address: an event's
/// `address_hash` and `ip_hash` are keyed hashes, kept only while a limit
/// can count them (see `signups`). A vote is keyed by the issue and a keyed
/// hash of the reader, so only counts can be read back.
const SIGNUPS: &str = "
CREATE TABLE signups (
    address      TEXT PRIMARY KEY,
    name         TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL CHECK (status IN ('pending', 'confirmed')),
    source       TEXT NOT NULL CHECK (source IN ('form', 'added', 'imported')),
    page         TEXT,
    consent      TEXT NOT NULL,
    timezone     TEXT,
    ip_hash      TEXT,
    requested_at TEXT NOT NULL,
    confirmed_at TEXT,
    expires_at   TEXT
) WITHOUT ROWID;
CREATE INDEX signups_status ON signups (status, address);
CREATE TABLE signup_events (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('requested', 'confirmed', 'expired', 'refused', 'added', 'imported', 'removed')),
    reason       TEXT,
    address_hash TEXT,
    ip_hash      TEXT
);
CREATE INDEX signup_events_at ON signup_events (at);
CREATE INDEX signup_events_address ON signup_events (address_hash, at) WHERE address_hash IS NOT NULL;
CREATE INDEX signup_events_ip ON signup_events (ip_hash, at) WHERE ip_hash IS NOT NULL;
CREATE TABLE feedback (
    issue_date TEXT NOT NULL,
    reader     TEXT NOT NULL,
    vote       TEXT NOT NULL CHECK (vote IN ('yes', 'no')),
    at         TEXT NOT NULL,
    PRIMARY KEY (issue_date, reader)
) WITHOUT ROWID;
";

/// Schema 5, local mornings (`delivery = "local"`): each delivery row
/// says for which local date and zone it was claimed; `reader_days` keeps
/// every reader's latest copy (issue, local date, zone), kept up to date
/// by a trigger whenever a row becomes `sent` or `unknown`, so no run has
/// to remember it; and `issues.published_at` is the instant of the run
/// that delivered an issue's first copy (the archive's publication time).
/// What was delivered before counts as each reader's latest copy, its
/// zone unknown.
const LOCAL_DAYS: &str = "
ALTER TABLE deliveries ADD COLUMN local_date TEXT;
ALTER TABLE deliveries ADD COLUMN zone TEXT;
ALTER TABLE issues ADD COLUMN published_at TEXT;
CREATE TABLE reader_days (
    address    TEXT PRIMARY KEY,
    issue_date TEXT NOT NULL,
    local_date TEXT NOT NULL,
    zone       TEXT NOT NULL,
    at         TEXT NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER deliveries_reader_days AFTER UPDATE OF status ON deliveries
WHEN NEW.status IN ('sent', 'unknown') AND NEW.local_date IS NOT NULL
BEGIN
    INSERT INTO reader_days (address, issue_date, local_date, zone, at)
    VALUES (NEW.address, NEW.issue_date, NEW.local_date, coalesce(NEW.zone, ''), NEW.updated_at)
    ON CONFLICT (address) DO UPDATE SET
        issue_date = excluded.issue_date, local_date = excluded.local_date,
        zone = excluded.zone, at = excluded.at
    WHERE excluded.issue_date >= reader_days.issue_date;
END;
INSERT INTO reader_days (address, issue_date, local_date, zone, at)
    SELECT address, max(issue_date), max(issue_date), '', max(updated_at) FROM deliveries
    WHERE status IN ('sent', 'unknown') GROUP BY address;
";

/// Builds the tables of a new ledger for the newsletter `list_id` and
/// marks the file as a dailyissue ledger, in one transaction.
pub(super) fn install(conn: &mut Connection, list_id: &str) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute_batch(SCHEMA)?;
    tx.execute_batch(DELIVERIES)?;
    tx.execute_batch(BOUNCES)?;
    tx.execute_batch(SIGNUPS)?;
    tx.execute_batch(LOCAL_DAYS)?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('list_id', ?1), ('created_at', ?2)",
        params![list_id, now()],
    )?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}

/// Brings a ledger of schema `from` up to [`SCHEMA_VERSION`]. A version 1
/// file did not know whose it was: it becomes `list_id`'s.
pub(super) fn migrate(conn: &mut Connection, from: i32, list_id: &str) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if from == 1 {
        tx.execute_batch(&MIGRATE_1_TO_2.replace("{DELIVERIES}", DELIVERIES))?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('list_id', ?1), ('created_at', ?2)",
            params![list_id, now()],
        )?;
    }
    if from < 3 {
        tx.execute_batch(BOUNCES)?;
    }
    if from < 4 {
        tx.execute_batch(SIGNUPS)?;
    }
    if from < 5 {
        tx.execute_batch(LOCAL_DAYS)?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::{LIST, d};
    use crate::ledger::{DeliveryStatus, Ledger, Recovered};
    use crate::project::subscribers::{AddressKey, KeyDigest};

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
    fn a_version_2_ledger_gains_the_bounce_tables_keeping_its_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let conn = Connection::open(&path).expect("open");
        // Schema 2 as it was, with a delivery and a suppression.
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
             CREATE TABLE issues (issue_date TEXT PRIMARY KEY, content_hash TEXT NOT NULL, frozen_at TEXT NOT NULL) WITHOUT ROWID;
             CREATE TABLE suppressions (address TEXT PRIMARY KEY, reason TEXT NOT NULL, note TEXT, created_at TEXT NOT NULL) WITHOUT ROWID;
             CREATE TABLE test_sends (id INTEGER PRIMARY KEY, issue_date TEXT NOT NULL, address TEXT NOT NULL, status TEXT NOT NULL, reply TEXT, message_id TEXT NOT NULL, at TEXT NOT NULL);
             CREATE TABLE deliveries (
                issue_date TEXT NOT NULL, address TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'unknown', 'deferred', 'failed', 'bounced')),
                attempts INTEGER NOT NULL DEFAULT 0, transmitting INTEGER NOT NULL DEFAULT 0,
                uncertain INTEGER NOT NULL DEFAULT 0, reply TEXT, message_id TEXT NOT NULL,
                created_at TEXT NOT NULL, updated_at TEXT NOT NULL, sent_at TEXT, sent_day TEXT,
                PRIMARY KEY (issue_date, address)) WITHOUT ROWID;
             CREATE INDEX deliveries_sent_day ON deliveries (sent_day) WHERE sent_day IS NOT NULL;
             INSERT INTO meta VALUES ('list_id', 'daily.example.com'), ('created_at', 't');
             INSERT INTO issues VALUES ('2027-03-01', 'h', '2027-03-01T11:00:00.000Z');
             INSERT INTO deliveries VALUES ('2027-03-01', 'a@x.org', 'sent', 1, 0, 0, '250', '<a>', 't', 't', '2027-03-01T11:00:00.000Z', '2027-03-01');
             INSERT INTO suppressions VALUES ('z@x.org', 'unsubscribed', NULL, 't');
             PRAGMA application_id = 1145664373;
             PRAGMA user_version = 2;",
        )
        .expect("v2");
        drop(conn);
        let mut l = Ledger::open(&path, LIST).expect("migrates");
        let date = d("2027-03-01");
        assert_eq!(l.counts(date).expect("counts")[&DeliveryStatus::Sent], 1);
        assert_eq!(l.suppressed_count().expect("count"), 1);
        let report = crate::bounces::Report {
            report_type: "delivery-status".into(),
            findings: vec![crate::bounces::Finding {
                kind: crate::bounces::Kind::Hard,
                recipient: Some("a@x.org".into()),
                status: Some("5.1.1".into()),
                diagnostic: None,
            }],
            tokens: Vec::new(),
            message_id: None,
            event_id: "e".into(),
        };
        let policy = crate::bounces::Policy {
            soft_limit: 3,
            soft_window: 7,
        };
        let recorded = l
            .record_report(&report, crate::bounces::Source::Stdin, b"raw", policy)
            .expect("the new tables work");
        assert!(
            matches!(recorded[0], crate::ledger::Recorded::New { .. }),
            "{recorded:?}"
        );
        assert_eq!(l.issue_feedback(date).expect("feedback").hard, 1);
    }

    #[test]
    fn a_version_3_ledger_gains_signups_and_votes_keeping_its_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(&format!(
            "{SCHEMA_V2}{DELIVERIES}{BOUNCES}
             INSERT INTO meta VALUES ('list_id', '{LIST}');
             INSERT INTO return_paths VALUES ('t0k', '2027-03-01', 'a@x.org');
             INSERT INTO suppressions VALUES ('s@x.org', 'unsubscribed', NULL, 't');
             INSERT INTO deliveries (issue_date, address, status, attempts, message_id, created_at, updated_at)
                 VALUES ('2027-03-01', 'a@x.org', 'sent', 1, '<a>', 't', 't');
             PRAGMA application_id = {APPLICATION_ID};
             PRAGMA user_version = 3;"
        ))
        .expect("v3");
        drop(conn);
        let l = Ledger::open(&path, LIST).expect("migrates");
        assert_eq!(
            l.statuses(d("2027-03-01")).expect("rows")[&KeyDigest::of(&AddressKey::new("a@x.org"))]
                .status,
            DeliveryStatus::Sent
        );
        assert_eq!(l.suppressed_count().expect("count"), 1);
        assert_eq!(l.signup_counts().expect("signups"), (0, 0));
        assert_eq!(l.votes(d("2027-03-01")).expect("votes"), Default::default());
        let kept: i64 = l
            .conn
            .query_row("SELECT count(*) FROM return_paths", [], |r| r.get(0))
            .expect("schema 3's tables kept");
        assert_eq!(kept, 1);
        drop(l);
        let l = Ledger::open(&path, LIST).expect("reopens at the new version");
        let v: i32 = l
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("pragma");
        assert_eq!(v, SCHEMA_VERSION);
    }

    /// Schema 2's tables besides `deliveries` (3 added `BOUNCES`), as that
    /// version made them.
    const SCHEMA_V2: &str = "
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE issues (issue_date TEXT PRIMARY KEY, content_hash TEXT NOT NULL, frozen_at TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE suppressions (address TEXT PRIMARY KEY, reason TEXT NOT NULL, note TEXT, created_at TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE test_sends (id INTEGER PRIMARY KEY, issue_date TEXT NOT NULL, address TEXT NOT NULL, status TEXT NOT NULL, reply TEXT, message_id TEXT NOT NULL, at TEXT NOT NULL);
    ";
}

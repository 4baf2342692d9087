//! Local mornings in the ledger (`delivery = "local"`): which local date
//! and zone each delivery row was claimed for, every reader's latest copy
//! (`reader_days`, kept by a trigger: see `schema`), and the instant each
//! issue was published (its first copy went out).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rusqlite::params;

use super::open::explain;
use super::{Ledger, Recovered};
use crate::deliver::local::Last;
use crate::project::subscribers::{AddressKey, KeyDigest};

impl Ledger {
    /// Every reader's latest copy (sent, or sent without an answer), by
    /// address digest. Empty for a ledger of an older schema opened
    /// read-only.
    pub fn reader_days(&self) -> anyhow::Result<HashMap<KeyDigest, Last>> {
        let mut out = HashMap::new();
        if !self.has_table("reader_days")? {
            return Ok(out);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT address, issue_date, local_date, zone FROM reader_days")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        for row in rows {
            let (address, issue, local, zone) = row?;
            let (Ok(issue), Ok(local)) = (issue.parse(), local.parse()) else {
                continue;
            };
            out.insert(
                KeyDigest::of(&AddressKey::new(&address)),
                Last {
                    issue,
                    local,
                    zone: zone.parse::<Tz>().ok(),
                },
            );
        }
        Ok(out)
    }

    /// Settles what a dead run left `sending`, whatever the issue: a run
    /// of local mornings may have been sending two issues. Called with
    /// the run lock held, so no other run owns such rows.
    pub fn recover_all(&mut self) -> anyhow::Result<Recovered> {
        let dates: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT DISTINCT issue_date FROM deliveries WHERE status = 'sending'")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut total = Recovered::default();
        for date in dates.iter().filter_map(|d| d.parse::<NaiveDate>().ok()) {
            let r = self.recover(date)?;
            total.unknown += r.unknown;
            total.unattempted += r.unattempted;
        }
        Ok(total)
    }

    /// Records `at` (the clock of the run that delivered its first copy)
    /// as the instant the issue of `date` was published; kept once set.
    pub fn publish(&mut self, date: NaiveDate, at: DateTime<Utc>) -> anyhow::Result<()> {
        let path = self.path.clone();
        self.conn
            .execute(
                "UPDATE issues SET published_at = ?2 WHERE issue_date = ?1 AND published_at IS NULL",
                params![date.to_string(), at.to_rfc3339()],
            )
            .map_err(|e| explain(e, &path))?;
        Ok(())
    }

    /// When each issue was published, where the ledger knows it.
    pub fn published(&self) -> anyhow::Result<HashMap<NaiveDate, DateTime<Utc>>> {
        let mut out = HashMap::new();
        let has_column = self
            .conn
            .prepare("SELECT published_at FROM issues LIMIT 0")
            .is_ok();
        if !has_column {
            return Ok(out);
        }
        let mut stmt = self.conn.prepare(
            "SELECT issue_date, published_at FROM issues WHERE published_at IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (date, at) = row?;
            if let (Ok(date), Ok(at)) = (date.parse(), DateTime::parse_from_rfc3339(&at)) {
                out.insert(date, at.with_timezone(&Utc));
            }
        }
        Ok(out)
    }
}

/// The statement of `Write::Days`: which local date and zone the claimed
/// rows of an issue are for.
pub(super) const SET_DAYS: &str =
    "UPDATE deliveries SET local_date = ?3, zone = ?4 WHERE issue_date = ?1 AND address = ?2";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::{claim, d, ledger, outcome};
    use crate::ledger::{DeliveryStatus, Write};

    fn days(address: &str, local: &str, zone: Tz) -> Write {
        Write::Days(vec![(AddressKey::new(address), d(local), zone)])
    }

    #[test]
    fn a_readers_latest_copy_is_remembered_and_only_moves_forward() {
        let (_dir, mut l) = ledger();
        let berlin = chrono_tz::Europe::Berlin;
        let (first, second) = (d("2027-03-01"), d("2027-03-02"));
        l.apply(
            second,
            second,
            &[
                claim(&["a@x.org", "b@x.org"]),
                days("a@x.org", "2027-03-02", berlin),
            ],
        )
        .expect("claim");
        assert!(
            l.reader_days().expect("days").is_empty(),
            "claimed is not got"
        );
        l.apply(
            second,
            second,
            &[
                outcome("a@x.org", DeliveryStatus::Sent, "250"),
                outcome("b@x.org", DeliveryStatus::Deferred, "451"),
            ],
        )
        .expect("record");
        let a = KeyDigest::of(&AddressKey::new("a@x.org"));
        let got = l.reader_days().expect("days");
        assert_eq!(got.len(), 1, "a deferred copy is not got");
        assert_eq!(
            got[&a],
            Last {
                issue: second,
                local: second,
                zone: Some(berlin)
            }
        );
        // An older issue sent later (`send --date`) leaves the latest one.
        l.apply(
            first,
            first,
            &[
                claim(&["a@x.org"]),
                days("a@x.org", "2027-03-02", chrono_tz::Asia::Tokyo),
                outcome("a@x.org", DeliveryStatus::Unknown, "no reply"),
            ],
        )
        .expect("older");
        assert_eq!(l.reader_days().expect("days")[&a].issue, second);
    }

    #[test]
    fn publication_is_set_once() {
        let (_dir, mut l) = ledger();
        let date = d("2027-03-01");
        l.freeze(date, "h", false).expect("freeze");
        let first: DateTime<Utc> = "2027-02-28T16:00:00Z".parse().expect("instant");
        l.publish(date, first).expect("publish");
        l.publish(date, first + chrono::Duration::hours(5))
            .expect("again");
        assert_eq!(l.published().expect("published")[&date], first);
    }

    #[test]
    fn every_issue_left_sending_is_settled() {
        let (_dir, mut l) = ledger();
        for date in [d("2027-03-01"), d("2027-03-02")] {
            l.apply(date, date, &[claim(&["a@x.org"])]).expect("claim");
        }
        let r = l.recover_all().expect("recover");
        assert_eq!(r.unattempted, 2);
    }
}

#[cfg(test)]
mod migration {
    use rusqlite::Connection;

    use crate::ledger::Ledger;
    use crate::ledger::tests::{LIST, d};
    use crate::project::subscribers::{AddressKey, KeyDigest};

    /// A schema 4 ledger (as main had it before local mornings), with a
    /// delivery on it, gains the columns, the table and the trigger, and
    /// its delivered rows count as each reader's latest copy.
    #[test]
    fn a_version_4_ledger_is_migrated_keeping_who_got_what() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.db");
        drop(Ledger::open(&path, LIST).expect("new"));
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(
            "DROP TRIGGER deliveries_reader_days;
             DROP TABLE reader_days;
             ALTER TABLE deliveries DROP COLUMN local_date;
             ALTER TABLE deliveries DROP COLUMN zone;
             ALTER TABLE issues DROP COLUMN published_at;
             INSERT INTO deliveries (issue_date, address, status, attempts, message_id, created_at, updated_at)
                 VALUES ('2027-03-01', 'a@x.org', 'sent', 1, '<a>', 't', 't'),
                        ('2027-03-02', 'a@x.org', 'deferred', 1, '<a2>', 't', 't');
             PRAGMA user_version = 4;",
        )
        .expect("v4");
        drop(conn);
        let l = Ledger::open(&path, LIST).expect("migrates");
        let days = l.reader_days().expect("days");
        let a = &days[&KeyDigest::of(&AddressKey::new("a@x.org"))];
        assert_eq!(a.issue, d("2027-03-01"));
        assert_eq!(a.zone, None, "the zone of old copies is unknown");
        assert!(l.published().expect("published").is_empty());
    }
}

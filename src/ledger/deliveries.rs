//! Deliveries: one row per (issue date, address), from claim to outcome.
//!
//! A run's writer applies [`Write`]s in groups, one transaction each:
//! a batch is claimed (`sending`, attempts + 1), a row is marked
//! `transmitting` just before its SMTP transaction, and its outcome is
//! recorded (a `bounced` one with its suppression, in the same
//! transaction). After a crash, [`Ledger::recover`] settles what a dead
//! run left `sending`. The rest reads: who is due, counts, what failed.

use std::collections::HashMap;

use chrono::NaiveDate;
use rusqlite::{CachedStatement, Transaction, params};

use super::open::explain;
use super::{DeliveryStatus, Ledger, Recovered, Row, Write, now};
use crate::project::subscribers::{AddressKey, KeyDigest};

/// A row of `status`: an address that did not get the issue (yet), or may have.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Undelivered {
    pub address: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub uncertain: u32,
    pub reply: String,
}

impl Ledger {
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
}

/// The statements of [`Ledger::apply`], prepared once per transaction.
struct Statements<'tx> {
    claim: CachedStatement<'tx>,
    begin: CachedStatement<'tx>,
    record: CachedStatement<'tx>,
    suppress: CachedStatement<'tx>,
    test: CachedStatement<'tx>,
    days: CachedStatement<'tx>,
    return_path: CachedStatement<'tx>,
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
            days: tx.prepare_cached(super::days::SET_DAYS)?,
            return_path: tx.prepare_cached(
                "INSERT INTO return_paths (token, issue_date, address) VALUES (?1, ?2, ?3)
                 ON CONFLICT (token) DO NOTHING",
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
            Write::Days(days) => {
                for (address, local, zone) in days {
                    self.days.execute(params![
                        date,
                        address.as_str(),
                        local.to_string(),
                        zone.name()
                    ])?;
                }
            }
            Write::ReturnPaths(tokens) => {
                for (token, address) in tokens {
                    self.return_path
                        .execute(params![token, date, address.as_str()])?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::{claim, d, ledger, outcome};

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
}

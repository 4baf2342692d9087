//! What the list's growth is counted from, read for `status`: the signup
//! events of a period, the unsubscribes (suppressions for that reason),
//! pending signups past their expiry that no writer has removed yet, and
//! how many readers each issue was addressed to (the list's size over
//! time). The counting by day, in the newsletter's time zone, is
//! `status`'s business.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::params;

use super::{Ledger, stamp};

/// One signup event: when, what (`requested`, `confirmed`, `expired`,
/// `refused`, `added`, `imported`, `removed`), and why for a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignupEvent {
    pub at: String,
    pub kind: String,
    pub reason: Option<String>,
}

impl Ledger {
    /// The signup events from `from` (inclusive) to `to` (exclusive).
    pub fn signup_events(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> anyhow::Result<Vec<SignupEvent>> {
        let mut stmt = self.conn.prepare(
            "SELECT at, kind, reason FROM signup_events WHERE at >= ?1 AND at < ?2 ORDER BY at",
        )?;
        let rows = stmt.query_map(params![stamp(from), stamp(to)], |r| {
            Ok(SignupEvent {
                at: r.get(0)?,
                kind: r.get(1)?,
                reason: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When each unsubscribe of the period was recorded.
    pub fn unsubscribes(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> anyhow::Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT created_at FROM suppressions
             WHERE reason = 'unsubscribed' AND created_at >= ?1 AND created_at < ?2",
        )?;
        let rows = stmt.query_map(params![stamp(from), stamp(to)], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The expiry times of pending signups already past them at `now`
    /// (expired, though no writer has removed them yet).
    pub fn overdue_signups(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT expires_at FROM signups WHERE status = 'pending' AND expires_at < ?1",
        )?;
        let rows = stmt.query_map(params![stamp(now)], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many readers the issues from `from` to `to` (inclusive) were
    /// addressed to: delivery rows, whatever their outcome.
    pub fn readers_by_issue(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> anyhow::Result<BTreeMap<NaiveDate, u64>> {
        let mut stmt = self.conn.prepare(
            "SELECT issue_date, count(*) FROM deliveries
             WHERE issue_date >= ?1 AND issue_date <= ?2 GROUP BY issue_date",
        )?;
        let rows = stmt.query_map(params![from.to_string(), to.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (date, n) = row?;
            if let Ok(date) = date.parse() {
                out.insert(date, n as u64);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::signups::{Limits, Request};
    use crate::ledger::tests::{claim, d, ledger};
    use crate::project::subscribers::AddressKey;

    #[test]
    fn growth_reads_events_unsubscribes_and_readers_per_issue() {
        let (_dir, mut l) = ledger();
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().expect("time");
        let ada = AddressKey::new("ada@example.org");
        let req = Request {
            address: &ada,
            name: "",
            page: None,
            timezone: None,
            address_hash: "h",
            ip_hash: None,
            at: at("2027-03-01T10:00:00Z"),
            expires: at("2027-03-02T10:00:00Z"),
        };
        let limits = Limits {
            per_address_per_day: 1,
            per_ip_per_hour: 1,
        };
        l.request_signup(&req, limits).expect("request");
        l.request_signup(&req, limits).expect("refused");
        l.suppress(&"bo@example.org".into(), "unsubscribed", None)
            .expect("unsubscribe");
        let events = l
            .signup_events(at("2027-03-01T00:00:00Z"), at("2027-03-02T00:00:00Z"))
            .expect("events");
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["requested", "refused"]);
        assert_eq!(events[1].reason.as_deref(), Some("address limit"));
        assert!(
            l.overdue_signups(at("2027-03-02T00:00:00Z"))
                .expect("overdue")
                .is_empty()
        );
        assert_eq!(
            l.overdue_signups(at("2027-03-03T00:00:00Z"))
                .expect("overdue")
                .len(),
            1
        );
        let now = chrono::Utc::now();
        let unsubscribed = l
            .unsubscribes(
                now - chrono::Duration::hours(1),
                now + chrono::Duration::hours(1),
            )
            .expect("unsubscribes");
        assert_eq!(unsubscribed.len(), 1);
        let day = d("2027-03-01");
        l.apply(day, day, &[claim(&["a@x.org", "b@x.org"])])
            .expect("claim");
        assert_eq!(
            l.readers_by_issue(day, d("2027-03-07")).expect("sizes")[&day],
            2
        );
    }
}

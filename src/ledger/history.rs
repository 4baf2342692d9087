//! What `history` reads: each issue's deliveries summed up in one query
//! (what came back later, and the unsubscribes after each issue, are
//! `events`' [`Ledger::issue_feedback`]).

use chrono::NaiveDate;

use super::Ledger;

/// One issue's rows, counted by status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueTotals {
    pub date: NaiveDate,
    /// Readers the issue was addressed to: one row each.
    pub rows: u64,
    pub sent: u64,
    pub unknown: u64,
    pub deferred: u64,
    pub failed: u64,
    pub bounced: u64,
    pub sending: u64,
    /// When its first row was claimed (RFC 3339, UTC): the issue went out
    /// from then on.
    pub started_at: String,
}

impl Ledger {
    /// Every issue with deliveries, oldest first.
    pub fn issue_totals(&self) -> anyhow::Result<Vec<IssueTotals>> {
        let mut stmt = self.conn.prepare(
            "SELECT issue_date, count(*),
                    sum(status = 'sent'), sum(status = 'unknown'), sum(status = 'deferred'),
                    sum(status = 'failed'), sum(status = 'bounced'), sum(status = 'sending'),
                    min(created_at)
             FROM deliveries GROUP BY issue_date ORDER BY issue_date",
        )?;
        let rows = stmt.query_map([], |r| {
            let n = |i: usize| r.get::<_, i64>(i).map(|v| v as u64);
            Ok((
                r.get::<_, String>(0)?,
                IssueTotals {
                    date: NaiveDate::MIN,
                    rows: n(1)?,
                    sent: n(2)?,
                    unknown: n(3)?,
                    deferred: n(4)?,
                    failed: n(5)?,
                    bounced: n(6)?,
                    sending: n(7)?,
                    started_at: r.get(8)?,
                },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (date, mut totals) = row?;
            if let Ok(date) = date.parse() {
                totals.date = date;
                out.push(totals);
            }
        }
        Ok(out)
    }
}

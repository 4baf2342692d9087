//! Feedback votes: "Was today's issue useful? Yes · No", one vote per
//! reader and issue, kept under a keyed hash of the reader (made by the
//! caller), so that only counts can ever be read back. A second click
//! changes the vote.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{OptionalExtension, params};

use super::open::explain;
use super::{Ledger, stamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Vote {
    Yes,
    No,
}

impl Vote {
    pub fn as_str(self) -> &'static str {
        match self {
            Vote::Yes => "yes",
            Vote::No => "no",
        }
    }

    pub fn parse(s: &str) -> Option<Vote> {
        match s {
            "yes" => Some(Vote::Yes),
            "no" => Some(Vote::No),
            _ => None,
        }
    }
}

/// What a vote did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voted {
    New,
    Changed,
    Same,
}

/// The votes on one issue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Votes {
    pub yes: u64,
    pub no: u64,
}

impl Ledger {
    /// Records `reader`'s vote on the issue of `date` (a keyed hash of the
    /// address, never the address).
    pub fn vote(
        &mut self,
        date: NaiveDate,
        reader: &str,
        vote: Vote,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Voted> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| explain(e, &path))?;
        let date = date.to_string();
        let before: Option<String> = tx
            .query_row(
                "SELECT vote FROM feedback WHERE issue_date = ?1 AND reader = ?2",
                params![date, reader],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute(
            "INSERT INTO feedback (issue_date, reader, vote, at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (issue_date, reader) DO UPDATE SET vote = excluded.vote, at = excluded.at",
            params![date, reader, vote.as_str(), stamp(at)],
        )?;
        tx.commit()?;
        Ok(match before {
            None => Voted::New,
            Some(v) if v == vote.as_str() => Voted::Same,
            Some(_) => Voted::Changed,
        })
    }

    /// The votes on the issue of `date`.
    pub fn votes(&self, date: NaiveDate) -> anyhow::Result<Votes> {
        Ok(self.conn.query_row(
            "SELECT count(*) FILTER (WHERE vote = 'yes'), count(*) FILTER (WHERE vote = 'no')
             FROM feedback WHERE issue_date = ?1",
            params![date.to_string()],
            |r| {
                Ok(Votes {
                    yes: r.get::<_, i64>(0)? as u64,
                    no: r.get::<_, i64>(1)? as u64,
                })
            },
        )?)
    }

    /// The votes on every issue that has any, by day (for the issue history).
    pub fn votes_by_issue(&self) -> anyhow::Result<BTreeMap<NaiveDate, Votes>> {
        let mut stmt = self.conn.prepare(
            "SELECT issue_date, count(*) FILTER (WHERE vote = 'yes'), count(*) FILTER (WHERE vote = 'no')
             FROM feedback GROUP BY issue_date",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Votes {
                    yes: r.get::<_, i64>(1)? as u64,
                    no: r.get::<_, i64>(2)? as u64,
                },
            ))
        })?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (date, votes) = row?;
            if let Ok(date) = date.parse() {
                out.insert(date, votes);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::{d, ledger};

    #[test]
    fn one_vote_per_reader_and_issue_and_a_second_click_changes_it() {
        let (_dir, mut l) = ledger();
        let day = d("2027-03-01");
        let at: DateTime<Utc> = "2027-03-01T12:00:00Z".parse().expect("time");
        assert_eq!(l.vote(day, "h1", Vote::Yes, at).expect("vote"), Voted::New);
        assert_eq!(l.vote(day, "h1", Vote::Yes, at).expect("vote"), Voted::Same);
        assert_eq!(l.vote(day, "h2", Vote::Yes, at).expect("vote"), Voted::New);
        assert_eq!(l.votes(day).expect("votes"), Votes { yes: 2, no: 0 });
        assert_eq!(
            l.vote(day, "h1", Vote::No, at).expect("vote"),
            Voted::Changed
        );
        assert_eq!(l.votes(day).expect("votes"), Votes { yes: 1, no: 1 });
        l.vote(d("2027-03-02"), "h1", Vote::No, at).expect("vote");
        let all = l.votes_by_issue().expect("all");
        assert_eq!(all.len(), 2);
        assert_eq!(all[&d("2027-03-02")], Votes { yes: 0, no: 1 });
    }
}

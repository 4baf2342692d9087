//! Frozen issue records: the hash of a day's record when its delivery
//! began, so an edit made after some readers got the issue is noticed
//! (`send` refuses it unless forced) instead of sending two versions.

use chrono::NaiveDate;
use rusqlite::{OptionalExtension, params};

use super::open::explain;
use super::{Ledger, now};

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

impl Ledger {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::{d, ledger};

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
}

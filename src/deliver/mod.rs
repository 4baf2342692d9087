//! Deliver: takes the prepared email and the list, gives every due reader's
//! copy to a transport (SMTP, `.eml` files, nowhere for a dry run) and
//! records each outcome in the ledger, one run at a time.
//!
//! - this file: who gets a copy in this run (pure), and the stream of due
//!   readers that feeds the pipeline without holding the list in memory;
//! - `readers`: the list a run goes through: the CSV's rows, then the
//!   confirmed signups the CSV does not hold;
//! - `pipeline`: workers, retries, group-commit ledger writes, crash safety;
//! - `transport`: the one seam every message passes through;
//! - `lock`: one run at a time.

pub(crate) mod local;
pub(crate) mod lock;
pub(crate) mod pipeline;
pub(crate) mod readers;
pub(crate) mod transport;

use std::collections::{HashMap, HashSet};

use crate::ledger::{DeliveryStatus, MAX_UNCERTAIN, Row};
use crate::project::subscribers::{KeyDigest, Subscriber};

/// One reader this run sends to.
#[derive(Debug)]
pub(crate) struct Recipient {
    pub reader: Subscriber,
    /// Earlier attempts whose outcome is unknown (see `ledger`).
    pub uncertain: u32,
}

/// Readers due per message of the stream into the pipeline.
pub(crate) const BATCH: usize = 64;

/// What the ledger knows that decides who is due: the rows and the
/// suppression list, by address digest (compact for a million readers).
#[derive(Debug, Default)]
pub(crate) struct Known {
    pub rows: HashMap<KeyDigest, Row>,
    pub suppressed: HashSet<KeyDigest>,
}

/// The operator's overrides for rows that would not be sent again.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Retry {
    /// Addresses that failed permanently (5xx) in an earlier run.
    pub failed: bool,
    /// Readers whose two attempts went unanswered.
    pub unknown: bool,
}

/// Why an active reader gets no copy in this run, or that they do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Due { uncertain: u32 },
    AlreadySent,
    Suppressed,
    FailedEarlier,
    UnansweredTwice,
}

/// The rule of "never twice, never skipped", for one active reader.
pub(crate) fn verdict(row: Option<&Row>, suppressed: bool, retry: Retry) -> Verdict {
    if suppressed {
        return Verdict::Suppressed;
    }
    let Some(row) = row else {
        return Verdict::Due { uncertain: 0 };
    };
    if row.due(retry.failed, retry.unknown) {
        return Verdict::Due {
            uncertain: row.uncertain,
        };
    }
    match row.status {
        DeliveryStatus::Sent => Verdict::AlreadySent,
        DeliveryStatus::Bounced => Verdict::Suppressed,
        DeliveryStatus::Failed if row.uncertain < MAX_UNCERTAIN => Verdict::FailedEarlier,
        _ => Verdict::UnansweredTwice,
    }
}

/// How many due readers a run may send: `--limit`, then what `daily_cap`
/// leaves of the day.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Allowance {
    pub limit: Option<u64>,
    pub room: Option<u64>,
}

impl Allowance {
    pub fn max(&self) -> u64 {
        self.limit
            .unwrap_or(u64::MAX)
            .min(self.room.unwrap_or(u64::MAX))
    }

    /// Of `due` readers, how many `--limit` holds back, then `daily_cap`.
    pub fn left(&self, due: u64) -> (u64, u64) {
        let after_limit = due.min(self.limit.unwrap_or(u64::MAX));
        let after_cap = after_limit.min(self.room.unwrap_or(u64::MAX));
        (due - after_limit, after_limit - after_cap)
    }
}

/// What the selection saw.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    pub active: u64,
    pub already_sent: u64,
    pub suppressed: u64,
    pub failed_earlier: u64,
    pub unanswered_twice: u64,
    /// Due readers (whether or not the allowance let them through).
    pub due: u64,
    /// Due, within the allowance, but never handed to the pipeline because
    /// it stopped taking readers (the run stopped early).
    pub not_fed: u64,
}

/// Goes through the active `readers`, counting, and feeds the due ones
/// (up to the allowance) to the pipeline in batches through `feed`. When
/// the pipeline stops listening, the rest is only counted. Runs on its own
/// thread beside the pipeline.
pub(crate) fn select(
    readers: impl Iterator<Item = Subscriber>,
    known: &Known,
    retry: Retry,
    allowance: Allowance,
    feed: &tokio::sync::mpsc::Sender<Vec<Recipient>>,
) -> Tally {
    let mut tally = Tally::default();
    let max = allowance.max();
    let mut batch = Vec::with_capacity(BATCH);
    let mut listening = true;
    for reader in readers {
        tally.active += 1;
        let digest = KeyDigest::of(&reader.key);
        let verdict = verdict(
            known.rows.get(&digest),
            known.suppressed.contains(&digest),
            retry,
        );
        let uncertain = match verdict {
            Verdict::Due { uncertain } => uncertain,
            Verdict::AlreadySent => {
                tally.already_sent += 1;
                continue;
            }
            Verdict::Suppressed => {
                tally.suppressed += 1;
                continue;
            }
            Verdict::FailedEarlier => {
                tally.failed_earlier += 1;
                continue;
            }
            Verdict::UnansweredTwice => {
                tally.unanswered_twice += 1;
                continue;
            }
        };
        tally.due += 1;
        if tally.due > max {
            continue;
        }
        if !listening {
            tally.not_fed += 1;
            continue;
        }
        batch.push(Recipient { reader, uncertain });
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if let Err(e) = feed.blocking_send(full) {
                listening = false;
                tally.not_fed += e.0.len() as u64;
            }
        }
    }
    if !batch.is_empty() {
        let n = batch.len() as u64;
        if !listening || feed.blocking_send(batch).is_err() {
            tally.not_fed += n;
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::subscribers::AddressKey;

    fn row(status: DeliveryStatus, uncertain: u32) -> Row {
        Row { status, uncertain }
    }

    #[test]
    fn verdicts_follow_the_ledger() {
        let r = Retry::default();
        assert_eq!(verdict(None, false, r), Verdict::Due { uncertain: 0 });
        assert_eq!(verdict(None, true, r), Verdict::Suppressed);
        assert_eq!(
            verdict(Some(&row(DeliveryStatus::Sent, 0)), false, r),
            Verdict::AlreadySent
        );
        assert_eq!(
            verdict(Some(&row(DeliveryStatus::Bounced, 0)), false, r),
            Verdict::Suppressed
        );
        assert_eq!(
            verdict(Some(&row(DeliveryStatus::Failed, 0)), false, r),
            Verdict::FailedEarlier
        );
        assert_eq!(
            verdict(Some(&row(DeliveryStatus::Unknown, 1)), false, r),
            Verdict::Due { uncertain: 1 }
        );
        assert_eq!(
            verdict(Some(&row(DeliveryStatus::Unknown, 2)), false, r),
            Verdict::UnansweredTwice
        );
        let all = Retry {
            failed: true,
            unknown: true,
        };
        assert_eq!(
            verdict(Some(&row(DeliveryStatus::Failed, 0)), false, all),
            Verdict::Due { uncertain: 0 }
        );
        assert_eq!(
            verdict(Some(&row(DeliveryStatus::Unknown, 2)), false, all),
            Verdict::Due { uncertain: 2 }
        );
    }

    #[test]
    fn the_allowance_holds_back_by_limit_then_by_cap() {
        let a = Allowance {
            limit: Some(10),
            room: Some(4),
        };
        assert_eq!(a.max(), 4);
        assert_eq!(a.left(20), (10, 6));
        assert_eq!(a.left(3), (0, 0));
        assert_eq!(Allowance::default().left(5), (0, 0));
    }

    #[test]
    fn selection_feeds_the_due_in_batches_and_counts_the_rest() {
        let reader = |i: usize| {
            Subscriber::ad_hoc(format!("r{i}@example.org").parse().expect("address"), "", 0)
        };
        let mut known = Known::default();
        known.rows.insert(
            KeyDigest::of(&AddressKey::new("r0@example.org")),
            row(DeliveryStatus::Sent, 0),
        );
        known
            .suppressed
            .insert(KeyDigest::of(&AddressKey::new("r1@example.org")));
        let (tx, mut rx) = tokio::sync::mpsc::channel(1000);
        let allowance = Allowance {
            limit: Some(100),
            room: None,
        };
        let tally = select(
            (0..200).map(reader),
            &known,
            Retry::default(),
            allowance,
            &tx,
        );
        drop(tx);
        let mut fed = 0;
        while let Ok(batch) = rx.try_recv() {
            assert!(batch.len() <= BATCH);
            fed += batch.len();
        }
        assert_eq!(fed, 100);
        assert_eq!(
            (
                tally.active,
                tally.already_sent,
                tally.suppressed,
                tally.due
            ),
            (200, 1, 1, 198)
        );
        assert_eq!(allowance.left(tally.due), (98, 0));
    }
}

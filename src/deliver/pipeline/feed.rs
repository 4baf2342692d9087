//! From the due readers to the workers' queue.
//!
//! The selection streams the due readers in batches ([`Feed`]); each batch
//! is claimed in the ledger (`sending`, committed) before any of it is
//! queued, so after a crash `Ledger::recover` finds every row the run
//! touched. The queue holds two batches at most, so the list is never held
//! in memory whole; what a stop keeps from it is handed back, to be settled
//! as not attempted.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::Shared;
use crate::deliver::Recipient;
use crate::ledger::Write;
use crate::project::subscribers::Subscriber;

/// The due readers, in batches, as the selection finds them.
pub(crate) struct Feed {
    first: Option<Vec<Recipient>>,
    rest: mpsc::Receiver<Vec<Recipient>>,
}

impl Feed {
    /// `first` was already taken from `rest` (to know anyone is due).
    pub fn new(first: Vec<Recipient>, rest: mpsc::Receiver<Vec<Recipient>>) -> Feed {
        Feed {
            first: Some(first),
            rest,
        }
    }

    async fn next(&mut self) -> Option<Vec<Recipient>> {
        match self.first.take() {
            Some(first) if !first.is_empty() => Some(first),
            _ => self.rest.recv().await,
        }
    }
}

/// A message waiting for a worker.
pub(super) struct Job {
    pub(super) reader: Subscriber,
    /// Earlier attempts whose outcome is unknown (see `ledger`).
    pub(super) uncertain: u32,
    pub(super) message_id: String,
    /// The VERP token of this delivery's envelope sender, if VERP is on
    /// (recorded with the claim, so a bounce finds the delivery).
    pub(super) return_path: Option<String>,
}

/// The workers' end of the queue: they take turns at it.
pub(super) type Queue = Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>;

/// Claims the feed's batches and queues them until the feed ends or the
/// run stops; returns the claimed jobs a stop kept from the queue. The
/// queue closes when this returns, and the workers end once it is empty.
pub(super) async fn feed_workers(
    shared: &Shared,
    feed: &mut Feed,
    queue: mpsc::Sender<Job>,
) -> anyhow::Result<Vec<Job>> {
    let mut stopped = shared.stop.subscribe();
    loop {
        if shared.stop.stopped() {
            return Ok(Vec::new());
        }
        let chunk = tokio::select! {
            batch = feed.next() => match batch {
                Some(batch) => batch,
                None => return Ok(Vec::new()),
            },
            _ = stopped.wait_for(|s| *s) => return Ok(Vec::new()),
        };
        let jobs = jobs(shared, chunk);
        if let Err(e) = claim(shared, &jobs).await {
            shared.stop.halt(None);
            return Err(e);
        }
        if let Err(unqueued) = enqueue(jobs, &queue, &mut stopped).await {
            return Ok(unqueued);
        }
    }
}

/// One job per due reader of a batch, its Message-ID (and VERP token)
/// made once. Test copies have no delivery, so no token.
fn jobs(shared: &Shared, batch: Vec<Recipient>) -> Vec<Job> {
    let verp = shared.verp.as_ref().filter(|_| !shared.tests);
    batch
        .into_iter()
        .map(|r| Job {
            message_id: shared.email.message_id(&r.reader),
            return_path: verp.map(|v| v.token(&r.reader.key)),
            reader: r.reader,
            uncertain: r.uncertain,
        })
        .collect()
}

/// Claims a batch (`sending`, with each reader's local date and zone,
/// and its VERP tokens), committed before any of it is queued.
/// Test copies (`--to`) have no delivery rows to claim.
async fn claim(shared: &Shared, jobs: &[Job]) -> anyhow::Result<()> {
    if shared.tests {
        return Ok(());
    }
    let claim = Write::Claim(
        jobs.iter()
            .map(|j| (j.reader.key.clone(), j.message_id.clone()))
            .collect(),
    );
    let days = Write::Days(
        jobs.iter()
            .map(|j| {
                let (local, zone) = shared.days.of(&j.reader);
                (j.reader.key.clone(), local, zone)
            })
            .collect(),
    );
    let tokens: Vec<_> = jobs
        .iter()
        .filter_map(|j| Some((j.return_path.clone()?, j.reader.key.clone())))
        .collect();
    let mut writes = vec![claim, days];
    if !tokens.is_empty() {
        writes.push(Write::ReturnPaths(tokens));
    }
    shared.write(writes).await
}

/// Hands a claimed batch to the workers; when the run stops first, gives
/// back the jobs not handed over.
async fn enqueue(
    jobs: Vec<Job>,
    queue: &mpsc::Sender<Job>,
    stopped: &mut watch::Receiver<bool>,
) -> Result<(), Vec<Job>> {
    let mut jobs = jobs.into_iter();
    while let Some(job) = jobs.next() {
        // Reserve a slot first: a job moved into `send` would be lost
        // if the stop won the race.
        let permit = tokio::select! {
            permit = queue.reserve() => permit.ok(),
            _ = stopped.wait_for(|s| *s) => None,
        };
        match permit {
            Some(permit) => permit.send(job),
            None => {
                let mut unqueued = vec![job];
                unqueued.extend(jobs);
                return Err(unqueued);
            }
        }
    }
    Ok(())
}

//! The delivery pipeline of one run:
//!
//! ```text
//! recipients ──batches──> ledger: claim (`sending`) ──> queue ──> N workers ──> ledger: outcome
//!                          (committed first)                     build, rate-limit,   (+ the next
//!                                                                deliver, retry        message's
//!                                                                                      `transmitting`,
//!                                                                                      one commit)
//! ```
//!
//! Crash safety: a row is claimed before it is queued, and marked
//! `transmitting` (committed) before its SMTP transaction starts; the
//! worker waits for its outcome to be committed before it starts the next
//! message. So after a crash at most one message per worker may have been
//! delivered without being recorded, and the ledger knows which rows those
//! are (see `ledger`): they are resent at most once.
//!
//! Faults cost what they touch, never the run:
//! - a 4xx reply is retried on the same message with exponential backoff
//!   (`retries`, `retry_base`), then the message is `deferred`;
//! - a connection that breaks before the whole message was sent costs that
//!   message (`deferred`) and that connection; the worker reconnects;
//! - a connection that breaks, or a reply that never comes, after the whole
//!   message was sent makes it `unknown`: never resent in this run;
//! - a worker that cannot open a connection (refused, timed out, 421 at
//!   the greeting) backs off and tries again; after `retries` failures in a
//!   row it retires. The run stops early only when every worker has
//!   retired, or when several messages in a row went unanswered after DATA
//!   (a relay that swallows mail without answering: going on would only
//!   make duplicates), or when the outbox cannot be written.
//!
//! The ledger lives on one writer thread (SQLite connections are not shared
//! across threads); it commits whatever has queued up in one transaction
//! (group commit), so the per-message cost stays small. Who is in
//! `recipients` is `send`'s decision, not this module's.
//!
//! This file holds what a run takes and gives ([`Delivery`], [`Counts`])
//! and [`run`], which wires the parts together and settles the end:
//! - `feed`: the due readers' batches, claimed, then queued;
//! - `worker`: a worker's loop over the queue (the order of its commits);
//! - `attempt`: one message's attempts, retries and how faults are sorted;
//! - `writer`: the group-commit ledger thread;
//! - `stop`: why and how a run stops early, Ctrl-C included;
//! - `rate`, `progress`: the `rate` limit and what the operator sees.

mod attempt;
mod feed;
mod progress;
mod rate;
mod stop;
mod worker;
mod writer;

use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;

pub(crate) use feed::Feed;
pub(crate) use stop::Stop;

use crate::deliver::BATCH;
use crate::deliver::transport::Sink;
use crate::ledger::{DeliveryStatus, Ledger, MAX_UNCERTAIN, Outcome, Write};
use crate::mail::verp::Verp;
use crate::problem::Failure;
use crate::render::email::Email;
use feed::{Job, Queue};
use progress::Progress;
use rate::RateLimit;
use stop::Stopper;
use writer::Writer;

/// Everything one run's pipeline needs.
pub(crate) struct Delivery {
    pub email: Email,
    pub sink: Sink,
    /// `None` for dry runs: nothing is recorded.
    pub ledger: Option<Ledger>,
    pub date: NaiveDate,
    /// The newsletter's current day, for `daily_cap` accounting.
    pub today: NaiveDate,
    /// Test copies (`--to`): recorded apart, never as deliveries.
    pub tests: bool,
    pub concurrency: usize,
    pub retries: u32,
    pub retry_base: Duration,
    pub rate_per_second: f64,
    /// Show a progress bar (stderr is a terminal) instead of log lines.
    pub progress: bool,
    /// Readers expected, for the progress display (the stream's length is
    /// only known at its end).
    pub expected: u64,
    pub envelope_from: lettre::Address,
    /// The run's clock and whose zone each copy is for: recorded with
    /// each claimed row (see `ledger::days`).
    pub days: Days,
    /// `[bounces] return_path`: an envelope sender per delivery instead.
    pub verp: Option<Verp>,
}

/// Whose local date a copy goes out on: the newsletter's zone, or each
/// reader's own (`delivery = "local"`), at the run's clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Days {
    pub now: chrono::DateTime<chrono::Utc>,
    pub zone: chrono_tz::Tz,
    pub readers_zones: bool,
}

impl Days {
    /// The zone `reader`'s copy goes out in, and their local date then.
    pub fn of(
        &self,
        reader: &crate::project::subscribers::Subscriber,
    ) -> (NaiveDate, chrono_tz::Tz) {
        let zone = match reader.zone {
            Some(z) if self.readers_zones => z,
            _ => self.zone,
        };
        (self.now.with_timezone(&zone).date_naive(), zone)
    }
}

/// What one run did.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counts {
    pub sent: u64,
    /// Attempted and not delivered: a 4xx after every retry, or a dropped connection.
    pub deferred: u64,
    /// Sent, but no reply came: may have been delivered; resent once later.
    pub unknown: u64,
    /// Like `unknown`, but it was already the one resend: not sent again.
    pub unknown_final: u64,
    pub failed: u64,
    pub bounced: u64,
    /// Never attempted because the run stopped (they stay due).
    pub not_attempted: u64,
    /// What the last deferral said (the server's reply or the broken
    /// connection), so the summary can name the cause.
    pub last_deferral: Option<String>,
    /// Why the run stopped early, if it did.
    pub stop: Option<Stop>,
}

impl Counts {
    /// Counts one settled message; `uncertain` is its row's count before
    /// this attempt.
    fn add(&mut self, outcome: &Outcome, uncertain: u32, attempted: bool) {
        match outcome.status {
            _ if !attempted => self.not_attempted += 1,
            DeliveryStatus::Sent => self.sent += 1,
            DeliveryStatus::Unknown if uncertain + 1 >= MAX_UNCERTAIN => self.unknown_final += 1,
            DeliveryStatus::Unknown => self.unknown += 1,
            DeliveryStatus::Deferred | DeliveryStatus::Sending => {
                self.deferred += 1;
                self.last_deferral.clone_from(&outcome.reply);
            }
            DeliveryStatus::Failed => self.failed += 1,
            DeliveryStatus::Bounced => self.bounced += 1,
        }
    }
}

/// Runs the pipeline to the end and returns what happened.
pub(crate) fn run(
    runtime: &tokio::runtime::Runtime,
    d: Delivery,
    feed: Feed,
) -> Result<Counts, Failure> {
    let progress = Progress::new(d.expected, d.progress);
    let concurrency = d.concurrency.max(1);
    let (writer, thread) = match d.ledger {
        Some(l) => {
            let (writer, thread) = Writer::spawn(l, d.date, d.today, concurrency);
            (Some(writer), Some(thread))
        }
        None => (None, None),
    };
    let shared = Arc::new(Shared {
        email: Arc::new(d.email),
        sink: d.sink,
        writer,
        date_text: d.date.to_string(),
        tests: d.tests,
        retries: d.retries,
        retry_base: d.retry_base,
        rate: RateLimit::new(d.rate_per_second),
        progress: progress.clone(),
        envelope_from: d.envelope_from,
        days: d.days,
        verp: d.verp,
        counts: Mutex::new(Counts::default()),
        stop: Stopper::new(concurrency),
        unanswered: AtomicU32::new(0),
        unanswered_limit: concurrency as u32 + 1,
    });
    let counts = runtime.block_on(execute(shared.clone(), feed, concurrency));
    // The writer ends once every sender is gone; join it even after an
    // error so that whatever was recorded is committed.
    drop(shared);
    if let Some(t) = thread {
        t.join()
            .map_err(|_| anyhow::anyhow!("the ledger writer panicked"))??;
    }
    progress.finish();
    counts
}

/// Claims batches, queues them for the workers, and waits for every worker
/// to finish; then settles whatever a stop left claimed but unattempted.
async fn execute(shared: Arc<Shared>, feed: Feed, concurrency: usize) -> Result<Counts, Failure> {
    let on_signal = shared.clone();
    let signals = tokio::spawn(async move { stop::stop_on_signal(&on_signal.stop).await });
    let counts = dispatch(&shared, feed, concurrency).await;
    signals.abort();
    let _ = signals.await;
    counts
}

/// Feeds the workers and waits for them; then settles the claimed rows
/// no worker attempted and adds up the run.
async fn dispatch(
    shared: &Arc<Shared>,
    mut feed: Feed,
    concurrency: usize,
) -> Result<Counts, Failure> {
    // Room for two batches: the dispatcher hands over a claimed batch in one
    // go instead of waking for every free slot.
    let (queue_tx, queue_rx) = tokio::sync::mpsc::channel::<Job>(2 * BATCH.max(concurrency));
    let queue: Queue = Arc::new(tokio::sync::Mutex::new(queue_rx));
    let workers = worker::spawn_workers(shared, &queue, concurrency);
    // `queue_tx` is dropped once the feed is done: the workers then end.
    let fed = feed::feed_workers(shared, &mut feed, queue_tx).await;
    let worker_error = worker::join_workers(workers).await;
    // Claimed but never handed to a worker because the run stopped.
    let mut unqueued = match (fed, worker_error) {
        (Err(e), _) | (Ok(_), Some(e)) => return Err(Failure::Other(e)),
        (Ok(unqueued), None) => unqueued,
    };
    {
        let mut rx = queue.lock().await;
        while let Ok(job) = rx.try_recv() {
            unqueued.push(job);
        }
    }
    // Readers still in the feed were never claimed: the selection counts
    // them once it sees the feed closed.
    drop(feed);
    settle_unattempted(shared, &unqueued).await?;
    shared.totals(unqueued.len() as u64)
}

/// Claimed rows that no worker attempted: settled as deferred now, so the
/// ledger holds no `sending` row once the run is over.
async fn settle_unattempted(shared: &Shared, unqueued: &[Job]) -> Result<(), Failure> {
    if unqueued.is_empty() {
        return Ok(());
    }
    let reason = shared.stop.not_attempted_reason();
    let writes = unqueued
        .iter()
        .map(|job| {
            shared.record(
                Outcome {
                    address: job.reader.key.clone(),
                    status: DeliveryStatus::Deferred,
                    reply: Some(reason.clone()),
                },
                &job.message_id,
            )
        })
        .collect();
    shared.write(writes).await.map_err(Failure::Other)
}

/// What every worker shares.
struct Shared {
    email: Arc<Email>,
    sink: Sink,
    /// `None` for dry runs: nothing is recorded.
    writer: Option<Writer>,
    date_text: String,
    tests: bool,
    retries: u32,
    retry_base: Duration,
    rate: RateLimit,
    progress: Progress,
    envelope_from: lettre::Address,
    days: Days,
    verp: Option<Verp>,
    counts: Mutex<Counts>,
    stop: Stopper,
    /// Messages in a row that got no reply after DATA (any worker).
    unanswered: AtomicU32,
    unanswered_limit: u32,
}

impl Shared {
    /// Sends writes to the ledger thread and waits for their commit.
    async fn write(&self, writes: Vec<Write>) -> anyhow::Result<()> {
        match &self.writer {
            Some(writer) => writer.write(writes).await,
            None => Ok(()),
        }
    }

    /// The write recording an outcome: a delivery row, or a test copy.
    fn record(&self, outcome: Outcome, message_id: &str) -> Write {
        if self.tests {
            Write::Test(outcome, message_id.to_string())
        } else {
            Write::Record(outcome)
        }
    }

    /// The write marking a message `transmitting`; test copies have no row.
    fn begin(&self, job: &Job) -> Option<Write> {
        (!self.tests).then(|| Write::Begin(job.reader.key.clone()))
    }

    /// The run's counts, with the claimed rows no worker attempted.
    fn totals(&self, unqueued: u64) -> Result<Counts, Failure> {
        let mut counts = self
            .counts
            .lock()
            .map_err(|_| anyhow::anyhow!("counter poisoned"))?
            .clone();
        counts.not_attempted += unqueued;
        counts.stop = self.stop.reason()?;
        Ok(counts)
    }
}

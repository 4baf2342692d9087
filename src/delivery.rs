//! The delivery pipeline of one run:
//!
//! ```text
//! recipients ──batches──> ledger: mark `sending` ──> queue ──> N workers ──> ledger: outcome
//!                          (committed first)                  build, rate-limit,     (committed before
//!                                                             deliver, retry          the worker takes
//!                                                                                     its next message)
//! ```
//!
//! A worker waits for its outcome to be committed before it takes another
//! message, so after a crash at most one delivered-but-unrecorded message per
//! worker exists: a rerun resends only those, with the same Message-ID.
//! Rows still `sending` after a crash are simply retried.
//!
//! The ledger lives on one writer thread (SQLite connections are not shared
//! across threads); it commits whatever has queued up in one transaction
//! (group commit), so the per-message cost stays small. Who is in
//! `recipients` is `send`'s decision, not this module's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use lettre::address::Envelope;
use tokio::sync::oneshot;

use crate::email::Email;
use crate::ledger::{Ledger, Outcome, Status};
use crate::message;
use crate::problem::Failure;
use crate::subscribers::Subscriber;
use crate::transport::{SendError, Sink};

/// Rows marked `sending` per ledger transaction.
const BATCH: usize = 64;

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
    pub envelope_from: lettre::Address,
}

/// Runs the pipeline to the end and returns what happened.
pub(crate) fn run(
    runtime: &tokio::runtime::Runtime,
    d: Delivery,
    recipients: Vec<Subscriber>,
) -> Result<Counts, Failure> {
    let progress = Progress::new(recipients.len() as u64, d.progress);
    let (ledger_tx, writer) = match d.ledger {
        Some(l) => {
            let (tx, handle) = spawn_writer(l, d.date, d.today, d.tests);
            (Some(tx), Some(handle))
        }
        None => (None, None),
    };
    let shared = Arc::new(Shared {
        email: Arc::new(d.email),
        sink: d.sink,
        ledger: ledger_tx,
        date: d.date,
        retries: d.retries,
        retry_base: d.retry_base,
        rate: RateLimit::new(d.rate_per_second),
        progress: progress.clone(),
        envelope_from: d.envelope_from,
        counts: Arc::new(Mutex::new(Counts::default())),
        halted: AtomicBool::new(false),
    });
    let counts = runtime.block_on(execute(shared, recipients, d.concurrency));
    // The writer ends once every sender is gone; join it even after an
    // error so that whatever was recorded is committed.
    if let Some(w) = writer {
        w.join()
            .map_err(|_| anyhow::anyhow!("the ledger writer panicked"))??;
    }
    progress.finish();
    counts
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    pub bounced: u64,
    /// Never handed to a worker: the run stopped because the server went away.
    pub not_dispatched: u64,
    /// Whether the run stopped early because the server went away.
    pub halted: bool,
}

enum Command {
    MarkSending(Vec<(String, String)>, oneshot::Sender<anyhow::Result<()>>),
    Record(Outcome, String, oneshot::Sender<anyhow::Result<()>>),
}

/// The ledger's thread: applies commands in group commits until every
/// sender has gone.
fn spawn_writer(
    mut ledger: Ledger,
    date: NaiveDate,
    today: NaiveDate,
    tests: bool,
) -> (
    mpsc::Sender<Command>,
    std::thread::JoinHandle<anyhow::Result<()>>,
) {
    let (tx, rx) = mpsc::channel::<Command>();
    let handle = std::thread::spawn(move || -> anyhow::Result<()> {
        while let Ok(first) = rx.recv() {
            let mut commands = vec![first];
            while commands.len() < 1024 {
                match rx.try_recv() {
                    Ok(c) => commands.push(c),
                    Err(_) => break,
                }
            }
            let mut outcomes = Vec::new();
            let mut acks = Vec::new();
            for command in commands {
                match command {
                    Command::MarkSending(batch, ack) => {
                        let r = if tests {
                            Ok(())
                        } else {
                            ledger.mark_sending(date, &batch)
                        };
                        let failed = r.is_err();
                        let _ = ack.send(r);
                        if failed {
                            anyhow::bail!("the ledger refused a write; stopping");
                        }
                    }
                    Command::Record(outcome, message_id, ack) => {
                        if tests {
                            let r = ledger.record_test(
                                date,
                                &outcome.address,
                                outcome.status,
                                outcome.reply.as_deref(),
                                &message_id,
                            );
                            let _ = ack.send(r);
                        } else {
                            outcomes.push(outcome);
                            acks.push(ack);
                        }
                    }
                }
            }
            if !outcomes.is_empty() {
                let r = ledger.record(date, today, &outcomes);
                let err = r.as_ref().err().map(|e| format!("{e:#}"));
                for ack in acks {
                    let _ = ack.send(match &err {
                        None => Ok(()),
                        Some(e) => Err(anyhow::anyhow!("{e}")),
                    });
                }
                if let Some(e) = err {
                    anyhow::bail!("cannot record deliveries: {e}");
                }
            }
        }
        Ok(())
    });
    (tx, handle)
}

/// One token bucket across all workers: each message reserves the next
/// free slot, 1/rate apart.
#[derive(Debug, Clone)]
struct RateLimit {
    interval: Option<Duration>,
    next: Arc<Mutex<Instant>>,
}

impl RateLimit {
    fn new(per_second: f64) -> RateLimit {
        RateLimit {
            interval: (per_second > 0.0).then(|| Duration::from_secs_f64(1.0 / per_second)),
            next: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Reserves the next slot at or after `now`: `interval` after the
    /// previous one. Idle time is not banked, so there are no bursts.
    fn reserve(&self, now: Instant) -> Option<Instant> {
        let interval = self.interval?;
        let mut next = self.next.lock().ok()?;
        let slot = (*next).max(now);
        *next = slot + interval;
        Some(slot)
    }

    async fn wait(&self) {
        if let Some(slot) = self.reserve(Instant::now())
            && slot > Instant::now()
        {
            tokio::time::sleep_until(slot.into()).await;
        }
    }
}

#[derive(Clone)]
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    done: Arc<std::sync::atomic::AtomicU64>,
    started: Instant,
    last_log: Arc<Mutex<Instant>>,
}

impl Progress {
    fn new(total: u64, terminal: bool) -> Progress {
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} {per_sec} eta {eta} {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            total,
            done: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            started: Instant::now(),
            last_log: Arc::new(Mutex::new(Instant::now())),
        }
    }

    fn tick(&self) {
        let done = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        match &self.bar {
            Some(bar) => bar.inc(1),
            None => {
                let Ok(mut last) = self.last_log.lock() else {
                    return;
                };
                if last.elapsed() >= Duration::from_secs(5) {
                    *last = Instant::now();
                    let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
                    eprintln!("progress: {done}/{} ({rate:.0} msg/s)", self.total);
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Marks batches `sending`, queues them for `concurrency` workers, and
/// waits for every worker to finish.
async fn execute(
    shared: Arc<Shared>,
    recipients: Vec<Subscriber>,
    concurrency: usize,
) -> Result<Counts, Failure> {
    let (queue_tx, queue_rx) = queue(concurrency * 2);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let shared = shared.clone();
        let rx = queue_rx.clone();
        workers.spawn(async move { shared.worker(rx).await });
    }
    drop(queue_rx);
    let mut dispatch_error = None;
    let mut recipients = recipients.into_iter();
    'dispatch: loop {
        if shared.halted.load(Ordering::Relaxed) {
            break;
        }
        let chunk: Vec<Subscriber> = recipients.by_ref().take(BATCH).collect();
        if chunk.is_empty() {
            break;
        }
        let batch: Vec<(String, String)> = chunk
            .iter()
            .map(|r| {
                (
                    r.key.clone(),
                    message::message_id(shared.date, &r.key, shared.email.domain()),
                )
            })
            .collect();
        if let Err(e) = shared
            .ledger_call(|ack| Command::MarkSending(batch, ack))
            .await
        {
            dispatch_error = Some(e);
            break;
        }
        for r in chunk {
            if queue_tx.send(r).await.is_err() {
                break 'dispatch;
            }
        }
    }
    drop(queue_tx);
    let mut worker_error = None;
    while let Some(result) = workers.join_next().await {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => worker_error = Some(e),
            Err(e) => worker_error = Some(anyhow::anyhow!("a send worker failed: {e}")),
        }
    }
    if let Some(e) = dispatch_error.or(worker_error) {
        return Err(Failure::Other(e));
    }
    let mut counts = *shared
        .counts
        .lock()
        .map_err(|_| anyhow::anyhow!("counter poisoned"))?;
    counts.not_dispatched = recipients.len() as u64;
    counts.halted = shared.halted.load(Ordering::Relaxed);
    Ok(counts)
}

type Queue = Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Subscriber>>>;

/// A bounded multi-consumer queue: tokio's mpsc with the receiver shared.
fn queue(cap: usize) -> (tokio::sync::mpsc::Sender<Subscriber>, Queue) {
    let (tx, rx) = tokio::sync::mpsc::channel(cap.max(1));
    (tx, Arc::new(tokio::sync::Mutex::new(rx)))
}

/// What every worker shares.
struct Shared {
    email: Arc<Email>,
    sink: Sink,
    /// std's `Sender` is `Sync`: workers share it without a lock.
    ledger: Option<mpsc::Sender<Command>>,
    date: NaiveDate,
    retries: u32,
    retry_base: Duration,
    rate: RateLimit,
    progress: Progress,
    envelope_from: lettre::Address,
    counts: Arc<Mutex<Counts>>,
    /// Set when the server is unreachable after every retry.
    halted: AtomicBool,
}

impl Shared {
    async fn ledger_call(
        &self,
        make: impl FnOnce(oneshot::Sender<anyhow::Result<()>>) -> Command,
    ) -> anyhow::Result<()> {
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        let (ack_tx, ack_rx) = oneshot::channel();
        ledger
            .send(make(ack_tx))
            .map_err(|_| anyhow::anyhow!("the ledger writer stopped"))?;
        ack_rx
            .await
            .map_err(|_| anyhow::anyhow!("the ledger writer stopped"))?
    }

    async fn worker(&self, queue: Queue) -> anyhow::Result<()> {
        let mut conn = self.sink.connection();
        let date = self.date.to_string();
        loop {
            let next = queue.lock().await.recv().await;
            let Some(reader) = next else { break };
            let message_id = message::message_id(self.date, &reader.key, self.email.domain());
            let outcome = self.deliver(&mut conn, &reader, &date).await;
            {
                let mut c = self
                    .counts
                    .lock()
                    .map_err(|_| anyhow::anyhow!("counter poisoned"))?;
                match outcome.status {
                    Status::Sent => c.sent += 1,
                    Status::Deferred | Status::Sending => c.deferred += 1,
                    Status::Failed => c.failed += 1,
                    Status::Bounced => c.bounced += 1,
                }
            }
            self.ledger_call(|ack| Command::Record(outcome, message_id, ack))
                .await?;
            self.progress.tick();
        }
        conn.close().await;
        Ok(())
    }

    async fn deliver(
        &self,
        conn: &mut crate::transport::Connection,
        reader: &Subscriber,
        date: &str,
    ) -> Outcome {
        let outcome = |status, reply: String| Outcome {
            address: reader.key.clone(),
            status,
            reply: Some(reply),
        };
        let bytes = match message::build(&self.email, reader) {
            Ok(m) => m.formatted(),
            Err(p) => {
                return outcome(
                    Status::Failed,
                    format!("cannot build the message: {}", p.message),
                );
            }
        };
        let envelope =
            match Envelope::new(Some(self.envelope_from.clone()), vec![reader.email.clone()]) {
                Ok(e) => e,
                Err(e) => return outcome(Status::Failed, format!("bad envelope: {e}")),
            };
        let mut attempt = 0;
        loop {
            if self.halted.load(Ordering::Relaxed) {
                return outcome(
                    Status::Deferred,
                    "not attempted: the SMTP server stopped answering earlier in this run".into(),
                );
            }
            self.rate.wait().await;
            let result = conn.deliver(&envelope, date, &reader.key, &bytes).await;
            let err = match result {
                Ok(reply) => return outcome(Status::Sent, reply),
                Err(SendError::Permanent {
                    reply,
                    unknown_mailbox,
                }) => {
                    let status = if unknown_mailbox {
                        Status::Bounced
                    } else {
                        Status::Failed
                    };
                    return outcome(status, reply);
                }
                Err(e) => e,
            };
            if attempt >= self.retries {
                // A server that cannot be reached after every retry is down
                // for everyone: stop, rather than spend the backoff on each
                // remaining reader. The rest is left for the next run.
                if matches!(err, SendError::Connection(_)) {
                    self.halted.store(true, Ordering::Relaxed);
                }
                return outcome(Status::Deferred, err.reply());
            }
            tokio::time::sleep(self.retry_base * 2u32.saturating_pow(attempt)).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_spaces_slots_across_callers() {
        let limit = RateLimit::new(10.0);
        let t0 = Instant::now();
        let slots: Vec<Instant> = (0..5)
            .map(|_| limit.reserve(t0).expect("limited"))
            .collect();
        for pair in slots.windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_millis(100));
        }
        // After an idle spell the next slot is "now", not a burst of saved slots.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(limit.reserve(later), Some(later));
        assert_eq!(
            limit.reserve(later),
            Some(later + Duration::from_millis(100))
        );
        assert_eq!(RateLimit::new(0.0).reserve(t0), None, "0 = no limit");
    }
}

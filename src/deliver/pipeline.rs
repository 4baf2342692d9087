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

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use lettre::address::Envelope;
use tokio::sync::{oneshot, watch};

use crate::deliver::transport::{ConnectError, Connection, Reply, SendError, Sink};
use crate::deliver::{BATCH, Recipient};
use crate::ledger::{DeliveryStatus, Ledger, MAX_UNCERTAIN, Outcome, Write};
use crate::problem::Failure;
use crate::project::subscribers::Subscriber;
use crate::render::email::Email;

/// How long a worker runs before it lets the scheduler move the others.
const YIELD_AFTER: Duration = Duration::from_micros(500);

/// The longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

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
}

/// Why a run stopped before every recipient was attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// No worker could open a connection, `retries` times in a row each.
    Unreachable(String),
    /// Every worker was told to wait (4xx at the greeting, EHLO or AUTH).
    Throttled(String),
    /// Several messages in a row got no reply after they were sent.
    Unanswered { count: u32, last: String },
    /// The outbox folder could not be written.
    File(String),
    /// Ctrl-C or SIGTERM: the messages on the wire were finished first.
    Interrupted,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Unreachable(e) => write!(f, "the SMTP server could not be reached ({e})"),
            Stop::Throttled(e) => write!(
                f,
                "the SMTP server kept asking us to slow down, on every connection ({e})"
            ),
            Stop::Unanswered { count, last } => write!(
                f,
                "{count} messages in a row got no reply after they were sent ({last}); stopped rather than risk duplicates"
            ),
            Stop::File(e) => write!(f, "the outbox cannot be written ({e})"),
            Stop::Interrupted => write!(f, "interrupted (Ctrl-C or SIGTERM)"),
        }
    }
}

impl Stop {
    /// Whether a later run may simply succeed (exit 75) or someone must
    /// fix something first (exit 1).
    pub fn temporary(&self) -> bool {
        !matches!(self, Stop::File(_))
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

/// The due readers, in batches, as the selection finds them.
pub(crate) struct Feed {
    first: Option<Vec<Recipient>>,
    rest: tokio::sync::mpsc::Receiver<Vec<Recipient>>,
}

impl Feed {
    /// `first` was already taken from `rest` (to know anyone is due).
    pub fn new(first: Vec<Recipient>, rest: tokio::sync::mpsc::Receiver<Vec<Recipient>>) -> Feed {
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
struct Job {
    reader: Subscriber,
    uncertain: u32,
    message_id: String,
}

/// Runs the pipeline to the end and returns what happened.
pub(crate) fn run(
    runtime: &tokio::runtime::Runtime,
    d: Delivery,
    feed: Feed,
) -> Result<Counts, Failure> {
    let progress = Progress::new(d.expected, d.progress);
    let (writer_tx, writer) = match d.ledger {
        Some(l) => {
            let (tx, handle) = spawn_writer(l, d.date, d.today);
            (Some(tx), Some(handle))
        }
        None => (None, None),
    };
    let concurrency = d.concurrency.max(1);
    let (stop_tx, _) = watch::channel(false);
    let shared = Arc::new(Shared {
        email: Arc::new(d.email),
        sink: d.sink,
        writer: writer_tx,
        date_text: d.date.to_string(),
        tests: d.tests,
        retries: d.retries,
        retry_base: d.retry_base,
        rate: RateLimit::new(d.rate_per_second),
        progress: progress.clone(),
        envelope_from: d.envelope_from,
        counts: Mutex::new(Counts::default()),
        stop: Mutex::new(None),
        stop_tx,
        alive: AtomicUsize::new(concurrency),
        unanswered: AtomicU32::new(0),
        unanswered_limit: concurrency as u32 + 1,
    });
    let counts = runtime.block_on(execute(shared.clone(), feed, concurrency));
    // The writer ends once every sender is gone; join it even after an
    // error so that whatever was recorded is committed.
    drop(shared);
    if let Some(w) = writer {
        w.join()
            .map_err(|_| anyhow::anyhow!("the ledger writer panicked"))??;
    }
    progress.finish();
    counts
}

/// One group of ledger writes and who waits for their commit.
struct Command {
    writes: Vec<Write>,
    ack: oneshot::Sender<anyhow::Result<()>>,
}

/// The ledger's thread: applies whatever commands have queued up in one
/// transaction (group commit) until every sender has gone.
fn spawn_writer(
    mut ledger: Ledger,
    date: NaiveDate,
    today: NaiveDate,
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
            let writes: Vec<Write> = commands
                .iter_mut()
                .flat_map(|c| std::mem::take(&mut c.writes))
                .collect();
            let result = ledger.apply(date, today, &writes);
            let err = result.as_ref().err().map(|e| format!("{e:#}"));
            for c in commands {
                let _ = c.ack.send(match &err {
                    None => Ok(()),
                    Some(e) => Err(anyhow::anyhow!("{e}")),
                });
            }
            if let Some(e) = err {
                anyhow::bail!("{e}");
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
        let bar = terminal.then(|| crate::log::progress_bar(total));
        Progress {
            bar,
            total,
            done: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            started: Instant::now(),
            last_log: Arc::new(Mutex::new(Instant::now())),
        }
    }

    fn tick(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.bar {
            Some(bar) => bar.inc(1),
            None => {
                let Ok(mut last) = self.last_log.lock() else {
                    return;
                };
                if last.elapsed() >= Duration::from_secs(5) {
                    *last = Instant::now();
                    let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
                    tracing::info!("progress: {done}/{} ({rate:.0} msg/s)", self.total);
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

type Queue = Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Job>>>;

/// Claims batches, queues them for the workers, and waits for every worker
/// to finish; then settles whatever a stop left claimed but unattempted.
async fn execute(shared: Arc<Shared>, feed: Feed, concurrency: usize) -> Result<Counts, Failure> {
    let signals = tokio::spawn(stop_on_signal(shared.clone()));
    let counts = dispatch(&shared, feed, concurrency).await;
    signals.abort();
    let _ = signals.await;
    counts
}

/// The first Ctrl-C or SIGTERM stops the run gently: no new message is
/// started, the ones on the wire finish and are recorded. A second one
/// quits at once (the next run settles what was in flight).
async fn stop_on_signal(shared: Arc<Shared>) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut signalled = async || match &mut term {
        Some(term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        },
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    signalled().await;
    tracing::warn!("stopping: finishing the messages on the wire (a second Ctrl-C quits at once)");
    shared.halt(Some(Stop::Interrupted));
    signalled().await;
    std::process::exit(130);
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
    let workers = spawn_workers(shared, &queue, concurrency);
    // `queue_tx` is dropped once the feed is done: the workers then end.
    let fed = feed_workers(shared, &mut feed, queue_tx).await;
    let worker_error = join_workers(workers).await;
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

fn spawn_workers(
    shared: &Arc<Shared>,
    queue: &Queue,
    concurrency: usize,
) -> tokio::task::JoinSet<anyhow::Result<()>> {
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let shared = shared.clone();
        let queue = queue.clone();
        workers.spawn(async move { shared.worker(queue).await });
    }
    workers
}

/// Claims the feed's batches and queues them until the feed ends or the
/// run stops; returns the claimed jobs a stop kept from the queue.
async fn feed_workers(
    shared: &Shared,
    feed: &mut Feed,
    queue: tokio::sync::mpsc::Sender<Job>,
) -> anyhow::Result<Vec<Job>> {
    let mut stopped = shared.stop_tx.subscribe();
    loop {
        if shared.stopped() {
            return Ok(Vec::new());
        }
        let chunk = tokio::select! {
            batch = feed.next() => match batch {
                Some(batch) => batch,
                None => return Ok(Vec::new()),
            },
            _ = stopped.wait_for(|s| *s) => return Ok(Vec::new()),
        };
        let jobs = shared.jobs(chunk);
        if let Err(e) = shared.claim(&jobs).await {
            shared.halt(None);
            return Err(e);
        }
        if let Err(unqueued) = enqueue(jobs, &queue, &mut stopped).await {
            return Ok(unqueued);
        }
    }
}

/// Hands a claimed batch to the workers; when the run stops first, gives
/// back the jobs not handed over.
async fn enqueue(
    jobs: Vec<Job>,
    queue: &tokio::sync::mpsc::Sender<Job>,
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

/// Waits for every worker; the error of one that failed, if any did.
async fn join_workers(
    mut workers: tokio::task::JoinSet<anyhow::Result<()>>,
) -> Option<anyhow::Error> {
    let mut worker_error = None;
    while let Some(result) = workers.join_next().await {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => worker_error = Some(e),
            Err(e) => worker_error = Some(anyhow::anyhow!("a send worker failed: {e}")),
        }
    }
    worker_error
}

/// Claimed rows that no worker attempted: settled as deferred now, so the
/// ledger holds no `sending` row once the run is over.
async fn settle_unattempted(shared: &Shared, unqueued: &[Job]) -> Result<(), Failure> {
    if unqueued.is_empty() {
        return Ok(());
    }
    let reason = shared.not_attempted_reason();
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
    /// std's `Sender` is `Sync`: workers share it without a lock.
    writer: Option<mpsc::Sender<Command>>,
    date_text: String,
    tests: bool,
    retries: u32,
    retry_base: Duration,
    rate: RateLimit,
    progress: Progress,
    envelope_from: lettre::Address,
    counts: Mutex<Counts>,
    /// Why the run stopped (set once).
    stop: Mutex<Option<Stop>>,
    /// Flips to true when the run stops: the dispatcher and workers watch it.
    stop_tx: watch::Sender<bool>,
    /// Workers that have not retired.
    alive: AtomicUsize,
    /// Messages in a row that got no reply after DATA (any worker).
    unanswered: AtomicU32,
    unanswered_limit: u32,
}

/// How a worker goes on after a message.
enum Flow {
    Continue,
    /// This worker cannot connect any more; the run goes on with the others.
    Retire(Stop),
    /// The whole run stops.
    Halt(Stop),
}

impl Shared {
    /// Sends writes to the ledger thread and waits for their commit.
    async fn write(&self, writes: Vec<Write>) -> anyhow::Result<()> {
        let Some(writer) = &self.writer else {
            return Ok(());
        };
        if writes.is_empty() {
            return Ok(());
        }
        let (ack, done) = oneshot::channel();
        writer
            .send(Command { writes, ack })
            .map_err(|_| anyhow::anyhow!("the ledger writer stopped"))?;
        done.await
            .map_err(|_| anyhow::anyhow!("the ledger writer stopped"))?
    }

    /// One job per due reader of a batch, its Message-ID made once.
    fn jobs(&self, batch: Vec<Recipient>) -> Vec<Job> {
        batch
            .into_iter()
            .map(|r| Job {
                message_id: self.email.message_id(&r.reader),
                reader: r.reader,
                uncertain: r.uncertain,
            })
            .collect()
    }

    /// Claims a batch (`sending`), committed before any of it is queued:
    /// after a crash, `Ledger::recover` finds every row this run touched.
    async fn claim(&self, jobs: &[Job]) -> anyhow::Result<()> {
        if self.tests {
            return Ok(());
        }
        let claim = Write::Claim(
            jobs.iter()
                .map(|j| (j.reader.key.clone(), j.message_id.clone()))
                .collect(),
        );
        self.write(vec![claim]).await
    }

    /// The run's counts, with the claimed rows no worker attempted.
    fn totals(&self, unqueued: u64) -> Result<Counts, Failure> {
        let mut counts = self
            .counts
            .lock()
            .map_err(|_| anyhow::anyhow!("counter poisoned"))?
            .clone();
        counts.not_attempted += unqueued;
        counts.stop = self
            .stop
            .lock()
            .map_err(|_| anyhow::anyhow!("stop poisoned"))?
            .clone();
        Ok(counts)
    }

    /// The write recording an outcome: a delivery row, or a test copy.
    fn record(&self, outcome: Outcome, message_id: &str) -> Write {
        if self.tests {
            Write::Test(outcome, message_id.to_string())
        } else {
            Write::Record(outcome)
        }
    }

    fn begin(&self, job: &Job) -> Option<Write> {
        (!self.tests).then(|| Write::Begin(job.reader.key.clone()))
    }

    fn stopped(&self) -> bool {
        *self.stop_tx.borrow()
    }

    /// Stops the run (the first reason wins).
    fn halt(&self, reason: Option<Stop>) {
        if let Ok(mut stop) = self.stop.lock()
            && stop.is_none()
        {
            *stop = reason;
        }
        self.stop_tx.send_replace(true);
    }

    /// A worker gives up; the last one to do so stops the run.
    fn retire(&self, reason: Stop) {
        if self.alive.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.halt(Some(reason));
        }
    }

    fn not_attempted_reason(&self) -> String {
        match self.stop.lock().ok().and_then(|s| s.clone()) {
            Some(stop) => format!("not attempted: {stop}"),
            None => "not attempted: the run stopped".into(),
        }
    }

    /// The next message, unless the run is stopping.
    async fn take(&self, queue: &Queue) -> Option<Job> {
        if self.stopped() {
            return None;
        }
        let mut rx = queue.lock().await;
        let mut stopped = self.stop_tx.subscribe();
        tokio::select! {
            job = rx.recv() => job,
            _ = stopped.wait_for(|s| *s) => None,
        }
    }

    /// The next message if one is waiting right now.
    async fn try_take(&self, queue: &Queue) -> Option<Job> {
        if self.stopped() {
            return None;
        }
        queue.lock().await.try_recv().ok()
    }

    fn count(&self, outcome: &Outcome, job: &Job, attempted: bool) {
        if let Ok(mut c) = self.counts.lock() {
            match outcome.status {
                _ if !attempted => c.not_attempted += 1,
                DeliveryStatus::Sent => c.sent += 1,
                DeliveryStatus::Unknown if job.uncertain + 1 >= MAX_UNCERTAIN => {
                    c.unknown_final += 1
                }
                DeliveryStatus::Unknown => c.unknown += 1,
                DeliveryStatus::Deferred | DeliveryStatus::Sending => {
                    c.deferred += 1;
                    c.last_deferral.clone_from(&outcome.reply);
                }
                DeliveryStatus::Failed => c.failed += 1,
                DeliveryStatus::Bounced => c.bounced += 1,
            }
        }
    }

    async fn worker(&self, queue: Queue) -> anyhow::Result<()> {
        let mut conn = self.sink.connection();
        let mut connect_failures = 0;
        let mut next = self.take(&queue).await;
        // Whether `next` is already marked `transmitting`.
        let mut begun = false;
        let mut busy_since = Instant::now();
        while let Some(job) = next.take() {
            if !begun {
                self.write(self.begin(&job).into_iter().collect()).await?;
            }
            let Settled {
                outcome,
                flow,
                attempted,
            } = self.deliver(&mut conn, &mut connect_failures, &job).await;
            tracing::trace!(
                "{} {}: {}",
                crate::log::mask(&job.reader.key),
                outcome.status.as_str(),
                crate::log::mask_in(outcome.reply.as_deref().unwrap_or(""), &job.reader.key)
            );
            self.count(&outcome, &job, attempted);
            let go_on = self.follow(flow);
            // Recording this outcome and marking the next message as being
            // sent is one commit, when the next message is already waiting.
            next = if go_on {
                self.try_take(&queue).await
            } else {
                None
            };
            begun = next.is_some();
            let mut writes = vec![self.record(outcome, &job.message_id)];
            writes.extend(next.as_ref().and_then(|n| self.begin(n)));
            self.write(writes).await?;
            self.progress.tick();
            // Rendering and signing run without a pause, and every await
            // here may complete at once (a dry run, a fast ledger): yield
            // now and then, or the other workers, woken into this thread's
            // LIFO slot, never run elsewhere and one core does all the work
            // (measured: RSA-signed dry run 1,150 -> 2,300 msg/s).
            if busy_since.elapsed() >= YIELD_AFTER {
                tokio::task::yield_now().await;
                busy_since = Instant::now();
            }
            if go_on && next.is_none() {
                next = self.take(&queue).await;
                begun = false;
            }
        }
        conn.close().await;
        Ok(())
    }

    /// Acts on how a message says the worker goes on; whether it does.
    fn follow(&self, flow: Flow) -> bool {
        match flow {
            Flow::Continue => true,
            Flow::Retire(reason) => {
                self.retire(reason);
                false
            }
            Flow::Halt(reason) => {
                self.halt(Some(reason));
                false
            }
        }
    }

    async fn backoff(&self, attempt: u32) {
        let delay = self
            .retry_base
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(MAX_BACKOFF);
        tokio::time::sleep(delay).await;
    }

    /// Delivers one message, retrying as the module doc says: a 4xx after
    /// a backoff, a stale connection at once, a failed connect after a
    /// backoff until the worker retires.
    async fn deliver(
        &self,
        conn: &mut Connection,
        connect_failures: &mut u32,
        job: &Job,
    ) -> Settled {
        let reader = &job.reader;
        let (bytes, envelope) = match self.compose(reader) {
            Ok(composed) => composed,
            Err(reply) => return Settled::done(reader, DeliveryStatus::Failed, reply),
        };
        let mut spent = Spent::default();
        loop {
            if self.stopped() {
                let reply = self.not_attempted_reason();
                return Settled::unattempted(reader, reply, Flow::Continue);
            }
            match self.connect(conn, connect_failures).await {
                Link::Ready => {}
                Link::Retry => continue,
                Link::Lost(e) => {
                    let reply = format!("not attempted: {e}");
                    return Settled::unattempted(reader, reply, Flow::Retire(Stop::from(e)));
                }
            }
            self.rate.wait().await;
            let result = conn
                .deliver(&envelope, &self.date_text, &reader.key, &bytes)
                .await;
            match self.judge(result, reader, &mut spent) {
                Next::Done(settled) => return settled,
                Next::Backoff(attempt) => self.backoff(attempt).await,
                Next::Again => {}
            }
        }
    }

    /// The reader's copy and its envelope. A failure here is this reader's
    /// alone (`failed`), never the run's.
    fn compose(&self, reader: &Subscriber) -> Result<(Vec<u8>, Envelope), String> {
        let bytes = self
            .email
            .message(reader)
            .map_err(|e| format!("cannot build the message: {e}"))?;
        let envelope = Envelope::new(Some(self.envelope_from.clone()), vec![reader.email.clone()])
            .map_err(|e| format!("bad envelope: {e}"))?;
        Ok((bytes, envelope))
    }

    /// Makes sure the worker has a connection; after a failure it backs
    /// off, and after `retries + 1` failures in a row it gives up.
    async fn connect(&self, conn: &mut Connection, failures: &mut u32) -> Link {
        let Err(e) = conn.ensure().await else {
            *failures = 0;
            return Link::Ready;
        };
        *failures += 1;
        tracing::debug!(
            "cannot connect (failure {} of at most {}): {e}",
            *failures,
            self.retries + 1
        );
        if *failures > self.retries {
            return Link::Lost(e);
        }
        self.backoff(*failures - 1).await;
        Link::Retry
    }

    /// Sorts one attempt's result into what to record, or another try.
    fn judge(
        &self,
        result: Result<String, SendError>,
        reader: &Subscriber,
        spent: &mut Spent,
    ) -> Next {
        // Only an answer from the relay ends a run of unanswered messages;
        // a dropped connection says nothing either way.
        if !matches!(
            result,
            Err(SendError::Unknown(_) | SendError::Dropped { .. })
        ) {
            self.unanswered.store(0, Ordering::Relaxed);
        }
        let done = |status, reply| Next::Done(Settled::done(reader, status, reply));
        match result {
            Ok(reply) => done(DeliveryStatus::Sent, reply),
            Err(SendError::Permanent(reply)) => {
                let status = if reply.unknown_mailbox() {
                    DeliveryStatus::Bounced
                } else {
                    DeliveryStatus::Failed
                };
                done(status, reply.to_string())
            }
            Err(SendError::Transient(reply)) => self.transient(&reply, reader, spent),
            // An idle connection the server had closed: nothing was
            // sent on it, so one immediate retry on a fresh one.
            Err(SendError::Dropped {
                stale: true,
                reason,
            }) if !spent.stale => {
                tracing::debug!("an idle connection was closed ({reason}); retrying on a new one");
                spent.stale = true;
                Next::Again
            }
            Err(SendError::Dropped { reason, .. }) => done(DeliveryStatus::Deferred, reason),
            Err(SendError::Unknown(reason)) => Next::Done(self.unanswered(reader, reason)),
            // `ensure` just succeeded; treat a failure here like a drop.
            Err(SendError::Connect(e)) => done(DeliveryStatus::Deferred, e.to_string()),
            Err(e @ SendError::File { .. }) => {
                let e = e.to_string();
                let flow = Flow::Halt(Stop::File(e.clone()));
                Next::Done(Settled::unattempted(reader, e, flow))
            }
        }
    }

    /// A 4xx: the same message again after a backoff, until `retries` are
    /// spent; then it is `deferred`.
    fn transient(&self, reply: &Reply, reader: &Subscriber, spent: &mut Spent) -> Next {
        let reply = reply.to_string();
        if spent.transient >= self.retries {
            return Next::Done(Settled::done(reader, DeliveryStatus::Deferred, reply));
        }
        tracing::debug!(
            "{} deferred ({}); retry {} of {}",
            crate::log::mask(&reader.key),
            crate::log::mask_in(&reply, &reader.key),
            spent.transient + 1,
            self.retries
        );
        let attempt = spent.transient;
        spent.transient += 1;
        Next::Backoff(attempt)
    }

    /// No reply after the whole message was sent: `unknown`. Enough of
    /// those in a row, across workers, stop the run: a relay that swallows
    /// mail without answering would only make duplicates.
    fn unanswered(&self, reader: &Subscriber, reason: String) -> Settled {
        let count = self.unanswered.fetch_add(1, Ordering::Relaxed) + 1;
        let flow = if count >= self.unanswered_limit {
            Flow::Halt(Stop::Unanswered {
                count,
                last: reason.clone(),
            })
        } else {
            Flow::Continue
        };
        Settled {
            outcome: outcome(reader, DeliveryStatus::Unknown, reason),
            flow,
            attempted: true,
        }
    }
}

/// What became of one message, and how its worker goes on.
struct Settled {
    outcome: Outcome,
    flow: Flow,
    /// False when the message never reached the sink (the run stopped, no
    /// connection could be opened, the outbox failed): it stays due.
    attempted: bool,
}

impl Settled {
    /// An attempt that ended with `status`; the worker goes on.
    fn done(reader: &Subscriber, status: DeliveryStatus, reply: String) -> Settled {
        Settled {
            outcome: outcome(reader, status, reply),
            flow: Flow::Continue,
            attempted: true,
        }
    }

    /// A message that never reached the sink: `deferred`, due again.
    fn unattempted(reader: &Subscriber, reply: String, flow: Flow) -> Settled {
        Settled {
            outcome: outcome(reader, DeliveryStatus::Deferred, reply),
            flow,
            attempted: false,
        }
    }
}

fn outcome(reader: &Subscriber, status: DeliveryStatus, reply: String) -> Outcome {
    Outcome {
        address: reader.key.clone(),
        status,
        reply: Some(reply),
    }
}

/// What the worker does after one attempt at a message.
enum Next {
    /// The message is settled.
    Done(Settled),
    /// A 4xx: wait `retry_base × 2^n`, then try the same message again.
    Backoff(u32),
    /// A stale connection: try again at once on a new one.
    Again,
}

/// Whether the worker has a connection to send on.
enum Link {
    Ready,
    /// Opening one failed; the worker has backed off and tries again.
    Retry,
    /// Opening one failed `retries + 1` times in a row: the worker retires.
    Lost(ConnectError),
}

/// The retries one message has used up.
#[derive(Default)]
struct Spent {
    /// 4xx replies so far.
    transient: u32,
    /// Whether the one immediate retry after a stale connection is used.
    stale: bool,
}

impl From<ConnectError> for Stop {
    fn from(e: ConnectError) -> Stop {
        match e {
            ConnectError::Throttled(r) => Stop::Throttled(r),
            ConnectError::Unreachable(r) => Stop::Unreachable(r),
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

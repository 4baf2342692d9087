//! `send`: deliver the day's issue to every active subscriber who has not
//! got it yet, exactly once across runs, crashes and overlapping cron jobs.
//!
//! The pipeline of one run:
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
//! (group commit), so the per-message cost stays small.

use std::collections::HashSet;
use std::fs::{File, TryLockError};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use lettre::address::Envelope;
use tokio::sync::oneshot;

use crate::edition::{self, EditionOptions, SecretUse};
use crate::email::Email;
use crate::ledger::{Freeze, Ledger, Outcome, Status};
use crate::message;
use crate::problem::{Failure, Problem};
use crate::project::Project;
use crate::subscribers::{Status as ListStatus, Subscriber};
use crate::transport::{SendError, Sink, Smtp};

/// Rows marked `sending` per ledger transaction.
const BATCH: usize = 64;

#[derive(Debug, Clone)]
pub struct SendOptions {
    pub date: NaiveDate,
    /// True when `--date` was not given: `max_lateness` applies.
    pub implicit_date: bool,
    pub now: DateTime<Utc>,
    pub dry_run: bool,
    pub outbox: Option<PathBuf>,
    /// Test copies to these addresses instead of the list.
    pub to: Vec<String>,
    pub limit: Option<u64>,
    pub force: bool,
    pub retry_failed: bool,
    pub progress: bool,
}

/// What a run did; printed as text or JSON.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    pub date: String,
    pub issue: u32,
    pub transport: String,
    pub dry_run: bool,
    pub test: bool,
    /// Active subscribers on the list.
    pub active: u64,
    pub already_sent: u64,
    pub suppressed: u64,
    pub invalid_rows: u64,
    /// Failed (5xx) in an earlier run and not retried.
    pub failed_earlier: u64,
    pub attempted: u64,
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    pub bounced: u64,
    /// Not attempted in this run because of `daily_cap` or `--limit`.
    pub left: u64,
    pub elapsed_seconds: f64,
    pub messages_per_second: f64,
    /// Why nothing was sent, when nothing was.
    pub skipped: Option<String>,
}

impl Summary {
    /// 0 when everything due went out (or nothing was due), 75 when some
    /// recipients are left for a later run.
    pub fn exit_code(&self) -> u8 {
        if self.deferred > 0 || self.left > 0 {
            crate::problem::EXIT_TEMPFAIL
        } else {
            0
        }
    }

    pub fn text(&self) -> String {
        if let Some(reason) = &self.skipped {
            return format!(
                "issue {} of {}: nothing sent: {reason}\n",
                self.issue, self.date
            );
        }
        let mut out = format!(
            "issue {} of {} via {}{}{}\n",
            self.issue,
            self.date,
            self.transport,
            if self.dry_run {
                " (dry run: nothing delivered, no ledger written)"
            } else {
                ""
            },
            if self.test { " (test copies)" } else { "" },
        );
        out.push_str(&format!(
            "  sent {}, deferred {}, failed {}, bounced {}\n",
            self.sent, self.deferred, self.failed, self.bounced
        ));
        out.push_str(&format!(
            "  skipped: already sent {}, suppressed {}, invalid rows {}, failed earlier {}\n",
            self.already_sent, self.suppressed, self.invalid_rows, self.failed_earlier
        ));
        if self.left > 0 {
            out.push_str(&format!(
                "  left for the next run (daily_cap or --limit): {}\n",
                self.left
            ));
        }
        out.push_str(&format!(
            "  {:.1} s, {:.0} msg/s\n",
            self.elapsed_seconds, self.messages_per_second
        ));
        if self.deferred > 0 || self.left > 0 {
            out.push_str(
                "  some recipients are left: run `dailyissue send` again later (exit 75)\n",
            );
        }
        out
    }
}

/// The run's lock: a file beside the ledger, locked (by the OS, so a
/// crash releases it) for the whole run. The pid inside is only for the
/// message another run prints; a stale one is harmless.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

pub fn lock(ledger_path: &Path) -> Result<RunLock, Failure> {
    let path = ledger_path.with_extension("lock");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let pid = holder.trim();
            return Err(Failure::Temporary(format!(
                "another dailyissue run (pid {}) holds {}; this run exits without sending",
                if pid.is_empty() { "unknown" } else { pid },
                path.display()
            )));
        }
        Err(TryLockError::Error(e)) => {
            return Err(Failure::Other(anyhow::anyhow!(
                "cannot lock {}: {e}",
                path.display()
            )));
        }
    }
    file.set_len(0)?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
    file.sync_all()?;
    Ok(RunLock { _file: file })
}

pub fn send(project: &Project, opts: &SendOptions) -> Result<(Summary, Vec<String>), Failure> {
    let settings = &project.settings;
    let started = Instant::now();
    let sink = sink(project, opts)?;
    let secret_use = match sink {
        Sink::Smtp(_) => SecretUse::Mail,
        _ => SecretUse::Local,
    };
    let lock = if opts.dry_run {
        None
    } else {
        Some(lock(&project.path(&settings.ledger))?)
    };
    let mut edition = edition::load(
        project,
        EditionOptions {
            date: opts.date,
            sent_at: opts.now,
            secrets: secret_use,
            write_record: !opts.dry_run,
        },
    )?;
    let mut warnings = edition.warnings.clone();
    let mut summary = Summary {
        date: opts.date.to_string(),
        issue: edition.record.record.number,
        transport: sink.describe(),
        dry_run: opts.dry_run,
        test: !opts.to.is_empty(),
        invalid_rows: edition.list.problems.len() as u64,
        ..Summary::default()
    };
    for p in &edition.list.problems {
        warnings.push(format!("skipped: {p}"));
    }

    // Lateness protects readers; `.eml` files and dry runs reach nobody.
    if opts.implicit_date && opts.to.is_empty() && matches!(sink, Sink::Smtp(_)) {
        let local_now = opts.now.with_timezone(&settings.timezone).naive_local();
        if too_late(
            local_now,
            opts.date,
            settings.send_time,
            settings.max_lateness,
        ) {
            summary.skipped = Some(format!(
                "it is more than {} past the {} send time (max_lateness); pass --date {} to send it anyway",
                humanize(settings.max_lateness),
                settings.send_time.format("%H:%M"),
                opts.date
            ));
            return Ok((summary, warnings));
        }
    }

    let ledger_path = project.path(&settings.ledger);
    let mut ledger = if opts.dry_run {
        None
    } else {
        Some(Ledger::open(&ledger_path)?)
    };

    // Who gets this run's copies.
    let recipients: Vec<Subscriber> = if opts.to.is_empty() {
        let statuses = match &ledger {
            Some(l) => l.statuses(opts.date)?,
            None => Ledger::open_existing_read_only(&ledger_path)
                .and_then(|l| l.map(|l| l.statuses(opts.date)).transpose())
                .unwrap_or_default()
                .unwrap_or_default(),
        };
        let suppressed: HashSet<String> = match &ledger {
            Some(l) => l.suppressed()?,
            None => Ledger::open_existing_read_only(&ledger_path)
                .and_then(|l| l.map(|l| l.suppressed()).transpose())
                .unwrap_or_default()
                .unwrap_or_default(),
        };
        let mut due = Vec::new();
        // Moved out, not cloned: a list of a million readers is held once.
        let subscribers = std::mem::take(&mut edition.list.subscribers);
        for r in subscribers
            .into_iter()
            .filter(|s| s.status == ListStatus::Active)
        {
            summary.active += 1;
            if suppressed.contains(&r.key) {
                summary.suppressed += 1;
                continue;
            }
            match statuses.get(&r.key) {
                Some(Status::Sent) => summary.already_sent += 1,
                Some(Status::Bounced) => summary.suppressed += 1,
                Some(Status::Failed) if !opts.retry_failed => summary.failed_earlier += 1,
                _ => due.push(r),
            }
        }
        due
    } else {
        opts.to
            .iter()
            .map(|addr| test_reader(&edition, addr))
            .collect::<Result<_, _>>()?
    };

    // How many this run may send.
    let mut allowance = recipients.len() as u64;
    if let Some(limit) = opts.limit {
        allowance = allowance.min(limit);
    }
    let today = opts.now.with_timezone(&settings.timezone).date_naive();
    if settings.daily_cap > 0 && opts.to.is_empty() && !opts.dry_run {
        let used = ledger
            .as_ref()
            .map(|l| l.sent_on(today))
            .transpose()?
            .unwrap_or(0);
        let room = settings.daily_cap.saturating_sub(used);
        if room < allowance {
            warnings.push(format!(
                "daily_cap {}: {used} already sent today, sending at most {room} now",
                settings.daily_cap
            ));
        }
        allowance = allowance.min(room);
    }
    summary.left = recipients.len() as u64 - allowance;
    let mut recipients = recipients;
    recipients.truncate(allowance as usize);
    if recipients.is_empty() {
        summary.elapsed_seconds = started.elapsed().as_secs_f64();
        return Ok((summary, warnings));
    }

    // Templates fail here, before any row changes, not halfway through.
    edition
        .email
        .prepare_for(&recipients)
        .map_err(Failure::one)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;

    // An unreachable server changes no row: connect once before anything else.
    if let Sink::Smtp(smtp) = &sink {
        let smtp = smtp.clone();
        runtime.block_on(async move {
            match smtp.connect().await {
                Ok(mut conn) => {
                    let _ = conn.quit().await;
                    Ok(())
                }
                Err(e) => Err(Failure::Temporary(format!(
                    "cannot reach the SMTP server {}: {e}; nothing was sent, try again later",
                    smtp.endpoint()
                ))),
            }
        })?;
    }

    if let (Some(l), true) = (ledger.as_mut(), opts.to.is_empty()) {
        match l.freeze(opts.date, &edition.record.hash(), opts.force)? {
            Freeze::New | Freeze::Same => {}
            Freeze::Changed { frozen_at } => {
                return Err(Failure::one(Problem::new(
                    &edition.record.path,
                    None,
                    format!(
                        "this record changed after delivery began ({frozen_at}); some readers already got the old version. Restore it, or pass --force to send the edited version to the rest"
                    ),
                )));
            }
        }
    }

    let total = recipients.len() as u64;
    let progress = Progress::new(total, opts.progress && std::io::stderr().is_terminal());
    let (ledger_tx, writer) = match ledger.take() {
        Some(l) => {
            let (tx, handle) = spawn_writer(l, opts.date, today, !opts.to.is_empty());
            (Some(tx), Some(handle))
        }
        None => (None, None),
    };
    let concurrency = match &sink {
        Sink::Smtp(_) => settings.smtp.as_ref().map_or(1, |s| s.concurrency),
        _ => 2,
    };
    let shared = Arc::new(Shared {
        email: Arc::new(edition.email),
        sink,
        ledger: ledger_tx.map(Mutex::new),
        date: opts.date,
        retries: settings.smtp.as_ref().map_or(0, |s| s.retries),
        retry_base: settings
            .smtp
            .as_ref()
            .map_or(Duration::from_secs(1), |s| s.retry_base),
        rate: RateLimit::new(settings.smtp.as_ref().map_or(0.0, |s| s.rate_per_second)),
        progress: progress.clone(),
        envelope_from: settings.from.email.clone(),
        counts: Arc::new(Mutex::new(Counts::default())),
    });
    let counts = runtime.block_on(execute(shared, recipients, concurrency))?;
    if let Some(w) = writer {
        w.join()
            .map_err(|_| anyhow::anyhow!("the ledger writer panicked"))??;
    }
    drop(lock);
    progress.finish();

    summary.attempted = total;
    summary.sent = counts.sent;
    summary.deferred = counts.deferred;
    summary.failed = counts.failed;
    summary.bounced = counts.bounced;
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    summary.messages_per_second = counts.sent as f64 / summary.elapsed_seconds.max(1e-9);
    Ok((summary, warnings))
}

/// Whether a run at `now` (local time) is past the issue's send time plus
/// `max_lateness` (0 = never too late).
pub fn too_late(
    now: chrono::NaiveDateTime,
    date: NaiveDate,
    send_time: chrono::NaiveTime,
    max_lateness: chrono::Duration,
) -> bool {
    max_lateness > chrono::Duration::zero() && now > date.and_time(send_time) + max_lateness
}

fn humanize(d: chrono::Duration) -> String {
    let m = d.num_minutes();
    if m % 60 == 0 {
        format!("{}h", m / 60)
    } else {
        format!("{m}m")
    }
}

fn sink(project: &Project, opts: &SendOptions) -> Result<Sink, Failure> {
    let settings = &project.settings;
    if opts.dry_run {
        return Ok(Sink::DryRun(
            opts.outbox.as_ref().map(|o| project.root.join(o)),
        ));
    }
    if let Some(outbox) = &opts.outbox {
        return Ok(Sink::Files(project.root.join(outbox)));
    }
    match &settings.smtp {
        Some(smtp) => Ok(Sink::Smtp(Arc::new(
            Smtp::new(smtp, &project.root).map_err(|e| Failure::Usage(e.0))?,
        ))),
        None => Ok(Sink::Files(project.path(&settings.outbox))),
    }
}

fn test_reader(edition: &edition::Edition, addr: &str) -> Result<Subscriber, Failure> {
    if let Some(r) = edition.list.find(addr) {
        return Ok(r.clone());
    }
    let email = addr
        .trim()
        .parse()
        .map_err(|_| Failure::Usage(format!("--to {addr}: not a valid email address")))?;
    Ok(Subscriber::ad_hoc(email, "", edition.list.columns.len()))
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    sent: u64,
    deferred: u64,
    failed: u64,
    bounced: u64,
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
    let counts = *shared
        .counts
        .lock()
        .map_err(|_| anyhow::anyhow!("counter poisoned"))?;
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
    ledger: Option<Mutex<mpsc::Sender<Command>>>,
    date: NaiveDate,
    retries: u32,
    retry_base: Duration,
    rate: RateLimit,
    progress: Progress,
    envelope_from: lettre::Address,
    counts: Arc<Mutex<Counts>>,
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
            .lock()
            .map_err(|_| anyhow::anyhow!("ledger channel poisoned"))?
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
    fn lateness_counts_from_the_send_time() {
        let date: NaiveDate = "2027-03-01".parse().expect("date");
        let six = chrono::NaiveTime::from_hms_opt(6, 0, 0).expect("time");
        let at = |s: &str| -> chrono::NaiveDateTime { s.parse().expect("datetime") };
        let late = chrono::Duration::hours(6);
        assert!(
            !too_late(at("2027-03-01T05:00:00"), date, six, late),
            "early is fine"
        );
        assert!(!too_late(at("2027-03-01T11:59:00"), date, six, late));
        assert!(too_late(at("2027-03-01T12:01:00"), date, six, late));
        assert!(
            too_late(at("2027-03-02T00:30:00"), date, six, late),
            "yesterday's letter at midnight"
        );
        assert!(
            !too_late(
                at("2027-03-02T00:30:00"),
                date,
                six,
                chrono::Duration::zero()
            ),
            "0 = no limit"
        );
    }

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

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = dir.path().join("state.db");
        let _held = lock(&ledger).expect("first lock");
        let err = lock(&ledger).expect_err("second lock");
        assert_eq!(err.exit_code(), 75);
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
    }
}

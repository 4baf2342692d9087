//! `send`: deliver the day's issue to every active subscriber who has not
//! got it yet, exactly once across runs, crashes and overlapping cron jobs.
//!
//! This module decides *who* gets a copy in this run (active, not
//! suppressed, not yet sent, within `--limit` and `daily_cap`, not too late),
//! freezes the issue record, and hands the recipients to
//! `deliver::pipeline`, which owns the pipeline and its crash-safety
//! argument. The run holds `deliver::lock`'s lock throughout.
//!
//! - `sink`: where the messages go (SMTP, `.eml` files, a dry run), and
//!   the first SMTP connection;
//! - `schedule`: `send_time` and `max_lateness` for a run without `--date`;
//! - `local`: a run of local mornings (`delivery = "local"`): who is due
//!   which issue now, one part per issue date, and who is next;
//! - `summary`: what the run did, as text or JSON, and its exit code.

mod local;
mod schedule;
mod sink;
mod summary;

pub use summary::Summary;

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};

use crate::cmd::{Day, DayOptions, SecretUse, day_from, open_day};
use crate::deliver::lock::{RunLock, lock};
use crate::deliver::pipeline::{self, Counts, Delivery, Feed};
use crate::deliver::readers::merged;
use crate::deliver::transport::Sink;
use crate::deliver::{Allowance, Known, Recipient, Retry, Tally, select};
use crate::ledger::{Freeze, Ledger};
use crate::mail::verp::Verp;
use crate::problem::{Failure, Problem, Usage};
use crate::project::Loaded;
use crate::project::Project;
use crate::project::settings::Settings;
use crate::project::subscribers::{List, Subscriber};
use crate::render::edition::Edition;
use crate::render::preflight;

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
    /// Also resend to readers whose two attempts went unanswered.
    pub retry_unknown: bool,
    pub progress: bool,
}

pub fn send(project: &Project, opts: &SendOptions) -> Result<Summary, Failure> {
    if local::applies(&project.settings, opts) {
        return local::send(project, opts);
    }
    let sink = sink::choose(project, opts)?;
    let lock = hold_lock(project, opts)?;
    let summary = send_issue(project, opts, &sink, Part::default())?;
    drop(lock);
    Ok(summary)
}

/// What a run of local mornings (`local`) narrows one issue's send to;
/// the default is the whole list, as `send` always did.
#[derive(Default)]
pub(super) struct Part<'a> {
    /// The project, already loaded (and the issue's record planned).
    loaded: Option<Loaded>,
    /// Only the readers for whom this holds (those whose morning it is).
    filter: Option<&'a (dyn Fn(&Subscriber) -> bool + Sync)>,
    /// Rows of interrupted runs were settled already.
    settled: bool,
    /// Messages earlier parts of the run attempted (they count for `--limit`).
    used: u64,
}

/// Sends the issue of `opts.date` to the readers due (all, or those of
/// `part`), with the run lock held by the caller.
fn send_issue(
    project: &Project,
    opts: &SendOptions,
    sink: &Sink,
    part: Part<'_>,
) -> Result<Summary, Failure> {
    let settings = &project.settings;
    let started = Instant::now();
    let (list, edition) = open_issue(project, opts, sink, part.loaded)?;
    rates_guard(project, opts)?;
    let mut summary = Summary::begin(opts, edition.record.record.number, sink, &list);
    if part.filter.is_none() {
        for p in &list.problems {
            tracing::warn!("skipped: {p}");
        }
    }
    if let Some(reason) = schedule::hold_back(settings, opts, sink) {
        summary.skipped = Some(reason);
        return Ok(summary);
    }
    let mut ledger = if opts.dry_run {
        None
    } else {
        Some(crate::ledger::open(project)?)
    };
    if let (Some(l), true, false) = (ledger.as_mut(), opts.to.is_empty(), part.settled) {
        settle(l, opts.date, &mut summary)?;
    }
    let known = known(project, ledger.as_ref(), opts)?;
    let today = opts.now.with_timezone(&settings.timezone).date_naive();
    let mut allowance = allowance(settings, ledger.as_ref(), opts, today)?;
    allowance.limit = allowance.limit.map(|l| l.saturating_sub(part.used));
    // Templates fail here, before any row changes, not halfway through.
    edition
        .email
        .prepare_for(list.samples())
        .map_err(Failure::one)?;
    let signups = signups(project, opts)?;
    let confirmed = match &signups {
        Some(l) => l.signup_counts()?.0,
        None => 0,
    };
    if confirmed > 0 {
        edition
            .email
            .prepare_for(&signup_samples(list.columns.len()))
            .map_err(Failure::one)?;
    }
    let selection = Selection {
        list: &list,
        signups,
        test_copies: if opts.to.is_empty() {
            None
        } else {
            Some(test_readers(&list, &opts.to)?)
        },
        filter: part.filter,
        known,
        retry: Retry {
            failed: opts.retry_failed,
            unknown: opts.retry_unknown,
        },
        allowance,
    };
    announce(&summary, &selection, opts);
    let ctx = Context {
        project,
        opts,
        sink: sink.clone(),
        today,
        expected: (list.active as u64 + confirmed).min(allowance.max()),
    };
    let (tally, counts) = select_and_deliver(&ctx, selection, edition, ledger)?;
    if counts.as_ref().is_some_and(|c| c.sent > 0) && !opts.dry_run && opts.to.is_empty() {
        // The archive's publication time: the run that sent the first copy.
        crate::ledger::open(project)?.publish(opts.date, opts.now)?;
    }
    summary.account(&tally, allowance, counts, opts);
    summary.timed(started.elapsed());
    Ok(summary)
}

/// The run lock, held until the run ends; a dry run writes nothing and
/// takes none.
fn hold_lock(project: &Project, opts: &SendOptions) -> Result<Option<RunLock>, Failure> {
    if opts.dry_run {
        return Ok(None);
    }
    let settings = &project.settings;
    let held = lock(&project.path(&settings.ledger))?;
    tracing::debug!("holding the run lock next to {}", settings.ledger.display());
    Ok(Some(held))
}

/// Opens the day's issue (a new record is written, except in a dry run)
/// and runs the preflight: what makes the issue itself undeliverable stops
/// the run, as it fails `check`. Real mail needs the real unsubscribe
/// secret.
fn open_issue(
    project: &Project,
    opts: &SendOptions,
    sink: &Sink,
    loaded: Option<Loaded>,
) -> Result<(List, Edition), Failure> {
    let secrets = match sink {
        Sink::Smtp(_) => SecretUse::Mail,
        _ => SecretUse::Local,
    };
    let day_opts = DayOptions {
        date: opts.date,
        now: opts.now,
        secrets,
        write_record: !opts.dry_run,
    };
    let day = match loaded {
        Some(loaded) => day_from(project, loaded, day_opts)?,
        None => open_day(project, day_opts)?,
    };
    day.log_notes();
    let Day {
        loaded: Loaded { list, .. },
        edition,
        ..
    } = day;
    preflight::preflight(&edition.email, &list, &edition.record.path).into_result()?;
    Ok((list, edition))
}

/// The last issue's rates, judged as `check` judges them: warnings, and
/// over 0.3% complaints a refusal unless `--force` (test copies are not
/// the list, and are never refused).
fn rates_guard(project: &Project, opts: &SendOptions) -> Result<(), Failure> {
    let guard = crate::cmd::bounces::guard(project, opts.date)?;
    for w in &guard.warnings {
        tracing::warn!("{w}");
    }
    match &guard.refusal {
        Some(why) if !opts.force && opts.to.is_empty() => Err(Failure::one(
            crate::cmd::bounces::refusal_problem(project, why),
        )),
        Some(why) if opts.to.is_empty() => {
            tracing::warn!("--force: sending despite it: {why}");
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Who the selection goes through, and what decides which of them are due.
struct Selection<'a> {
    list: &'a List,
    /// The ledger the confirmed signups are read from, on its own
    /// connection (the run's own is the pipeline's); `None` without one.
    signups: Option<Ledger>,
    /// `--to`: these readers instead of the list's.
    test_copies: Option<Vec<Subscriber>>,
    /// Only the readers for whom this holds (a run of local mornings).
    filter: Option<&'a (dyn Fn(&Subscriber) -> bool + Sync)>,
    known: Known,
    retry: Retry,
    allowance: Allowance,
}

/// Runs the selection beside the pipeline, feeding it: the list is read
/// row by row, never held whole.
fn select_and_deliver(
    ctx: &Context<'_>,
    selection: Selection<'_>,
    edition: Edition,
    ledger: Option<Ledger>,
) -> Result<(Tally, Option<Counts>), Failure> {
    let Selection {
        list,
        signups,
        test_copies,
        filter,
        known,
        retry,
        allowance,
    } = selection;
    let (feed, due) = tokio::sync::mpsc::channel(4);
    std::thread::scope(|scope| {
        let known = &known;
        let selection = scope.spawn(move || match test_copies {
            Some(readers) => Ok((
                select(readers.into_iter(), known, retry, allowance, &feed),
                0,
            )),
            None => {
                let mut readers = merged(list, signups.as_ref())?;
                let tally = match filter {
                    Some(due) => select(
                        (&mut readers).filter(|r| due(r)),
                        known,
                        retry,
                        allowance,
                        &feed,
                    ),
                    None => select(&mut readers, known, retry, allowance, &feed),
                };
                match readers.error {
                    Some(e) => Err(e),
                    None => Ok((tally, readers.from_signups)),
                }
            }
        });
        let counts = deliver(ctx, edition, ledger, due);
        let (tally, from_signups) = selection
            .join()
            .map_err(|_| anyhow::anyhow!("the selection of readers failed"))??;
        tracing::debug!("{from_signups} of the readers came from signups");
        Ok::<_, Failure>((tally, counts?))
    })
}

/// Says, before the first message, what the run sends and where, and what
/// the ledger and the settings already hold back: not after the last of
/// 20,000 messages, in the summary. The counts of the run itself are the
/// summary's.
fn announce(summary: &Summary, selection: &Selection<'_>, opts: &SendOptions) {
    if opts.progress {
        tracing::info!("{}", summary.headline());
    }
    if selection.test_copies.is_some() {
        return;
    }
    let known = &selection.known;
    let unanswered = known
        .rows
        .iter()
        .filter(|(digest, row)| {
            !known.suppressed.contains(digest)
                && crate::deliver::verdict(Some(row), false, selection.retry)
                    == crate::deliver::Verdict::UnansweredTwice
        })
        .count() as u64;
    if unanswered > 0 {
        tracing::warn!(
            "{} got no answer twice in earlier runs and {} not resent (see `dailyissue status`; `--retry-unknown` sends one more copy)",
            crate::cmd::count(unanswered, "reader", "readers"),
            if unanswered == 1 { "is" } else { "are" },
        );
    }
    if let Some(room) = selection.allowance.room {
        tracing::info!(
            "daily_cap: what was sent today leaves room for {} more now; the rest waits for the next run",
            room
        );
    }
}

/// What `deliver` needs besides the edition and the ledger.
struct Context<'a> {
    project: &'a Project,
    opts: &'a SendOptions,
    sink: Sink,
    today: NaiveDate,
    expected: u64,
}

/// Waits for the first due reader; when there is one, checks the server,
/// freezes the record and runs the pipeline. `None` when nobody was due.
fn deliver(
    ctx: &Context<'_>,
    edition: Edition,
    mut ledger: Option<Ledger>,
    mut due: tokio::sync::mpsc::Receiver<Vec<Recipient>>,
) -> Result<Option<Counts>, Failure> {
    let Some(first) = due.blocking_recv() else {
        return Ok(None);
    };
    let settings = &ctx.project.settings;
    // Driving sockets needs one thread, and one thread spares the wake-ups
    // between threads (measured: 8% less CPU a message, see BENCHMARKS.md);
    // signing, and runs without a network, are bound by the CPU and get a
    // thread per core.
    let one_thread = matches!(ctx.sink, Sink::Smtp(_)) && !edition.email.signed();
    let runtime = if one_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
    .enable_all()
    .build()
    .context("cannot start the async runtime")?;
    // A server that cannot be reached changes no row: connect first.
    if let Sink::Smtp(smtp) = &ctx.sink {
        sink::preconnect(&runtime, smtp, settings.smtp.as_ref())?;
    }
    if let (Some(l), true) = (ledger.as_mut(), ctx.opts.to.is_empty()) {
        freeze(l, &edition, ctx.opts)?;
    }
    let smtp = settings.smtp.as_ref();
    let delivery = Delivery {
        concurrency: match &ctx.sink {
            Sink::Smtp(_) => smtp.map_or(1, |s| s.concurrency),
            // Files and dry runs are bound by rendering and signing: a
            // worker per core keeps every core busy.
            _ => std::thread::available_parallelism().map_or(2, |n| n.get()),
        },
        email: edition.email,
        sink: ctx.sink.clone(),
        ledger,
        date: ctx.opts.date,
        today: ctx.today,
        tests: !ctx.opts.to.is_empty(),
        retries: smtp.map_or(0, |s| s.retries),
        retry_base: smtp.map_or(Duration::from_secs(1), |s| s.retry_base),
        rate_per_second: smtp.map_or(0.0, |s| s.rate_per_second),
        progress: ctx.opts.progress
            && std::io::stderr().is_terminal()
            && tracing::enabled!(tracing::Level::INFO),
        expected: ctx.expected,
        envelope_from: settings.from.email.clone(),
        days: pipeline::Days {
            now: ctx.opts.now,
            zone: settings.timezone,
            readers_zones: settings.delivery == crate::project::settings::Delivery::Local,
        },
        verp: verp(ctx)?,
    };
    let sending = Instant::now();
    let counts = pipeline::run(&runtime, delivery, Feed::new(first, due))?;
    let total = counts.sent
        + counts.deferred
        + counts.unknown
        + counts.unknown_final
        + counts.failed
        + counts.bounced;
    tracing::debug!(
        "the pipeline took {:.1?} for {total} message{}",
        sending.elapsed(),
        crate::cmd::plural(total)
    );
    Ok(Some(counts))
}

/// The ledger the confirmed signups are read from (not for test copies;
/// none before the first ledger exists).
fn signups(project: &Project, opts: &SendOptions) -> Result<Option<Ledger>, Failure> {
    if !opts.to.is_empty() {
        return Ok(None);
    }
    Ok(crate::ledger::read(project)?)
}

/// Readers as signups are: no extra column, with a name or without, so
/// their shapes are rendered (and template errors found) before anything
/// is sent.
fn signup_samples(columns: usize) -> [Subscriber; 2] {
    let sample = |name: &str| {
        let mut reader = crate::render::email::sample_reader(columns);
        reader.name = name.to_string();
        reader
    };
    [sample("Sample Reader"), sample("")]
}

/// The VERP envelope senders of this issue, with `[bounces] return_path`.
fn verp(ctx: &Context<'_>) -> Result<Option<Verp>, Failure> {
    let settings = &ctx.project.settings;
    let Some(path) = settings.bounces.return_path.clone() else {
        return Ok(None);
    };
    let used = match ctx.sink {
        Sink::Smtp(_) => SecretUse::Mail,
        _ => SecretUse::Local,
    };
    let secrets = crate::cmd::secrets(ctx.project, used)?;
    Ok(Some(Verp::new(
        &secrets,
        &settings.list_id,
        path,
        ctx.opts.date,
    )))
}

/// A run that died mid-send left rows behind: settle them first.
fn settle(ledger: &mut Ledger, date: NaiveDate, summary: &mut Summary) -> Result<(), Failure> {
    let r = ledger.recover(date)?;
    summary.recovered = r.unknown + r.unattempted;
    if r.unknown > 0 {
        tracing::warn!(
            "an earlier run stopped while sending; {} message{} may have been delivered and will be resent once (same Message-ID)",
            r.unknown,
            if r.unknown == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// What the ledger knows about this issue's readers (a dry run reads an
/// existing ledger without writing).
fn known(project: &Project, ledger: Option<&Ledger>, opts: &SendOptions) -> Result<Known, Failure> {
    if !opts.to.is_empty() {
        return Ok(Known::default());
    }
    let read;
    let ledger = match ledger {
        Some(l) => l,
        None => match crate::ledger::read(project)? {
            Some(l) => {
                read = l;
                &read
            }
            None => return Ok(Known::default()),
        },
    };
    Ok(Known {
        rows: ledger.statuses(opts.date)?,
        suppressed: ledger.suppressed()?,
    })
}

/// How many due readers this run may send: `--limit`, and what
/// `daily_cap` leaves of today (not for test copies or dry runs).
fn allowance(
    settings: &Settings,
    ledger: Option<&Ledger>,
    opts: &SendOptions,
    today: NaiveDate,
) -> Result<Allowance, Failure> {
    let mut allowance = Allowance {
        limit: opts.limit,
        room: None,
    };
    if settings.daily_cap > 0
        && opts.to.is_empty()
        && let Some(l) = ledger
    {
        let used = l.sent_on(today)?;
        allowance.room = Some(settings.daily_cap.saturating_sub(used));
    }
    Ok(allowance)
}

/// Freezes the issue record on first delivery; an edited one needs --force.
fn freeze(ledger: &mut Ledger, edition: &Edition, opts: &SendOptions) -> Result<(), Failure> {
    match ledger.freeze(opts.date, &edition.record.hash(), opts.force)? {
        Freeze::New | Freeze::Same => Ok(()),
        Freeze::Changed { frozen_at } => Err(Failure::one(Problem::new(
            &edition.record.path,
            None,
            format!(
                "this record changed after delivery began ({frozen_at}); some readers already got the old version. Restore it, or pass --force to send the edited version to the rest"
            ),
        ))),
    }
}

/// The readers of `send --to`: each address once (any case), listed readers
/// with their data, others unnamed.
fn test_readers(list: &List, to: &[String]) -> Result<Vec<Subscriber>, Failure> {
    let mut seen = HashSet::new();
    let mut readers = Vec::new();
    for addr in to {
        let (reader, _) = list.reader(addr).ok_or_else(|| {
            Failure::Usage(Usage::NotAnAddress {
                option: "--to",
                value: addr.clone(),
            })
        })?;
        if seen.insert(reader.key.clone()) {
            readers.push(reader);
        }
    }
    Ok(readers)
}

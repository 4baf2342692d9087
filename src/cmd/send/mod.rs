//! `send`: deliver the day's issue to every active subscriber who has not
//! got it yet, exactly once across runs, crashes and overlapping cron jobs.
//!
//! This module decides *who* gets a copy in this run (active, not
//! suppressed, not yet sent, within `--limit` and `daily_cap`, not too late),
//! freezes the issue record, and hands the recipients to `delivery`, which
//! owns the pipeline and its crash-safety argument. The run holds `lock`'s
//! lock throughout.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};

use crate::cmd::{Day, DayOptions, SecretUse, open_day};
use crate::deliver::lock::lock;
use crate::deliver::pipeline::{self, Counts, Delivery, Feed};
use crate::deliver::transport::{Sink, Smtp};
use crate::deliver::{Allowance, Known, Recipient, Retry, Tally, select};
use crate::ledger::{Freeze, Ledger};
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
    /// Rows of the list skipped for a problem of their own (each listed
    /// with `path:line`).
    pub invalid_rows: u64,
    /// Failed (5xx) in an earlier run and not retried.
    pub failed_earlier: u64,
    /// Two attempts ended without an answer: never resent automatically
    /// (the reader most likely has it; see the README's guarantees).
    pub unknown_twice: u64,
    /// Rows an interrupted earlier run left behind, settled at the start.
    pub recovered: u64,
    pub attempted: u64,
    pub sent: u64,
    pub deferred: u64,
    /// Why the last deferred message was deferred (a reply or a broken connection).
    pub deferred_because: Option<String>,
    /// Sent, but no reply came: resent once on a later run.
    pub unknown: u64,
    pub failed: u64,
    pub bounced: u64,
    /// Held back by `--limit`.
    pub left_by_limit: u64,
    /// Held back by `daily_cap`.
    pub left_by_cap: u64,
    /// Not attempted because the run stopped early (see `stopped`).
    pub not_attempted: u64,
    /// Why the run stopped before everyone due was attempted.
    pub stopped: Option<String>,
    pub elapsed_seconds: f64,
    pub messages_per_second: f64,
    /// Why nothing was sent, when nothing was.
    pub skipped: Option<String>,
    #[serde(skip)]
    stopped_for_good: bool,
}

impl crate::cmd::Report for Summary {
    /// 0 when everything due went out (or nothing was due), 75 when some
    /// recipients are left for a later run, 1 when the run stopped on
    /// something a rerun will not fix by itself (the outbox cannot be
    /// written).
    fn exit_code(&self) -> u8 {
        if self.stopped_for_good {
            1
        } else if self.left() > 0 {
            crate::problem::EXIT_TEMPFAIL
        } else {
            0
        }
    }

    fn text(&self) -> String {
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
            "  sent {}, deferred {}, unknown {}, failed {}, bounced {}\n",
            self.sent, self.deferred, self.unknown, self.failed, self.bounced
        ));
        out.push_str(&format!(
            "  skipped: already sent {}, suppressed {}, invalid rows {}, failed earlier {}{}\n",
            self.already_sent,
            self.suppressed,
            self.invalid_rows,
            self.failed_earlier,
            if self.unknown_twice > 0 {
                format!(", unanswered twice {}", self.unknown_twice)
            } else {
                String::new()
            }
        ));
        if let (true, Some(why)) = (self.deferred > 0, &self.deferred_because) {
            out.push_str(&format!("  deferred because: {why}\n"));
        }
        if self.recovered > 0 {
            out.push_str(&format!(
                "  settled {} row{} of an interrupted earlier run\n",
                self.recovered,
                if self.recovered == 1 { "" } else { "s" }
            ));
        }
        if let Some(why) = &self.stopped {
            out.push_str(&format!(
                "  stopped early: {why}; not attempted {}\n",
                self.not_attempted
            ));
        }
        if self.left_by_cap > 0 {
            out.push_str(&format!(
                "  left for the next run by daily_cap: {}\n",
                self.left_by_cap
            ));
        }
        if self.left_by_limit > 0 {
            out.push_str(&format!(
                "  left for the next run by --limit: {}\n",
                self.left_by_limit
            ));
        }
        out.push_str(&format!(
            "  {:.1} s, {:.0} msg/s\n",
            self.elapsed_seconds, self.messages_per_second
        ));
        match crate::cmd::Report::exit_code(self) {
            0 => {}
            1 => {
                out.push_str("  fix the problem above, then run `dailyissue send` again (exit 1)\n")
            }
            _ => out.push_str(
                "  some recipients are left: run `dailyissue send` again later (exit 75)\n",
            ),
        }
        out
    }
}

impl Summary {
    /// Recipients a later run will attempt.
    pub fn left(&self) -> u64 {
        self.deferred + self.unknown + self.left_by_limit + self.left_by_cap + self.not_attempted
    }
}

pub fn send(project: &Project, opts: &SendOptions) -> Result<Summary, Failure> {
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
        let held = lock(&project.path(&settings.ledger))?;
        tracing::debug!("holding the run lock next to {}", settings.ledger.display());
        Some(held)
    };
    let day = open_day(
        project,
        DayOptions {
            date: opts.date,
            now: opts.now,
            secrets: secret_use,
            write_record: !opts.dry_run,
        },
    )?;
    day.log_notes();
    let Day {
        loaded: Loaded { list, .. },
        edition,
        ..
    } = day;
    // What makes the issue itself undeliverable stops the run, as it fails `check`.
    preflight::preflight(&edition.email, &list, &edition.record.path).into_result()?;
    let mut summary = Summary {
        date: opts.date.to_string(),
        issue: edition.record.record.number,
        transport: sink.describe(),
        dry_run: opts.dry_run,
        test: !opts.to.is_empty(),
        invalid_rows: list.problems.len() as u64,
        ..Summary::default()
    };
    for p in &list.problems {
        tracing::warn!("skipped: {p}");
    }
    // The schedule protects readers; `.eml` files and dry runs reach nobody.
    if opts.implicit_date
        && opts.to.is_empty()
        && matches!(sink, Sink::Smtp(_))
        && let Some(reason) = off_schedule(settings, opts.date, opts.now)
    {
        summary.skipped = Some(reason);
        return Ok(summary);
    }
    let mut ledger = if opts.dry_run {
        None
    } else {
        Some(crate::ledger::open(project)?)
    };
    if let (Some(l), true) = (ledger.as_mut(), opts.to.is_empty()) {
        settle(l, opts.date, &mut summary)?;
    }
    let known = known(project, ledger.as_ref(), opts)?;
    let today = opts.now.with_timezone(&settings.timezone).date_naive();
    let allowance = allowance(settings, ledger.as_ref(), opts, today)?;
    // Templates fail here, before any row changes, not halfway through.
    edition
        .email
        .prepare_for(list.samples())
        .map_err(Failure::one)?;
    let test_copies = if opts.to.is_empty() {
        None
    } else {
        Some(test_readers(&list, &opts.to)?)
    };
    let retry = Retry {
        failed: opts.retry_failed,
        unknown: opts.retry_unknown,
    };
    let ctx = Context {
        project,
        opts,
        sink,
        today,
        expected: (list.active as u64).min(allowance.max()),
    };
    // The selection runs beside the pipeline and feeds it: the list is read
    // row by row, never held whole.
    let (feed, due) = tokio::sync::mpsc::channel(4);
    let (tally, counts) = std::thread::scope(|scope| {
        let known = &known;
        let list = &list;
        let selection = scope.spawn(move || match test_copies {
            Some(readers) => select(readers.into_iter(), known, retry, allowance, &feed),
            None => select(list.active(), known, retry, allowance, &feed),
        });
        let counts = deliver(&ctx, edition, ledger, due);
        let tally = selection
            .join()
            .map_err(|_| anyhow::anyhow!("the selection of readers failed"))?;
        Ok::<_, Failure>((tally, counts?))
    })?;
    drop(lock);
    account(&mut summary, &tally, allowance, counts, opts);
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    summary.messages_per_second = summary.sent as f64 / summary.elapsed_seconds.max(1e-9);
    Ok(summary)
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // A server that cannot be reached changes no row: connect first.
    if let Sink::Smtp(smtp) = &ctx.sink {
        preconnect(&runtime, smtp, settings.smtp.as_ref())?;
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
    settings: &crate::project::settings::Settings,
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

/// Puts the selection's tally and the pipeline's counts into the summary.
fn account(
    summary: &mut Summary,
    tally: &Tally,
    allowance: Allowance,
    counts: Option<Counts>,
    opts: &SendOptions,
) {
    if opts.to.is_empty() {
        summary.active = tally.active;
    }
    summary.already_sent = tally.already_sent;
    summary.suppressed = tally.suppressed;
    summary.failed_earlier = tally.failed_earlier;
    summary.unknown_twice = tally.unanswered_twice;
    (summary.left_by_limit, summary.left_by_cap) = allowance.left(tally.due);
    if summary.left_by_cap > 0 {
        tracing::info!(
            "daily_cap: what was sent today leaves room for {} more now; {} wait for the next run",
            allowance.room.unwrap_or(0),
            summary.left_by_cap
        );
    }
    let fed = tally.due.min(allowance.max()) - tally.not_fed;
    let counts = counts.unwrap_or_default();
    if let Some(stop) = &counts.stop {
        summary.stopped = Some(stop.to_string());
        summary.stopped_for_good = !stop.temporary();
    }
    summary.not_attempted = counts.not_attempted + tally.not_fed;
    summary.attempted = fed.saturating_sub(counts.not_attempted);
    summary.sent = counts.sent;
    summary.deferred = counts.deferred;
    summary.deferred_because = counts.last_deferral;
    summary.unknown = counts.unknown;
    summary.unknown_twice += counts.unknown_final;
    summary.failed = counts.failed;
    summary.bounced = counts.bounced;
    if summary.unknown_twice > 0 {
        tracing::warn!(
            "{} reader{} got no answer twice and {} not resent (see `dailyissue status`; `--retry-unknown` sends one more copy)",
            summary.unknown_twice,
            if summary.unknown_twice == 1 { "" } else { "s" },
            if summary.unknown_twice == 1 {
                "is"
            } else {
                "are"
            },
        );
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

/// Opens one connection before any row changes: a server that cannot be
/// reached (or keeps throttling) gets the usual backoff, then the run ends
/// with exit 75 and nothing changed.
fn preconnect(
    runtime: &tokio::runtime::Runtime,
    smtp: &Arc<Smtp>,
    settings: Option<&crate::project::settings::SmtpSettings>,
) -> Result<(), Failure> {
    let (retries, base) =
        settings.map_or((0, Duration::from_secs(1)), |s| (s.retries, s.retry_base));
    runtime.block_on(async move {
        let mut attempt = 0;
        loop {
            match smtp.connect().await {
                Ok(mut conn) => {
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn.quit()).await;
                    return Ok(());
                }
                Err(e) if attempt >= retries => {
                    return Err(Failure::Temporary(crate::problem::Temporary::Smtp {
                        endpoint: smtp.endpoint(),
                        throttled: matches!(
                            e,
                            crate::deliver::transport::ConnectError::Throttled(_)
                        ),
                        reason: e.to_string(),
                    }));
                }
                Err(e) => {
                    let wait = base.saturating_mul(2u32.saturating_pow(attempt));
                    tracing::debug!(
                        "first connection failed ({e}); attempt {} of {} in {wait:?}",
                        attempt + 2,
                        retries + 1
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    })
}

/// Why an implicit-today run sends nothing now: before `send_time` (the
/// issue goes out later today) or more than `max_lateness` after it.
pub fn off_schedule(settings: &Settings, date: NaiveDate, now: DateTime<Utc>) -> Option<String> {
    let zone = settings.timezone;
    let local_now = now.with_timezone(&zone).naive_local();
    let due = date.and_time(settings.send_time);
    if local_now < due {
        let wait = due - local_now;
        return Some(format!(
            "it is before the {} send time in {zone}; it goes out in {} (run `dailyissue send` again then, or pass --date {date} to send it now)",
            settings.send_time.format("%H:%M"),
            humanize(wait)
        ));
    }
    too_late(local_now, date, settings.send_time, settings.max_lateness).then(|| {
        format!(
            "it is more than {} past the {} send time (max_lateness); pass --date {date} to send it anyway",
            humanize(settings.max_lateness),
            settings.send_time.format("%H:%M"),
        )
    })
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

/// `6h`, `45m`, `5h 30m`; rounded up to the minute.
fn humanize(d: chrono::Duration) -> String {
    let m = (d.num_seconds() + 59) / 60;
    match (m / 60, m % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m}m"),
    }
}

fn sink(project: &Project, opts: &SendOptions) -> Result<Sink, Failure> {
    let settings = &project.settings;
    let sink = if opts.dry_run {
        Sink::DryRun(opts.outbox.as_ref().map(|o| project.root.join(o)))
    } else if let Some(outbox) = &opts.outbox {
        Sink::Files(project.root.join(outbox))
    } else {
        match &settings.smtp {
            Some(smtp) => Sink::Smtp(Arc::new(
                Smtp::new(smtp, &project.root).map_err(|e| Failure::Usage(Usage::Smtp(e.0)))?,
            )),
            None => Sink::Files(project.path(&settings.outbox)),
        }
    };
    // `--outbox` is not checked with the settings: keep it away from what
    // is published (the archive) and from the project's own files.
    if let Some(outbox) = &opts.outbox {
        let inside_archive = crate::project::settings::lexical(&project.root.join(outbox))
            .starts_with(crate::project::settings::lexical(
                &project.path(&settings.archive_dir),
            ));
        let private = crate::project::settings::private_inside(settings, &project.root, outbox);
        if inside_archive || !private.is_empty() {
            return Err(Failure::Usage(Usage::OutboxExposed {
                outbox: outbox.clone(),
                why: if inside_archive {
                    format!(
                        "it is inside the web archive ({}), which is published",
                        settings.archive_dir.display()
                    )
                } else {
                    format!("it holds {}", private.join(", "))
                },
            }));
        }
    }
    // An outbox that is a file (or under one) fails every write: say so now.
    if let Some(dir) = sink.folder()
        && let Some(file) = dir.ancestors().find(|a| a.exists())
        && !file.is_dir()
    {
        let (what, flag) = match &opts.outbox {
            Some(o) => (o.display().to_string(), "--outbox"),
            None => (
                settings.outbox.display().to_string(),
                "outbox in dailyissue.toml",
            ),
        };
        return Err(Failure::Usage(Usage::OutboxIsAFile {
            setting: format!("{flag} {what}"),
            file: file.to_path_buf(),
        }));
    }
    Ok(sink)
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
}

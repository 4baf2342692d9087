//! `send`: deliver the day's issue to every active subscriber who has not
//! got it yet, exactly once across runs, crashes and overlapping cron jobs.
//!
//! This module decides *who* gets a copy in this run (active, not
//! suppressed, not yet sent, within `--limit` and `daily_cap`, not too late),
//! freezes the issue record, and hands the recipients to `delivery`, which
//! owns the pipeline and its crash-safety argument. The run holds `lock`'s
//! lock throughout.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};

use crate::delivery::{self, Delivery};
use crate::edition::{self, EditionOptions, SecretUse};
use crate::ledger::{Freeze, Ledger, Status};
use crate::lock::lock;
use crate::problem::{Failure, Problem};
use crate::project::Project;
use crate::subscribers::{Status as ListStatus, Subscriber};
use crate::transport::{Sink, Smtp};

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
    // What makes the issue itself undeliverable stops the run, as it fails `check`.
    edition::preflight(&edition).into_result()?;
    let mut warnings = edition.notes();
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
        let (statuses, suppressed) = match &ledger {
            Some(l) => (l.statuses(opts.date)?, l.suppressed()?),
            None => dry_run_view(&ledger_path, opts.date),
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
            .map(|addr| {
                edition.list.reader(addr).map(|(r, _)| r).ok_or_else(|| {
                    Failure::Usage(format!("--to {addr}: not a valid email address"))
                })
            })
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
    let smtp = settings.smtp.as_ref();
    let delivery = Delivery {
        concurrency: match &sink {
            Sink::Smtp(_) => smtp.map_or(1, |s| s.concurrency),
            _ => 2,
        },
        email: edition.email,
        sink,
        ledger,
        date: opts.date,
        today,
        tests: !opts.to.is_empty(),
        retries: smtp.map_or(0, |s| s.retries),
        retry_base: smtp.map_or(Duration::from_secs(1), |s| s.retry_base),
        rate_per_second: smtp.map_or(0.0, |s| s.rate_per_second),
        progress: opts.progress && std::io::stderr().is_terminal(),
        envelope_from: settings.from.email.clone(),
    };
    let counts = delivery::run(&runtime, delivery, recipients)?;
    drop(lock);

    if counts.halted {
        let left = counts.deferred + counts.not_dispatched;
        warnings.push(format!(
            "the SMTP server stopped answering during the run; {left} recipient{} left for the next run",
            if left == 1 { "" } else { "s" }
        ));
    }
    summary.left += counts.not_dispatched;
    summary.attempted = total - counts.not_dispatched;
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

/// What a dry run reads from an existing ledger, opened once and read-only:
/// row statuses and suppressions; nothing when there is no readable ledger.
fn dry_run_view(
    path: &std::path::Path,
    date: NaiveDate,
) -> (HashMap<String, Status>, HashSet<String>) {
    match Ledger::open_existing_read_only(path) {
        Ok(Some(l)) => (
            l.statuses(date).unwrap_or_default(),
            l.suppressed().unwrap_or_default(),
        ),
        _ => Default::default(),
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
}

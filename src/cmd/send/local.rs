//! A run of local mornings (`delivery = "local"`, no `--date`): every
//! reader whose own clock has reached `send_time` on their local date D,
//! within `max_lateness`, gets the issue of D (`deliver::local` has the
//! rules). At any instant two issue dates are current somewhere on Earth,
//! so one run may send two issues: one part per date, oldest first, each
//! sent as `send --date D` sends it but only to the readers whose morning
//! it is. The run is meant to be started every 15 minutes: when nobody is
//! due it renders nothing, writes nothing, and says who is next.
//!
//! The list (CSV rows and confirmed signups, as `send` merges them) is
//! read once to count who is due for which date (nothing is held per
//! reader but the ledger's digests), then once per part.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::deliver::local::{Last, Morning, Next, Schedule};
use crate::deliver::{Retry, Verdict, verdict};
use crate::ledger::{Ledger, Row};
use crate::problem::Failure;
use crate::project::settings::{Delivery, Settings};
use crate::project::subscribers::{KeyDigest, Subscriber};
use crate::project::{Loaded, Project};
use chrono::NaiveDate;
use chrono_tz::Tz;

use super::{Part, SendOptions, Summary, hold_lock, send_issue, sink};

/// Whether this run is one of local mornings: the setting, no `--date`,
/// and the list (not `--to` test copies, which go out now).
pub(super) fn applies(settings: &Settings, opts: &SendOptions) -> bool {
    settings.delivery == Delivery::Local && opts.implicit_date && opts.to.is_empty()
}

/// What the ledger says about every reader, read once per run.
struct Memory {
    days: HashMap<KeyDigest, Last>,
    suppressed: HashSet<KeyDigest>,
}

/// Who is where this run: due per issue date, the rest counted.
#[derive(Default)]
struct Census {
    due: BTreeMap<NaiveDate, u64>,
    waiting: u64,
    late: u64,
    next: Next,
}

pub(super) fn send(project: &Project, opts: &SendOptions) -> Result<Summary, Failure> {
    let settings = &project.settings;
    let started = std::time::Instant::now();
    let sink = sink::choose(project, opts)?;
    let lock = hold_lock(project, opts)?;
    let mut loaded = project.load()?;
    for p in &loaded.list.problems {
        tracing::warn!("skipped: {p}");
    }
    let (memory, recovered) = recover_and_remember(project, opts)?;
    let schedule = Schedule {
        send_time: settings.send_time,
        max_lateness: settings.max_lateness,
    };
    let retry = Retry {
        failed: opts.retry_failed,
        unknown: opts.retry_unknown,
    };
    let census = census(project, &loaded, &memory, schedule, opts, retry)?;
    let mut summary = Summary::local(opts, &sink, &loaded.list);
    summary.recovered = recovered;
    summary.waiting = census.waiting;
    summary.late_skipped = census.late;
    summary.next = census.next.describe(opts.now);
    if census.due.is_empty() {
        summary.skipped = Some(match &summary.next {
            Some(next) => format!("nobody's morning is now; {next}"),
            None => "nobody is on the list".to_string(),
        });
        summary.timed(started.elapsed());
        return Ok(summary);
    }
    write_records(
        project,
        &mut loaded,
        census.due.keys().copied(),
        opts.dry_run,
    )?;
    let zone = settings.timezone;
    for &date in census.due.keys() {
        let due = |r: &Subscriber| {
            let z = r.zone.unwrap_or(zone);
            matches!(
                schedule.judge(opts.now, z, memory.days.get(&KeyDigest::of(&r.key))),
                Morning::Due { date: d, .. } if d == date
            )
        };
        let part_opts = SendOptions {
            date,
            implicit_date: false,
            ..opts.clone()
        };
        let part = Part {
            loaded: Some(loaded.clone()),
            filter: Some(&due),
            settled: true,
            used: summary.attempted,
        };
        let done = send_issue(project, &part_opts, &sink, part)?;
        summary.absorb(done);
    }
    drop(lock);
    summary.timed(started.elapsed());
    Ok(summary)
}

/// Opens the ledger (only reads it in a dry run), settles what an
/// earlier run left unfinished, and reads every reader's latest copy:
/// the memory, and how many rows were recovered.
fn recover_and_remember(project: &Project, opts: &SendOptions) -> Result<(Memory, u64), Failure> {
    let mut recovered = 0;
    let mut ledger = if opts.dry_run {
        crate::ledger::read(project)?
    } else {
        Some(crate::ledger::open(project)?)
    };
    if let (Some(l), false) = (ledger.as_mut(), opts.dry_run) {
        let r = l.recover_all()?;
        recovered = r.unknown + r.unattempted;
        if r.unknown > 0 {
            tracing::warn!(
                "an earlier run stopped while sending; {} message{} may have been delivered and will be resent once (same Message-ID)",
                r.unknown,
                crate::cmd::plural(r.unknown)
            );
        }
    }
    Ok((remember(ledger.as_ref())?, recovered))
}

/// The records of every date due, oldest first (picks depend on the
/// issues before), written before any part is sent (kept in memory in a
/// dry run).
fn write_records(
    project: &Project,
    loaded: &mut crate::project::Loaded,
    dates: impl Iterator<Item = NaiveDate>,
    dry_run: bool,
) -> Result<(), Failure> {
    for date in dates {
        let planned =
            crate::plan::ensure(&project.settings, &loaded.pool, &mut loaded.issues, date)?;
        if !planned.kept && !dry_run {
            let stored = loaded.issues.get(date).ok_or_else(|| {
                anyhow::anyhow!("the issue record of {date} vanished while it was planned")
            })?;
            crate::atomic::write(&project.path(&stored.path), stored.text.as_bytes())?;
            tracing::info!("wrote {}", stored.path.display());
        }
    }
    Ok(())
}

/// Every reader's latest copy and the suppression list (nothing without
/// a ledger yet).
fn remember(ledger: Option<&Ledger>) -> Result<Memory, Failure> {
    Ok(match ledger {
        Some(l) => Memory {
            days: l.reader_days()?,
            suppressed: l.suppressed()?,
        },
        None => Memory {
            days: HashMap::new(),
            suppressed: HashSet::new(),
        },
    })
}

/// Goes through the list once: who is due for which issue date now, who
/// waits for their morning, who is past it, and whose morning is next.
fn census(
    project: &Project,
    loaded: &Loaded,
    memory: &Memory,
    schedule: Schedule,
    opts: &SendOptions,
    retry: Retry,
) -> Result<Census, Failure> {
    let zone = project.settings.timezone;
    let mut rows: BTreeMap<NaiveDate, HashMap<KeyDigest, Row>> = BTreeMap::new();
    let ledger = crate::ledger::read(project)?;
    let mut census = Census::default();
    // The list `send` uses: the CSV's active rows, then confirmed signups
    // (with the zone their form captured).
    let mut readers = crate::deliver::readers::merged(&loaded.list, ledger.as_ref())?;
    for reader in &mut readers {
        let digest = KeyDigest::of(&reader.key);
        if memory.suppressed.contains(&digest) {
            continue;
        }
        let z: Tz = reader.zone.unwrap_or(zone);
        match schedule.judge(opts.now, z, memory.days.get(&digest)) {
            Morning::Due { date, .. } => {
                let rows = match rows.entry(date) {
                    std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::btree_map::Entry::Vacant(e) => e.insert(match &ledger {
                        Some(l) => l.statuses(date)?,
                        None => HashMap::new(),
                    }),
                };
                match verdict(rows.get(&digest), false, retry) {
                    Verdict::Due { .. } => *census.due.entry(date).or_default() += 1,
                    _ => {
                        census.waiting += 1;
                        if let Some(next) = date.succ_opt() {
                            census.next.add(schedule.morning(next, z), z);
                        }
                    }
                }
            }
            Morning::Waiting { next, .. } => {
                census.waiting += 1;
                census.next.add(next, z);
            }
            Morning::Late { next, .. } => {
                census.late += 1;
                census.next.add(next, z);
            }
        }
    }
    if let Some(e) = readers.error {
        return Err(e.into());
    }
    Ok(census)
}

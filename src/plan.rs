//! `plan`: write issue records for a run of days, and the one-day version
//! that `preview` and `send` use when a day has no record yet.
//!
//! Records that exist are never touched (an editor's change survives byte
//! for byte). New records are computed for the whole range first and written
//! only when every day could be picked, each atomically. Numbers grow with
//! the date: a new record that would repeat or undercut the number of a
//! later one is refused.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::atomic;
use crate::pick::{self, Reason};
use crate::problem::{Failure, Problem, key_line};
use crate::project::Project;
use crate::project::content::Pool;
use crate::project::issue::{self, IssueRecord, Issues, Stored};
use crate::render::context;

#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    pub start: NaiveDate,
    pub days: u32,
}

#[derive(Debug, Clone)]
pub struct PlannedDay {
    pub record: IssueRecord,
    /// True when the record already existed and was kept as it is.
    pub kept: bool,
    /// Items repeated because their section ran out: (section, slug, last used).
    pub repeats: Vec<(String, String, NaiveDate)>,
}

/// Plans `opts.days` days from `opts.start`, writing the new records.
pub fn plan(project: &Project, opts: PlanOptions) -> Result<Vec<PlannedDay>, Failure> {
    let last = opts
        .start
        .checked_add_days(chrono::Days::new(u64::from(opts.days.saturating_sub(1))))
        .filter(|d| crate::project::settings::date_in_range(*d));
    if last.is_none() {
        return Err(Failure::Usage(format!(
            "--date {} --days {} would plan past 9999-12-31, the last date a record can have; plan fewer days",
            opts.start, opts.days
        )));
    }
    let pool = project.pool().map_err(Failure::Input)?;
    let mut issues = project.issues().map_err(Failure::Input)?;
    let mut days = Vec::new();
    for day in opts.start.iter_days().take(opts.days as usize) {
        days.push(ensure(project, &pool, &mut issues, day)?);
    }
    // `ensure` already formatted each new record; write those bytes.
    for planned in days.iter().filter(|d| !d.kept) {
        if let Some(stored) = issues.get(planned.record.date) {
            atomic::write(&project.path(&stored.path), stored.text.as_bytes())?;
        }
    }
    Ok(days)
}

/// The record for `day`: the stored one, or a new one picked from the pool
/// and added to `issues` in memory (the caller decides whether to write it).
pub fn ensure(
    project: &Project,
    pool: &Pool,
    issues: &mut Issues,
    day: NaiveDate,
) -> Result<PlannedDay, Failure> {
    if let Some(stored) = issues.get(day) {
        return Ok(PlannedDay {
            record: stored.record.clone(),
            kept: true,
            repeats: Vec::new(),
        });
    }
    let settings = &project.settings;
    let choices =
        pick::pick_issue(pool, &issues.history(), day, settings.repeats).map_err(|errors| {
            Failure::Input(
                errors
                    .iter()
                    .map(|e| {
                        let dir = match e {
                            pick::PickError::Empty { dir, .. }
                            | pick::PickError::Exhausted { dir, .. } => dir,
                        };
                        Problem::new(dir, None, e.to_string())
                    })
                    .collect(),
            )
        })?;
    let mut repeats = Vec::new();
    let mut picks = BTreeMap::new();
    for (section, choice) in choices {
        if let Reason::Repeat { last_used } = choice.reason {
            repeats.push((section.clone(), choice.slug.clone(), last_used));
        }
        picks.insert(section, choice.slug);
    }
    let number = issues.next_number(day).ok_or_else(|| {
        Failure::Usage(format!(
            "the issue of {day} would be numbered past {}; renumber the records in issues/",
            u32::MAX
        ))
    })?;
    // Numbers grow with the date: a record before later ones must not
    // repeat or undercut their numbers ("No. 1" twice).
    if let Some((_, later)) = issues.records.range(day..).next()
        && later.record.number <= number
    {
        return Err(Failure::one(Problem::at(
            &later.path,
            key_line(&later.text, "number").unwrap_or(1),
            format!(
                "a new record for {day} would be no. {number}, but this later issue is no. {}: numbers grow with the date. Plan and send issues in date order; to add {day} anyway, renumber the later records that have not gone out (or delete them and plan again from {day})",
                later.record.number
            ),
        )));
    }
    let ctx = context::headline_context(settings, pool, &picks, number, day);
    let subject =
        context::headline("subject", &settings.subject, &ctx, day).map_err(Failure::one)?;
    let record = IssueRecord {
        number,
        date: day,
        subject: Some(subject),
        picks,
    };
    let text = record.to_toml(&settings.name);
    issues.records.insert(
        day,
        Stored {
            record: record.clone(),
            path: issue::path(day),
            text,
        },
    );
    Ok(PlannedDay {
        record,
        kept: false,
        repeats,
    })
}

/// The plan as a table, one line per day, for the terminal.
pub fn table(days: &[PlannedDay], sections: &[String]) -> String {
    let mut rows = vec![{
        let mut head = vec!["DATE".to_string(), "NO.".to_string()];
        head.extend(sections.iter().map(|s| s.to_uppercase()));
        head.push("SUBJECT".into());
        head.push(String::new());
        head
    }];
    for d in days {
        let mut row = vec![d.record.date.to_string(), d.record.number.to_string()];
        for s in sections {
            row.push(d.record.picks.get(s).cloned().unwrap_or_else(|| "-".into()));
        }
        row.push(d.record.subject.clone().unwrap_or_default());
        row.push(if d.kept { "kept" } else { "new" }.into());
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<width$}", width = widths[c]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

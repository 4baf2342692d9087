//! Plan: the issue record of a day — the stored one, or a new one made from
//! the day's picks, the next number and the rendered subject. Takes the
//! settings, the pool and the records; gives the record (added to the
//! records in memory; writing it is the command's business).
//!
//! Records that exist are never touched (an editor's change survives byte
//! for byte). Numbers grow with the date: a new record that would repeat or
//! undercut the number of a later one is refused.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::pick::{self, Reason};
use crate::problem::{Failure, Problem, key_line};
use crate::project::content::Pool;
use crate::project::issue::{self, IssueRecord, Issues, Stored};
use crate::project::settings::Settings;
use crate::render::context;

#[derive(Debug, Clone)]
pub struct PlannedDay {
    pub record: IssueRecord,
    /// True when the record already existed and was kept as it is.
    pub kept: bool,
    /// Items repeated because their section ran out: (section, slug, last used).
    pub repeats: Vec<(String, String, NaiveDate)>,
}

/// The record for `day`: the stored one, or a new one picked from the pool
/// and added to `issues` in memory (the caller decides whether to write it).
pub fn ensure(
    settings: &Settings,
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
    let choices = pick::pick_issue(pool, &issues.history(), day, settings.repeats)
        .map_err(|errors| Failure::Input(errors.iter().map(Problem::from).collect()))?;
    let mut repeats = Vec::new();
    let mut picks = BTreeMap::new();
    for (section, choice) in choices {
        if let Reason::Repeat { last_used } = choice.reason {
            repeats.push((section.clone(), choice.slug.clone(), last_used));
        }
        picks.insert(section, choice.slug);
    }
    let number = issues
        .next_number(day)
        .ok_or_else(|| Failure::Usage(crate::problem::Usage::NumberOverflow(day)))?;
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

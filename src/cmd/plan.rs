//! `plan`: write issue records for a run of days. New records are computed
//! for the whole range first and written only when every day could be
//! picked, each atomically; existing records are kept byte for byte.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use crate::atomic;
use crate::cmd::count;
use crate::plan::{PlannedDay, ensure};
use crate::problem::Failure;
use crate::project::Project;

/// With local mornings (`delivery = "local"`), the oldest issue date still
/// to come somewhere: today where the day begins last (UTC−12); from
/// there the default week reaches past tomorrow in UTC+14, whose morning
/// comes first. A record already written from that day on starts the
/// plan instead (a new record may not come before a later one).
pub fn first_local_day(project: &Project, now: chrono::DateTime<chrono::Utc>) -> NaiveDate {
    let day = now.with_timezone(&chrono_tz::Etc::GMTPlus12).date_naive();
    match project.issues() {
        Ok(issues) if !issues.records.contains_key(&day) => issues
            .records
            .range(day..)
            .next()
            .map_or(day, |(first, _)| *first),
        _ => day,
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    pub start: NaiveDate,
    pub days: u32,
}

/// What `plan` did: one entry per day, in order.
#[derive(Debug, serde::Serialize)]
pub struct Plan {
    /// Section names, in the order of the settings (the table's columns).
    pub sections: Vec<String>,
    pub days: Vec<Day>,
    /// Records written now.
    pub new: usize,
    /// Records that existed and were kept byte for byte.
    pub kept: usize,
}

/// One planned day.
#[derive(Debug, serde::Serialize)]
pub struct Day {
    pub date: NaiveDate,
    pub number: u32,
    pub subject: Option<String>,
    /// Section name → slug.
    pub picks: BTreeMap<String, String>,
    /// True when the record was written now, false when it was kept.
    pub new: bool,
    /// Items repeated because their section ran out of unused ones.
    pub repeats: Vec<Repeat>,
}

#[derive(Debug, serde::Serialize)]
pub struct Repeat {
    pub section: String,
    pub slug: String,
    /// The day the item was last picked (its record; not necessarily sent).
    pub last_picked: NaiveDate,
    /// The same day under its first, misleading name, kept because JSON
    /// fields keep their names (docs/json.md).
    pub last_sent: NaiveDate,
}

impl From<PlannedDay> for Day {
    fn from(d: PlannedDay) -> Day {
        Day {
            date: d.record.date,
            number: d.record.number,
            subject: d.record.subject,
            picks: d.record.picks,
            new: !d.kept,
            repeats: d
                .repeats
                .into_iter()
                .map(|(section, slug, last_picked)| Repeat {
                    section,
                    slug,
                    last_picked,
                    last_sent: last_picked,
                })
                .collect(),
        }
    }
}

impl crate::cmd::Report for Plan {
    fn text(&self) -> String {
        let mut out = table(&self.days, &self.sections);
        out.push_str(&format!(
            "{} in issues/, {} kept\n",
            count(self.new as u64, "new record", "new records"),
            self.kept
        ));
        out
    }
}

/// Plans `opts.days` days from `opts.start`, writing the new records.
pub fn plan(project: &Project, opts: PlanOptions) -> Result<Plan, Failure> {
    let last = opts
        .start
        .checked_add_days(chrono::Days::new(u64::from(opts.days.saturating_sub(1))))
        .filter(|d| crate::project::settings::date_in_range(*d));
    if last.is_none() {
        return Err(Failure::Usage(crate::problem::Usage::PlanPastEnd {
            start: opts.start,
            days: opts.days,
        }));
    }
    let (pool, _, mut issues) = project.parts(crate::project::With::Content).content()?;
    let mut days = Vec::new();
    for day in opts.start.iter_days().take(opts.days as usize) {
        days.push(ensure(&project.settings, &pool, &mut issues, day)?);
    }
    // `ensure` already formatted each new record; write those bytes.
    for planned in days.iter().filter(|d| !d.kept) {
        if let Some(stored) = issues.get(planned.record.date) {
            atomic::write(&project.path(&stored.path), stored.text.as_bytes())?;
        }
    }
    let days: Vec<Day> = days.into_iter().map(Day::from).collect();
    warn_repeats(&days);
    let new = days.iter().filter(|d| d.new).count();
    Ok(Plan {
        sections: project
            .settings
            .sections
            .iter()
            .map(|s| s.name.clone())
            .collect(),
        kept: days.len() - new,
        new,
        days,
    })
}

/// One warning per section that ran out, on the first day it repeats.
fn warn_repeats(days: &[Day]) {
    let mut warned = BTreeSet::new();
    for d in days {
        for r in &d.repeats {
            if warned.insert(&r.section) {
                tracing::warn!(
                    "section `{}` ran out of unused items on {}: it repeats `{}` (last picked {}) and repeats from then on; add items to keep issues fresh",
                    r.section,
                    d.date,
                    r.slug,
                    r.last_picked
                );
            }
        }
    }
}

/// The plan as a table, one line per day, for the terminal.
fn table(days: &[Day], sections: &[String]) -> String {
    let mut rows = vec![{
        let mut head = vec!["DATE".to_string(), "NO.".to_string()];
        head.extend(sections.iter().map(|s| s.to_uppercase()));
        head.push("SUBJECT".into());
        head.push("RECORD".into());
        head
    }];
    for d in days {
        let mut row = vec![d.date.to_string(), d.number.to_string()];
        for s in sections {
            row.push(d.picks.get(s).cloned().unwrap_or_else(|| "-".into()));
        }
        row.push(d.subject.clone().unwrap_or_default());
        row.push(if d.new { "new" } else { "kept" }.into());
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

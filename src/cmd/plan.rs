//! `plan`: write issue records for a run of days. New records are computed
//! for the whole range first and written only when every day could be
//! picked, each atomically; existing records are kept byte for byte.

use chrono::NaiveDate;

use crate::atomic;
use crate::plan::{PlannedDay, ensure};
use crate::problem::Failure;
use crate::project::Project;

#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    pub start: NaiveDate,
    pub days: u32,
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
    Ok(days)
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

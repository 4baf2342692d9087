//! `check`: load everything the daily run needs and report every problem at
//! once. It writes nothing: a missing issue record is picked in memory only.

use chrono::NaiveDate;

use crate::issue::Issues;
use crate::pick;
use crate::plan;
use crate::problem::{Failure, Problem};
use crate::project::Project;
use crate::render;

#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    pub date: NaiveDate,
}

/// What `check` found when nothing was wrong.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub warnings: Vec<String>,
}

pub fn check(project: &Project, opts: CheckOptions) -> Result<Report, Failure> {
    let settings = &project.settings;
    let mut report = Report::default();
    let mut problems: Vec<Problem> = Vec::new();

    report.lines.push(format!(
        "settings: {} ({}), sections {}",
        settings.name,
        settings.timezone,
        settings
            .sections
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));

    let pool = match project.pool() {
        Ok(pool) => Some(pool),
        Err(mut p) => {
            problems.append(&mut p);
            None
        }
    };
    match project.templates() {
        Ok(_) => {}
        Err(mut p) => problems.append(&mut p),
    }
    match project.subscribers() {
        Ok(list) => {
            report.lines.push(format!(
                "subscribers: {} in {}, {} active",
                list.subscribers.len(),
                settings.subscribers.display(),
                list.active().count()
            ));
            problems.extend(list.problems);
        }
        Err(p) => problems.push(p),
    }
    let issues = match project.issues() {
        Ok(issues) => Some(issues),
        Err(mut p) => {
            problems.append(&mut p);
            None
        }
    };

    if let (Some(pool), Some(issues)) = (&pool, &issues) {
        for s in &pool.sections {
            let drafts = s.items.iter().filter(|i| i.draft).count();
            let pinned = s
                .items
                .iter()
                .filter(|i| !i.draft && i.date.is_some())
                .count();
            report.lines.push(format!(
                "content: {} {} item{} in {} ({drafts} draft, {pinned} pinned)",
                s.items.len() - drafts,
                s.name,
                if s.items.len() - drafts == 1 { "" } else { "s" },
                s.dir.display(),
            ));
        }
        for stored in issues.records.values() {
            problems.extend(
                stored
                    .record
                    .check_against(pool, &stored.path, &stored.text),
            );
        }
        if problems.is_empty() {
            check_issue(project, pool, issues, opts.date, &mut report, &mut problems);
        }
    }

    if problems.is_empty() {
        Ok(report)
    } else {
        Err(Failure::input(problems))
    }
}

/// Picks (in memory) or reads the issue of `date` and renders its headlines.
fn check_issue(
    project: &Project,
    pool: &crate::content::Pool,
    issues: &Issues,
    date: NaiveDate,
    report: &mut Report,
    problems: &mut Vec<Problem>,
) {
    let settings = &project.settings;
    let mut issues = issues.clone();
    let planned = match plan::ensure(project, pool, &mut issues, date) {
        Ok(p) => p,
        Err(Failure::Input(mut p)) => {
            problems.append(&mut p);
            return;
        }
        Err(e) => {
            problems.push(Problem::new("issues", None, e.to_string()));
            return;
        }
    };
    let record = &planned.record;
    let ctx = render::headline_context(settings, pool, &record.picks, record.number, date);
    let subject = match &record.subject {
        Some(s) => s.clone(),
        None => match render::headline("subject", &settings.subject, &ctx, date) {
            Ok(s) => s,
            Err(p) => {
                problems.push(p);
                String::new()
            }
        },
    };
    if let Err(p) = render::headline("preheader", &settings.preheader, &ctx, date) {
        problems.push(p);
    }
    report.lines.push(format!(
        "issue of {date}: no. {}, \"{subject}\" ({})",
        record.number,
        if planned.kept {
            "planned"
        } else {
            "not planned yet; `plan` or `send` will write it"
        }
    ));
    for (section, slug, last) in &planned.repeats {
        report.warnings.push(format!(
            "section `{section}` has used every eligible item; {date} repeats `{slug}` (last sent {last}). Add items to keep the issue fresh."
        ));
    }
    let history = issues.history();
    let left: Vec<String> = pool
        .sections
        .iter()
        .map(|s| {
            let n = pick::days_left(s, &history, date);
            format!("{} {n} day{}", s.name, if n == 1 { "" } else { "s" })
        })
        .collect();
    report.lines.push(format!(
        "unused items from {date} last: {}",
        left.join(", ")
    ));
}

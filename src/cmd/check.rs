//! `check`: load everything the daily run needs and report every problem at
//! once. It writes nothing: a missing issue record is picked in memory only.

use chrono::NaiveDate;

use crate::pick;
use crate::problem::{Failure, Problem};
use crate::project::Project;
use crate::project::content::Pool;
use crate::project::issue::Issues;
use crate::project::settings::FILE_NAME;
use crate::project::subscribers::List;
use crate::project::templates::Templates;
use crate::render::edition::{self, EditionOptions, SecretUse};

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

    // The archive folder is checked lexically when the settings are parsed;
    // an absolute `archive_dir` can only be related to the project here.
    let archive_dir = project.path(&settings.archive_dir);
    if let Err(Failure::Usage(message)) = crate::archive::refuse_private(project, &archive_dir) {
        let text = std::fs::read_to_string(project.path(std::path::Path::new(FILE_NAME)))
            .unwrap_or_default();
        problems.push(Problem::new(
            FILE_NAME,
            crate::problem::key_line(&text, "archive_dir"),
            message,
        ));
    }

    // Everything is loaded once, every problem collected, then the day's
    // edition is built from these same parts.
    let pool = project.pool().map_err(|p| problems.extend(p)).ok();
    let templates = project.templates().map_err(|p| problems.extend(p)).ok();
    let list = project.subscribers().map_err(|p| problems.extend(p)).ok();
    if let Some(list) = &list {
        report.lines.push(format!(
            "subscribers: {} in {}, {} active",
            list.subscribers.len(),
            settings.subscribers.display(),
            list.active().count()
        ));
        problems.extend(list.problems.iter().cloned());
    }
    let issues = project.issues().map_err(|p| problems.extend(p)).ok();
    if let Some(issues) = &issues {
        problems.extend(issues.number_problems());
    }

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
        for item in pool.items() {
            for (line, url) in crate::render::markdown::unsafe_links(&item.body) {
                report.warnings.push(
                    Problem::at(
                        &item.path,
                        item.body_line + line - 1,
                        format!(
                            "the link to `{}` is shown as plain text: only https, http and mailto links (images: https, http) reach readers; use an https link",
                            crate::project::subscribers::clean_line(&url)
                        ),
                    )
                    .to_string(),
                );
            }
        }
        for stored in issues.records.values() {
            problems.extend(
                stored
                    .record
                    .check_against(pool, &stored.path, &stored.text),
            );
        }
    }
    if let (true, Some(pool), Some(templates), Some(mut issues), Some(list)) =
        (problems.is_empty(), pool, templates, issues, list)
    {
        check_issue(
            project,
            Loaded {
                pool: &pool,
                templates: &templates,
                issues: &mut issues,
                list,
            },
            opts.date,
            &mut report,
            &mut problems,
        );
    }

    if problems.is_empty() {
        Ok(report)
    } else {
        Err(Failure::input(problems))
    }
}

/// The loaded project, handed to the day's edition.
struct Loaded<'a> {
    pool: &'a Pool,
    templates: &'a Templates,
    /// Gains the day's record in memory (never written) when it has none.
    issues: &'a mut Issues,
    list: List,
}

/// Picks (in memory) or reads the issue of `date` and renders it for every
/// active subscriber.
fn check_issue(
    project: &Project,
    loaded: Loaded<'_>,
    date: NaiveDate,
    report: &mut Report,
    problems: &mut Vec<Problem>,
) {
    let Loaded {
        pool,
        templates,
        issues,
        list,
    } = loaded;
    let edition = match edition::prepare(
        project,
        pool,
        templates,
        issues,
        list,
        EditionOptions {
            date,
            sent_at: chrono::Utc::now(),
            secrets: SecretUse::Local,
            write_record: false,
        },
    ) {
        Ok(e) => e,
        Err(Failure::Input(mut p)) => {
            problems.append(&mut p);
            return;
        }
        Err(e) => {
            problems.push(Problem::new(
                crate::project::issue::path(date),
                None,
                e.to_string(),
            ));
            return;
        }
    };
    report.warnings.extend(edition.warnings.iter().cloned());
    let mut preflight = edition::preflight(&edition);
    edition::preflight_readers(&edition, &mut preflight);
    let readers = preflight.readers;
    let preflight_largest = preflight.largest_html;
    let ok = preflight.problems.is_empty();
    problems.extend(preflight.problems);
    report.warnings.extend(preflight.warnings);
    if let Some(record) = &edition.dkim_record {
        report.lines.push(format!(
            "dkim: key loaded; publish this DNS record:\n  {record}"
        ));
    }
    report.lines.push(format!(
        "issue of {date}: no. {}, \"{}\" ({}){}",
        edition.record.record.number,
        edition.email.subject,
        if edition.created {
            "not planned yet; `plan` or `send` will write it"
        } else {
            "planned"
        },
        if ok {
            format!(
                ", rendered for {readers} active subscriber{} (largest HTML {} KB)",
                if readers == 1 { "" } else { "s" },
                preflight_largest.div_ceil(1024)
            )
        } else {
            String::new()
        }
    ));
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

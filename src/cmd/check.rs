//! `check`: load everything the daily run needs and report every problem at
//! once. It writes nothing: a missing issue record is picked in memory only.
//! What makes the issue itself undeliverable fails here exactly as it stops
//! `send` (the issue-level preflight); problems of single rows of the list
//! fail here too, while `send` skips those rows. The last issue's bounce
//! and complaint rates are judged as `send` judges them
//! (`cmd::bounces::guard`): a complaint rate that stops `send` fails
//! `check`.

use chrono::{DateTime, NaiveDate, Utc};

use crate::cmd::{DayOptions, SecretUse, day_from, plural};
use crate::pick;
use crate::problem::{Failure, Problem};
use crate::project::content::Pool;
use crate::project::issue::Issues;
use crate::project::settings::FILE_NAME;
use crate::project::{Loaded, Parts, Project, With};
use crate::render::preflight;

#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    pub date: NaiveDate,
    pub now: DateTime<Utc>,
}

/// What `check` found when nothing was wrong (with `--json`, this document).
/// Warnings (unsafe links, repeats, deliverability) are logged as found.
#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    pub newsletter: String,
    pub timezone: String,
    pub sections: Vec<String>,
    pub subscribers: Option<ListSummary>,
    pub content: Vec<SectionSummary>,
    pub issue: Option<IssueSummary>,
    /// The DNS TXT records to publish, one per `[[dkim]]` key.
    pub dkim_records: Vec<String>,
    /// Days each section can go on before it repeats an item.
    pub days_left: Vec<DaysLeft>,
}

#[derive(Debug, serde::Serialize)]
pub struct DaysLeft {
    pub section: String,
    pub days: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct ListSummary {
    pub file: String,
    pub rows: usize,
    pub active: usize,
    /// Signups in the ledger: confirmed (on the list unless the CSV holds
    /// the address too), and waiting for their confirmation.
    pub signups_confirmed: u64,
    pub signups_pending: u64,
}

#[derive(Debug, serde::Serialize)]
pub struct SectionSummary {
    pub section: String,
    pub dir: String,
    pub items: usize,
    pub drafts: usize,
    pub pinned: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct IssueSummary {
    pub date: String,
    pub number: u32,
    pub subject: String,
    /// False when no record exists yet (`plan` or `send` will write it).
    pub planned: bool,
    pub readers: usize,
    pub largest_html_kb: usize,
}

impl crate::cmd::Report for Report {
    fn text(&self) -> String {
        let mut out = format!(
            "settings: {} ({}), sections {}\n",
            self.newsletter,
            self.timezone,
            self.sections.join(", ")
        );
        if let Some(l) = &self.subscribers {
            out.push_str(&format!(
                "subscribers: {} in {}, {} active; signups: {} confirmed, {} pending\n",
                l.rows, l.file, l.active, l.signups_confirmed, l.signups_pending
            ));
        }
        for s in &self.content {
            out.push_str(&format!(
                "content: {} {} item{} in {} ({} draft, {} pinned)\n",
                s.items,
                s.section,
                if s.items == 1 { "" } else { "s" },
                s.dir,
                s.drafts,
                s.pinned
            ));
        }
        match self.dkim_records.as_slice() {
            [] => {}
            [record] => out.push_str(&format!(
                "dkim: key loaded; publish this DNS record:\n  {record}\n"
            )),
            records => {
                out.push_str(&format!(
                    "dkim: {} keys loaded, every message carries one signature per key; publish these DNS records:\n",
                    records.len()
                ));
                for record in records {
                    out.push_str(&format!("  {record}\n"));
                }
            }
        }
        if let Some(i) = &self.issue {
            out.push_str(&format!(
                "issue of {}: no. {}, \"{}\" ({}), rendered for {} active subscriber{} (largest HTML {} KB)\n",
                i.date,
                i.number,
                i.subject,
                if i.planned {
                    "planned"
                } else {
                    "not planned yet; `plan` or `send` will write it"
                },
                i.readers,
                if i.readers == 1 { "" } else { "s" },
                i.largest_html_kb
            ));
        }
        if let Some(i) = &self.issue {
            let left: Vec<String> = self
                .days_left
                .iter()
                .map(|d| format!("{} {} day{}", d.section, d.days, plural(d.days as u64)))
                .collect();
            out.push_str(&format!(
                "unused items from {} last: {}\n",
                i.date,
                left.join(", ")
            ));
        }
        out.push_str("ok: no problems found\n");
        out
    }
}

pub fn check(project: &Project, opts: CheckOptions) -> Result<Report, Failure> {
    let settings = &project.settings;
    let mut report = Report {
        newsletter: settings.name.clone(),
        timezone: settings.timezone.to_string(),
        sections: settings.sections.iter().map(|s| s.name.clone()).collect(),
        ..Report::default()
    };
    let mut problems: Vec<Problem> = archive_problems(project);
    // Everything is loaded once, every problem collected, then the day's
    // edition is built from these same parts.
    let mut parts = project.parts(With::List);
    problems.append(&mut parts.problems);
    summarise(project, &parts, &mut report, &mut problems);
    if problems.is_empty() {
        let loaded = parts.complete()?;
        check_issue(project, loaded, opts, &mut report, &mut problems);
    }
    // The last issue's bounce and complaint rates, judged as `send` does.
    let guard = crate::cmd::bounces::guard(project, opts.date)?;
    for w in &guard.warnings {
        tracing::warn!("{w}");
    }
    if let Some(why) = &guard.refusal {
        problems.push(crate::cmd::bounces::refusal_problem(project, why));
    }
    if problems.is_empty() {
        Ok(report)
    } else {
        Err(Failure::input(problems))
    }
}

/// The archive folder is checked lexically when the settings are parsed;
/// an absolute `archive_dir` can only be related to the project here.
fn archive_problems(project: &Project) -> Vec<Problem> {
    let archive_dir = project.path(&project.settings.archive_dir);
    match crate::archive::refuse_private(project, &archive_dir) {
        Err(Failure::Usage(usage)) => {
            let message = usage.to_string();
            let text = std::fs::read_to_string(project.path(std::path::Path::new(FILE_NAME)))
                .unwrap_or_default();
            vec![Problem::new(
                FILE_NAME,
                crate::problem::key_line(&text, "archive_dir"),
                message,
            )]
        }
        _ => Vec::new(),
    }
}

/// What the loaded parts hold, and what is wrong across them: list rows,
/// issue numbers, unsafe links, records that name missing items, and the
/// signup letters' templates.
fn summarise(project: &Project, parts: &Parts, report: &mut Report, problems: &mut Vec<Problem>) {
    if let Some(list) = &parts.list {
        let (signups_confirmed, signups_pending) = signup_counts(project);
        report.subscribers = Some(ListSummary {
            file: project.settings.subscribers.display().to_string(),
            rows: list.rows,
            active: list.active,
            signups_confirmed,
            signups_pending,
        });
        problems.extend(list.problems.iter().cloned());
    }
    if let Some(issues) = &parts.issues {
        problems.extend(issues.number_problems());
    }
    if let Some(pool) = &parts.pool {
        report.content = content_summary(pool);
        for w in unsafe_links(pool) {
            tracing::warn!("{w}");
        }
    }
    if let (Some(pool), Some(issues)) = (&parts.pool, &parts.issues) {
        problems.extend(records_against(pool, issues));
    }
    // The letters `serve` mails to signups, rendered for a sample reader.
    if project.settings.subscribe.enabled
        && let Some(templates) = &parts.templates
    {
        problems.extend(crate::render::signup::check(&project.settings, templates));
    }
}

/// The ledger's signups (confirmed, pending); none without a ledger. A
/// ledger that cannot be read is `send`'s problem to report, not `check`'s.
fn signup_counts(project: &Project) -> (u64, u64) {
    match crate::ledger::read(project).and_then(|l| l.map(|l| l.signup_counts()).transpose()) {
        Ok(counts) => counts.unwrap_or((0, 0)),
        Err(e) => {
            tracing::warn!("cannot count the signups: {e:#}");
            (0, 0)
        }
    }
}

fn content_summary(pool: &Pool) -> Vec<SectionSummary> {
    pool.sections
        .iter()
        .map(|s| {
            let drafts = s.items.iter().filter(|i| i.draft).count();
            SectionSummary {
                section: s.name.clone(),
                dir: s.dir.display().to_string(),
                items: s.items.len() - drafts,
                drafts,
                pinned: s
                    .items
                    .iter()
                    .filter(|i| !i.draft && i.date.is_some())
                    .count(),
            }
        })
        .collect()
}

/// Links in content that the renderer shows as plain text.
fn unsafe_links(pool: &Pool) -> Vec<String> {
    let mut warnings = Vec::new();
    for item in pool.items() {
        for (line, url) in crate::render::markdown::unsafe_links(&item.body) {
            warnings.push(
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
    warnings
}

fn records_against(pool: &Pool, issues: &Issues) -> Vec<Problem> {
    issues
        .records
        .values()
        .flat_map(|stored| {
            stored
                .record
                .check_against(pool, &stored.path, &stored.text)
        })
        .collect()
}

/// Picks (in memory) or reads the issue of the day and renders it for every
/// active subscriber.
fn check_issue(
    project: &Project,
    loaded: Loaded,
    opts: CheckOptions,
    report: &mut Report,
    problems: &mut Vec<Problem>,
) {
    let day = match day_from(
        project,
        loaded,
        DayOptions {
            date: opts.date,
            now: opts.now,
            secrets: SecretUse::Local,
            write_record: false,
        },
    ) {
        Ok(day) => day,
        Err(Failure::Input(mut p)) => {
            problems.append(&mut p);
            return;
        }
        Err(e) => {
            problems.push(Problem::new(
                crate::project::issue::path(opts.date),
                None,
                e.to_string(),
            ));
            return;
        }
    };
    // The development secret is expected here; only real mail needs one.
    for note in &day.repeat_notes {
        tracing::warn!("{note}");
    }
    let email = &day.edition.email;
    let list = &day.loaded.list;
    let mut found = preflight::preflight(email, list, &day.edition.record.path);
    preflight::preflight_readers(email, list, &mut found);
    for w in &found.warnings {
        tracing::warn!("{w}");
    }
    report.dkim_records = day.edition.dkim_records.clone();
    if !found.problems.is_empty() {
        problems.append(&mut found.problems);
        return;
    }
    report.issue = Some(IssueSummary {
        date: opts.date.to_string(),
        number: day.edition.record.record.number,
        subject: email.subject.clone(),
        planned: !day.created,
        readers: found.readers,
        largest_html_kb: found.largest_html.div_ceil(1024),
    });
    let history = day.loaded.issues.history();
    report.days_left = day
        .loaded
        .pool
        .sections
        .iter()
        .map(|s| DaysLeft {
            section: s.name.clone(),
            days: pick::days_left(s, &history, opts.date),
        })
        .collect();
}

//! `archive`: the static web archive — one page per issue, an index newest
//! first with pagination, the pages of the sections that have them (a page
//! per featured item and an A–Z index for `pages = "each"`, one page listing
//! them for `pages = "list"`), an Atom feed of the latest 30 issues,
//! `sitemap.xml` and one stylesheet. No section is known by name: its
//! settings say where its pages go and which templates draw them.
//!
//! Pages come from `templates/web/` (defaults built in) and link to each
//! other with relative URLs, so the site works at any path and from
//! `serve`; canonical URLs, the feed and the sitemap use the `url` setting.
//! The build is deterministic (no clock, sorted everywhere) and
//! incremental: a file is written only when its bytes change, and files a
//! previous build wrote that are no longer produced are removed (tracked in
//! a manifest, so nothing else in the folder is touched). No personal data
//! reaches the archive: pages are rendered without a subscriber.
//!
//! - this file: which issues are published and their headlines, then the
//!   build: pages, feed and sitemap as bytes by path, written at the end;
//! - `site`: the HTML pages (issues, the index, the sections' pages) and
//!   the stylesheet, from the templates;
//! - `feed`: the Atom feed; `sitemap`: `sitemap.xml`;
//! - `write`: the incremental write and its manifest.

mod feed;
mod site;
mod sitemap;
mod write;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::problem::{Failure, Problem};
use crate::project::Project;
use crate::project::content::Pool;
use crate::project::issue::{Issues, Stored};
use crate::project::settings::Settings;
use crate::render::context;

use site::Site;

#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    pub out: Option<PathBuf>,
    /// Every record in `issues/`, not only those with a delivery.
    pub all: bool,
}

#[derive(Debug, Default)]
pub struct ArchiveReport {
    pub out: PathBuf,
    pub issues: usize,
    /// Pages of single items (sections with `pages = "each"`).
    pub item_pages: usize,
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub note: Option<String>,
}

/// One issue as the archive sees it.
struct Entry<'a> {
    stored: &'a Stored,
    subject: String,
    preheader: String,
    /// When its first copy went out (the ledger's record of the run), if
    /// known; else the feed dates it at `send_time` in the newsletter's zone.
    published: Option<DateTime<Utc>>,
}

pub fn archive(project: &Project, opts: &ArchiveOptions) -> Result<ArchiveReport, Failure> {
    let settings = &project.settings;
    let (pool, templates, issues) = project.parts(crate::project::With::Content).content()?;
    let out = project
        .root
        .join(opts.out.as_ref().unwrap_or(&settings.archive_dir));
    refuse_private(project, &out)?;
    let mut report = ArchiveReport {
        out: out.clone(),
        ..ArchiveReport::default()
    };
    let dates = dates(project, opts, &issues)?;
    let published = match crate::ledger::read(project)? {
        Some(l) => l.published()?,
        None => HashMap::new(),
    };
    if dates.is_empty() {
        report.note = Some(if opts.all {
            "issues/ has no records; run `dailyissue plan` first".into()
        } else {
            "no issue has been delivered yet; pass --all to publish every planned issue".into()
        });
    }
    let mut entries = entries(settings, &pool, &issues, &dates)?;
    for e in &mut entries {
        e.published = published.get(&e.stored.record.date).copied();
    }
    let site = Site::new(project, &pool, &templates, &entries);
    let files = site.build().map_err(Failure::one)?;
    report.issues = entries.len();
    report.item_pages = site.item_pages();
    write::write(&out, &files, &mut report)?;
    Ok(report)
}

/// The days whose issues are published: those with a delivery in the
/// ledger, or every record with `--all`.
fn dates(
    project: &Project,
    opts: &ArchiveOptions,
    issues: &Issues,
) -> Result<BTreeSet<NaiveDate>, Failure> {
    if opts.all {
        return Ok(issues.records.keys().copied().collect());
    }
    Ok(match crate::ledger::read(project)? {
        Some(l) => l.delivered_dates()?.into_iter().collect(),
        None => BTreeSet::new(),
    })
}

/// The published issues of `dates`, oldest first, each with its
/// headlines; every problem of every record is reported at once.
fn entries<'a>(
    settings: &Settings,
    pool: &Pool,
    issues: &'a Issues,
    dates: &BTreeSet<NaiveDate>,
) -> Result<Vec<Entry<'a>>, Failure> {
    let mut problems = Vec::new();
    let mut entries = Vec::new();
    for (date, stored) in &issues.records {
        if !dates.contains(date) {
            continue;
        }
        problems.extend(
            stored
                .record
                .check_against(pool, &stored.path, &stored.text),
        );
        entries.push(Entry::new(settings, pool, stored, &mut problems));
    }
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(Failure::input(problems))
    }
}

impl<'a> Entry<'a> {
    /// `stored` with its subject (the record's own, else the `subject`
    /// template) and preheader; a template that fails adds its problem and
    /// leaves the line empty.
    fn new(
        settings: &Settings,
        pool: &Pool,
        stored: &'a Stored,
        problems: &mut Vec<Problem>,
    ) -> Entry<'a> {
        let record = &stored.record;
        let date = record.date;
        let ctx = context::headline_context(settings, pool, &record.picks, record.number, date);
        let mut line = |key: &str, template: &str| {
            context::headline(key, template, &ctx, date).unwrap_or_else(|p| {
                problems.push(p);
                String::new()
            })
        };
        let subject = match &record.subject {
            Some(s) => crate::project::subscribers::clean_line(s),
            None => line("subject", &settings.subject),
        };
        let preheader = line("preheader", &settings.preheader);
        Entry {
            stored,
            subject,
            preheader,
            published: None,
        }
    }
}

/// The archive as it would be with every record up to and including
/// `last` published, built in memory from parts already loaded (records
/// planned in memory included) and written nowhere: `preview --serve`
/// serves it as the web version of the issue it shows. Bytes by path
/// below the archive's root, as `archive` would write them.
pub fn in_memory(
    project: &Project,
    pool: &Pool,
    templates: &crate::project::templates::Templates,
    issues: &Issues,
    last: NaiveDate,
) -> Result<std::collections::BTreeMap<String, Vec<u8>>, Failure> {
    let dates: BTreeSet<NaiveDate> = issues.records.range(..=last).map(|(d, _)| *d).collect();
    let entries = entries(&project.settings, pool, issues, &dates)?;
    Site::new(project, pool, templates, &entries)
        .build()
        .map_err(Failure::one)
}

/// Refuses to publish a folder that holds the project's private data (the
/// settings, the list, the ledger, the outbox, the DKIM key): `archive`
/// writes there and `serve` hands out everything in it.
pub fn refuse_private(project: &Project, dir: &Path) -> Result<(), Failure> {
    let private = crate::project::settings::private_inside(&project.settings, &project.root, dir);
    if private.is_empty() {
        return Ok(());
    }
    Err(Failure::Usage(crate::problem::Usage::ArchiveHoldsPrivate {
        dir: dir.to_path_buf(),
        private,
    }))
}

//! An edition: one day's issue loaded with everything needed to render it
//! for readers — the pool, the templates, the record (written on first use,
//! as `plan` would), the list and the unsubscribe secret. `preview`, `check`
//! and `send` all start here, so they render exactly the same message.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, NaiveDate, Utc};

use crate::atomic;
use crate::mail::token::Secrets;
use crate::plan;
use crate::problem::{Failure, Problem};
use crate::project::Project;
use crate::project::content::Pool;
use crate::project::issue::{Issues, Stored};
use crate::project::subscribers::{List, Subscriber};
use crate::project::templates::Templates;
use crate::render::email::{Email, Inputs, Rendered};

/// Where the unsubscribe secret may fall back to the development one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUse {
    /// Nothing leaves the machine (preview, dry run, file transport, check).
    Local,
    /// Real mail: a missing secret is an error.
    Mail,
}

#[derive(Debug)]
pub struct Edition {
    pub email: Email,
    pub list: List,
    pub record: Stored,
    /// True when the record was created by this call (and written).
    pub created: bool,
    /// About the content (repeated items); see also [`Edition::secret_warning`].
    pub warnings: Vec<String>,
    /// The DNS record to publish, when `[dkim]` is set (its key loaded).
    pub dkim_record: Option<String>,
}

impl Edition {
    /// Set when the development secret stands in for a missing one: worth
    /// telling whoever previews or sends; `check` has its own view of it.
    pub fn secret_warning(&self) -> Option<String> {
        self.email.development_secret().then(|| {
            format!(
                "{} is not set: unsubscribe links use the development secret and will not verify in production",
                self.email.settings().unsubscribe.secret_env
            )
        })
    }

    /// Everything to tell the operator: the secret warning first, then the rest.
    pub fn notes(&self) -> Vec<String> {
        self.secret_warning()
            .into_iter()
            .chain(self.warnings.iter().cloned())
            .collect()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct EditionOptions {
    pub date: NaiveDate,
    pub sent_at: DateTime<Utc>,
    pub secrets: SecretUse,
    /// Write a missing issue record (preview, send) or keep it in memory (check).
    pub write_record: bool,
}

pub fn load(project: &Project, opts: EditionOptions) -> Result<Edition, Failure> {
    let mut problems = Vec::new();
    let pool = project.pool().map_err(|p| problems.extend(p)).ok();
    let templates = project.templates().map_err(|p| problems.extend(p)).ok();
    let issues = project.issues().map_err(|p| problems.extend(p)).ok();
    let list = project.subscribers().map_err(|p| problems.extend(p)).ok();
    let (Some(pool), Some(templates), Some(mut issues), Some(list)) =
        (pool, templates, issues, list)
    else {
        return Err(Failure::input(problems));
    };
    prepare(project, &pool, &templates, &mut issues, list, opts)
}

/// Builds the edition from a project already loaded (`check` loads it once
/// to report every problem). `issues` gains the day's record in memory when
/// it had none.
pub fn prepare(
    project: &Project,
    pool: &Pool,
    templates: &Templates,
    issues: &mut Issues,
    list: List,
    opts: EditionOptions,
) -> Result<Edition, Failure> {
    let settings = &project.settings;
    let mut warnings = Vec::new();
    let secrets = match (Secrets::from_env(settings), opts.secrets) {
        (Some(s), _) => s,
        (None, SecretUse::Local) => Secrets::development(),
        (None, SecretUse::Mail) => {
            return Err(Failure::Usage(format!(
                "{} is not set: sending real mail needs the unsubscribe secret in that environment variable (any long random string, e.g. from `openssl rand -hex 32`)",
                settings.unsubscribe.secret_env
            )));
        }
    };
    let planned = plan::ensure(project, pool, issues, opts.date)?;
    let Some(stored) = issues.get(opts.date).cloned() else {
        return Err(Failure::Other(anyhow::anyhow!(
            "issue record for {} vanished",
            opts.date
        )));
    };
    let problems = stored
        .record
        .check_against(pool, &stored.path, &stored.text);
    if !problems.is_empty() {
        return Err(Failure::input(problems));
    }
    if !planned.kept && opts.write_record {
        atomic::write(&project.path(&stored.path), stored.text.as_bytes())?;
    }
    for (section, slug, last) in &planned.repeats {
        warnings.push(format!(
            "section `{section}` has used every eligible item; {} repeats `{slug}` (last sent {last})",
            opts.date
        ));
    }
    let featured: HashSet<String> = issues
        .records
        .range(..=opts.date)
        .flat_map(|(_, s)| s.record.picks.values().cloned())
        .collect();
    let columns = list.columns.clone();
    let (dkim, dkim_record) = match &settings.dkim {
        Some(d) => {
            let key = crate::mail::dkim::load(d, &project.root, settings.feedback_id.is_some())
                .map_err(Failure::one)?;
            (Some(key.config), Some(key.dns_record))
        }
        None => (None, None),
    };
    let email = Email::prepare(Inputs {
        settings,
        pool,
        templates,
        record: &stored.record,
        featured: &featured,
        columns: &columns,
        secrets,
        sent_at: opts.sent_at,
        dkim,
    })
    .map_err(Failure::one)?;
    Ok(Edition {
        email,
        list,
        record: stored,
        created: !planned.kept,
        warnings,
        dkim_record,
    })
}

/// What the preflight found.
#[derive(Debug, Default)]
pub struct Preflight {
    pub problems: Vec<Problem>,
    pub warnings: Vec<String>,
    /// Active readers on the list.
    pub readers: usize,
    pub largest_html: usize,
    /// Checks the issue itself failed, so that the per-reader part blames a
    /// row only for what that row's values cause.
    failed: BTreeSet<Check>,
}

impl Preflight {
    /// The verdict for `send`: what makes the issue undeliverable stops the
    /// run (exit 2, nothing sent) exactly as it fails `check`.
    pub fn into_result(self) -> Result<Preflight, Failure> {
        if self.problems.is_empty() {
            Ok(self)
        } else {
            Err(Failure::input(self.problems))
        }
    }
}

/// Gmail clips messages whose HTML is larger than about 102 KB.
pub const MAX_HTML: usize = 100 * 1024;

/// One check on one reader's copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Check {
    Size,
    UnsubscribeHtml,
    UnsubscribeText,
    PostalHtml,
    PostalText,
}

/// The checks a reader's copy fails: size, the unsubscribe link in both
/// parts, the postal address in both parts.
fn failed_checks(email: &Email, reader: &Subscriber, copy: &Rendered) -> Vec<Check> {
    let settings = email.settings();
    let mut postal_html = String::new();
    crate::html::escape(&settings.postal_address, &mut postal_html);
    let url = email.unsubscribe_url(reader);
    let mut url_html = String::new();
    crate::html::escape(&url, &mut url_html);
    [
        (Check::Size, copy.html.len() <= MAX_HTML),
        (Check::UnsubscribeHtml, copy.html.contains(&url_html)),
        (Check::UnsubscribeText, copy.text.contains(&url)),
        (Check::PostalHtml, copy.html.contains(&postal_html)),
        (
            Check::PostalText,
            copy.text.contains(&settings.postal_address),
        ),
    ]
    .into_iter()
    .filter_map(|(check, ok)| (!ok).then_some(check))
    .collect()
}

/// A failed check as a problem of the issue, blamed on the template.
fn issue_problem(email: &Email, check: Check, largest_html: usize) -> Problem {
    let html = email.templates().origin("email.html");
    let text = email.templates().origin("email.txt");
    match check {
        Check::Size => Problem::new(
            html,
            None,
            format!(
                "the HTML of the issue of {} is {} KB; Gmail clips messages over about 102 KB, hiding the footer and unsubscribe link. Shorten the content or the template",
                email.date,
                largest_html / 1024
            ),
        ),
        Check::UnsubscribeHtml => Problem::new(
            html,
            None,
            "the HTML part has no unsubscribe link: add <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a> to the footer",
        ),
        Check::UnsubscribeText => Problem::new(
            text,
            None,
            "the text part has no unsubscribe link: add {{ unsubscribe_url }} to the footer",
        ),
        Check::PostalHtml => Problem::new(
            html,
            None,
            "the HTML part does not show the postal address (required for bulk mail): add {{ newsletter.postal_address }} to the footer",
        ),
        Check::PostalText => Problem::new(
            text,
            None,
            "the text part does not show the postal address (required for bulk mail): add {{ newsletter.postal_address }} to the footer",
        ),
    }
}

/// A failed check as a problem of one row: the issue passes it, this
/// reader's values make it fail.
fn row_problem(email: &Email, reader: &Subscriber, check: Check, copy: &Rendered) -> Problem {
    let what = match check {
        Check::Size => format!(
            "is {} KB, over the 100 KB at which Gmail clips messages, because of this row's values; shorten them",
            copy.html.len() / 1024
        ),
        Check::UnsubscribeHtml => {
            "has no unsubscribe link in its HTML part: the template drops it for this row's values"
                .into()
        }
        Check::UnsubscribeText => {
            "has no unsubscribe link in its text part: the template drops it for this row's values"
                .into()
        }
        Check::PostalHtml | Check::PostalText => {
            "does not show the postal address: the template drops it for this row's values".into()
        }
    };
    Problem::at(
        &email.settings().subscribers,
        reader.line as usize,
        format!("the copy for {} {what}", reader.email),
    )
}

/// The issue-level preflight, run by both `check` and `send`: what mailbox
/// providers and the law look for that makes the issue itself
/// undeliverable — size, the unsubscribe link in both parts, the postal
/// address, the list headers, the DKIM signature. It renders one reader per
/// personalisation *shape* (which personal values are empty), so its cost
/// does not grow with the list; warns on subject and preheader lengths and
/// plain-http links.
pub fn preflight(edition: &Edition) -> Preflight {
    let mut report = Preflight::default();
    let email = &edition.email;
    // One reader per shape; an empty list still gets its issue checked, as
    // the sample reader.
    let sample = crate::render::email::sample_reader(edition.list.columns.len());
    let mut keys = HashSet::new();
    let mut shapes: Vec<&Subscriber> = Vec::new();
    for reader in edition.list.active() {
        report.readers += 1;
        if keys.insert(email.shape_key(reader)) {
            shapes.push(reader);
        }
    }
    if shapes.is_empty() {
        report.warnings.push(
            "the subscriber list has no active subscribers; checked the issue as a sample reader"
                .into(),
        );
        shapes.push(&sample);
    }
    // The first reader's HTML, kept for the link check below.
    let mut first_html: Option<String> = None;
    let mut render_errors = HashSet::new();
    for reader in &shapes {
        match email.render(reader) {
            Ok(copy) => {
                report.largest_html = report.largest_html.max(copy.html.len());
                report.failed.extend(failed_checks(email, reader, &copy));
                if first_html.is_none() {
                    first_html = Some(copy.html);
                }
            }
            Err(p) => {
                if render_errors.insert(p.to_string()) {
                    report.problems.push(p);
                }
            }
        }
    }
    for check in report.failed.clone() {
        report
            .problems
            .push(issue_problem(email, check, report.largest_html));
    }
    match email.message(shapes[0]) {
        Ok(message) => {
            let raw = String::from_utf8_lossy(&message.formatted()).into_owned();
            let head = raw
                .split("\r\n\r\n")
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            for h in ["list-unsubscribe:", "list-unsubscribe-post:", "list-id:"] {
                if !head.contains(&format!("\r\n{h}")) {
                    report.problems.push(Problem::new(
                        &edition.record.path,
                        None,
                        format!("messages lack the {} header", h.trim_end_matches(':')),
                    ));
                }
            }
            if email.dkim().is_some() && !head.contains("dkim-signature:") {
                report.problems.push(Problem::new(
                    &edition.record.path,
                    None,
                    "messages are not DKIM-signed although [dkim] is set",
                ));
            }
        }
        Err(crate::render::email::CopyError::Render(p)) => {
            if render_errors.insert(p.to_string()) {
                report.problems.push(p);
            }
        }
        Err(crate::render::email::CopyError::Build(e)) => {
            report
                .problems
                .push(Problem::new(&edition.record.path, None, e.to_string()));
        }
    }
    let subject_len = email.subject.chars().count();
    if subject_len > 78 {
        report.warnings.push(format!(
            "the subject of {} is {subject_len} characters; phones show about 40-60 and long subjects get cut: \"{}\"",
            email.date, email.subject
        ));
    }
    let pre_len = email.preheader.chars().count();
    if !(40..=140).contains(&pre_len) {
        report.warnings.push(format!(
            "the preheader of {} is {pre_len} characters; inboxes show 40-140, so aim for that range",
            email.date
        ));
    }
    if let Some(html) = &first_html {
        let plain: Vec<&str> = html
            .split("href=\"http://")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .take(3)
            .collect();
        if !plain.is_empty() {
            report.warnings.push(format!(
                "links without https (mail clients warn, some providers score them as spam): http://{}",
                plain.join(", http://")
            ));
        }
    }
    report
}

/// The per-reader preflight, `check` only: renders the issue for every
/// active reader and reports, as a problem of that CSV row, what only the
/// row's values cause (checks the issue itself passed). `send` skips no one
/// for these: the issue-level part has already vouched for every shape, and
/// the loader's field limit bounds what a row can add.
pub fn preflight_readers(edition: &Edition, report: &mut Preflight) {
    let email = &edition.email;
    let known: HashSet<String> = report.problems.iter().map(|p| p.to_string()).collect();
    for reader in edition.list.active() {
        let copy = match email.render(reader) {
            Ok(copy) => copy,
            Err(p) => {
                if !known.contains(&p.to_string()) {
                    report.problems.push(Problem::at(
                        &email.settings().subscribers,
                        reader.line as usize,
                        format!("this row's values break the template: {p}"),
                    ));
                }
                continue;
            }
        };
        report.largest_html = report.largest_html.max(copy.html.len());
        for check in failed_checks(email, reader, &copy) {
            if !report.failed.contains(&check) {
                report
                    .problems
                    .push(row_problem(email, reader, check, &copy));
            }
        }
    }
}

//! An edition: one day's issue loaded with everything needed to render it
//! for readers — the pool, the templates, the record (written on first use,
//! as `plan` would), the list and the unsubscribe secret. `preview`, `check`
//! and `send` all start here, so they render exactly the same message.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};

use crate::atomic;
use crate::content::Pool;
use crate::email::{Email, Inputs};
use crate::issue::{Issues, Stored};
use crate::plan;
use crate::problem::{Failure, Problem};
use crate::project::Project;
use crate::subscribers::List;
use crate::templates::Templates;
use crate::unsubscribe::Secrets;

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
            let key = crate::dkim::load(d, &project.root, settings.feedback_id.is_some())
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

/// What `check` found rendering the edition for every reader.
#[derive(Debug, Default)]
pub struct Preflight {
    pub problems: Vec<Problem>,
    pub warnings: Vec<String>,
    pub readers: usize,
    pub largest_html: usize,
}

/// Gmail clips messages whose HTML is larger than about 102 KB.
pub const MAX_HTML: usize = 100 * 1024;

/// Renders the edition for every active reader and checks what mailbox
/// providers and the law look for: size, unsubscribe link in both parts,
/// postal address, list headers; warns on subject and preheader lengths and
/// plain-http links.
pub fn preflight(edition: &Edition) -> Preflight {
    let mut report = Preflight::default();
    let email = &edition.email;
    let settings = email.settings();
    let html_origin = email.templates().origin("email.html");
    let text_origin = email.templates().origin("email.txt");
    let mut postal_html = String::new();
    crate::email::html_escape(&settings.postal_address, &mut postal_html);
    let mut seen = std::collections::HashSet::new();
    let mut once = |report: &mut Preflight, key: &str, p: Problem| {
        if seen.insert(key.to_string()) {
            report.problems.push(p);
        }
    };
    // An empty list still gets its issue checked, as the sample reader.
    let sample = crate::email::sample_reader(edition.list.columns.len());
    let active: Vec<&crate::subscribers::Subscriber> = edition.list.active().collect();
    report.readers = active.len();
    if active.is_empty() {
        report.warnings.push(
            "the subscriber list has no active subscribers; checked the issue as a sample reader"
                .into(),
        );
    }
    let readers = if active.is_empty() {
        vec![&sample]
    } else {
        active
    };
    let first = readers.first().copied();
    // The first reader's HTML, kept for the link check below.
    let mut first_html: Option<String> = None;
    for (i, reader) in readers.into_iter().enumerate() {
        let r = match email.render(reader) {
            Ok(r) => r,
            Err(p) => {
                let key = p.to_string();
                once(&mut report, &key, p);
                continue;
            }
        };
        report.largest_html = report.largest_html.max(r.html.len());
        if i == 0 {
            first_html = Some(r.html.clone());
        }
        let url = email.unsubscribe_url(reader);
        let mut url_html = String::new();
        crate::email::html_escape(&url, &mut url_html);
        if !r.html.contains(&url_html) {
            once(
                &mut report,
                "unsub-html",
                Problem::new(
                    &html_origin,
                    None,
                    "the HTML part has no unsubscribe link: add <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a> to the footer",
                ),
            );
        }
        if !r.text.contains(&url) {
            once(
                &mut report,
                "unsub-text",
                Problem::new(
                    &text_origin,
                    None,
                    "the text part has no unsubscribe link: add {{ unsubscribe_url }} to the footer",
                ),
            );
        }
        if !r.html.contains(&postal_html) {
            once(
                &mut report,
                "postal-html",
                Problem::new(
                    &html_origin,
                    None,
                    "the HTML part does not show the postal address (required for bulk mail): add {{ newsletter.postal_address }} to the footer",
                ),
            );
        }
        if !r.text.contains(&settings.postal_address) {
            once(
                &mut report,
                "postal-text",
                Problem::new(
                    &text_origin,
                    None,
                    "the text part does not show the postal address (required for bulk mail): add {{ newsletter.postal_address }} to the footer",
                ),
            );
        }
    }
    if report.largest_html > MAX_HTML {
        report.problems.push(Problem::new(
            &html_origin,
            None,
            format!(
                "the HTML of the issue of {} is {} KB; Gmail clips messages over about 102 KB, hiding the footer and unsubscribe link. Shorten the content or the template",
                email.date,
                report.largest_html / 1024
            ),
        ));
    }
    let sample = first.cloned().unwrap_or_else(|| sample.clone());
    match crate::message::build(email, &sample) {
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
        Err(p) => report.problems.push(p),
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

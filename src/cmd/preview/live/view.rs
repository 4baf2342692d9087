//! What the live preview shows, made from the files as they are when it
//! is asked for: one reader's copy of the issue of a day (through
//! `cmd::day_from`, exactly as `preview` and `send` make it), the web
//! archive up to that issue, and whose an unsubscribe link is. Nothing is
//! written: a day without a record is planned in memory, and the ledger
//! is never opened. Every problem comes back as its `path:line: message`
//! line, all of them, for the page to show.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};

use crate::cmd::preview::{Format, PreviewOptions};
use crate::cmd::{DayOptions, SecretUse, day_from};
use crate::mail::token;
use crate::problem::Failure;
use crate::project::subscribers::ListStatus;
use crate::project::{Project, With};

/// What was made, or every problem that stopped it, one line each.
pub(super) type Outcome<T> = Result<T, Vec<String>>;

/// How many readers the picker offers (any other address can be typed).
const PICKER_READERS: usize = 500;

/// One reader's copy of the issue of a day.
#[derive(Debug)]
pub(super) struct EmailView {
    pub date: NaiveDate,
    pub number: u32,
    pub subject: String,
    /// The reader's address and name.
    pub address: String,
    pub name: String,
    /// The HTML and text parts, decoded, and the whole signed message.
    pub html: String,
    pub text: String,
    pub message: Vec<u8>,
    /// Worth knowing, none of them a reason not to show the email.
    pub notes: Vec<String>,
    /// The days with a record (this one included), and their numbers.
    pub dates: Vec<(NaiveDate, u32)>,
    /// The first readers of the list: address, name, status.
    pub readers: Vec<(String, String, &'static str)>,
    /// Rows of the list the picker does not offer.
    pub more_readers: usize,
    pub links: Links,
}

/// Where the email's links lead, to point them into the preview.
#[derive(Debug, Clone)]
pub(super) struct Links {
    /// The newsletter's `url` (the web archive), without a trailing `/`.
    site: String,
    /// The unsubscribe URL up to its `{token}`.
    unsubscribe: String,
    /// The feedback URL up to its `{token}` (empty with `[feedback]` off).
    feedback: String,
}

/// Failures as the lines the page shows.
fn lines(failure: Failure) -> Vec<String> {
    match failure {
        Failure::Input(problems) => problems.iter().map(ToString::to_string).collect(),
        Failure::Other(e) => vec![format!("{e:#}")],
        other => vec![other.to_string()],
    }
}

fn status(s: &ListStatus) -> &'static str {
    match s {
        ListStatus::Active => "active",
        ListStatus::Unsubscribed => "unsubscribed",
        ListStatus::Bounced => "bounced",
    }
}

/// What the page says above the email: a record kept in memory, an
/// unlisted reader, what `send` would refuse or warn about, and the list's
/// row problems.
fn notes(
    day: &crate::cmd::Day,
    who: &crate::project::subscribers::Subscriber,
    reader: Option<&str>,
) -> Vec<String> {
    let email = &day.edition.email;
    let list = &day.loaded.list;
    let mut notes = Vec::new();
    if day.created {
        notes.push(format!(
            "{} does not exist yet: this is the issue `plan` or `send` would make now, kept in memory (the preview writes nothing)",
            day.edition.record.path.display()
        ));
    }
    // A listed reader has the line of their row; anyone else none.
    if who.line == 0 {
        notes.push(match reader {
            Some(_) => format!(
                "{} is not on the list: rendered for an unnamed reader",
                who.email
            ),
            None => "the list has no active reader: rendered for a sample reader".to_string(),
        });
    }
    // What `send` checks first (size, unsubscribe link, postal address,
    // list headers, DKIM), as `check` reports it.
    let preflight = crate::render::preflight::preflight(email, list, &day.edition.record.path);
    notes.extend(
        preflight
            .problems
            .iter()
            .map(|p| format!("{p} (`send` refuses the issue until this is fixed)")),
    );
    notes.extend(preflight.warnings);
    notes.extend(day.secret_note.clone());
    notes.extend(day.repeat_notes.iter().cloned());
    notes.extend(
        list.problems
            .iter()
            .map(|p| format!("{p} (this row is left out when sending)")),
    );
    notes
}

/// The issue of `date` as `reader` (an address; else the first active
/// reader, as `preview` chooses) gets it.
pub(super) fn email(
    root: &Path,
    now: DateTime<Utc>,
    date: NaiveDate,
    reader: Option<&str>,
) -> Outcome<EmailView> {
    let project = Project::open(root.to_path_buf()).map_err(lines)?;
    let loaded = project.load().map_err(lines)?;
    let day = day_from(
        &project,
        loaded,
        DayOptions {
            date,
            now,
            secrets: SecretUse::Local,
            write_record: false,
        },
    )
    .map_err(lines)?;
    let list = &day.loaded.list;
    let opts = PreviewOptions {
        date: Some(date),
        today: date,
        now,
        reader: reader.map(str::to_string),
        format: Some(Format::Html),
        out: None,
        open: false,
    };
    let who = super::super::reader(&project, list, &opts).map_err(lines)?;
    let email = &day.edition.email;
    let rendered = email.render(&who).map_err(|p| vec![p.to_string()])?;
    let message = email.message(&who).map_err(|e| lines(e.into()))?;

    let notes = notes(&day, &who, reader);

    let readers: Vec<(String, String, &'static str)> = list
        .readers()
        .take(PICKER_READERS)
        .map(|r| (r.email.to_string(), r.name.clone(), status(&r.status)))
        .collect();
    Ok(EmailView {
        date,
        number: day.edition.record.record.number,
        subject: email.subject.clone(),
        address: who.email.to_string(),
        name: who.name.clone(),
        html: rendered.html,
        text: rendered.text,
        message,
        notes,
        dates: day
            .loaded
            .issues
            .records
            .iter()
            .map(|(d, s)| (*d, s.record.number))
            .collect(),
        more_readers: list.rows.saturating_sub(readers.len()),
        readers,
        links: Links::of(&project),
    })
}

/// The web archive with every issue up to and including `date` (that
/// day's planned in memory if it has no record): bytes by path, and
/// where its links lead.
pub(super) fn web(root: &Path, date: NaiveDate) -> Outcome<(BTreeMap<String, Vec<u8>>, Links)> {
    let project = Project::open(root.to_path_buf()).map_err(lines)?;
    let (pool, templates, mut issues) = project.parts(With::Content).content().map_err(lines)?;
    crate::plan::ensure(&project.settings, &pool, &mut issues, date).map_err(lines)?;
    let files =
        crate::archive::in_memory(&project, &pool, &templates, &issues, date).map_err(lines)?;
    Ok((files, Links::of(&project)))
}

/// The newsletter's name, and the day of a feedback link if it is genuine
/// (see [`unsubscriber`]).
pub(super) fn feedback(root: &Path, token: &str) -> Outcome<(String, Option<NaiveDate>)> {
    let project = Project::open(root.to_path_buf()).map_err(lines)?;
    let settings = &project.settings;
    let secrets = crate::cmd::secrets(&project, SecretUse::Local).map_err(lines)?;
    let day = token::verify_feedback(&secrets, &settings.list_id, token).map(|(_, d)| d);
    Ok((settings.name.clone(), day))
}

/// Who an unsubscribe link is for, checked the way `serve` checks it
/// (with the development secret where none is set, as the preview's
/// links are made): the newsletter's name, and the reader's address if
/// the token is genuine. `rest` is the link after the preview's
/// `/unsubscribe/`.
pub(super) fn unsubscriber(root: &Path, rest: &str) -> Outcome<(String, Option<String>)> {
    let project = Project::open(root.to_path_buf()).map_err(lines)?;
    let settings = &project.settings;
    let secrets = crate::cmd::secrets(&project, SecretUse::Local).map_err(lines)?;
    // What follows `{token}` in the URL, if it is part of the path.
    let after = settings
        .unsubscribe
        .url
        .split_once("{token}")
        .map_or("", |(_, after)| after);
    let after = after.split(['?', '#']).next().unwrap_or("");
    let token = rest.strip_suffix(after).unwrap_or(rest);
    let address = token::verify(&secrets, &settings.list_id, token).map(|k| k.to_string());
    Ok((settings.name.clone(), address))
}

impl Links {
    pub(super) fn of(project: &Project) -> Links {
        let settings = &project.settings;
        let before_token = |url: &str| {
            url.split_once("{token}")
                .map_or_else(String::new, |(before, _)| before.to_string())
        };
        Links {
            site: settings.url.trim_end_matches('/').to_string(),
            unsubscribe: before_token(&settings.unsubscribe.url),
            feedback: if settings.feedback.enabled {
                before_token(&settings.feedback.url)
            } else {
                String::new()
            },
        }
    }

    /// HTML (the email, or a web page) with its links into the preview, so
    /// that nothing clicked or submitted there reaches the real site:
    /// unsubscribe links to `/unsubscribe/TOKEN`, feedback links to
    /// `/feedback/TOKEN`, the web version and every other page of the
    /// archive (its images, its signup form) to `web` (`/web/DATE/`).
    /// Only attribute values that start with those URLs change.
    pub(super) fn localise(&self, html: &str, web: &str) -> String {
        let mut out = html.to_string();
        for attr in ["href=\"", "src=\"", "action=\""] {
            for (url, local) in [
                (&self.unsubscribe, "/unsubscribe/"),
                (&self.feedback, "/feedback/"),
            ] {
                for spelt in spellings(url) {
                    out = out.replace(&format!("{attr}{spelt}"), &format!("{attr}{local}"));
                }
            }
            for site in spellings(&self.site) {
                out = out.replace(&format!("{attr}{site}/"), &format!("{attr}{web}"));
                out = out.replace(&format!("{attr}{site}\""), &format!("{attr}{web}\""));
            }
        }
        out
    }
}

/// A URL as it may appear in an attribute: as is, and HTML-escaped.
fn spellings(url: &str) -> Vec<String> {
    if url.is_empty() {
        return Vec::new();
    }
    let escaped = crate::html::escaped(url);
    if escaped == url {
        vec![url.to_string()]
    } else {
        vec![url.to_string(), escaped]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_lead_into_the_preview() {
        let links = Links {
            site: "https://daily.example.com".into(),
            unsubscribe: "https://daily.example.com/u/".into(),
            feedback: "https://daily.example.com/feedback/".into(),
        };
        let html = concat!(
            r#"<a href="https://daily.example.com/issues/2027-03-01/">View in browser</a>"#,
            r#"<a href="https://daily.example.com/glossary/prompt/">Prompt</a>"#,
            r#"<a href="https://daily.example.com">Home</a>"#,
            r#"<img src="https://daily.example.com/logo.png">"#,
            r#"<a href="https://daily.example.com/u/TOKEN">Unsubscribe</a>"#,
            r#"<a href="https://daily.example.com/feedback/T2?vote=yes">Yes</a>"#,
            r#"<form action="https://daily.example.com/subscribe" method="post">"#,
            r#"<a href="https://chatgpt.com">ChatGPT</a>"#,
            r#"<p>https://daily.example.com/issues/ in text stays</p>"#,
        );
        assert_eq!(
            links.localise(html, "/web/2027-03-01/"),
            concat!(
                r#"<a href="/web/2027-03-01/issues/2027-03-01/">View in browser</a>"#,
                r#"<a href="/web/2027-03-01/glossary/prompt/">Prompt</a>"#,
                r#"<a href="/web/2027-03-01/">Home</a>"#,
                r#"<img src="/web/2027-03-01/logo.png">"#,
                r#"<a href="/unsubscribe/TOKEN">Unsubscribe</a>"#,
                r#"<a href="/feedback/T2?vote=yes">Yes</a>"#,
                r#"<form action="/web/2027-03-01/subscribe" method="post">"#,
                r#"<a href="https://chatgpt.com">ChatGPT</a>"#,
                r#"<p>https://daily.example.com/issues/ in text stays</p>"#,
            )
        );
    }

    #[test]
    fn an_unsubscribe_link_off_the_site_is_found_too() {
        let links = Links {
            site: "https://daily.example.com".into(),
            unsubscribe: "https://lists.example.org/out?list=a&t=".into(),
            feedback: String::new(),
        };
        let html = r#"<a href="https://lists.example.org/out?list=a&amp;t=TOKEN">x</a>"#;
        assert_eq!(
            links.localise(html, "/web/2027-03-01/"),
            r#"<a href="/unsubscribe/TOKEN">x</a>"#
        );
    }
}

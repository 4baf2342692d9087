//! The day's email, prepared once per issue and personalised per reader.
//!
//! [`Email::prepare`] does all the expensive work once: Markdown to HTML and
//! text, the template context, and (per *shape*: which personal values are
//! empty) the template render and CSS inlining. Personalising a reader's
//! copy is then splicing their values into pre-encoded segments (see
//! `render::splice`, which says why and when it falls back to a full render
//! per reader), so no template, Markdown or CSS work happens per recipient.
//! This module owns the personal values (their slots, the unsubscribe URL),
//! the cache of shapes, and the copy as a signed RFC 5322 message.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use minijinja::Value;

use crate::mail::mime;
use crate::mail::token::{self, Secrets};
use crate::problem::Problem;
use crate::project::content::Pool;
use crate::project::issue::IssueRecord;
use crate::project::settings::Settings;
use crate::project::subscribers::{Subscriber, clean_line};
use crate::project::templates::Templates;
use crate::render::context;
use crate::render::splice::{self, Shape};

/// Fixed slots; CSV columns follow from index `FIXED`.
const EMAIL: usize = 0;
const NAME: usize = 1;
const FIRST_NAME: usize = 2;
const UNSUBSCRIBE: usize = 3;
/// The reader's vote link for this issue; empty with `[feedback]` off.
const FEEDBACK: usize = 4;
const FIXED: usize = 5;

/// A reader's copy: both bodies, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub html: String,
    pub text: String,
}

/// The issue, prepared for personalisation.
pub struct Email {
    pub date: NaiveDate,
    pub number: u32,
    pub subject: String,
    pub preheader: String,
    pub web_url: String,
    settings: Settings,
    templates: Templates,
    /// Everything in the template context except the personal values.
    context: BTreeMap<String, Value>,
    columns: Vec<String>,
    /// Where a `first_name` column is among `columns`, if there is one.
    first_name_column: Option<usize>,
    secrets: Secrets,
    shapes: Mutex<HashMap<Vec<bool>, Arc<Shape>>>,
    /// Whether the templates only print personal values or test them for
    /// emptiness (see `render::splice`); otherwise every reader is rendered
    /// in full.
    splice: bool,
    pub sent_at: DateTime<Utc>,
    /// The headers every copy shares.
    headers: mime::Issue,
    dkim: crate::mail::dkim::Keys,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("date", &self.date)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Inputs of [`Email::prepare`].
#[derive(Debug)]
pub struct Inputs<'a> {
    pub settings: &'a Settings,
    pub pool: &'a Pool,
    pub templates: &'a Templates,
    pub record: &'a IssueRecord,
    /// Items featured by issues up to and including this one, so the email
    /// links only archive pages that exist.
    pub featured: &'a context::Featured,
    /// Names of the CSV's extra columns.
    pub columns: &'a [String],
    pub secrets: Secrets,
    /// The Date header of every message of this run.
    pub sent_at: DateTime<Utc>,
    /// Sign every message with each of these.
    pub dkim: crate::mail::dkim::Keys,
}

impl Email {
    /// The issue's headlines, template context and shared headers, made
    /// once; each shape is rendered the first time a reader of it is seen
    /// (or up front with [`Email::prepare_for`]).
    pub fn prepare(inputs: Inputs<'_>) -> Result<Email, Problem> {
        let Inputs {
            settings,
            pool,
            templates,
            record,
            featured,
            columns,
            secrets,
            sent_at,
            dkim,
        } = inputs;
        let date = record.date;
        let (subject, preheader) = headlines(settings, pool, record)?;
        let web_url = context::web_url(settings, date);
        let mut shared = context::email_sections(settings, pool, &record.picks, featured);
        shared.insert(
            "issue".into(),
            context::email_issue(
                record,
                &subject,
                &preheader,
                &web_url,
                context::reading_minutes(pool, &record.picks),
            ),
        );
        shared.insert(
            "newsletter".into(),
            context::email_newsletter(settings, secrets.development),
        );
        Ok(Email {
            headers: headers(settings, &subject, sent_at, date),
            date,
            number: record.number,
            subject,
            preheader,
            web_url,
            settings: settings.clone(),
            templates: templates.clone(),
            context: shared,
            columns: columns.to_vec(),
            first_name_column: columns.iter().position(|c| c == "first_name"),
            secrets,
            shapes: Mutex::new(HashMap::new()),
            splice: templates.personal_values_only_printed(),
            sent_at,
            dkim,
        })
    }

    /// The personal values of a reader, by slot. The unsubscribe URL is
    /// passed in so a caller that also needs the token computes the HMAC once.
    fn values(&self, reader: &Subscriber, unsubscribe_url: String) -> Vec<String> {
        let mut v = Vec::with_capacity(FIXED + self.columns.len());
        v.push(reader.email.to_string());
        v.push(reader.name.clone());
        v.push(clean_line(reader.first_name(self.first_name_column)));
        v.push(unsubscribe_url);
        v.push(self.feedback_url(reader));
        for i in 0..self.columns.len() {
            v.push(clean_line(reader.fields.get(i).map_or("", String::as_str)));
        }
        v
    }

    pub fn token(&self, reader: &Subscriber) -> String {
        token::token(&self.secrets, &self.settings.list_id, &reader.key)
    }

    pub fn unsubscribe_url(&self, reader: &Subscriber) -> String {
        self.unsubscribe_url_for(&self.token(reader))
    }

    /// The reader's "Was today's issue useful?" link for this issue (the
    /// vote is added as `?vote=yes` or `no`); empty with `[feedback]` off.
    pub fn feedback_url(&self, reader: &Subscriber) -> String {
        let feedback = &self.settings.feedback;
        if !feedback.enabled {
            return String::new();
        }
        let token = token::feedback_token(
            &self.secrets,
            &self.settings.list_id,
            &reader.key,
            self.date,
        );
        feedback.url.replace("{token}", &token)
    }

    /// The unsubscribe URL carrying `token` (from [`Email::token`]).
    pub fn unsubscribe_url_for(&self, token: &str) -> String {
        self.settings.unsubscribe.url.replace("{token}", token)
    }

    /// The template context for given personal values (markers or real values).
    fn context_with(&self, values: &[String]) -> Value {
        let mut subscriber: BTreeMap<String, Value> = BTreeMap::new();
        for (i, c) in self.columns.iter().enumerate() {
            subscriber.insert(c.clone(), Value::from(values[FIXED + i].as_str()));
        }
        subscriber.insert("email".into(), Value::from(values[EMAIL].as_str()));
        subscriber.insert("name".into(), Value::from(values[NAME].as_str()));
        subscriber.insert(
            "first_name".into(),
            Value::from(values[FIRST_NAME].as_str()),
        );
        let mut ctx = self.context.clone();
        ctx.insert("subscriber".into(), Value::from(subscriber));
        ctx.insert(
            "unsubscribe_url".into(),
            Value::from(values[UNSUBSCRIBE].as_str()),
        );
        ctx.insert(
            "feedback_url".into(),
            Value::from(values[FEEDBACK].as_str()),
        );
        Value::from(ctx)
    }

    /// Renders both templates in full for a context, inlining CSS.
    fn render_full(&self, ctx: &Value) -> Result<Rendered, Problem> {
        let at = format!("issue of {}", self.date);
        let env = self.templates.env();
        let html = env
            .get_template("email.html")
            .and_then(|t| t.render(ctx))
            .map_err(|e| self.templates.error(&e, &at))?;
        let text = env
            .get_template("email.txt")
            .and_then(|t| t.render(ctx))
            .map_err(|e| self.templates.error(&e, &at))?;
        Ok(Rendered {
            html: inline_css(&html).map_err(|e| {
                Problem::new(
                    self.templates.origin("email.html"),
                    None,
                    format!("CSS inlining failed ({at}): {e}"),
                )
            })?,
            text: tidy_text(&text),
        })
    }

    /// The shape of a reader with `values`: rendered with markers the first
    /// time it is seen, then taken from the cache.
    fn shape(&self, values: &[String]) -> Result<Arc<Shape>, Problem> {
        let key: Vec<bool> = values.iter().map(String::is_empty).collect();
        if let Some(shape) = self
            .shapes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return Ok(shape.clone());
        }
        let full = self.render_full(&self.context_with(&splice::markers(&key)))?;
        let shape = Arc::new(Shape::cut(
            &full.html,
            &full.text,
            values.len(),
            self.splice,
        ));
        self.shapes
            .lock()
            // A panic elsewhere cannot leave the cache half-written: an
            // entry is inserted whole or not at all.
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, shape.clone());
        Ok(shape)
    }

    /// Renders every shape the list needs, so template errors surface before
    /// anything is sent.
    pub fn prepare_for<'a>(
        &self,
        readers: impl IntoIterator<Item = &'a Subscriber>,
    ) -> Result<(), Problem> {
        for r in readers {
            self.shape(&self.values(r, self.unsubscribe_url(r)))?;
        }
        Ok(())
    }

    /// A reader's copy, decoded (for previews and checks).
    pub fn render(&self, reader: &Subscriber) -> Result<Rendered, Problem> {
        let values = self.values(reader, self.unsubscribe_url(reader));
        match &*self.shape(&values)? {
            Shape::Spliced { html, text } => Ok(Rendered {
                html: splice::splice(html, &values, true),
                text: splice::splice(text, &values, false),
            }),
            Shape::Direct => self.render_full(&self.context_with(&values)),
        }
    }

    /// Both bodies quoted-printable encoded, ready for MIME, with the
    /// reader's unsubscribe URL (already computed by the caller).
    pub fn encoded_bodies(
        &self,
        reader: &Subscriber,
        unsubscribe_url: &str,
    ) -> Result<(Vec<u8>, Vec<u8>), Problem> {
        let values = self.values(reader, unsubscribe_url.to_string());
        match &*self.shape(&values)? {
            Shape::Spliced { html, text } => Ok((
                splice::splice_encoded(text, &values, false),
                splice::splice_encoded(html, &values, true),
            )),
            Shape::Direct => {
                let r = self.render_full(&self.context_with(&values))?;
                let mut text = Vec::new();
                crate::mail::qp::encode(&r.text, &mut text);
                let mut html = Vec::new();
                crate::mail::qp::encode(&r.html, &mut html);
                Ok((text, html))
            }
        }
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn domain(&self) -> &str {
        &self.headers.domain
    }

    /// The Message-ID of `reader`'s copy: the same on every run.
    pub fn message_id(&self, reader: &Subscriber) -> String {
        mime::message_id(self.date, &reader.key, &self.headers.domain)
    }

    /// `reader`'s copy as a complete RFC 5322 message, DKIM-signed with
    /// every configured key.
    pub fn message(&self, reader: &Subscriber) -> Result<Vec<u8>, CopyError> {
        // One HMAC per message: the token feeds both bodies and both headers.
        let token = self.token(reader);
        let unsubscribe_url = self.unsubscribe_url_for(&token);
        let (text_qp, html_qp) = self.encoded_bodies(reader, &unsubscribe_url)?;
        let name = (!reader.name.is_empty()).then(|| reader.name.clone());
        let copy = mime::Copy {
            to: lettre::message::Mailbox::new(name, reader.email.clone()),
            key: reader.key.clone(),
            token,
            unsubscribe_url,
            text_qp,
            html_qp,
        };
        let bytes = mime::build(&self.headers, copy)?.formatted();
        self.dkim.sign(bytes).map_err(CopyError::Sign)
    }

    /// Whether messages are DKIM-signed.
    pub fn signed(&self) -> bool {
        !self.dkim.is_empty()
    }

    pub fn development_secret(&self) -> bool {
        self.secrets.development
    }
}

/// The issue's subject (the record's own, else the `subject` template)
/// and preheader.
fn headlines(
    settings: &Settings,
    pool: &Pool,
    record: &IssueRecord,
) -> Result<(String, String), Problem> {
    let date = record.date;
    let ctx = context::headline_context(settings, pool, &record.picks, record.number, date);
    let subject = match &record.subject {
        Some(s) => clean_line(s),
        None => context::headline("subject", &settings.subject, &ctx, date)?,
    };
    let preheader = context::headline("preheader", &settings.preheader, &ctx, date)?;
    Ok((subject, preheader))
}

/// The headers every copy of the issue shares.
fn headers(
    settings: &Settings,
    subject: &str,
    sent_at: DateTime<Utc>,
    date: NaiveDate,
) -> mime::Issue {
    mime::Issue {
        from: settings.from.clone(),
        reply_to: settings.reply_to.clone(),
        subject: subject.to_string(),
        date: sent_at.into(),
        issue_date: date,
        domain: settings.from.email.domain().to_string(),
        list_id: mime::Issue::list_id_header(&settings.name, &settings.list_id),
        unsubscribe_mailto: settings.unsubscribe.mailto.clone(),
        feedback_id: settings.feedback_id.as_deref().map(clean_line),
    }
}

/// Why a reader's copy could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A template failed for this reader's values.
    #[error("{0}")]
    Render(Problem),
    /// lettre refused a header.
    #[error(transparent)]
    Build(#[from] mime::BuildError),
    /// A DKIM key could not sign.
    #[error("{0}")]
    Sign(String),
}

impl From<CopyError> for crate::problem::Failure {
    fn from(e: CopyError) -> crate::problem::Failure {
        match e {
            CopyError::Render(p) => crate::problem::Failure::one(p),
            CopyError::Build(b) => crate::problem::Failure::Other(b.into()),
            CopyError::Sign(e) => crate::problem::Failure::Other(anyhow::anyhow!(e)),
        }
    }
}

impl From<Problem> for CopyError {
    fn from(p: Problem) -> CopyError {
        CopyError::Render(p)
    }
}

/// The line before a plain-text signature.
const SIGNATURE_SEPARATOR: &str = "-- ";

/// A sample reader for previews of an empty list.
pub fn sample_reader(columns: usize) -> Subscriber {
    let email = "reader@example.com"
        .parse()
        .unwrap_or_else(|_| unreachable!());
    Subscriber::ad_hoc(email, "Sample Reader", columns)
}

fn inline_css(html: &str) -> Result<String, css_inline::InlineError> {
    let inliner = css_inline::CSSInliner::options()
        .keep_at_rules(true)
        .load_remote_stylesheets(false)
        .build();
    inliner.inline(html).map(|out| charset_first(&out))
}

/// css-inline puts the kept `<style>` block first in `<head>`, which can
/// push `<meta charset>` past the first 1024 bytes where HTML requires it;
/// move it back to the top.
fn charset_first(html: &str) -> String {
    const META: &str = "<meta charset=\"utf-8\">";
    match (html.find(META), html.find("<head>")) {
        (Some(at), Some(head)) if at > head + "<head>".len() => {
            let mut out = String::with_capacity(html.len());
            let after_head = head + "<head>".len();
            out.push_str(&html[..after_head]);
            out.push_str(META);
            out.push_str(&html[after_head..at]);
            out.push_str(&html[at + META.len()..]);
            out
        }
        _ => html.to_string(),
    }
}

/// Trims trailing spaces and collapses runs of blank lines in the text part;
/// the signature separator keeps its space (`-- `, RFC 3676 4.3), by which
/// mail clients know the footer and leave it out of replies.
fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let line = match line.trim_end() {
            "--" => SIGNATURE_SEPARATOR,
            line => line,
        };
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_start_matches('\n').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_separator_keeps_its_space() {
        assert_eq!(
            tidy_text("Bye.  \n\n\n-- \nFooter \n"),
            "Bye.\n\n-- \nFooter\n"
        );
        assert_eq!(tidy_text("--\nFooter\n"), "-- \nFooter\n");
    }

    #[test]
    fn charset_moves_to_the_top_of_head() {
        let html = "<html><head><style>x</style>\n<meta charset=\"utf-8\">\n</head></html>";
        assert_eq!(
            charset_first(html),
            "<html><head><meta charset=\"utf-8\"><style>x</style>\n\n</head></html>"
        );
    }
}

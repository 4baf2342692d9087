//! `dailyissue.toml`: the newsletter's settings.
//!
//! [`Settings::parse`] turns the file's text into validated, typed settings
//! (time zone, mailboxes, durations, sections) or into every problem found,
//! each with its line. It does no I/O; [`Settings::from_file`] reads the file
//! and adds the path. Unknown keys are errors so that a typo never silently
//! falls back to a default.
//!
//! serde reads the text into the `raw` shapes; one module per concern then
//! checks its part, reporting into one `Problems` collector so that every
//! problem is found in one pass: `newsletter` (name, url, mailboxes, postal
//! address, subject, List-Id), `schedule` (time zone, send time, lateness),
//! `section`, `smtp`, `unsubscribe`, `dkim`, `bounces`, `subscribe` (signups
//! and feedback votes), and `layout` (no two paths
//! collide). The rules for single values (host names, URLs, durations,
//! dates, reserved names) live in `values`.

use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use lettre::message::Mailbox;
use toml::Spanned;

use crate::problem::{Problem, line_of};

mod bounces;
mod dkim;
mod layout;
mod newsletter;
mod raw;
mod schedule;
mod section;
mod smtp;
mod subscribe;
#[cfg(test)]
mod tests;
mod unsubscribe;
mod values;

pub use bounces::{BounceSettings, ReturnPath, TOKEN_LEN};
pub use dkim::{DkimAlgorithm, DkimSettings};
pub(crate) use layout::{lexical, private_inside};
use raw::Raw;
pub use schedule::Delivery;
pub use section::{ITEM_TEMPLATE, ITEMS_TEMPLATE, Pages, SectionSettings, default_sections};
pub use smtp::{SmtpSettings, Tls};
pub use subscribe::{FeedbackSettings, SubscribeSettings};
pub use unsubscribe::UnsubscribeSettings;
use values::is_env_name;
pub use values::{date_in_range, is_host, is_loopback, parse_duration};

pub const FILE_NAME: &str = "dailyissue.toml";
/// Where issue records live, relative to the project root.
pub const ISSUES_DIR: &str = "issues";
/// The project's templates, layered over the built-in ones.
pub const TEMPLATES_DIR: &str = "templates";

/// Validated settings. Paths are as written (relative to the project root).
#[derive(Debug, Clone)]
pub struct Settings {
    pub name: String,
    /// Base URL of the web archive, without a trailing slash.
    pub url: String,
    pub timezone: Tz,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub postal_address: String,
    /// One line about the newsletter: the feed's subtitle, and the
    /// built-in templates' page description and footer.
    pub description: Option<String>,
    pub subject: String,
    pub preheader: String,
    pub subscribers: PathBuf,
    pub ledger: PathBuf,
    pub outbox: PathBuf,
    pub archive_dir: PathBuf,
    /// When the daily run is scheduled (local time); lateness counts from it.
    pub send_time: chrono::NaiveTime,
    pub max_lateness: chrono::Duration,
    /// Whose local time `send_time` is: the newsletter's, or each reader's.
    pub delivery: Delivery,
    pub daily_cap: u64,
    /// Whether an exhausted section may repeat its least recently used item.
    pub repeats: bool,
    pub list_id: String,
    pub feedback_id: Option<String>,
    pub sections: Vec<SectionSettings>,
    pub smtp: Option<SmtpSettings>,
    pub unsubscribe: UnsubscribeSettings,
    /// Every `[[dkim]]` key (a single `[dkim]` table is one); each message
    /// carries one signature per key.
    pub dkim: Vec<DkimSettings>,
    /// `[bounces]`: VERP, the soft-bounce policy, provider webhooks.
    pub bounces: BounceSettings,
    /// Signups through `serve` (double opt-in).
    pub subscribe: SubscribeSettings,
    /// The one-click "Was today's issue useful?" at the end of each issue.
    pub feedback: FeedbackSettings,
}

impl Settings {
    /// Reads and validates `path`; problems carry that path.
    pub fn from_file(path: &Path) -> Result<Settings, Vec<Problem>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Settings::parse(&text, path),
            Err(e) => Err(vec![Problem::new(
                path,
                None,
                format!("cannot read settings: {e}"),
            )]),
        }
    }

    /// Parses settings text; `path` only labels the problems.
    ///
    /// Everything that would fail later is refused here, with its line:
    /// values that reach a mail header are one line without control
    /// characters, hosts are host names, URLs are absolute http(s) URLs,
    /// durations and ports are usable, section names do not shadow the
    /// templates' own names, and no two paths collide (`layout`).
    pub fn parse(text: &str, path: &Path) -> Result<Settings, Vec<Problem>> {
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            vec![Problem::at(path, line, toml_message(&e))]
        })?;
        let mut problems = Problems {
            text,
            path,
            found: Vec::new(),
        };
        let settings = Settings::check(raw, &mut problems);
        problems.finish()?;
        // Only unreachable when a problem was recorded above.
        settings.ok_or_else(|| vec![Problem::new(path, None, "invalid settings")])
    }

    /// Every concern checked in turn, each reporting into `problems`; the
    /// settings when the values that have no stand-in (time zone, sender)
    /// are valid.
    fn check(raw: Raw, problems: &mut Problems) -> Option<Settings> {
        // Problems are reported in line order; this order only decides
        // between problems of one line (the keys of an inline table, or
        // line 1, where `layout` blames paths nobody wrote), so `layout`
        // stays last.
        let newsletter = newsletter::check(&raw, problems);
        let schedule = schedule::check(&raw, problems);
        let sections = section::parse(&raw.section, problems);
        let smtp = raw.smtp.as_ref().map(|s| smtp::check(s, problems));
        let unsubscribe = unsubscribe::check(raw.unsubscribe.as_ref(), &newsletter.url, problems);
        let list_id = newsletter::list_id(&raw, &newsletter.url, problems);
        let dkim = dkim::check(&raw.dkim.0, problems);
        let bounces = bounces::check(raw.bounces.as_ref(), problems);
        let subscribe = subscribe::subscribe(raw.subscribe.as_ref(), &newsletter.url, problems);
        let feedback = subscribe::feedback(raw.feedback.as_ref(), &newsletter.url, problems);
        layout::check(&raw, &sections, problems);

        let (Some(timezone), Some(from)) = (schedule.timezone, newsletter.from) else {
            return None;
        };
        Some(Settings {
            name: raw.name.into_inner(),
            url: newsletter.url,
            timezone,
            from,
            reply_to: newsletter.reply_to,
            postal_address: raw.postal_address.into_inner(),
            description: raw.description.map(Spanned::into_inner),
            subject: raw.subject.map_or_else(
                || newsletter::default_subject(&sections),
                Spanned::into_inner,
            ),
            preheader: raw
                .preheader
                .unwrap_or_else(|| newsletter::default_preheader(&sections)),
            subscribers: raw.subscribers.into_inner(),
            ledger: raw.ledger.into_inner(),
            outbox: raw.outbox.into_inner(),
            archive_dir: raw.archive_dir.into_inner(),
            send_time: schedule.send_time,
            max_lateness: schedule.max_lateness,
            delivery: schedule.delivery,
            daily_cap: raw.daily_cap,
            repeats: raw.repeats,
            list_id,
            feedback_id: raw.feedback_id.map(Spanned::into_inner),
            sections,
            smtp,
            unsubscribe,
            dkim,
            bounces,
            subscribe,
            feedback,
        })
    }

    pub fn section(&self, name: &str) -> Option<&SectionSettings> {
        self.sections.iter().find(|s| s.name == name)
    }
}

/// The problems found in one settings text, each placed at the line of the
/// span it blames. Every check reports here and goes on, so that the
/// operator sees every problem at once, in line order.
struct Problems<'a> {
    text: &'a str,
    path: &'a Path,
    found: Vec<Problem>,
}

impl Problems<'_> {
    /// Records `message` at the line where `span` starts.
    fn bad(&mut self, span: Range<usize>, message: String) {
        self.found.push(Problem::at(
            self.path,
            line_of(self.text, span.start),
            message,
        ));
    }

    /// Every problem in line order (problems of one line in the order they
    /// were found), or nothing wrong.
    fn finish(mut self) -> Result<(), Vec<Problem>> {
        if self.found.is_empty() {
            return Ok(());
        }
        self.found.sort_by_key(|p| p.line);
        Err(self.found)
    }
}

/// The name of an environment variable, as written; `key` names the
/// setting in the message.
fn env_name(problems: &mut Problems, field: &Spanned<String>, key: &str) -> String {
    if !is_env_name(field.get_ref()) {
        problems.bad(
            field.span(),
            format!(
                "{key} must name an environment variable (letters, digits and _, not starting with a digit), not `{}`",
                field.get_ref().escape_debug()
            ),
        );
    }
    field.get_ref().clone()
}

/// Rewords toml's message into one line; the line number is reported apart.
/// An unknown key gets the closest known key as a suggestion.
pub fn toml_message(e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    let Some(rest) = msg.strip_prefix("unknown field ") else {
        return msg;
    };
    let key = rest.split('`').nth(1).unwrap_or("");
    let expected: Vec<&str> = rest
        .split_once("expected")
        .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
        .unwrap_or_default();
    let closest = expected
        .iter()
        .map(|k| (strsim::levenshtein(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min();
    match closest {
        Some((_, k)) => format!("unknown key `{key}`; did you mean `{k}`?"),
        None if expected.is_empty() => format!("unknown key `{key}`"),
        None => format!(
            "unknown key `{key}`; the keys here are {}",
            expected.join(", ")
        ),
    }
}

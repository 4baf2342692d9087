//! `dailyissue.toml`: the newsletter's settings.
//!
//! [`Settings::parse`] turns the file's text into validated, typed settings
//! (time zone, mailboxes, durations, sections) or into every problem found,
//! each with its line. It does no I/O; [`Settings::from_file`] reads the file
//! and adds the path. Unknown keys are errors so that a typo never silently
//! falls back to a default. The rules for single values (host names, URLs,
//! durations, dates, reserved names) live in `values`; the rule that no
//! two paths collide lives in `layout`.

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use lettre::message::Mailbox;
use serde::Deserialize;
use toml::Spanned;

use crate::problem::{Problem, line_of};

mod layout;
mod section;
#[cfg(test)]
mod tests;
mod values;

pub(crate) use layout::{lexical, private_inside};
pub use section::{ITEM_TEMPLATE, ITEMS_TEMPLATE, Pages, SectionSettings, default_sections};
use values::{MAX_LATENESS, MAX_RETRIES, has_control, is_env_name, url_problem};
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte, "SMTPS" (port 465); `tls = "tls"`.
    #[serde(rename = "tls")]
    Implicit,
    /// No encryption; loopback hosts only.
    None,
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub concurrency: usize,
    /// Messages per second across all connections; 0 means no limit.
    pub rate_per_second: f64,
    pub timeout: std::time::Duration,
    pub helo: Option<String>,
    /// Attempts per message within one run for 4xx replies and dropped
    /// connections, after the first.
    pub retries: u32,
    /// First retry delay; doubles each time.
    pub retry_base: std::time::Duration,
    /// Extra CA certificate (PEM) to trust, for private relays.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct UnsubscribeSettings {
    /// URL with a `{token}` placeholder.
    pub url: String,
    pub mailto: Option<String>,
    pub secret_env: String,
    pub previous_secret_env: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DkimAlgorithm {
    #[serde(rename = "rsa-sha256")]
    RsaSha256,
    #[serde(rename = "ed25519-sha256")]
    Ed25519Sha256,
}

#[derive(Debug, Clone)]
pub struct DkimSettings {
    pub domain: String,
    pub selector: String,
    pub private_key_file: PathBuf,
    pub algorithm: DkimAlgorithm,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Spanned<String>,
    url: Spanned<String>,
    timezone: Spanned<String>,
    from: Spanned<String>,
    reply_to: Option<Spanned<String>>,
    postal_address: Spanned<String>,
    description: Option<Spanned<String>>,
    subject: Option<Spanned<String>>,
    preheader: Option<String>,
    #[serde(default = "default_subscribers")]
    subscribers: Spanned<PathBuf>,
    #[serde(default = "default_ledger")]
    ledger: Spanned<PathBuf>,
    #[serde(default = "default_outbox")]
    outbox: Spanned<PathBuf>,
    #[serde(default = "default_archive_dir")]
    archive_dir: Spanned<PathBuf>,
    #[serde(default = "default_send_time")]
    send_time: Spanned<String>,
    #[serde(default = "default_max_lateness")]
    max_lateness: Spanned<String>,
    #[serde(default)]
    daily_cap: u64,
    #[serde(default = "yes")]
    repeats: bool,
    list_id: Option<Spanned<String>>,
    feedback_id: Option<Spanned<String>>,
    #[serde(default)]
    section: Vec<Spanned<section::RawSection>>,
    smtp: Option<Spanned<RawSmtp>>,
    unsubscribe: Option<RawUnsubscribe>,
    #[serde(default)]
    dkim: RawDkims,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: Spanned<String>,
    port: Option<Spanned<u16>>,
    #[serde(default = "default_tls")]
    tls: Tls,
    username: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    #[serde(default)]
    rate_per_second: f64,
    timeout: Option<Spanned<String>>,
    helo: Option<Spanned<String>>,
    #[serde(default = "default_retries")]
    retries: Spanned<u32>,
    retry_base: Option<Spanned<String>>,
    ca_file: Option<Spanned<PathBuf>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnsubscribe {
    url: Option<Spanned<String>>,
    mailto: Option<Spanned<String>>,
    #[serde(default = "default_secret_env")]
    secret_env: Spanned<String>,
    previous_secret_env: Option<Spanned<String>>,
}

/// `[dkim]` (one key) or `[[dkim]]` (several), read with the same
/// deserializer so every field keeps its span and unknown keys are named.
#[derive(Default)]
struct RawDkims(Vec<RawDkim>);

impl<'de> Deserialize<'de> for RawDkims {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RawDkims, D::Error> {
        struct Tables;
        impl<'de> serde::de::Visitor<'de> for Tables {
            type Value = RawDkims;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a [dkim] table or [[dkim]] tables")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawDkims, A::Error> {
                RawDkim::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|one| RawDkims(vec![one]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawDkims, A::Error> {
                let mut all = Vec::new();
                while let Some(one) = seq.next_element()? {
                    all.push(one);
                }
                Ok(RawDkims(all))
            }
        }
        d.deserialize_any(Tables)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDkim {
    domain: Spanned<String>,
    selector: Spanned<String>,
    private_key_file: Spanned<PathBuf>,
    #[serde(default = "default_dkim_algorithm")]
    algorithm: DkimAlgorithm,
}

/// The subject when the settings give none: the sample's for its three
/// sections; otherwise the titles of the day's items, in section order.
fn default_subject(sections: &[SectionSettings]) -> String {
    if section::are_the_defaults(sections) {
        "{{ term.title }}, {{ tool.title }}, and one tip".into()
    } else {
        "{{ sections | map(attribute='item.title') | join(', ') }}".into()
    }
}
/// The preheader when the settings give none: the sample's term summary;
/// otherwise the first section's item's `summary`, or its title.
fn default_preheader(sections: &[SectionSettings]) -> String {
    if section::are_the_defaults(sections) {
        "{{ term.summary }}".into()
    } else {
        "{% for s in sections[:1] %}{{ s.item.summary | default(s.item.title) }}{% endfor %}".into()
    }
}
fn default_subscribers() -> Spanned<PathBuf> {
    Spanned::new(0..0, "subscribers.csv".into())
}
fn default_ledger() -> Spanned<PathBuf> {
    Spanned::new(0..0, ".dailyissue/state.db".into())
}
fn default_outbox() -> Spanned<PathBuf> {
    Spanned::new(0..0, "outbox".into())
}
fn default_archive_dir() -> Spanned<PathBuf> {
    Spanned::new(0..0, "public".into())
}
fn default_max_lateness() -> Spanned<String> {
    Spanned::new(0..0, "6h".into())
}
fn yes() -> bool {
    true
}
fn default_tls() -> Tls {
    Tls::Starttls
}
/// More connections than any provider allows one sender; also bounds the
/// threads and sockets one run holds.
const MAX_CONCURRENCY: usize = 256;

fn default_concurrency() -> usize {
    8
}
fn default_retries() -> Spanned<u32> {
    Spanned::new(0..0, 3)
}
fn default_send_time() -> Spanned<String> {
    Spanned::new(0..0, "06:00".into())
}
fn default_secret_env() -> Spanned<String> {
    Spanned::new(0..0, "DAILYISSUE_UNSUBSCRIBE_SECRET".into())
}
fn default_dkim_algorithm() -> DkimAlgorithm {
    DkimAlgorithm::RsaSha256
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
        let raw: Raw = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
                return Err(vec![Problem::at(path, line, toml_message(&e))]);
            }
        };
        let mut problems = Vec::new();
        let mut bad = |span: std::ops::Range<usize>, msg: String| {
            problems.push(Problem::at(path, line_of(text, span.start), msg));
        };

        let timezone = match raw.timezone.get_ref().parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                bad(
                    raw.timezone.span(),
                    format!(
                        "unknown time zone `{}`; use an IANA name such as \"America/New_York\" or \"Europe/Berlin\"",
                        raw.timezone.get_ref()
                    ),
                );
                None
            }
        };
        let mut mailbox = |field: &Spanned<String>, key: &str| -> Option<Mailbox> {
            match field.get_ref().parse::<Mailbox>() {
                Ok(m) => Some(m),
                Err(e) => {
                    bad(
                        field.span(),
                        format!(
                            "`{key}` is not a valid mailbox ({e}): write \"Name <address@example.com>\" or a bare address"
                        ),
                    );
                    None
                }
            }
        };
        let from = mailbox(&raw.from, "from");
        let reply_to = raw.reply_to.as_ref().map(|r| mailbox(r, "reply_to"));

        let url = raw.url.get_ref().trim_end_matches('/').to_string();
        if let Some(why) = url_problem(&url, false) {
            let why = if url.starts_with("https://") || url.starts_with("http://") {
                format!(": {why}")
            } else {
                String::new()
            };
            bad(
                raw.url.span(),
                format!(
                    "`url` must be an absolute http(s) URL such as \"https://example.com\", not `{}`{why}",
                    raw.url.get_ref().escape_debug()
                ),
            );
        }
        if raw.name.get_ref().trim().is_empty() {
            bad(raw.name.span(), "`name` must not be empty".into());
        } else if has_control(raw.name.get_ref()) {
            bad(
                raw.name.span(),
                "`name` must be one line without control characters: it appears in headers and in every issue record".into(),
            );
        }
        if raw.postal_address.get_ref().trim().is_empty() {
            bad(
                raw.postal_address.span(),
                "`postal_address` must not be empty: bulk mail must carry a postal address (CAN-SPAM)"
                    .into(),
            );
        } else if raw
            .postal_address
            .get_ref()
            .chars()
            .any(|c| c.is_control() && c != '\n')
        {
            bad(
                raw.postal_address.span(),
                "`postal_address` must not contain control characters other than line breaks"
                    .into(),
            );
        }
        if let Some(subject) = &raw.subject
            && subject.get_ref().trim().is_empty()
        {
            bad(
                subject.span(),
                "`subject` must not be empty: it is the template of every issue's subject, e.g. \"{{ term.title }}, and more\"".into(),
            );
        }
        let max_lateness = match parse_duration(raw.max_lateness.get_ref()) {
            Some(d) if d <= MAX_LATENESS => {
                chrono::Duration::from_std(d).unwrap_or(chrono::Duration::hours(6))
            }
            Some(_) => {
                bad(
                    raw.max_lateness.span(),
                    format!(
                        "`max_lateness` = \"{}\" is more than 7 days; use at most \"7d\", or \"0\" for no limit",
                        raw.max_lateness.get_ref()
                    ),
                );
                chrono::Duration::hours(6)
            }
            None => {
                bad(
                    raw.max_lateness.span(),
                    format!(
                        "`max_lateness` = \"{}\" is not a duration; write e.g. \"6h\", \"90m\" or \"1h30m\"",
                        raw.max_lateness.get_ref()
                    ),
                );
                chrono::Duration::hours(6)
            }
        };

        let send_time = match chrono::NaiveTime::parse_from_str(raw.send_time.get_ref(), "%H:%M") {
            Ok(t) => t,
            Err(_) => {
                bad(
                    raw.send_time.span(),
                    format!(
                        "`send_time` = \"{}\" is not a time of day; write e.g. \"06:00\"",
                        raw.send_time.get_ref()
                    ),
                );
                chrono::NaiveTime::MIN
            }
        };
        let sections = section::parse(&raw.section, &mut bad);
        if let Some(d) = &raw.description
            && (d.get_ref().trim().is_empty() || has_control(d.get_ref()))
        {
            bad(
                d.span(),
                "`description` must be one line of text without control characters: it is the feed's subtitle and the pages' description".into(),
            );
        }

        let env_name = |bad: &mut dyn FnMut(std::ops::Range<usize>, String),
                        field: &Spanned<String>,
                        key: &str| {
            if !is_env_name(field.get_ref()) {
                bad(
                    field.span(),
                    format!(
                        "{key} must name an environment variable (letters, digits and _, not starting with a digit), not `{}`",
                        field.get_ref().escape_debug()
                    ),
                );
            }
            field.get_ref().clone()
        };
        let smtp = raw.smtp.as_ref().map(|spanned| {
            let s = spanned.get_ref();
            let password_env = s
                .password_env
                .as_ref()
                .map(|p| env_name(&mut bad, p, "[smtp] password_env"));
            let duration = |bad: &mut dyn FnMut(std::ops::Range<usize>, String),
                            field: &Option<Spanned<String>>,
                            key: &str,
                            default: u64,
                            max: std::time::Duration| {
                let Some(field) = field else {
                    return std::time::Duration::from_secs(default);
                };
                match parse_duration(field.get_ref()) {
                    Some(d) if d.is_zero() => {
                        bad(
                            field.span(),
                            format!("[smtp] {key} must be more than 0; the default is \"{default}s\""),
                        );
                        std::time::Duration::from_secs(default)
                    }
                    Some(d) if d > max => {
                        bad(
                            field.span(),
                            format!(
                                "[smtp] {key} = \"{}\" is longer than {}s; the default is \"{default}s\"",
                                field.get_ref(),
                                max.as_secs()
                            ),
                        );
                        std::time::Duration::from_secs(default)
                    }
                    Some(d) => d,
                    None => {
                        bad(
                            field.span(),
                            format!(
                                "[smtp] {key} = \"{}\" is not a duration; write e.g. \"{default}s\"",
                                field.get_ref()
                            ),
                        );
                        std::time::Duration::from_secs(default)
                    }
                }
            };
            let timeout = duration(&mut bad, &s.timeout, "timeout", 30, std::time::Duration::from_secs(3600));
            let retry_base = duration(&mut bad, &s.retry_base, "retry_base", 2, std::time::Duration::from_secs(3600));
            let host = s.host.get_ref();
            if !is_host(host) {
                bad(
                    s.host.span(),
                    format!(
                        "[smtp] host `{}` is not a host name or IP address (ASCII letters, digits, - and dots; use the punycode form of an international name)",
                        host.escape_debug()
                    ),
                );
            }
            if let Some(port) = &s.port
                && *port.get_ref() == 0
            {
                bad(
                    port.span(),
                    "[smtp] port must be between 1 and 65535: 587 for starttls, 465 for tls".into(),
                );
            }
            if let Some(helo) = &s.helo
                && !is_host(helo.get_ref())
            {
                bad(
                    helo.span(),
                    format!(
                        "[smtp] helo `{}` must be this machine's host name (ASCII letters, digits, - and dots)",
                        helo.get_ref().escape_debug()
                    ),
                );
            }
            if let Some(user) = &s.username
                && (user.get_ref().is_empty() || has_control(user.get_ref()))
            {
                bad(
                    user.span(),
                    "[smtp] username must be one line without control characters".into(),
                );
            }
            if *s.retries.get_ref() > MAX_RETRIES {
                bad(
                    s.retries.span(),
                    format!(
                        "[smtp] retries = {} is more than {MAX_RETRIES}; the delay doubles each time, so a few retries already span minutes (what is left goes out on the next run)",
                        s.retries.get_ref()
                    ),
                );
            }
            if !(1..=MAX_CONCURRENCY).contains(&s.concurrency) {
                bad(
                    spanned.span(),
                    format!(
                        "[smtp] concurrency = {} must be between 1 and {MAX_CONCURRENCY}; providers allow a handful of connections per sender (8-20 is typical)",
                        s.concurrency
                    ),
                );
            }
            if s.rate_per_second < 0.0 || !s.rate_per_second.is_finite() {
                bad(
                    spanned.span(),
                    "[smtp] rate_per_second must be 0 (no limit) or a positive number".into(),
                );
            }
            if s.tls == Tls::None && !is_loopback(host) {
                bad(
                    spanned.span(),
                    format!(
                        "[smtp] tls = \"none\" is only allowed for a loopback host, not `{}`: use \"starttls\" or \"tls\"",
                        host.escape_debug()
                    ),
                );
            }
            if s.username.is_some() != s.password_env.is_some() {
                bad(
                    spanned.span(),
                    "[smtp] set both `username` and `password_env` (the name of the environment variable holding the password), or neither".into(),
                );
            }
            SmtpSettings {
                host: host.clone(),
                port: s.port.as_ref().map(|p| *p.get_ref()).unwrap_or(match s.tls {
                    Tls::Starttls => 587,
                    Tls::Implicit => 465,
                    Tls::None => 25,
                }),
                tls: s.tls,
                username: s.username.as_ref().map(|u| u.get_ref().clone()),
                password_env,
                concurrency: s.concurrency.max(1),
                rate_per_second: s.rate_per_second,
                timeout,
                helo: s.helo.as_ref().map(|h| h.get_ref().clone()),
                retries: *s.retries.get_ref(),
                retry_base,
                ca_file: s.ca_file.as_ref().map(|c| c.get_ref().clone()),
            }
        });

        let unsubscribe = match &raw.unsubscribe {
            Some(u) => {
                let url = match &u.url {
                    Some(url) => {
                        let tokens = url.get_ref().matches("{token}").count();
                        if tokens != 1 {
                            bad(
                                url.span(),
                                format!(
                                    "[unsubscribe] url must contain `{{token}}` exactly once (found {tokens}), e.g. \"https://example.com/u/{{token}}\""
                                ),
                            );
                        }
                        if let Some(why) =
                            url_problem(&url.get_ref().replace("{token}", "TOKEN"), true)
                        {
                            bad(
                                url.span(),
                                format!(
                                    "[unsubscribe] url must be an absolute https URL such as \"https://example.com/u/{{token}}\": {why}"
                                ),
                            );
                        }
                        url.get_ref().clone()
                    }
                    None => format!("{url}/u/{{token}}"),
                };
                if let Some(mailto) = &u.mailto
                    && crate::project::subscribers::parse_address(mailto.get_ref()).is_err()
                {
                    bad(
                        mailto.span(),
                        format!(
                            "[unsubscribe] mailto must be a bare address such as \"unsubscribe@example.com\" (the token is added as the subject), not `{}`",
                            mailto.get_ref().escape_debug()
                        ),
                    );
                }
                UnsubscribeSettings {
                    url,
                    mailto: u.mailto.as_ref().map(|m| m.get_ref().clone()),
                    secret_env: env_name(&mut bad, &u.secret_env, "[unsubscribe] secret_env"),
                    previous_secret_env: u
                        .previous_secret_env
                        .as_ref()
                        .map(|p| env_name(&mut bad, p, "[unsubscribe] previous_secret_env")),
                }
            }
            None => UnsubscribeSettings {
                url: format!("{url}/u/{{token}}"),
                mailto: None,
                secret_env: default_secret_env().into_inner(),
                previous_secret_env: None,
            },
        };

        let host = url
            .split("://")
            .nth(1)
            .unwrap_or("")
            .split(['/', ':'])
            .next()
            .unwrap_or("")
            .to_string();
        let list_id = match &raw.list_id {
            Some(l) => {
                if !is_host(l.get_ref()) || !l.get_ref().contains('.') {
                    bad(
                        l.span(),
                        "`list_id` must be a dotted name such as \"daily.example.com\" (ASCII letters, digits, - and dots) without <>, spaces or line breaks".into(),
                    );
                }
                l.get_ref().clone()
            }
            None => {
                let label = crate::project::slug::slugify(raw.name.get_ref());
                let label = if label.is_empty() {
                    "daily".to_string()
                } else {
                    label
                };
                format!("{label}.{host}")
            }
        };
        if let Some(f) = &raw.feedback_id
            && (f.get_ref().is_empty() || !f.get_ref().chars().all(|c| c.is_ascii_graphic()))
        {
            bad(
                f.span(),
                "`feedback_id` must be printable ASCII without spaces, such as \"issue:daily:example\" (it becomes the Feedback-ID header)".into(),
            );
        }

        let mut selectors = std::collections::HashSet::new();
        let dkim: Vec<DkimSettings> = raw.dkim.0.iter().map(|d| {
            for (field, key) in [(&d.domain, "domain"), (&d.selector, "selector")] {
                if !is_host(field.get_ref()) {
                    bad(
                        field.span(),
                        format!(
                            "[dkim] {key} `{}` must be a DNS name (ASCII letters, digits, - and dots)",
                            field.get_ref().escape_debug()
                        ),
                    );
                }
            }
            if !selectors.insert((d.domain.get_ref().clone(), d.selector.get_ref().clone())) {
                bad(
                    d.selector.span(),
                    format!(
                        "[[dkim]] selector `{}` of {} is listed twice; each key needs its own selector (its own DNS record)",
                        d.selector.get_ref(),
                        d.domain.get_ref()
                    ),
                );
            }
            DkimSettings {
                domain: d.domain.get_ref().clone(),
                selector: d.selector.get_ref().clone(),
                private_key_file: d.private_key_file.get_ref().clone(),
                algorithm: d.algorithm,
            }
        }).collect();

        let mut named = layout::fixed();
        named.extend(layout::ledger_files(
            raw.ledger.get_ref(),
            raw.ledger.span(),
        ));
        let named_path = |key: &str, p: &Spanned<PathBuf>, kind| {
            layout::Named::new(key, p.get_ref(), kind, p.span())
        };
        named.push(named_path(
            "`subscribers`",
            &raw.subscribers,
            layout::Kind::File,
        ));
        named.push(named_path("`outbox`", &raw.outbox, layout::Kind::Output));
        named.push(named_path(
            "`archive_dir`",
            &raw.archive_dir,
            layout::Kind::Output,
        ));
        for d in &raw.dkim.0 {
            named.push(named_path(
                "[dkim] private_key_file",
                &d.private_key_file,
                layout::Kind::File,
            ));
        }
        if let Some(ca) = raw.smtp.as_ref().and_then(|s| s.get_ref().ca_file.as_ref()) {
            named.push(named_path("[smtp] ca_file", ca, layout::Kind::File));
        }
        for (section, raw_section) in sections
            .iter()
            .zip(raw.section.iter().map(Some).chain(std::iter::repeat(None)))
        {
            named.push(layout::Named::new(
                &format!("the folder of section `{}`", section.name),
                &section.dir,
                layout::Kind::Input,
                raw_section.map_or(0..0, |s| s.span()),
            ));
        }
        for (span, message) in layout::collisions(&named) {
            bad(span.unwrap_or(0..0), message);
        }

        if !problems.is_empty() {
            problems.sort_by_key(|p| p.line);
            return Err(problems);
        }
        // Only unreachable when a problem was recorded above.
        let (Some(timezone), Some(from)) = (timezone, from) else {
            return Err(vec![Problem::new(path, None, "invalid settings")]);
        };
        Ok(Settings {
            name: raw.name.into_inner(),
            url,
            timezone,
            from,
            reply_to: reply_to.flatten(),
            postal_address: raw.postal_address.into_inner(),
            description: raw.description.map(Spanned::into_inner),
            subject: raw
                .subject
                .map_or_else(|| default_subject(&sections), Spanned::into_inner),
            preheader: raw
                .preheader
                .unwrap_or_else(|| default_preheader(&sections)),
            subscribers: raw.subscribers.into_inner(),
            ledger: raw.ledger.into_inner(),
            outbox: raw.outbox.into_inner(),
            archive_dir: raw.archive_dir.into_inner(),
            send_time,
            max_lateness,
            daily_cap: raw.daily_cap,
            repeats: raw.repeats,
            list_id,
            feedback_id: raw.feedback_id.map(Spanned::into_inner),
            sections,
            smtp,
            unsubscribe,
            dkim,
        })
    }

    pub fn section(&self, name: &str) -> Option<&SectionSettings> {
        self.sections.iter().find(|s| s.name == name)
    }
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

//! `dailyissue.toml`: the newsletter's settings.
//!
//! [`Settings::parse`] turns the file's text into validated, typed settings
//! (time zone, mailboxes, durations, sections) or into every problem found,
//! each with its line. It does no I/O; [`Settings::from_file`] reads the file
//! and adds the path. Unknown keys are errors so that a typo never silently
//! falls back to a default.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use lettre::message::Mailbox;
use serde::Deserialize;
use toml::Spanned;

use crate::problem::{Problem, line_of};

pub const FILE_NAME: &str = "dailyissue.toml";

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
    pub dkim: Option<DkimSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionSettings {
    pub name: String,
    pub dir: PathBuf,
    pub required: Vec<String>,
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
    #[serde(default = "default_subject")]
    subject: Spanned<String>,
    #[serde(default = "default_preheader")]
    preheader: String,
    #[serde(default = "default_subscribers")]
    subscribers: PathBuf,
    #[serde(default = "default_ledger")]
    ledger: PathBuf,
    #[serde(default = "default_outbox")]
    outbox: PathBuf,
    #[serde(default = "default_archive_dir")]
    archive_dir: PathBuf,
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
    section: Vec<Spanned<RawSection>>,
    smtp: Option<Spanned<RawSmtp>>,
    unsubscribe: Option<RawUnsubscribe>,
    dkim: Option<RawDkim>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    name: String,
    dir: Option<PathBuf>,
    #[serde(default)]
    required: Vec<String>,
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
    ca_file: Option<PathBuf>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDkim {
    domain: Spanned<String>,
    selector: Spanned<String>,
    private_key_file: PathBuf,
    #[serde(default = "default_dkim_algorithm")]
    algorithm: DkimAlgorithm,
}

fn default_subject() -> Spanned<String> {
    Spanned::new(
        0..0,
        "{{ term.title }}, {{ tool.title }}, and one tip".into(),
    )
}
fn default_preheader() -> String {
    "{{ term.summary }}".into()
}
fn default_subscribers() -> PathBuf {
    "subscribers.csv".into()
}
fn default_ledger() -> PathBuf {
    ".dailyissue/state.db".into()
}
fn default_outbox() -> PathBuf {
    "outbox".into()
}
fn default_archive_dir() -> PathBuf {
    "public".into()
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

/// The first and last day any date may name (CLI, front matter, records):
/// four-digit years, so that `issues/DATE.toml` stays a file every later
/// command can read back.
pub const FIRST_DATE: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(1000, 1, 1) {
    Some(d) => d,
    None => chrono::NaiveDate::MIN,
};
pub const LAST_DATE: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(d) => d,
    None => chrono::NaiveDate::MAX,
};

pub fn date_in_range(date: chrono::NaiveDate) -> bool {
    (FIRST_DATE..=LAST_DATE).contains(&date)
}

/// The sections used when the settings declare none: one term, one tool, one tip.
pub fn default_sections() -> Vec<SectionSettings> {
    let s = |name: &str, dir: &str, required: &[&str]| SectionSettings {
        name: name.into(),
        dir: dir.into(),
        required: required.iter().map(|r| r.to_string()).collect(),
    };
    vec![
        s("term", "content/terms", &["title", "summary"]),
        s("tool", "content/tools", &["title", "summary", "url"]),
        s("tip", "content/tips", &["title", "summary"]),
    ]
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
    /// durations and ports are usable, and section names do not shadow the
    /// templates' own names.
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
        if raw.subject.get_ref().trim().is_empty() {
            bad(
                raw.subject.span(),
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
        let mut sections = Vec::new();
        let mut seen = BTreeSet::new();
        for s in &raw.section {
            let span = s.span();
            let s = s.get_ref();
            if !is_identifier(&s.name) {
                bad(
                    span.clone(),
                    format!(
                        "section name `{}` must start with a lowercase letter and use only a-z, 0-9 and _ (it becomes a template variable)",
                        s.name.escape_debug()
                    ),
                );
            } else if RESERVED.contains(&s.name.as_str()) {
                bad(
                    span.clone(),
                    format!(
                        "section name `{}` is taken: templates already have a `{}` of their own (reserved: {}); choose another name, e.g. `{}_item`",
                        s.name,
                        s.name,
                        RESERVED.join(", "),
                        s.name
                    ),
                );
            }
            if !seen.insert(s.name.clone()) {
                bad(
                    span.clone(),
                    format!("section `{}` is declared twice", s.name),
                );
            }
            let mut required = s.required.clone();
            if !required.iter().any(|r| r == "title") {
                required.insert(0, "title".into());
            }
            sections.push(SectionSettings {
                name: s.name.clone(),
                dir: s
                    .dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(format!("content/{}s", s.name))),
                required,
            });
        }
        if sections.is_empty() {
            sections = default_sections();
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
            if s.concurrency == 0 {
                bad(
                    spanned.span(),
                    "[smtp] concurrency must be at least 1".into(),
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
                ca_file: s.ca_file.clone(),
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
                    && crate::subscribers::parse_address(mailto.get_ref()).is_err()
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
                let label = crate::content::slugify(raw.name.get_ref());
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

        let dkim = raw.dkim.as_ref().map(|d| {
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
            DkimSettings {
                domain: d.domain.get_ref().clone(),
                selector: d.selector.get_ref().clone(),
                private_key_file: d.private_key_file.clone(),
                algorithm: d.algorithm,
            }
        });

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
            subject: raw.subject.into_inner(),
            preheader: raw.preheader,
            subscribers: raw.subscribers,
            ledger: raw.ledger,
            outbox: raw.outbox,
            archive_dir: raw.archive_dir,
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
        .map(|k| (edit_distance(key, k), *k))
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

/// Levenshtein distance, for "did you mean" suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// Names the templates' contexts already use (the email's, the archive
/// pages', minijinja's own): a section with one of these names would shadow
/// it or be shadowed.
const RESERVED: &[&str] = &[
    "issue",
    "newsletter",
    "subscriber",
    "sections",
    "unsubscribe_url",
    "previous",
    "next",
    "root",
    "nav",
    "canonical",
    "loop",
    "self",
    "super",
    "range",
    "dict",
    "namespace",
    "debug",
    "true",
    "false",
    "none",
];

/// `max_lateness` beyond this is a mistake (and date arithmetic would
/// overflow long before `i64` milliseconds do); 0 means no limit.
const MAX_LATENESS: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// The delay doubles per retry, so more than this is never meant.
const MAX_RETRIES: u32 = 10;

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A DNS name (ASCII labels of letters, digits, `-` and `_`, 1–63 long,
/// joined by dots) or an IP address: what may follow `HELO`, name an SMTP
/// server, a DKIM domain or selector, or a `List-Id`.
pub fn is_host(s: &str) -> bool {
    if s.trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_ok()
    {
        return true;
    }
    !s.is_empty()
        && s.len() <= 253
        && s.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Why `url` cannot be a base or unsubscribe URL, if it cannot: it must
/// parse as an absolute http(s) URL with a host, as written (no spaces,
/// control characters, quotes or angle brackets, which would break a link
/// or the `List-Unsubscribe` header); a base URL (`query_ok` false) has no
/// query or fragment, since paths are appended to it.
fn url_problem(url: &str, query_ok: bool) -> Option<&'static str> {
    if url.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Some("it contains spaces, line breaks or control characters");
    }
    if url.contains(['<', '>', '"', '\\', '`']) {
        return Some("it contains <, >, \", \\ or `");
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Some("it does not start with https://");
    }
    match url::Url::parse(url) {
        Err(_) => Some("it does not parse as a URL"),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("it has no host"),
        Ok(u) if !query_ok && (u.query().is_some() || u.fragment().is_some()) => {
            Some("it has a ? query or # fragment, but paths are appended to it")
        }
        Ok(_) => None,
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Parses durations such as `6h`, `90m`, `1h30m`, `45s`, `250ms`, `0`.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut total_ms = 0u64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms_per = match &rest[..unit_len] {
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1_000,
            "ms" => 1,
            _ => return None,
        };
        total_ms = total_ms.checked_add(n.checked_mul(ms_per)?)?;
        rest = &rest[unit_len..];
    }
    Some(std::time::Duration::from_millis(total_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "Beginners in AI"
url = "https://example.com/"
timezone = "America/New_York"
from = "Beginners in AI <daily@example.com>"
postal_address = "1 Main St, Springfield"
"#;

    fn parse(text: &str) -> Result<Settings, Vec<Problem>> {
        Settings::parse(text, Path::new("dailyissue.toml"))
    }

    fn errors(text: &str) -> Vec<String> {
        parse(text)
            .err()
            .unwrap_or_default()
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn minimal_settings_get_defaults() {
        let s = parse(MINIMAL).expect("valid");
        assert_eq!(s.url, "https://example.com");
        assert_eq!(s.timezone, chrono_tz::America::New_York);
        assert_eq!(s.sections, default_sections());
        assert_eq!(s.subscribers, PathBuf::from("subscribers.csv"));
        assert_eq!(s.max_lateness, chrono::Duration::hours(6));
        assert_eq!(s.unsubscribe.url, "https://example.com/u/{token}");
        assert_eq!(s.list_id, "beginners-in-ai.example.com");
        assert!(s.smtp.is_none());
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let errs = errors(&format!("{MINIMAL}subjet = \"x\"\n"));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0] == "dailyissue.toml:7: unknown key `subjet`; did you mean `subject`?",
            "{errs:?}"
        );
    }

    #[test]
    fn unknown_key_in_a_table_is_named() {
        let errs = errors(&format!("{MINIMAL}[smtp]\nhost = \"x\"\nprot = 25\n"));
        assert_eq!(
            errs[0],
            "dailyissue.toml:9: unknown key `prot`; did you mean `port`?"
        );
    }

    #[test]
    fn bad_time_zone_and_mailbox_are_both_reported() {
        let text = MINIMAL
            .replace("America/New_York", "Mars/Olympus")
            .replace("<daily@example.com>", "<not an address>");
        let errs = errors(&text);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("dailyissue.toml:4: unknown time zone `Mars/Olympus`"));
        assert!(errs[1].starts_with("dailyissue.toml:5: `from` is not a valid mailbox"));
    }

    #[test]
    fn sections_are_configurable_and_title_is_always_required() {
        let text = format!(
            "{MINIMAL}[[section]]\nname = \"quote\"\nrequired = [\"author\"]\n[[section]]\nname = \"term\"\ndir = \"glossary\"\n"
        );
        let s = parse(&text).expect("valid");
        assert_eq!(s.sections.len(), 2);
        assert_eq!(s.sections[0].dir, PathBuf::from("content/quotes"));
        assert_eq!(s.sections[0].required, vec!["title", "author"]);
        assert_eq!(s.sections[1].dir, PathBuf::from("glossary"));
    }

    #[test]
    fn duplicate_and_malformed_section_names_are_errors() {
        let text = format!(
            "{MINIMAL}[[section]]\nname = \"term\"\n[[section]]\nname = \"term\"\n[[section]]\nname = \"Big Tips\"\n"
        );
        let errs = errors(&text);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("declared twice"));
        assert!(errs[1].contains("`Big Tips` must start with a lowercase letter"));
    }

    #[test]
    fn plain_smtp_is_refused_for_remote_hosts() {
        let ok = format!("{MINIMAL}[smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n");
        assert_eq!(parse(&ok).expect("loopback").smtp.expect("smtp").port, 25);
        let errs = errors(&format!(
            "{MINIMAL}[smtp]\nhost = \"smtp.example.com\"\ntls = \"none\"\n"
        ));
        assert!(
            errs[0].contains("only allowed for a loopback host"),
            "{errs:?}"
        );
    }

    #[test]
    fn values_that_would_break_later_are_refused_with_their_line() {
        // (what replaces or follows MINIMAL, the line, the message starts with)
        let cases: &[(&str, usize, &str)] = &[
            ("name = \"Beginners\\nin AI\"", 2, "`name` must be one line"),
            ("name = \"Bell\\u0007\"", 2, "`name` must be one line"),
            ("subject = \" \"", 7, "`subject` must not be empty"),
            (
                "postal_address = \"1 Main St\\u001b[2J\"",
                6,
                "`postal_address` must not contain control",
            ),
            (
                "url = \"https://exa mple.com\"",
                3,
                "`url` must be an absolute http(s) URL",
            ),
            (
                "url = \"https://example.com/?a=1\"",
                3,
                "`url` must be an absolute http(s) URL",
            ),
            (
                "list_id = \"daily example\"",
                7,
                "`list_id` must be a dotted name",
            ),
            (
                "feedback_id = \"a\\r\\nBcc: x\"",
                7,
                "`feedback_id` must be printable ASCII",
            ),
            (
                "max_lateness = \"100000000d\"",
                7,
                "`max_lateness` = \"100000000d\" is more than 7 days",
            ),
            (
                "[[section]]\nname = \"issue\"",
                7,
                "section name `issue` is taken",
            ),
            (
                "[[section]]\nname = \"subscriber\"",
                7,
                "section name `subscriber` is taken",
            ),
            (
                "[[section]]\nname = \"unsubscribe_url\"",
                7,
                "section name `unsubscribe_url` is taken",
            ),
            (
                "[smtp]\nhost = \"smtp.example.com\"\nport = 0",
                9,
                "[smtp] port must be between 1 and 65535",
            ),
            (
                "[smtp]\nhost = \"smtp.example.com\"\ntimeout = \"0s\"",
                9,
                "[smtp] timeout must be more than 0",
            ),
            (
                "[smtp]\nhost = \"smtp.example.com\"\nretry_base = \"0\"",
                9,
                "[smtp] retry_base must be more than 0",
            ),
            (
                "[smtp]\nhost = \"smtp.example.com\"\nretries = 1000",
                9,
                "[smtp] retries = 1000 is more than 10",
            ),
            (
                "[smtp]\nhost = \"smtp.example.com\\r\\n\"",
                8,
                "[smtp] host `smtp.example.com\\r\\n` is not a host name",
            ),
            (
                "[smtp]\nhost = \"smtp.example.com\"\nhelo = \"me\\nRCPT\"",
                9,
                "[smtp] helo `me\\nRCPT` must be",
            ),
            (
                "[smtp]\nhost = \"x.org\"\nusername = \"u\\n\"\npassword_env = \"P\"",
                9,
                "[smtp] username must be one line",
            ),
            (
                "[smtp]\nhost = \"x.org\"\nusername = \"u\"\npassword_env = \"A=B\"",
                10,
                "[smtp] password_env must name an environment variable",
            ),
            (
                "[unsubscribe]\nurl = \"https://example.com/u/{token}\\r\\nBcc: x\"",
                8,
                "[unsubscribe] url must be an absolute https URL",
            ),
            (
                "[unsubscribe]\nurl = \"https://example.com/u/{token}/{token}\"",
                8,
                "[unsubscribe] url must contain `{token}` exactly once (found 2)",
            ),
            (
                "[unsubscribe]\nurl = \"https://example.com/u/\"",
                8,
                "[unsubscribe] url must contain `{token}` exactly once (found 0)",
            ),
            (
                "[unsubscribe]\nurl = \"https://example.com/u/{token}>, <https://evil.example\"",
                8,
                "[unsubscribe] url must be an absolute https URL",
            ),
            (
                "[unsubscribe]\nmailto = \"u@example.com\\r\\nBcc: x@evil.example\"",
                8,
                "[unsubscribe] mailto must be a bare address",
            ),
            (
                "[unsubscribe]\nmailto = \"u@example.com?subject=x\"",
                8,
                "[unsubscribe] mailto must be a bare address",
            ),
            (
                "[unsubscribe]\nmailto = \"mailto:u@example.com\"",
                8,
                "[unsubscribe] mailto must be a bare address",
            ),
            (
                "[unsubscribe]\nsecret_env = \"\"",
                8,
                "[unsubscribe] secret_env must name an environment variable",
            ),
            (
                "[dkim]\ndomain = \"example.com\\n\"\nselector = \"daily\"\nprivate_key_file = \"k.pem\"",
                8,
                "[dkim] domain `example.com\\n` must be a DNS name",
            ),
            (
                "[dkim]\ndomain = \"example.com\"\nselector = \"da ily\"\nprivate_key_file = \"k.pem\"",
                9,
                "[dkim] selector `da ily` must be a DNS name",
            ),
        ];
        let mut failures = Vec::new();
        for (extra, line, start) in cases {
            let key = extra.split(" = ").next().unwrap_or("");
            // A top-level key replaces MINIMAL's line of that key, if any.
            let text = if !extra.starts_with('[') && MINIMAL.contains(&format!("\n{key} = ")) {
                MINIMAL
                    .lines()
                    .map(|l| {
                        if l.starts_with(&format!("{key} = ")) {
                            extra
                        } else {
                            l
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                format!("{MINIMAL}{extra}\n")
            };
            let errs = errors(&text);
            let want = format!("dailyissue.toml:{line}: {start}");
            if errs.len() != 1 || !errs[0].starts_with(&want) {
                failures.push(format!("{extra}\n  want {want}\n  got  {errs:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn durations_parse() {
        use std::time::Duration;
        for (text, secs) in [
            ("6h", 21600),
            ("90m", 5400),
            ("1h30m", 5400),
            ("45s", 45),
            ("0", 0),
            ("2d", 172800),
        ] {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_secs(secs)),
                "{text}"
            );
        }
        for text in ["", "6", "h", "6x", "1.5h"] {
            assert_eq!(parse_duration(text), None, "{text}");
        }
    }

    #[test]
    fn invalid_toml_reports_its_line() {
        let errs = errors(&format!("{MINIMAL}daily_cap = \n"));
        assert!(errs[0].starts_with("dailyissue.toml:7:"), "{errs:?}");
    }
}

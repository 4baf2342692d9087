//! `[subscribe]` and `[feedback]`: signups through `serve` (double opt-in)
//! and the readers' one-click votes.
//!
//! `[subscribe]` says whether the archive carries the signup form and where
//! it posts (`action`, by default `URL/subscribe`), where the confirmation
//! link points (`confirm_url`, by default `URL/confirm/{token}`), how long
//! that link stays valid (`confirm_within`, which is also when a pending
//! signup expires), the limits that stop list bombing
//! (`per_address_per_day` confirmation emails to one address,
//! `per_ip_per_hour` from one client), whether a welcome email follows the
//! confirmation, and the form's one-line promise. `[feedback]` says whether
//! each issue ends with "Was today's issue useful?" and where the votes go
//! (`url`, by default `URL/feedback/{token}`).

use toml::Spanned;

use super::Problems;
use super::raw::{RawFeedback, RawSubscribe};
use super::values::{has_control, parse_duration, url_problem};

#[derive(Debug, Clone)]
pub struct SubscribeSettings {
    /// Whether archive pages carry the form and `serve` takes signups.
    pub enabled: bool,
    /// Where the form posts.
    pub action: String,
    /// The confirmation link, with `{token}` once.
    pub confirm_url: String,
    /// Confirmation emails to one address in 24 hours.
    pub per_address_per_day: u32,
    /// Confirmation emails asked for from one client address in an hour.
    pub per_ip_per_hour: u32,
    /// Send a welcome email once a signup is confirmed.
    pub welcome: bool,
    /// How long a confirmation link is valid; a pending signup expires then.
    pub confirm_within: chrono::Duration,
    /// The form's one line above the box; `None`: the built-in wording.
    pub promise: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FeedbackSettings {
    /// Whether each issue ends with the one-click question.
    pub enabled: bool,
    /// The vote link, with `{token}` once.
    pub url: String,
}

/// The most any limit may be: beyond it the limit is no limit.
const MAX_LIMIT: u32 = 1000;
const DEFAULT_CONFIRM_WITHIN: chrono::Duration = chrono::Duration::days(7);

/// Checks `[subscribe]`, or gives its defaults under `base_url`.
pub(super) fn subscribe(
    raw: Option<&RawSubscribe>,
    base_url: &str,
    problems: &mut Problems,
) -> SubscribeSettings {
    let defaults = SubscribeSettings {
        enabled: true,
        action: format!("{base_url}/subscribe"),
        confirm_url: format!("{base_url}/confirm/{{token}}"),
        per_address_per_day: 3,
        per_ip_per_hour: 10,
        welcome: true,
        confirm_within: DEFAULT_CONFIRM_WITHIN,
        promise: None,
    };
    let Some(raw) = raw else {
        return defaults;
    };
    SubscribeSettings {
        enabled: raw.enabled,
        action: match &raw.action {
            Some(a) => url(problems, a, "[subscribe] action", false),
            None => defaults.action,
        },
        confirm_url: match &raw.confirm_url {
            Some(u) => url(problems, u, "[subscribe] confirm_url", true),
            None => defaults.confirm_url,
        },
        per_address_per_day: limit(
            problems,
            raw.per_address_per_day.as_ref(),
            3,
            "per_address_per_day",
        ),
        per_ip_per_hour: limit(
            problems,
            raw.per_ip_per_hour.as_ref(),
            10,
            "per_ip_per_hour",
        ),
        welcome: raw.welcome,
        confirm_within: confirm_within(problems, raw.confirm_within.as_ref()),
        promise: raw.promise.as_ref().map(|p| promise(problems, p)),
    }
}

/// Checks `[feedback]`, or gives its defaults under `base_url`.
pub(super) fn feedback(
    raw: Option<&RawFeedback>,
    base_url: &str,
    problems: &mut Problems,
) -> FeedbackSettings {
    let default_url = format!("{base_url}/feedback/{{token}}");
    let Some(raw) = raw else {
        return FeedbackSettings {
            enabled: true,
            url: default_url,
        };
    };
    FeedbackSettings {
        enabled: raw.enabled,
        url: match &raw.url {
            Some(u) => url(problems, u, "[feedback] url", true),
            None => default_url,
        },
    }
}

/// An absolute http(s) URL; with `token`, holding `{token}` exactly once.
fn url(problems: &mut Problems, raw: &Spanned<String>, key: &str, token: bool) -> String {
    let text = raw.get_ref();
    let example = if token {
        "\"https://example.com/confirm/{token}\""
    } else {
        "\"https://example.com/subscribe\""
    };
    if token {
        let n = text.matches("{token}").count();
        if n != 1 {
            problems.bad(
                raw.span(),
                format!("{key} must contain `{{token}}` exactly once (found {n}), e.g. {example}"),
            );
        }
    }
    if let Some(why) = url_problem(&text.replace("{token}", "TOKEN"), true) {
        problems.bad(
            raw.span(),
            format!("{key} must be an absolute https URL such as {example}: {why}"),
        );
    }
    text.clone()
}

fn limit(problems: &mut Problems, raw: Option<&Spanned<u32>>, default: u32, key: &str) -> u32 {
    let Some(raw) = raw else {
        return default;
    };
    let n = *raw.get_ref();
    if (1..=MAX_LIMIT).contains(&n) {
        return n;
    }
    problems.bad(
        raw.span(),
        format!(
            "[subscribe] {key} = {n} is out of range; use 1 to {MAX_LIMIT} (to take no signups at all, set enabled = false)"
        ),
    );
    default
}

/// From one hour to 30 days: a link must outlive a slow inbox, and a
/// pending signup is personal data that should not linger.
fn confirm_within(problems: &mut Problems, raw: Option<&Spanned<String>>) -> chrono::Duration {
    let Some(raw) = raw else {
        return DEFAULT_CONFIRM_WITHIN;
    };
    let within = parse_duration(raw.get_ref())
        .filter(|d| (3600..=30 * 86_400).contains(&d.as_secs()))
        .and_then(|d| chrono::Duration::from_std(d).ok());
    within.unwrap_or_else(|| {
        problems.bad(
            raw.span(),
            format!(
                "[subscribe] confirm_within = \"{}\" must be a duration from \"1h\" to \"30d\", e.g. \"7d\"",
                raw.get_ref().escape_debug()
            ),
        );
        DEFAULT_CONFIRM_WITHIN
    })
}

fn promise(problems: &mut Problems, raw: &Spanned<String>) -> String {
    let text = raw.get_ref().trim();
    if text.is_empty() || has_control(text) || text.chars().count() > 300 {
        problems.bad(
            raw.span(),
            "[subscribe] promise must be one line of at most 300 characters".to_string(),
        );
    }
    text.to_string()
}

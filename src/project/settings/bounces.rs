//! `[bounces]`: what happens to bounces and complaints that arrive after
//! the relay's 250 — the VERP envelope sender (`return_path`), the policy
//! for soft bounces (`soft_limit` in a row within `soft_window` issues),
//! and the provider webhooks `serve` answers: the SNS topics it accepts
//! for Amazon SES, and the *names* of the environment variables holding
//! the Postmark, Mailgun and SendGrid secrets (read by the command layer,
//! never here). Every key is optional; the defaults protect reputation.

use serde::Deserialize;
use toml::Spanned;

use super::values::has_control;
use super::{Problems, env_name};

/// Characters of a VERP token (see `mail::verp`): base32, 100 bits.
pub const TOKEN_LEN: usize = 20;

/// The longest local part RFC 5321 allows (octets).
const MAX_LOCAL_PART: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBounces {
    return_path: Option<Spanned<String>>,
    #[serde(default = "default_soft_limit")]
    soft_limit: Spanned<u32>,
    #[serde(default = "default_soft_window")]
    soft_window: Spanned<u32>,
    #[serde(default)]
    ses_topics: Vec<Spanned<String>>,
    postmark_auth_env: Option<Spanned<String>>,
    mailgun_key_env: Option<Spanned<String>>,
    sendgrid_key_env: Option<Spanned<String>>,
}

fn default_soft_limit() -> Spanned<u32> {
    Spanned::new(0..0, 3)
}
fn default_soft_window() -> Spanned<u32> {
    Spanned::new(0..0, 7)
}

/// The VERP envelope sender: `prefix` TOKEN `suffix`, e.g. `bounces+` and
/// `@example.com`. The token sits in the local part, so the whole address
/// is one mailbox the bounce processor can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnPath {
    pub prefix: String,
    pub suffix: String,
}

#[derive(Debug, Clone)]
pub struct BounceSettings {
    /// `None`: the From address is the envelope sender.
    pub return_path: Option<ReturnPath>,
    /// Soft bounces from this many issues in a row suppress an address.
    pub soft_limit: u32,
    /// ...when they are all among the newsletter's last `soft_window` issues.
    pub soft_window: u32,
    /// SNS topic ARNs whose SES notifications `serve` accepts; none: the
    /// SES webhook refuses everything.
    pub ses_topics: Vec<String>,
    /// Holds `USER:PASSWORD`, the basic auth Postmark's webhook URL carries.
    pub postmark_auth_env: String,
    /// Holds Mailgun's HTTP webhook signing key.
    pub mailgun_key_env: String,
    /// Holds SendGrid's signed event webhook public key (base64).
    pub sendgrid_key_env: String,
}

impl Default for BounceSettings {
    fn default() -> Self {
        BounceSettings {
            return_path: None,
            soft_limit: *default_soft_limit().get_ref(),
            soft_window: *default_soft_window().get_ref(),
            ses_topics: Vec::new(),
            postmark_auth_env: "DAILYISSUE_POSTMARK_AUTH".into(),
            mailgun_key_env: "DAILYISSUE_MAILGUN_SIGNING_KEY".into(),
            sendgrid_key_env: "DAILYISSUE_SENDGRID_PUBLIC_KEY".into(),
        }
    }
}

/// Checks `[bounces]`, or gives the defaults when it is left out.
pub(super) fn check(raw: Option<&RawBounces>, problems: &mut Problems) -> BounceSettings {
    let mut settings = BounceSettings::default();
    let Some(b) = raw else {
        return settings;
    };
    settings.return_path = b
        .return_path
        .as_ref()
        .and_then(|r| return_path(r, problems));
    let (limit, window) = (*b.soft_limit.get_ref(), *b.soft_window.get_ref());
    if !(1..=100).contains(&limit) {
        problems.bad(
            b.soft_limit.span(),
            format!("[bounces] soft_limit must be 1 to 100 soft bounces in a row, not {limit}"),
        );
    }
    if window < limit || window > 1000 {
        problems.bad(
            b.soft_window.span(),
            format!(
                "[bounces] soft_window ({window} issues) must be at least soft_limit ({limit}) and at most 1000: it is the span in which soft bounces in a row count"
            ),
        );
    }
    settings.soft_limit = limit;
    settings.soft_window = window;
    for topic in &b.ses_topics {
        if !is_topic_arn(topic.get_ref()) {
            problems.bad(
                topic.span(),
                format!(
                    "[bounces] ses_topics: `{}` is not an SNS topic ARN such as \"arn:aws:sns:us-east-1:123456789012:ses-bounces\"",
                    topic.get_ref().escape_debug()
                ),
            );
        }
    }
    settings.ses_topics = b.ses_topics.iter().map(|t| t.get_ref().clone()).collect();
    settings.postmark_auth_env = env_or(problems, &b.postmark_auth_env, "postmark_auth_env")
        .unwrap_or(settings.postmark_auth_env);
    settings.mailgun_key_env =
        env_or(problems, &b.mailgun_key_env, "mailgun_key_env").unwrap_or(settings.mailgun_key_env);
    settings.sendgrid_key_env = env_or(problems, &b.sendgrid_key_env, "sendgrid_key_env")
        .unwrap_or(settings.sendgrid_key_env);
    settings
}

/// The variable named by `key`, when it is written.
fn env_or(problems: &mut Problems, field: &Option<Spanned<String>>, key: &str) -> Option<String> {
    field
        .as_ref()
        .map(|f| env_name(problems, f, &format!("[bounces] {key}")))
}

/// `return_path`: an address with `{token}` once in its local part, whose
/// local part still fits 64 octets once the token is in.
fn return_path(field: &Spanned<String>, problems: &mut Problems) -> Option<ReturnPath> {
    let text = field.get_ref();
    let example = "[bounces] return_path must be an address with `{token}` in its local part, such as \"bounces+{token}@example.com\"";
    let bad = |problems: &mut Problems, why: String| {
        problems.bad(field.span(), format!("{example}: {why}"));
        None
    };
    if has_control(text) || text.contains(char::is_whitespace) {
        return bad(problems, "it contains spaces or control characters".into());
    }
    let (Some(at), 1) = (text.rfind('@'), text.matches("{token}").count()) else {
        return bad(
            problems,
            format!(
                "`{}` needs exactly one {{token}} and an @",
                text.escape_debug()
            ),
        );
    };
    let (prefix, suffix) = text.split_once("{token}")?;
    if prefix.len() > at {
        return bad(problems, "{token} must come before the @".into());
    }
    let sample = format!("{prefix}{}{suffix}", "a".repeat(TOKEN_LEN));
    let local = sample.rfind('@').map_or(0, |i| i);
    if local > MAX_LOCAL_PART {
        return bad(
            problems,
            format!(
                "with the {TOKEN_LEN}-character token its local part is {local} octets, over the 64 that mail servers accept; shorten it"
            ),
        );
    }
    if sample.parse::<lettre::Address>().is_err() {
        return bad(problems, format!("`{sample}` is not a valid address"));
    }
    Some(ReturnPath {
        prefix: prefix.to_string(),
        suffix: suffix.to_string(),
    })
}

/// `arn:aws:sns:REGION:ACCOUNT:NAME` (any partition, e.g. `aws-cn`).
fn is_topic_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    matches!(parts.as_slice(),
        [arn, partition, "sns", region, account, name]
            if *arn == "arn"
                && partition.starts_with("aws")
                && !region.is_empty()
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
}

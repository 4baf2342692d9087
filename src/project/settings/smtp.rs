//! `[smtp]`: the relay every copy goes through — host, port and TLS mode,
//! credentials (the password only by the name of its environment
//! variable), connections and rate, timeouts and retries. Values are
//! refused here when the transport could not use them, or when they would
//! send mail in the clear to a host other than this machine.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::raw::RawSmtp;
use super::values::{MAX_RETRIES, has_control, is_host, is_loopback, parse_duration};
use super::{Problems, env_name};

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
    pub timeout: Duration,
    pub helo: Option<String>,
    /// Attempts per message within one run for 4xx replies and dropped
    /// connections, after the first.
    pub retries: u32,
    /// First retry delay; doubles each time.
    pub retry_base: Duration,
    /// Extra CA certificate (PEM) to trust, for private relays.
    pub ca_file: Option<PathBuf>,
}

/// More connections than any provider allows one sender; also bounds the
/// threads and sockets one run holds.
const MAX_CONCURRENCY: usize = 256;

/// Checks `[smtp]` (`spanned` is the whole table, blamed for the problems
/// of several keys together). Problems of one line stay in this order.
pub(super) fn check(spanned: &Spanned<RawSmtp>, problems: &mut Problems) -> SmtpSettings {
    let s = spanned.get_ref();
    let password_env = s
        .password_env
        .as_ref()
        .map(|p| env_name(problems, p, "[smtp] password_env"));
    let hour = Duration::from_secs(3600);
    let timeout = duration(problems, &s.timeout, "timeout", 30, hour);
    let retry_base = duration(problems, &s.retry_base, "retry_base", 2, hour);
    server(s, problems);
    limits(spanned, problems);
    security(spanned, problems);
    SmtpSettings {
        host: s.host.get_ref().clone(),
        port: s
            .port
            .as_ref()
            .map(|p| *p.get_ref())
            .unwrap_or(match s.tls {
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
}

/// A duration more than 0 and at most `max`; `default` seconds when left
/// out, and standing in for a value refused.
fn duration(
    problems: &mut Problems,
    field: &Option<Spanned<String>>,
    key: &str,
    default: u64,
    max: Duration,
) -> Duration {
    let Some(field) = field else {
        return Duration::from_secs(default);
    };
    match parse_duration(field.get_ref()) {
        Some(d) if d.is_zero() => {
            problems.bad(
                field.span(),
                format!("[smtp] {key} must be more than 0; the default is \"{default}s\""),
            );
            Duration::from_secs(default)
        }
        Some(d) if d > max => {
            problems.bad(
                field.span(),
                format!(
                    "[smtp] {key} = \"{}\" is longer than {}s; the default is \"{default}s\"",
                    field.get_ref(),
                    max.as_secs()
                ),
            );
            Duration::from_secs(default)
        }
        Some(d) => d,
        None => {
            problems.bad(
                field.span(),
                format!(
                    "[smtp] {key} = \"{}\" is not a duration; write e.g. \"{default}s\"",
                    field.get_ref()
                ),
            );
            Duration::from_secs(default)
        }
    }
}

/// Where and as whom: the host, the port, the name given in HELO, the
/// user name (all of which reach the SMTP dialogue as written).
fn server(s: &RawSmtp, problems: &mut Problems) {
    let host = s.host.get_ref();
    if !is_host(host) {
        problems.bad(
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
        problems.bad(
            port.span(),
            "[smtp] port must be between 1 and 65535: 587 for starttls, 465 for tls".into(),
        );
    }
    if let Some(helo) = &s.helo
        && !is_host(helo.get_ref())
    {
        problems.bad(
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
        problems.bad(
            user.span(),
            "[smtp] username must be one line without control characters".into(),
        );
    }
}

/// How much at once: retries per message, connections, messages per second.
fn limits(spanned: &Spanned<RawSmtp>, problems: &mut Problems) {
    let s = spanned.get_ref();
    if *s.retries.get_ref() > MAX_RETRIES {
        problems.bad(
            s.retries.span(),
            format!(
                "[smtp] retries = {} is more than {MAX_RETRIES}; the delay doubles each time, so a few retries already span minutes (what is left goes out on the next run)",
                s.retries.get_ref()
            ),
        );
    }
    if !(1..=MAX_CONCURRENCY).contains(&s.concurrency) {
        problems.bad(
            spanned.span(),
            format!(
                "[smtp] concurrency = {} must be between 1 and {MAX_CONCURRENCY}; providers allow a handful of connections per sender (8-20 is typical)",
                s.concurrency
            ),
        );
    }
    if s.rate_per_second < 0.0 || !s.rate_per_second.is_finite() {
        problems.bad(
            spanned.span(),
            "[smtp] rate_per_second must be 0 (no limit) or a positive number".into(),
        );
    }
}

/// No plain text to a remote host, and credentials whole or not at all.
fn security(spanned: &Spanned<RawSmtp>, problems: &mut Problems) {
    let s = spanned.get_ref();
    if s.tls == Tls::None && !is_loopback(s.host.get_ref()) {
        problems.bad(
            spanned.span(),
            format!(
                "[smtp] tls = \"none\" is only allowed for a loopback host, not `{}`: use \"starttls\" or \"tls\"",
                s.host.get_ref().escape_debug()
            ),
        );
    }
    if s.username.is_some() != s.password_env.is_some() {
        problems.bad(
            spanned.span(),
            "[smtp] set both `username` and `password_env` (the name of the environment variable holding the password), or neither".into(),
        );
    }
}

//! When an issue goes out: the `timezone` the newsletter's days are
//! counted in, the `send_time` the daily run is scheduled for (local
//! time), and the `max_lateness` after which a late run sends nothing.

use chrono_tz::Tz;
use toml::Spanned;

use super::Problems;
use super::raw::Raw;
use super::values::{MAX_LATENESS, parse_duration};

pub(super) struct Schedule {
    /// `None` when unknown (a problem was recorded).
    pub timezone: Option<Tz>,
    pub send_time: chrono::NaiveTime,
    pub max_lateness: chrono::Duration,
}

pub(super) fn check(raw: &Raw, problems: &mut Problems) -> Schedule {
    let timezone = timezone(problems, &raw.timezone);
    let max_lateness = max_lateness(problems, &raw.max_lateness);
    let send_time = send_time(problems, &raw.send_time);
    Schedule {
        timezone,
        send_time,
        max_lateness,
    }
}

fn timezone(problems: &mut Problems, raw: &Spanned<String>) -> Option<Tz> {
    match raw.get_ref().parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            problems.bad(
                raw.span(),
                format!(
                    "unknown time zone `{}`; use an IANA name such as \"America/New_York\" or \"Europe/Berlin\"",
                    raw.get_ref()
                ),
            );
            None
        }
    }
}

/// At most [`MAX_LATENESS`]; the default (6 hours) stands in for a value
/// refused.
fn max_lateness(problems: &mut Problems, raw: &Spanned<String>) -> chrono::Duration {
    match parse_duration(raw.get_ref()) {
        Some(d) if d <= MAX_LATENESS => {
            chrono::Duration::from_std(d).unwrap_or(chrono::Duration::hours(6))
        }
        Some(_) => {
            problems.bad(
                raw.span(),
                format!(
                    "`max_lateness` = \"{}\" is more than 7 days; use at most \"7d\", or \"0\" for no limit",
                    raw.get_ref()
                ),
            );
            chrono::Duration::hours(6)
        }
        None => {
            problems.bad(
                raw.span(),
                format!(
                    "`max_lateness` = \"{}\" is not a duration; write e.g. \"6h\", \"90m\" or \"1h30m\"",
                    raw.get_ref()
                ),
            );
            chrono::Duration::hours(6)
        }
    }
}

fn send_time(problems: &mut Problems, raw: &Spanned<String>) -> chrono::NaiveTime {
    match chrono::NaiveTime::parse_from_str(raw.get_ref(), "%H:%M") {
        Ok(t) => t,
        Err(_) => {
            problems.bad(
                raw.span(),
                format!(
                    "`send_time` = \"{}\" is not a time of day; write e.g. \"06:00\"",
                    raw.get_ref()
                ),
            );
            chrono::NaiveTime::MIN
        }
    }
}

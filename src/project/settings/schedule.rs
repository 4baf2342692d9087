//! When an issue goes out: the `timezone` the newsletter's days are
//! counted in, the `send_time` the daily run is scheduled for (local
//! time), the `max_lateness` after which a late run sends nothing, and
//! whose local time that is (`delivery`: the newsletter's zone, or each
//! reader's own).

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
    pub delivery: Delivery,
}

/// Whose clock `send_time` is read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// `send_time` in the newsletter's `timezone`: one issue a day, one
    /// morning for everyone (the default).
    #[default]
    Zone,
    /// `send_time` in each reader's own zone (the list's `timezone`
    /// column, or the newsletter's): every reader gets the issue of their
    /// local date on their own morning.
    Local,
}

pub(super) fn check(raw: &Raw, problems: &mut Problems) -> Schedule {
    let timezone = timezone(problems, &raw.timezone);
    let max_lateness = max_lateness(problems, &raw.max_lateness);
    let send_time = send_time(problems, &raw.send_time);
    let delivery = delivery(problems, raw.delivery.as_ref());
    Schedule {
        timezone,
        send_time,
        max_lateness,
        delivery,
    }
}

fn delivery(problems: &mut Problems, raw: Option<&Spanned<String>>) -> Delivery {
    let Some(raw) = raw else {
        return Delivery::Zone;
    };
    match raw.get_ref().as_str() {
        "zone" => Delivery::Zone,
        "local" => Delivery::Local,
        other => {
            problems.bad(
                raw.span(),
                format!(
                    "`delivery` = \"{other}\" is not a delivery mode; use \"zone\" (send_time in `timezone`, the default) or \"local\" (send_time in each reader's own zone)"
                ),
            );
            Delivery::Zone
        }
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

#[cfg(test)]
mod tests {
    use super::Delivery;
    use crate::project::settings::Settings;

    const MINIMAL: &str = r#"
name = "Beginners in AI"
url = "https://example.com/"
timezone = "America/New_York"
from = "Beginners in AI <daily@example.com>"
postal_address = "1 Main St, Springfield"
"#;

    fn parse(extra: &str) -> Result<Settings, Vec<String>> {
        Settings::parse(
            &format!("{MINIMAL}{extra}\n"),
            std::path::Path::new("dailyissue.toml"),
        )
        .map_err(|ps| ps.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn delivery_defaults_to_the_newsletters_zone() {
        assert_eq!(parse("").expect("valid").delivery, Delivery::Zone);
        assert_eq!(
            parse("delivery = \"zone\"").expect("valid").delivery,
            Delivery::Zone
        );
        assert_eq!(
            parse("delivery = \"local\"").expect("valid").delivery,
            Delivery::Local
        );
    }

    #[test]
    fn an_unknown_delivery_mode_is_named_with_its_line() {
        let errors = parse("delivery = \"reader\"").expect_err("refused");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("dailyissue.toml:7: `delivery` = \"reader\""),
            "{errors:?}"
        );
    }
}

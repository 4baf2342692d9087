//! The schedule of a `send` run that was not given `--date`: nothing goes
//! out before the settings' `send_time`, nor more than `max_lateness` after
//! it, so a late or early cron job never surprises readers. The clock is a
//! parameter (`run` reads it once).

use chrono::{DateTime, NaiveDate, Utc};

use crate::deliver::transport::Sink;
use crate::project::settings::Settings;

use super::SendOptions;

/// Why this run sends nothing now, if so. Only a run of today's issue (no
/// `--date`) to the list over SMTP keeps the schedule: the schedule
/// protects readers, and `.eml` files, test copies and dry runs reach none.
pub(super) fn hold_back(settings: &Settings, opts: &SendOptions, sink: &Sink) -> Option<String> {
    if !opts.implicit_date || !opts.to.is_empty() || !matches!(sink, Sink::Smtp(_)) {
        return None;
    }
    off_schedule(settings, opts.date, opts.now)
}

/// Why an implicit-today run sends nothing now: before `send_time` (the
/// issue goes out later today) or more than `max_lateness` after it.
fn off_schedule(settings: &Settings, date: NaiveDate, now: DateTime<Utc>) -> Option<String> {
    let zone = settings.timezone;
    let local_now = now.with_timezone(&zone).naive_local();
    let due = date.and_time(settings.send_time);
    if local_now < due {
        let wait = due - local_now;
        return Some(format!(
            "it is before the {} send time in {zone}; it goes out in {} (run `dailyissue send` again then, or pass --date {date} to send it now)",
            settings.send_time.format("%H:%M"),
            humanize(wait)
        ));
    }
    too_late(local_now, date, settings.send_time, settings.max_lateness).then(|| {
        format!(
            "it is more than {} past the {} send time (max_lateness); pass --date {date} to send it anyway",
            humanize(settings.max_lateness),
            settings.send_time.format("%H:%M"),
        )
    })
}

/// Whether a run at `now` (local time) is past the send time plus
/// `max_lateness` (0 = never too late).
fn too_late(
    now: chrono::NaiveDateTime,
    date: NaiveDate,
    send_time: chrono::NaiveTime,
    max_lateness: chrono::Duration,
) -> bool {
    max_lateness > chrono::Duration::zero() && now > date.and_time(send_time) + max_lateness
}

/// `6h`, `45m`, `5h 30m`; rounded up to the minute.
fn humanize(d: chrono::Duration) -> String {
    let m = (d.num_seconds() + 59) / 60;
    match (m / 60, m % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_counts_from_the_send_time() {
        let date: NaiveDate = "2027-03-01".parse().expect("date");
        let six = chrono::NaiveTime::from_hms_opt(6, 0, 0).expect("time");
        let at = |s: &str| -> chrono::NaiveDateTime { s.parse().expect("datetime") };
        let late = chrono::Duration::hours(6);
        assert!(
            !too_late(at("2027-03-01T05:00:00"), date, six, late),
            "early is fine"
        );
        assert!(!too_late(at("2027-03-01T11:59:00"), date, six, late));
        assert!(too_late(at("2027-03-01T12:01:00"), date, six, late));
        assert!(
            too_late(at("2027-03-02T00:30:00"), date, six, late),
            "yesterday's letter at midnight"
        );
        assert!(
            !too_late(
                at("2027-03-02T00:30:00"),
                date,
                six,
                chrono::Duration::zero()
            ),
            "0 = no limit"
        );
    }
}

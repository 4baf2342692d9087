//! Local mornings (`delivery = "local"`): when `send_time` happens in a
//! reader's own zone, and which issue a reader is due at an instant.
//! Pure: the clock, the zone and what the ledger remembers of the reader
//! are parameters.
//!
//! The rules, for a reader in zone `z` at the instant `now`:
//! - the reader's *current issue* is the latest date `d` whose morning
//!   (`send_time` on `d` in `z`) has come; at any instant two dates (three
//!   with a lateness over a day) are current somewhere on Earth;
//! - it is due while `now` is within `max_lateness` of that morning
//!   (`0`: no limit), and not before;
//! - issues only go forward: a reader who already got a later issue is
//!   not due (so one who moves west, whose date goes back, never gets an
//!   older issue after a newer one); whether they got `d` itself is the
//!   ledger row's business, as with `send --date` (sent: never again; no
//!   answer: resent once);
//! - a reader whose zone changed since their last copy is due only on a
//!   local date after the one that copy arrived on (never two issues on
//!   one local day), and the issue right after their last one stays due
//!   past `max_lateness` until the next morning (a move east never skips
//!   an issue because its morning came sooner). A move across the date
//!   line eastwards skips the calendar day the reader skips.
//!
//! A `send_time` the DST gap skips means the first instant after the gap;
//! one the fall-back fold repeats means its first occurrence.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// What the ledger remembers of a reader's latest copy (any issue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Last {
    /// The issue's date.
    pub issue: NaiveDate,
    /// The reader's local date when it went out, in `zone`.
    pub local: NaiveDate,
    /// The zone it was sent for; `None` when the ledger does not know it.
    pub zone: Option<Tz>,
}

/// The schedule every reader shares: `send_time` and `max_lateness`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    pub send_time: NaiveTime,
    /// Zero: no limit.
    pub max_lateness: Duration,
}

/// Where a reader stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Morning {
    /// The issue of `date` is due now; its morning was at `at`.
    Due { date: NaiveDate, at: DateTime<Utc> },
    /// Nothing now: the current issue is `date`, which the reader already
    /// has (or a later one), or which waits for another local day.
    Waiting {
        date: NaiveDate,
        next: DateTime<Utc>,
    },
    /// The morning of `date` passed more than `max_lateness` ago.
    Late {
        date: NaiveDate,
        next: DateTime<Utc>,
    },
}

impl Schedule {
    /// The instant of `send_time` on `date` in `zone`.
    pub fn morning(&self, date: NaiveDate, zone: Tz) -> DateTime<Utc> {
        morning(date, self.send_time, zone)
    }

    /// The reader's current issue at `now`: the latest date whose morning
    /// has come, and that morning.
    pub fn current(&self, now: DateTime<Utc>, zone: Tz) -> (NaiveDate, DateTime<Utc>) {
        let mut date = now.with_timezone(&zone).date_naive();
        loop {
            let at = self.morning(date, zone);
            if at <= now {
                return (date, at);
            }
            match date.pred_opt() {
                Some(d) => date = d,
                None => return (date, at),
            }
        }
    }

    /// Where a reader in `zone` stands at `now`, given their last copy.
    pub fn judge(&self, now: DateTime<Utc>, zone: Tz, last: Option<&Last>) -> Morning {
        let (date, at) = self.current(now, zone);
        let next = date
            .succ_opt()
            .map_or(DateTime::<Utc>::MAX_UTC, |d| self.morning(d, zone));
        let waiting = Morning::Waiting { date, next };
        let moved = last.is_some_and(|l| l.zone.is_some_and(|z| z != zone));
        if let Some(last) = last {
            // The same issue is the ledger row's business (sent: not
            // again; unknown: resent once).
            if last.issue > date {
                return waiting;
            }
            let today = now.with_timezone(&zone).date_naive();
            if last.issue < date && moved && today <= last.local {
                return waiting;
            }
        }
        let late = self.max_lateness > Duration::zero() && now - at > self.max_lateness;
        if late && last.is_some_and(|l| l.issue == date) {
            return waiting;
        }
        let catching_up = moved && last.is_some_and(|l| l.issue.succ_opt() == Some(date));
        if late && !catching_up {
            return Morning::Late { date, next };
        }
        Morning::Due { date, at }
    }
}

/// The instant of `time` on `date` in `zone`. A local time the DST gap
/// skips means the first instant after the gap; one the fold repeats, its
/// first occurrence.
pub(crate) fn morning(date: NaiveDate, time: NaiveTime, zone: Tz) -> DateTime<Utc> {
    let local = date.and_time(time);
    if let Some(t) = zone.from_local_datetime(&local).earliest() {
        return t.with_timezone(&Utc);
    }
    // In a gap: the local time read with the offset before the gap is an
    // instant after the change; the change itself is the first instant
    // whose offset differs from the one a day earlier (to the second).
    let day = Duration::days(1);
    let before = zone.offset_from_utc_datetime(&(local - day)).fix();
    let offset = |secs: i64| {
        DateTime::from_timestamp(secs, 0)
            .map(|t| zone.offset_from_utc_datetime(&t.naive_utc()).fix())
    };
    let mut hi = (local - before).and_utc().timestamp();
    let mut lo = hi - day.num_seconds();
    if offset(hi) == Some(before) {
        // Not a plain gap (the zone changed more than once that day): the
        // best reading is the local time at the old offset.
        return (local - before).and_utc();
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset(mid) == Some(before) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    DateTime::from_timestamp(hi, 0).unwrap_or_else(|| (local - before).and_utc())
}

/// Readers counted by the instant of their morning, and the zones they
/// are in: "1,204 readers at 06:00 Europe/Berlin".
#[derive(Debug, Clone, Default)]
pub(crate) struct Group {
    pub readers: u64,
    /// Readers per zone name.
    pub zones: BTreeMap<&'static str, u64>,
}

impl Group {
    pub fn add(&mut self, zone: Tz) {
        self.readers += 1;
        *self.zones.entry(zone.name()).or_default() += 1;
    }

    /// The zone with the most readers (the first by name on a tie).
    pub fn main_zone(&self) -> &'static str {
        self.zones
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map_or("", |(z, _)| z)
    }

    /// `1,204 readers at 06:00 Europe/Berlin (and 3 more zones)`.
    pub fn describe(&self, at: DateTime<Utc>) -> String {
        let zone = self.main_zone();
        let local = zone
            .parse::<Tz>()
            .map(|z| at.with_timezone(&z).format("%H:%M").to_string())
            .unwrap_or_default();
        let others = self.zones.len().saturating_sub(1);
        format!(
            "{} reader{} at {local} {zone}{}",
            thousands(self.readers),
            if self.readers == 1 { "" } else { "s" },
            match others {
                0 => String::new(),
                1 => " (and 1 more zone)".to_string(),
                n => format!(" (and {n} more zones)"),
            }
        )
    }
}

/// The earliest next morning over many readers, and who has it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Next {
    pub at: Option<DateTime<Utc>>,
    pub group: Group,
}

impl Next {
    pub fn add(&mut self, at: DateTime<Utc>, zone: Tz) {
        match self.at {
            Some(t) if t < at => return,
            Some(t) if t == at => {}
            _ => {
                self.at = Some(at);
                self.group = Group::default();
            }
        }
        self.group.add(zone);
    }

    /// `next: 1,204 readers at 06:00 Europe/Berlin, in 42 min`.
    pub fn describe(&self, now: DateTime<Utc>) -> Option<String> {
        let at = self.at?;
        Some(format!(
            "next: {}, in {}",
            self.group.describe(at),
            until(at - now)
        ))
    }
}

/// `42 min`, `5 h 30 min`, `2 d 3 h`; rounded up to the minute.
pub(crate) fn until(d: Duration) -> String {
    let m = (d.num_seconds().max(0) + 59) / 60;
    match (m / 1440, m / 60 % 24, m % 60) {
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// `1,204`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("instant")
            .with_timezone(&Utc)
    }

    fn six() -> Schedule {
        Schedule {
            send_time: NaiveTime::from_hms_opt(6, 0, 0).expect("time"),
            max_lateness: Duration::hours(6),
        }
    }

    #[test]
    fn mornings_in_half_and_quarter_hour_zones() {
        let s = six();
        assert_eq!(
            s.morning(d("2027-03-01"), chrono_tz::Asia::Kolkata),
            t("2027-03-01T00:30:00Z")
        );
        assert_eq!(
            s.morning(d("2027-03-01"), chrono_tz::Asia::Kathmandu),
            t("2027-03-01T00:15:00Z")
        );
        assert_eq!(
            s.morning(d("2027-03-01"), chrono_tz::Pacific::Chatham),
            t("2027-02-28T16:15:00Z"),
            "+13:45 in the southern summer"
        );
        assert_eq!(
            s.morning(d("2027-03-01"), chrono_tz::Pacific::Kiritimati),
            t("2027-02-28T16:00:00Z")
        );
    }

    #[test]
    fn a_time_in_the_spring_gap_means_the_first_instant_after_it() {
        let at = |hm: (u32, u32)| {
            morning(
                d("2027-03-14"),
                NaiveTime::from_hms_opt(hm.0, hm.1, 0).expect("time"),
                chrono_tz::America::New_York,
            )
        };
        // 02:00-03:00 does not exist on 2027-03-14 in New York: 03:00 EDT.
        assert_eq!(at((2, 30)), t("2027-03-14T07:00:00Z"));
        assert_eq!(at((2, 0)), t("2027-03-14T07:00:00Z"));
        assert_eq!(at((1, 59)), t("2027-03-14T06:59:00Z"));
        assert_eq!(at((3, 0)), t("2027-03-14T07:00:00Z"));
        // Lord Howe moves by half an hour.
        let howe = morning(
            d("2027-10-03"),
            NaiveTime::from_hms_opt(2, 15, 0).expect("time"),
            chrono_tz::Australia::Lord_Howe,
        );
        assert_eq!(
            howe.with_timezone(&chrono_tz::Australia::Lord_Howe)
                .format("%H:%M")
                .to_string(),
            "02:30"
        );
        // Samoa skipped 2011-12-30 altogether: its morning is the first
        // instant of the 31st.
        let apia = morning(
            d("2011-12-30"),
            NaiveTime::from_hms_opt(6, 0, 0).expect("time"),
            chrono_tz::Pacific::Apia,
        );
        assert_eq!(
            apia.with_timezone(&chrono_tz::Pacific::Apia)
                .format("%F %H:%M")
                .to_string(),
            "2011-12-31 00:00"
        );
    }

    #[test]
    fn a_time_in_the_autumn_fold_means_its_first_occurrence() {
        let at = morning(
            d("2027-11-07"),
            NaiveTime::from_hms_opt(1, 30, 0).expect("time"),
            chrono_tz::America::New_York,
        );
        assert_eq!(at, t("2027-11-07T05:30:00Z"), "01:30 EDT, not EST");
    }

    #[test]
    fn the_current_issue_is_the_latest_morning_that_came() {
        let s = six();
        let tokyo = chrono_tz::Asia::Tokyo;
        assert_eq!(
            s.current(t("2027-02-28T20:59:00Z"), tokyo).0,
            d("2027-02-28")
        );
        assert_eq!(
            s.current(t("2027-02-28T21:00:00Z"), tokyo),
            (d("2027-03-01"), t("2027-02-28T21:00:00Z"))
        );
    }

    #[test]
    fn due_from_the_morning_until_max_lateness() {
        let s = six();
        let berlin = chrono_tz::Europe::Berlin;
        // Yesterday's issue is past max_lateness; today's comes at 05:00Z.
        assert!(matches!(
            s.judge(t("2027-03-01T04:59:00Z"), berlin, None),
            Morning::Late { next, .. } if next == t("2027-03-01T05:00:00Z")
        ));
        let had = Last {
            issue: d("2027-02-28"),
            local: d("2027-02-28"),
            zone: Some(berlin),
        };
        assert!(matches!(
            s.judge(t("2027-03-01T04:59:00Z"), berlin, Some(&had)),
            Morning::Waiting { next, .. } if next == t("2027-03-01T05:00:00Z")
        ));
        assert_eq!(
            s.judge(t("2027-03-01T05:00:00Z"), berlin, None),
            Morning::Due {
                date: d("2027-03-01"),
                at: t("2027-03-01T05:00:00Z")
            }
        );
        assert!(matches!(
            s.judge(t("2027-03-01T11:00:00Z"), berlin, None),
            Morning::Due { .. }
        ));
        assert!(matches!(
            s.judge(t("2027-03-01T11:01:00Z"), berlin, None),
            Morning::Late { date, .. } if date == d("2027-03-01")
        ));
        let forever = Schedule {
            max_lateness: Duration::zero(),
            ..s
        };
        assert!(matches!(
            forever.judge(t("2027-03-02T04:00:00Z"), berlin, None),
            Morning::Due { date, .. } if date == d("2027-03-01")
        ));
    }

    #[test]
    fn issues_only_go_forward() {
        let s = six();
        let had = |issue: &str, zone: Tz| Last {
            issue: d(issue),
            local: d(issue),
            zone: Some(zone),
        };
        let honolulu = chrono_tz::Pacific::Honolulu;
        let kiritimati = chrono_tz::Pacific::Kiritimati;
        // Got 03-01 in Kiritimati (16:00Z on 02-28), then moved to
        // Honolulu, where 02-28's morning is the same instant.
        let last = had("2027-03-01", kiritimati);
        assert!(matches!(
            s.judge(t("2027-02-28T16:15:00Z"), honolulu, Some(&last)),
            Morning::Waiting { .. }
        ));
        // The same reader in Honolulu on 03-01: the issue they have (its
        // ledger row says whether it went out, or is to be resent once).
        assert!(matches!(
            s.judge(t("2027-03-01T16:15:00Z"), honolulu, Some(&last)),
            Morning::Due { date, .. } if date == d("2027-03-01")
        ));
        assert!(matches!(
            s.judge(t("2027-03-02T16:15:00Z"), honolulu, Some(&last)),
            Morning::Due { date, .. } if date == d("2027-03-02")
        ));
    }

    #[test]
    fn a_move_east_neither_skips_an_issue_nor_doubles_a_day() {
        let s = six();
        let honolulu = chrono_tz::Pacific::Honolulu;
        let tokyo = chrono_tz::Asia::Tokyo;
        // Got 02-28 in Honolulu (16:00Z on 02-28); moves to Tokyo at
        // 13:00Z on 03-01, 22:00 there: 03-01's morning in Tokyo passed 16
        // hours ago, but it comes next, so it goes now...
        let last = Last {
            issue: d("2027-02-28"),
            local: d("2027-02-28"),
            zone: Some(honolulu),
        };
        assert!(matches!(
            s.judge(t("2027-03-01T13:00:00Z"), tokyo, Some(&last)),
            Morning::Due { date, .. } if date == d("2027-03-01")
        ));
        // ...while a reader who stayed in Tokyo is late-skipped.
        let stayed = Last {
            zone: Some(tokyo),
            ..last
        };
        assert!(matches!(
            s.judge(t("2027-03-01T13:00:00Z"), tokyo, Some(&stayed)),
            Morning::Late { .. }
        ));
        // Got 03-01 in New York at 06:00 EST, moves to Tokyo: 03-02 at
        // 06:00 there (21:00Z on 03-01), though the copy of 03-01 reached
        // them at 01:00 Tokyo time.
        let last = Last {
            issue: d("2027-03-01"),
            local: d("2027-03-01"),
            zone: Some(chrono_tz::America::New_York),
        };
        assert!(matches!(
            s.judge(t("2027-03-01T21:00:00Z"), tokyo, Some(&last)),
            Morning::Due { date, .. } if date == d("2027-03-02")
        ));
        // A copy that arrived on the local date the reader is now on (a
        // late one, past midnight) holds the next issue of a new zone.
        let late = Last {
            issue: d("2027-03-01"),
            local: d("2027-03-02"),
            zone: Some(chrono_tz::America::New_York),
        };
        assert!(matches!(
            s.judge(t("2027-03-01T21:00:00Z"), tokyo, Some(&late)),
            Morning::Waiting { .. }
        ));
    }

    #[test]
    fn the_next_morning_is_named_with_its_zone_and_readers() {
        let mut next = Next::default();
        let berlin = chrono_tz::Europe::Berlin;
        let later = t("2027-03-01T11:00:00Z");
        next.add(later, chrono_tz::America::New_York);
        for _ in 0..1204 {
            next.add(t("2027-03-01T05:00:00Z"), berlin);
        }
        next.add(t("2027-03-01T05:00:00Z"), chrono_tz::Europe::Paris);
        assert_eq!(
            next.describe(t("2027-03-01T04:18:00Z")).expect("next"),
            "next: 1,205 readers at 06:00 Europe/Berlin (and 1 more zone), in 42 min"
        );
        assert_eq!(until(Duration::minutes(330)), "5 h 30 min");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}

//! The list's growth for `status`: signups requested, confirmed, expired
//! and refused (by the limits, or quietly: honeypot, size, not a form),
//! readers added or imported by hand, signups removed, and unsubscribes,
//! per day in the newsletter's time zone over the last days up to today;
//! and the list's size over time, as the readers each day's issue was
//! addressed to.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use crate::ledger::Ledger;
use crate::project::settings::Settings;

/// One day's figures.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct GrowthDay {
    pub date: String,
    pub requested: u64,
    pub confirmed: u64,
    pub expired: u64,
    pub refused: u64,
    /// Added or imported by the operator.
    pub added: u64,
    pub removed: u64,
    pub unsubscribes: u64,
    /// Readers the day's issue was addressed to; none without an issue.
    pub readers: Option<u64>,
    /// The answers to "Was today's issue useful?" on the day's issue.
    pub useful_yes: u64,
    pub useful_no: u64,
}

impl GrowthDay {
    fn quiet(&self) -> bool {
        self.requested
            + self.confirmed
            + self.expired
            + self.refused
            + self.added
            + self.removed
            + self.unsubscribes
            == 0
            && self.readers.is_none()
    }
}

/// The period's figures: totals, refusals by reason, and every day.
#[derive(Debug, Default, serde::Serialize)]
pub struct Growth {
    pub from: String,
    pub to: String,
    pub timezone: String,
    pub requested: u64,
    pub confirmed: u64,
    pub expired: u64,
    pub refused: u64,
    pub added: u64,
    pub removed: u64,
    pub unsubscribes: u64,
    /// `address limit`, `ip limit`, `suppressed`, `honeypot`, `too large`,
    /// `not a form`.
    pub refused_by_reason: BTreeMap<String, u64>,
    pub days: Vec<GrowthDay>,
    #[serde(skip)]
    first: Option<NaiveDate>,
}

impl Growth {
    /// `days` days up to the day of `now`, all zero.
    pub(super) fn empty(settings: &Settings, now: DateTime<Utc>, days: u32) -> Growth {
        let today = now.with_timezone(&settings.timezone).date_naive();
        let first = today - chrono::Duration::days(i64::from(days.max(1)) - 1);
        let days: Vec<GrowthDay> = first
            .iter_days()
            .take_while(|d| *d <= today)
            .map(|d| GrowthDay {
                date: d.to_string(),
                ..GrowthDay::default()
            })
            .collect();
        Growth {
            from: first.to_string(),
            to: today.to_string(),
            timezone: settings.timezone.name().to_string(),
            days,
            first: Some(first),
            ..Growth::default()
        }
    }

    /// The day a stored time falls on, as an index into `days`.
    fn index(&self, at: &str, settings: &Settings) -> Option<usize> {
        let at = DateTime::parse_from_rfc3339(at).ok()?;
        let day = at.with_timezone(&settings.timezone).date_naive();
        let i = (day - self.first?).num_days();
        usize::try_from(i).ok().filter(|&i| i < self.days.len())
    }

    /// Counts what the ledger holds for the period.
    pub(super) fn count(
        &mut self,
        ledger: &Ledger,
        settings: &Settings,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let Some(first) = self.first else {
            return Ok(());
        };
        let last = first + chrono::Duration::days(self.days.len() as i64 - 1);
        let midnight = |d: NaiveDate| {
            settings
                .timezone
                .from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
                .earliest()
                .map_or(DateTime::<Utc>::MIN_UTC, |t| t.with_timezone(&Utc))
        };
        let (start, end) = (midnight(first), midnight(last + chrono::Duration::days(1)));
        for e in ledger.signup_events(start, end)? {
            let Some(i) = self.index(&e.at, settings) else {
                continue;
            };
            let day = &mut self.days[i];
            match e.kind.as_str() {
                "requested" => day.requested += 1,
                "confirmed" => day.confirmed += 1,
                "expired" => day.expired += 1,
                "added" | "imported" => day.added += 1,
                "removed" => day.removed += 1,
                "refused" => {
                    day.refused += 1;
                    let reason = e.reason.unwrap_or_else(|| "other".into());
                    *self.refused_by_reason.entry(reason).or_default() += 1;
                }
                _ => {}
            }
        }
        for at in ledger.overdue_signups(now)? {
            if let Some(i) = self.index(&at, settings) {
                self.days[i].expired += 1;
            }
        }
        for at in ledger.unsubscribes(start, end)? {
            if let Some(i) = self.index(&at, settings) {
                self.days[i].unsubscribes += 1;
            }
        }
        let day_of = |date: NaiveDate| usize::try_from((date - first).num_days()).ok();
        for (date, readers) in ledger.readers_by_issue(first, last)? {
            if let Some(day) = day_of(date).and_then(|i| self.days.get_mut(i)) {
                day.readers = Some(readers);
            }
        }
        for (date, votes) in ledger.votes_by_issue()?.range(first..=last) {
            if let Some(day) = day_of(*date).and_then(|i| self.days.get_mut(i)) {
                (day.useful_yes, day.useful_no) = (votes.yes, votes.no);
            }
        }
        self.total();
        Ok(())
    }

    fn total(&mut self) {
        for d in &self.days {
            self.requested += d.requested;
            self.confirmed += d.confirmed;
            self.expired += d.expired;
            self.refused += d.refused;
            self.added += d.added;
            self.removed += d.removed;
            self.unsubscribes += d.unsubscribes;
        }
    }

    /// The totals, the refusals by reason, and a table of the days with
    /// anything to show.
    pub(super) fn text(&self) -> String {
        let mut out = format!(
            "growth {} to {} ({} days): signups requested {}, confirmed {}, expired {}, refused {}; added {}, removed {}, unsubscribes {}\n",
            self.from,
            self.to,
            self.timezone,
            self.requested,
            self.confirmed,
            self.expired,
            self.refused,
            self.added,
            self.removed,
            self.unsubscribes
        );
        if !self.refused_by_reason.is_empty() {
            let reasons: Vec<String> = self
                .refused_by_reason
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            out.push_str(&format!("  refused: {}\n", reasons.join(", ")));
        }
        let busy: Vec<&GrowthDay> = self.days.iter().filter(|d| !d.quiet()).collect();
        if busy.is_empty() {
            return out;
        }
        out.push_str("  DATE        REQUESTED  CONFIRMED  EXPIRED  REFUSED  ADDED  REMOVED  UNSUBSCRIBED  READERS  USEFUL\n");
        for d in busy {
            out.push_str(&format!(
                "  {}  {:>9}  {:>9}  {:>7}  {:>7}  {:>5}  {:>7}  {:>12}  {:>7}  {:>6}\n",
                d.date,
                d.requested,
                d.confirmed,
                d.expired,
                d.refused,
                d.added,
                d.removed,
                d.unsubscribes,
                d.readers.map_or("-".to_string(), |n| n.to_string()),
                format!("{}/{}", d.useful_yes, d.useful_no)
            ));
        }
        out
    }
}

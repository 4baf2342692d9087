//! Local mornings as `status` and `preview` show them: for one issue,
//! who got it, who waits for their morning, who is due now and who was
//! late-skipped, per zone group (readers whose morning is the same
//! instant); and one reader's own send time. Read-only.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};

use crate::deliver::local::{Group, Last, Next, Schedule, thousands};
use crate::ledger::{DeliveryStatus, Ledger, Row};
use crate::problem::Failure;
use crate::project::Project;
use crate::project::settings::{Delivery, Settings};
use crate::project::subscribers::{KeyDigest, Subscriber};

/// One issue across the zones.
#[derive(Debug, Default, serde::Serialize)]
pub struct Mornings {
    pub send_time: String,
    pub max_lateness_minutes: i64,
    /// Sent (or sent without an answer).
    pub sent: u64,
    /// Their morning has come, within `max_lateness`: the next run sends.
    pub due: u64,
    /// Their morning has not come yet.
    pub waiting: u64,
    /// More than `max_lateness` past their morning without it, or they
    /// got a later issue first.
    pub late_skipped: u64,
    /// The next zone group whose morning comes, and when.
    pub next: Option<String>,
    /// Oldest morning first.
    pub groups: Vec<ZoneGroup>,
}

/// Readers whose morning of the issue is one instant.
#[derive(Debug, Default, serde::Serialize)]
pub struct ZoneGroup {
    /// RFC 3339, UTC.
    pub morning: String,
    /// `06:00` (another time where the DST gap moved it).
    pub local_time: String,
    /// The zone with most readers, then every zone of the group.
    pub zone: String,
    pub zones: Vec<String>,
    pub readers: u64,
    pub sent: u64,
    pub due: u64,
    pub waiting: u64,
    pub late_skipped: u64,
}

/// Where one reader stands with the issue.
#[derive(Clone, Copy)]
enum Stand {
    Sent,
    Due,
    Waiting,
    Late,
}

/// Who stands where with the issue of `date` at `now` (`delivery =
/// "local"`; `None` in the single-zone mode, which `status` already
/// shows whole).
pub fn mornings(
    project: &Project,
    date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Option<Mornings>, Failure> {
    let settings = &project.settings;
    if settings.delivery != Delivery::Local {
        return Ok(None);
    }
    let list = project.subscribers().map_err(Failure::input)?;
    let ledger = crate::ledger::read(project)?;
    let (rows, days, suppressed) = match &ledger {
        Some(l) => read(l, date)?,
        None => Default::default(),
    };
    let schedule = schedule(settings);
    let mut groups: BTreeMap<DateTime<Utc>, (Group, [u64; 4])> = BTreeMap::new();
    let mut next = Next::default();
    let mut readers = crate::deliver::readers::merged(&list, ledger.as_ref())?;
    for reader in &mut readers {
        let digest = KeyDigest::of(&reader.key);
        if suppressed.contains(&digest) {
            continue;
        }
        let zone = reader.zone.unwrap_or(settings.timezone);
        let at = schedule.morning(date, zone);
        let stand = stand(
            rows.get(&digest),
            days.get(&digest),
            date,
            at,
            now,
            &schedule,
        );
        if let Stand::Waiting = stand {
            next.add(at, zone);
        }
        let (group, counts) = groups.entry(at).or_default();
        group.add(zone);
        counts[stand as usize] += 1;
    }
    if let Some(e) = readers.error {
        return Err(e.into());
    }
    let mut out = Mornings {
        send_time: settings.send_time.format("%H:%M").to_string(),
        max_lateness_minutes: settings.max_lateness.num_minutes(),
        next: next.describe(now),
        ..Mornings::default()
    };
    for (at, (group, counts)) in groups {
        let zone = group.main_zone();
        out.sent += counts[Stand::Sent as usize];
        out.due += counts[Stand::Due as usize];
        out.waiting += counts[Stand::Waiting as usize];
        out.late_skipped += counts[Stand::Late as usize];
        out.groups.push(ZoneGroup {
            morning: at.to_rfc3339(),
            local_time: zone
                .parse::<chrono_tz::Tz>()
                .map(|z| at.with_timezone(&z).format("%H:%M").to_string())
                .unwrap_or_default(),
            zone: zone.to_string(),
            zones: group.zones.keys().map(ToString::to_string).collect(),
            readers: group.readers,
            sent: counts[Stand::Sent as usize],
            due: counts[Stand::Due as usize],
            waiting: counts[Stand::Waiting as usize],
            late_skipped: counts[Stand::Late as usize],
        });
    }
    Ok(Some(out))
}

type Read = (
    HashMap<KeyDigest, Row>,
    HashMap<KeyDigest, Last>,
    HashSet<KeyDigest>,
);

fn read(l: &Ledger, date: NaiveDate) -> Result<Read, Failure> {
    Ok((l.statuses(date)?, l.reader_days()?, l.suppressed()?))
}

fn schedule(settings: &Settings) -> Schedule {
    Schedule {
        send_time: settings.send_time,
        max_lateness: settings.max_lateness,
    }
}

fn stand(
    row: Option<&Row>,
    last: Option<&Last>,
    date: NaiveDate,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    schedule: &Schedule,
) -> Stand {
    if row.is_some_and(|r| matches!(r.status, DeliveryStatus::Sent | DeliveryStatus::Unknown)) {
        return Stand::Sent;
    }
    if last.is_some_and(|l| l.issue > date) {
        return Stand::Late;
    }
    if now < at {
        return Stand::Waiting;
    }
    let lateness = schedule.max_lateness;
    if lateness > chrono::Duration::zero() && now - at > lateness {
        Stand::Late
    } else {
        Stand::Due
    }
}

impl Mornings {
    /// The lines `status` adds.
    pub fn text(&self, date: NaiveDate) -> String {
        let mut out = format!(
            "local mornings of {date} (send_time {} in each reader's zone, max_lateness {} min): sent {}, due now {}, waiting for their morning {}, late-skipped {}\n",
            self.send_time,
            self.max_lateness_minutes,
            thousands(self.sent),
            thousands(self.due),
            thousands(self.waiting),
            thousands(self.late_skipped)
        );
        for g in &self.groups {
            let others = g.zones.len().saturating_sub(1);
            let label = if others == 0 {
                format!("{} {}", g.local_time, g.zone)
            } else {
                format!("{} {} (+{others} zones)", g.local_time, g.zone)
            };
            let at = DateTime::parse_from_rfc3339(&g.morning)
                .map(|t| t.with_timezone(&Utc).format("%F %H:%M UTC").to_string())
                .unwrap_or_default();
            out.push_str(&format!(
                "  {label:<38} {at}  readers {}: sent {}, due {}, waiting {}, late-skipped {}\n",
                g.readers, g.sent, g.due, g.waiting, g.late_skipped
            ));
        }
        if let Some(next) = &self.next {
            out.push_str(&format!("  {next}\n"));
        }
        out
    }
}

/// When `reader` gets the issue of `date`: `06:00 Asia/Tokyo (2027-02-28
/// 21:00 UTC)`; in the single-zone mode, the newsletter's zone.
pub fn reader_morning(settings: &Settings, reader: &Subscriber, date: NaiveDate) -> String {
    let zone = match (settings.delivery, reader.zone) {
        (Delivery::Local, Some(z)) => z,
        _ => settings.timezone,
    };
    let at = schedule(settings).morning(date, zone);
    format!(
        "{} {} ({})",
        at.with_timezone(&zone).format("%H:%M"),
        zone.name(),
        at.format("%F %H:%M UTC")
    )
}

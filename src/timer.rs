//! TIMERS — pure: when a newsletter's runs happen, in its own time zone,
//! written out as crontab lines or as a systemd service and timer.
//!
//! A delivery mode says when it runs as a [`Timing`]: the zone and a list
//! of [`Run`]s. The daily mode ([`daily`]) runs at `send_time` and retries a
//! few times after it, within `max_lateness`; a mode that runs all day
//! (such as delivering at each reader's local morning, which runs every 15
//! minutes) gives [`When::Every`] instead, and both writers below handle it
//! unchanged. The writers know nothing of modes: only of runs, a zone and
//! the [`Job`] (which binary, which project, which environment file).

use std::path::PathBuf;

use chrono::{NaiveTime, Timelike};
use chrono_tz::Tz;

/// When a mode's runs happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// The zone the times are in (the newsletter's).
    pub zone: Tz,
    pub runs: Vec<Run>,
    /// One line for people: what the runs are for.
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub when: When,
    /// Why this run: a comment beside it.
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Once a day at this local time.
    Daily(NaiveTime),
    /// Every `minutes` minutes around the clock (a divisor of 60).
    Every { minutes: u32 },
}

/// How long after `send_time` the daily mode retries, at most: the
/// offsets of its retry runs.
const RETRIES: [i64; 3] = [30, 90, 150];

/// The daily mode: one run at `send_time`, then retries 30 minutes, 1½ and
/// 2½ hours later for what was deferred, those that fall within
/// `max_lateness` (0: no limit) and on the same local day (after midnight
/// a run's "today" is the next issue's).
pub fn daily(zone: Tz, send_time: NaiveTime, max_lateness: chrono::Duration) -> Timing {
    let mut runs = vec![Run {
        when: When::Daily(send_time),
        why: "the issue".into(),
    }];
    for minutes in RETRIES {
        let offset = chrono::Duration::minutes(minutes);
        if max_lateness > chrono::Duration::zero() && offset > max_lateness {
            break;
        }
        let (at, wrapped) = send_time.overflowing_add_signed(offset);
        if wrapped != 0 {
            break;
        }
        runs.push(Run {
            when: When::Daily(at),
            why: "retries: exit 75 means \"try again later\", 0 \"nothing left\"".into(),
        });
    }
    Timing {
        zone,
        summary: format!(
            "the issue at {} {zone}, retries after",
            send_time.format("%H:%M")
        ),
        runs,
    }
}

/// Local mornings (`delivery = "local"`): a run every 15 minutes around
/// the clock; each sends to the readers whose own morning it is, and says
/// who is next when nobody's is (see `deliver::local`). Zones on the
/// quarter hour (Kolkata, Kathmandu, Chatham) get theirs at the run that
/// starts with it.
pub fn local_mornings(zone: Tz, send_time: NaiveTime) -> Timing {
    Timing {
        zone,
        summary: format!(
            "every reader's issue at {} in their own zone",
            send_time.format("%H:%M")
        ),
        runs: vec![Run {
            when: When::Every { minutes: 15 },
            why: "local mornings: sends to the readers whose send_time it is; exit 75 leaves the rest for the next run"
                .into(),
        }],
    }
}

/// What a run starts: `dailyissue send` in the project, with the secrets
/// from the environment file.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    /// The `dailyissue` binary (absolute).
    pub binary: PathBuf,
    /// The project's folder (absolute).
    pub project: PathBuf,
    /// The environment file with the secrets (absolute).
    pub env_file: PathBuf,
    /// The variables it must set.
    pub env_vars: Vec<String>,
    /// The user the service runs as, when known.
    pub user: Option<String>,
}

/// `'text'` for `sh`.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A command for a crontab line: cron turns a bare `%` into a newline.
fn cron_escape(text: &str) -> String {
    text.replace('%', r"\%")
}

/// The crontab lines of `timing` for `job`: `CRON_TZ` for the zone
/// (cronie and other crons that know it), every line through the same
/// environment file, and, commented out, the fallback for a cron without
/// `CRON_TZ`: run every hour and let `send_time` decide.
pub fn crontab(timing: &Timing, job: &Job) -> String {
    let command = cron_escape(&format!(
        "cd {} && set -a && . {} && set +a && {} send >> send.log 2>&1",
        sh_quote(&job.project.display().to_string()),
        sh_quote(&job.env_file.display().to_string()),
        sh_quote(&job.binary.display().to_string()),
    ));
    let mut out = format!(
        "# {}: {}; made by `dailyissue schedule --cron` for {}\n",
        job.name,
        timing.summary,
        job.project.display()
    );
    out.push_str(&format!(
        "# {} sets {} (KEY=value lines; chmod 600, readable by this crontab's user)\n",
        job.env_file.display(),
        job.env_vars.join(", ")
    ));
    out.push_str("# CRON_TZ (cronie; it applies to the whole crontab) puts the times in the newsletter's zone\n");
    out.push_str(&format!("CRON_TZ={}\n", timing.zone));
    out.push_str("# m h dom mon dow  command\n");
    for (fields, why) in cron_fields(&timing.runs) {
        out.push_str(&format!("{fields}  {command}   # {why}\n"));
    }
    let minute = timing
        .runs
        .iter()
        .find_map(|r| match r.when {
            When::Daily(t) => Some(t.minute()),
            When::Every { .. } => None,
        })
        .unwrap_or(0);
    if timing.runs.iter().any(|r| matches!(r.when, When::Daily(_))) {
        out.push_str("#\n# Where cron has no CRON_TZ (it runs in the host's zone), use this line instead of the\n");
        out.push_str("# ones above: a run before send_time sends nothing, the first one after it sends the\n");
        out.push_str(
            "# issue, the later ones retry, and none sends more than max_lateness after it.\n",
        );
        out.push_str(&format!("# {minute} * * * *  {command}\n"));
    }
    out
}

/// Crontab time fields: daily runs grouped by minute (`30 6,7,8 * * *`).
fn cron_fields(runs: &[Run]) -> Vec<(String, String)> {
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut by_minute: Vec<(u32, Vec<u32>, String)> = Vec::new();
    for run in runs {
        match run.when {
            When::Daily(t) => match by_minute
                .iter_mut()
                .find(|(m, _, why)| *m == t.minute() && *why == run.why)
            {
                Some((_, hours, _)) => hours.push(t.hour()),
                None => by_minute.push((t.minute(), vec![t.hour()], run.why.clone())),
            },
            When::Every { minutes } => {
                lines.push((format!("*/{minutes} * * * *"), run.why.clone()));
            }
        }
    }
    for (minute, hours, why) in by_minute {
        let hours: Vec<String> = hours.iter().map(u32::to_string).collect();
        lines.push((format!("{minute} {} * * *", hours.join(",")), why));
    }
    lines
}

/// A value in a unit file: `%` is systemd's specifier character.
fn unit_escape(text: &str) -> String {
    text.replace('%', "%%")
}

/// An argument of `ExecStart=`, quoted when it holds a space.
fn unit_arg(text: &str) -> String {
    let text = unit_escape(text);
    if text.contains([' ', '"', '\\']) {
        format!("\"{}\"", text.replace('\\', r"\\").replace('"', "\\\""))
    } else {
        text
    }
}

/// The service and the timer of `timing` for `job`, as (file name, text):
/// `OnCalendar=` with the zone, so the host's zone does not matter.
pub fn systemd(timing: &Timing, job: &Job) -> Vec<(String, String)> {
    let mut service = format!(
        "# made by `dailyissue schedule --systemd` for {}\n[Unit]\nDescription=Send today's issue of {}\nAfter=network-online.target\nWants=network-online.target\n\n[Service]\nType=oneshot\n",
        job.project.display(),
        unit_escape(&job.name)
    );
    match &job.user {
        Some(user) => service.push_str(&format!("User={user}\n")),
        None => service.push_str("# User=newsletter\n"),
    }
    service.push_str(&format!(
        "WorkingDirectory={}\n",
        unit_escape(&job.project.display().to_string())
    ));
    service.push_str(&format!(
        "# {} (KEY=value lines, chmod 600)\nEnvironmentFile={}\n",
        job.env_vars.join(", "),
        unit_escape(&job.env_file.display().to_string())
    ));
    service.push_str(&format!(
        "ExecStart={} send\n",
        unit_arg(&job.binary.display().to_string())
    ));
    service.push_str("# Exit 75 (some recipients left for later) shows as a failure until a retry run of\n# the timer sends the rest; exit 2 is bad input: fix it and start the service by hand.\n");

    let mut timer = format!(
        "[Unit]\nDescription={}: {}\n\n[Timer]\n",
        unit_escape(&job.name),
        unit_escape(&timing.summary)
    );
    for run in &timing.runs {
        let calendar = match run.when {
            When::Daily(t) => format!("*-*-* {}", t.format("%H:%M:%S")),
            When::Every { minutes } => format!("*-*-* *:00/{minutes}:00"),
        };
        timer.push_str(&format!(
            "# {}\nOnCalendar={calendar} {}\n",
            run.why, timing.zone
        ));
    }
    timer.push_str("# A run missed while the machine was off starts at boot; max_lateness keeps a late one from sending.\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n");
    vec![
        ("dailyissue.service".into(), service),
        ("dailyissue.timer".into(), timer),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").expect("time")
    }

    fn job() -> Job {
        Job {
            name: "Daily 100%".into(),
            binary: "/opt/my tools/dailyissue".into(),
            project: "/srv/it's news".into(),
            env_file: "/etc/dailyissue.env".into(),
            env_vars: vec!["DAILYISSUE_UNSUBSCRIBE_SECRET".into()],
            user: Some("news".into()),
        }
    }

    #[test]
    fn the_daily_mode_retries_within_max_lateness_and_the_day() {
        let ny: Tz = "America/New_York".parse().expect("zone");
        let times = |timing: Timing| -> Vec<When> { timing.runs.iter().map(|r| r.when).collect() };
        assert_eq!(
            times(daily(ny, t("06:00"), chrono::Duration::hours(6))),
            [t("06:00"), t("06:30"), t("07:30"), t("08:30")].map(When::Daily)
        );
        assert_eq!(
            times(daily(ny, t("06:00"), chrono::Duration::hours(1))),
            [t("06:00"), t("06:30")].map(When::Daily)
        );
        assert_eq!(
            times(daily(ny, t("06:00"), chrono::Duration::zero())).len(),
            4,
            "0 = no limit"
        );
        assert_eq!(
            times(daily(ny, t("22:45"), chrono::Duration::hours(6))),
            [t("22:45"), t("23:15")].map(When::Daily),
            "not past midnight"
        );
    }

    #[test]
    fn crontab_lines_group_by_minute_and_quote_paths() {
        let ny: Tz = "America/New_York".parse().expect("zone");
        let text = crontab(&daily(ny, t("06:00"), chrono::Duration::hours(6)), &job());
        assert!(text.contains("\nCRON_TZ=America/New_York\n"), "{text}");
        let command = r"cd '/srv/it'\''s news' && set -a && . '/etc/dailyissue.env' && set +a && '/opt/my tools/dailyissue' send >> send.log 2>&1";
        assert!(
            text.contains(&format!("\n0 6 * * *  {command}   # the issue\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("\n30 6,7,8 * * *  {command}   # retries")),
            "{text}"
        );
        assert!(
            text.contains(&format!("\n# 0 * * * *  {command}\n")),
            "{text}"
        );
    }

    #[test]
    fn a_mode_that_runs_all_day_plugs_in() {
        let zone: Tz = "Europe/Berlin".parse().expect("zone");
        let timing = Timing {
            zone,
            runs: vec![Run {
                when: When::Every { minutes: 15 },
                why: "each reader's morning".into(),
            }],
            summary: "every 15 minutes".into(),
        };
        let cron = crontab(&timing, &job());
        assert!(cron.contains("\n*/15 * * * *  cd "), "{cron}");
        assert!(!cron.contains("# 0 * * * *"), "no hourly fallback needed");
        let units = systemd(&timing, &job());
        assert!(
            units[1]
                .1
                .contains("\nOnCalendar=*-*-* *:00/15:00 Europe/Berlin\n"),
            "{}",
            units[1].1
        );
    }

    #[test]
    fn systemd_units_carry_the_zone_paths_and_environment_file() {
        let ny: Tz = "America/New_York".parse().expect("zone");
        let units = systemd(&daily(ny, t("06:00"), chrono::Duration::hours(6)), &job());
        let (service, timer) = (&units[0].1, &units[1].1);
        assert!(
            service.contains("\nWorkingDirectory=/srv/it's news\n"),
            "{service}"
        );
        assert!(
            service.contains("\nEnvironmentFile=/etc/dailyissue.env\n"),
            "{service}"
        );
        assert!(
            service.contains("\nExecStart=\"/opt/my tools/dailyissue\" send\n"),
            "{service}"
        );
        assert!(service.contains("\nUser=news\n"), "{service}");
        assert!(
            service.contains("Description=Send today's issue of Daily 100%%\n"),
            "{service}"
        );
        assert!(
            timer.contains("\nOnCalendar=*-*-* 06:00:00 America/New_York\n"),
            "{timer}"
        );
        assert!(
            timer.contains("\nOnCalendar=*-*-* 08:30:00 America/New_York\n"),
            "{timer}"
        );
    }
}

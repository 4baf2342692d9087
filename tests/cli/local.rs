//! Local mornings (`delivery = "local"`): the real binary started every 15
//! minutes under a fixed clock (`DAILYISSUE_NOW`) across two days, readers
//! from UTC+14 to UTC−10 and one without a zone, against the in-process
//! SMTP server. Each message is traced to the run that sent it (the
//! server is read after every run) and to its issue (the Message-ID
//! carries the issue date).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::proxy::{Fault, Proxy};
use crate::smtp::{Options, Server};
use crate::support::*;

/// Every reader and their zone; `None`: the newsletter's (Europe/London).
const READERS: &[(&str, Option<&str>)] = &[
    ("kiritimati@example.org", Some("Pacific/Kiritimati")),
    ("tokyo@example.org", Some("Asia/Tokyo")),
    ("kathmandu@example.org", Some("Asia/Kathmandu")),
    ("kolkata@example.org", Some("Asia/Kolkata")),
    ("berlin@example.org", Some("Europe/Berlin")),
    ("newyork@example.org", Some("America/New_York")),
    ("honolulu@example.org", Some("Pacific/Honolulu")),
    ("nozone@example.org", None),
];

const NEWSLETTER_ZONE: &str = "Europe/London";

/// A project in local mode: `send_time`, `max_lateness`, the readers
/// above (plus `extra` rows) and the server.
fn project(
    server: &Server,
    send_time: &str,
    lateness: &str,
    extra: &str,
) -> (tempfile::TempDir, std::path::PathBuf) {
    project_on(server.port(), send_time, lateness, extra, "")
}

/// [`project`] sending to `port` with `smtp` settings lines.
fn project_on(
    port: u16,
    send_time: &str,
    lateness: &str,
    extra: &str,
    smtp: &str,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, dir) = sample_project();
    let settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    let settings = settings.replace(
        "timezone = \"America/New_York\"",
        &format!(
            "timezone = \"{NEWSLETTER_ZONE}\"\ndelivery = \"local\"\nsend_time = \"{send_time}\""
        ),
    );
    let settings = settings.replace(
        "max_lateness = \"6h\"",
        &format!("max_lateness = \"{lateness}\""),
    );
    std::fs::write(dir.join("dailyissue.toml"), settings).expect("write settings");
    let mut csv = String::from("email,name,timezone\n");
    for (addr, zone) in READERS {
        csv.push_str(&format!("{addr},,{}\n", zone.unwrap_or("")));
    }
    csv.push_str(extra);
    std::fs::write(dir.join("subscribers.example.csv"), csv).expect("write list");
    add_smtp(&dir, port, smtp);
    (tmp, dir)
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("instant")
        .with_timezone(&Utc)
}

fn send_at(dir: &Path, now: DateTime<Utc>) -> Run {
    run_env(
        dir,
        &["send", "--json"],
        &[SECRET, ("DAILYISSUE_NOW", &now.to_rfc3339())],
    )
}

/// One copy as the test saw it: who, which issue, at which run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Copy {
    to: String,
    issue: NaiveDate,
    run: DateTime<Utc>,
}

/// Runs `send` every 15 minutes from `from` to `to` (inclusive); the
/// copies each run delivered, and the runs that sent nothing.
fn every_quarter_hour(
    dir: &Path,
    server: &Server,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> (Vec<Copy>, Vec<(DateTime<Utc>, serde_json::Value)>) {
    let mut copies = Vec::new();
    let mut idle = Vec::new();
    let mut seen = server.received().len();
    let mut now = from;
    while now <= to {
        let run = send_at(dir, now).success();
        let doc = json(&run);
        let received = server.received();
        for m in &received[seen..] {
            let id = m.header("Message-ID").expect("Message-ID");
            let issue =
                NaiveDate::parse_from_str(&id[1..9], "%Y%m%d").expect("issue date in the id");
            copies.push(Copy {
                to: m.to[0].to_lowercase(),
                issue,
                run: now,
            });
        }
        if received.len() == seen {
            idle.push((now, doc));
        }
        seen = received.len();
        now += Duration::minutes(15);
    }
    (copies, idle)
}

fn zone_of(addr: &str) -> Tz {
    let zone = READERS
        .iter()
        .find(|(a, _)| *a == addr)
        .and_then(|(_, z)| *z)
        .unwrap_or(NEWSLETTER_ZONE);
    zone.parse().expect("zone")
}

/// `time` on `date` in `zone`, written out independently of the binary's
/// rule (the days here have no DST change).
fn morning(date: NaiveDate, time: NaiveTime, zone: Tz) -> DateTime<Utc> {
    zone.from_local_datetime(&date.and_time(time))
        .single()
        .expect("an ordinary day")
        .with_timezone(&Utc)
}

#[test]
fn every_reader_gets_the_issue_of_their_local_date_on_their_own_morning() {
    let server = Server::start(Options::default());
    let (_tmp, dir) = project(&server, "06:00", "2h", "");
    let from = at("2027-02-28T15:00:00Z");
    let to = at("2027-03-02T01:00:00Z");
    let six = NaiveTime::from_hms_opt(6, 0, 0).expect("time");
    let lateness = Duration::hours(2);
    let (copies, idle) = every_quarter_hour(&dir, &server, from, to);

    // Exactly one copy per (reader, issue).
    let mut per: BTreeMap<(String, NaiveDate), Vec<DateTime<Utc>>> = BTreeMap::new();
    for c in &copies {
        per.entry((c.to.clone(), c.issue)).or_default().push(c.run);
    }
    for ((to, issue), runs) in &per {
        assert_eq!(
            runs.len(),
            1,
            "{to} got {issue} {} times: {runs:?}",
            runs.len()
        );
    }
    // Each copy is the issue of the reader's local date, never before
    // their send_time, never after max_lateness: with mornings on the
    // quarter hour, the run at the morning itself.
    for c in &copies {
        let zone = zone_of(&c.to);
        let local = c.run.with_timezone(&zone);
        assert_eq!(
            local.date_naive(),
            c.issue,
            "{c:?} is not the issue of their local date ({local})"
        );
        let due = morning(c.issue, six, zone);
        assert!(c.run >= due, "{c:?} came before their morning {due}");
        assert!(c.run - due <= lateness, "{c:?} came after max_lateness");
        assert_eq!(c.run, due, "{c:?}: the run at their morning sends it");
    }
    // Every morning inside the window (with room for lateness) was kept.
    for (addr, _) in READERS {
        let zone = zone_of(addr);
        for date in ["2027-02-28", "2027-03-01", "2027-03-02"] {
            let date: NaiveDate = date.parse().expect("date");
            let due = morning(date, six, zone);
            let expected = due >= from && due <= to;
            assert_eq!(
                per.contains_key(&(addr.to_string(), date)),
                expected,
                "{addr}: issue {date} (morning {due})"
            );
        }
    }
    // One run sent two issues: Kiritimati's 03-02 and Honolulu's 03-01
    // mornings are the same instant.
    let two = at("2027-03-01T16:00:00Z");
    let mut issues_then: Vec<NaiveDate> = copies
        .iter()
        .filter(|c| c.run == two)
        .map(|c| c.issue)
        .collect();
    issues_then.sort();
    assert_eq!(
        issues_then,
        [
            "2027-03-01".parse::<NaiveDate>().expect("d"),
            "2027-03-02".parse().expect("d")
        ]
    );

    // A run when nobody is due exits 0 and names who is next.
    let (first_idle, doc) = &idle[0];
    assert_eq!(*first_idle, from);
    // Honolulu's morning of 02-28 and Kiritimati's of 03-01: one instant.
    assert_eq!(
        doc["next"], "next: 2 readers at 06:00 Pacific/Honolulu (and 1 more zone), in 1 h",
        "{doc}"
    );
    assert_eq!(doc["sent"], 0);
    assert!(
        idle.len() > 80,
        "most quarter hours are idle: {}",
        idle.len()
    );

    // status: the issue of 03-01 across the zones, mid-way.
    let status = run_env(
        &dir,
        &["status", "--date", "2027-03-01", "--json"],
        &[("DAILYISSUE_NOW", "2027-03-01T06:00:00Z")],
    )
    .success();
    let m = &json(&status)["mornings"];
    assert_eq!(m["sent"], 8, "everyone has it by the end of the run: {m}");
    let status = run_env(
        &dir,
        &["status", "--date", "2027-03-02"],
        &[("DAILYISSUE_NOW", "2027-03-02T01:00:00Z")],
    )
    .success();
    assert!(
        status
            .stdout
            .contains("sent 4, due now 0, waiting for their morning 4, late-skipped 0"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains(
            "06:00 Asia/Kathmandu                   2027-03-02 00:15 UTC  readers 1: sent 1"
        ),
        "{}",
        status.stdout
    );
    assert!(
        status
            .stdout
            .contains("next: 1 reader at 06:00 Europe/Berlin, in 4 h"),
        "{}",
        status.stdout
    );

    // history: the issues that went out, with who waits and who was late.
    let history = run_env(
        &dir,
        &["history", "--json"],
        &[("DAILYISSUE_NOW", "2027-03-02T01:00:00Z")],
    )
    .success();
    let rows = json(&history)["issues"].as_array().expect("issues").clone();
    let row = |date: &str| {
        rows.iter()
            .find(|r| r["date"] == date)
            .unwrap_or_else(|| panic!("{date} in {rows:?}"))
            .clone()
    };
    assert_eq!(row("2027-03-02")["sent"], 4);
    assert_eq!(row("2027-03-02")["waiting"], 4);
    assert_eq!(row("2027-03-01")["sent"], 8);
    assert_eq!(row("2027-03-01")["late_skipped"], 0);

    // The archive publishes each issue when its first copy went out (the
    // zone whose morning comes first: Kiritimati), and the feed says so.
    run(&dir, &["archive"]).success();
    let xml = std::fs::read_to_string(dir.join("public/feed.xml")).expect("feed");
    let feed: atom_syndication::Feed = xml.parse().expect("valid Atom");
    let published = |date: &str| {
        feed.entries()
            .iter()
            .find(|e| e.id().ends_with(&format!("/issues/{date}/")))
            .and_then(|e| e.published().copied())
            .map(|t| t.with_timezone(&Utc))
    };
    assert_eq!(published("2027-03-01"), Some(at("2027-02-28T16:00:00Z")));
    assert_eq!(published("2027-03-02"), Some(at("2027-03-01T16:00:00Z")));

    // preview --as: the reader's own send time.
    let preview = run_env(
        &dir,
        &[
            "preview",
            "--date",
            "2027-03-02",
            "--as",
            "kathmandu@example.org",
            "--out",
            "p.html",
        ],
        &[SECRET],
    )
    .success();
    assert!(
        preview.stdout.contains(
            "kathmandu@example.org gets it at 06:00 Asia/Kathmandu (2027-03-02 00:15 UTC)"
        ),
        "{}",
        preview.stdout
    );
}

#[test]
fn a_late_host_sends_within_max_lateness_and_says_who_was_skipped() {
    let server = Server::start(Options::default());
    let (_tmp, dir) = project(&server, "06:00", "2h", "");
    // 2027-03-01T06:30Z: Berlin (05:00Z) and London (06:00Z) are within 2 h;
    // Kathmandu (00:15Z), Kolkata (00:30Z), Tokyo and Kiritimati are past it.
    let run = send_at(&dir, at("2027-03-01T06:30:00Z")).success();
    let doc = json(&run);
    let mut got: Vec<String> = server.received().iter().map(|m| m.to[0].clone()).collect();
    got.sort();
    assert_eq!(got, ["berlin@example.org", "nozone@example.org"], "{doc}");
    // Kathmandu, Kolkata, Tokyo and Kiritimati are past their morning of
    // 03-01, New York and Honolulu past that of 02-28 (never sent).
    assert_eq!(doc["late_skipped"], 6, "{doc}");
    assert_eq!(
        doc["next"], "next: 1 reader at 06:00 America/New_York, in 4 h 30 min",
        "{doc}"
    );
    // --date keeps its meaning: now, to everyone who has not got it.
    run_env(
        &dir,
        &["send", "--date", "2027-03-01"],
        &[SECRET, ("DAILYISSUE_NOW", "2027-03-01T06:45:00Z")],
    )
    .success();
    assert_eq!(server.received().len(), READERS.len());
    // plan starts where the day began last (UTC−12: 02-28), but never
    // before a record already written (03-01's).
    let plan = run_env(
        &dir,
        &["plan", "--days", "2", "--json"],
        &[("DAILYISSUE_NOW", "2027-03-01T06:50:00Z")],
    )
    .success();
    let days: Vec<String> = json(&plan)["days"]
        .as_array()
        .expect("days")
        .iter()
        .map(|d| d["date"].as_str().expect("date").to_string())
        .collect();
    assert_eq!(days, ["2027-03-01", "2027-03-02"]);
    // ...and a reader never gets an older issue after it, nor twice.
    let again = send_at(&dir, at("2027-03-01T11:00:00Z")).success();
    assert_eq!(server.received().len(), READERS.len(), "{}", again.stdout);
}

#[test]
fn an_invalid_zone_is_a_row_problem_with_its_line() {
    let server = Server::start(Options::default());
    let (_tmp, dir) = project(&server, "06:00", "2h", "mars@example.org,,Mars/Olympus\n");
    let check = run_env(&dir, &["check"], &[SECRET]).code(2);
    assert!(
        check
            .stdout
            .contains("subscribers.example.csv:10: unknown time zone `Mars/Olympus`")
            || check
                .stderr
                .contains("subscribers.example.csv:10: unknown time zone `Mars/Olympus`"),
        "{}{}",
        check.stdout,
        check.stderr
    );
    // send skips the row and serves the rest.
    let run = send_at(&dir, at("2027-03-01T05:00:00Z")).success();
    assert_eq!(json(&run)["invalid_rows"], 1);
    assert!(
        run.stderr.contains("subscribers.example.csv:10"),
        "{}",
        run.stderr
    );
}

/// New York on its DST days, with a send_time in the hour that is skipped
/// in spring and repeated in autumn.
#[test]
fn new_york_on_the_days_the_clocks_change() {
    let server = Server::start(Options::default());
    let (_tmp, dir) = project(&server, "02:30", "1h", "");
    let ny = |addr: &String| addr == "newyork@example.org";
    // Spring forward, 2027-03-14: 02:30 does not exist; the first instant
    // after the gap is 03:00 EDT = 07:00Z.
    let (copies, _) = every_quarter_hour(
        &dir,
        &server,
        at("2027-03-14T05:00:00Z"),
        at("2027-03-14T09:00:00Z"),
    );
    let got: Vec<&Copy> = copies.iter().filter(|c| ny(&c.to)).collect();
    assert_eq!(got.len(), 1, "{copies:?}");
    assert_eq!(got[0].run, at("2027-03-14T07:00:00Z"));
    assert_eq!(got[0].issue, "2027-03-14".parse::<NaiveDate>().expect("d"));
    // Fall back, 2027-11-07: 02:30 happens once... 01:30 happens twice;
    // with send_time 02:30 the day is plain (EST, 07:30Z). Check the fold
    // with a project whose send_time is 01:30: its first occurrence, EDT.
    let server = Server::start(Options::default());
    let (_tmp2, dir2) = project(&server, "01:30", "1h", "");
    let (copies, _) = every_quarter_hour(
        &dir2,
        &server,
        at("2027-11-07T04:00:00Z"),
        at("2027-11-07T08:00:00Z"),
    );
    let got: Vec<&Copy> = copies.iter().filter(|c| ny(&c.to)).collect();
    assert_eq!(got.len(), 1, "{copies:?}");
    assert_eq!(
        got[0].run,
        at("2027-11-07T05:30:00Z"),
        "01:30 EDT, the first 01:30"
    );
    // The fall-back day is 25 hours long in New York: the next morning is
    // still one copy, at 01:30 EST.
    let (copies, _) = every_quarter_hour(
        &dir2,
        &server,
        at("2027-11-08T05:00:00Z"),
        at("2027-11-08T08:00:00Z"),
    );
    let got: Vec<&Copy> = copies.iter().filter(|c| ny(&c.to)).collect();
    assert_eq!(got.len(), 1, "{copies:?}");
    assert_eq!(got[0].run, at("2027-11-08T06:30:00Z"));
}

#[test]
fn a_reader_who_moves_gets_every_issue_once_and_never_two_in_a_day() {
    let server = Server::start(Options::default());
    let (_tmp, dir) = project(&server, "06:00", "2h", "");
    let list = dir.join("subscribers.example.csv");
    let set_zone = |zone: &str| {
        let text = std::fs::read_to_string(&list).expect("list");
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("honolulu@") {
                    format!("honolulu@example.org,,{zone}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&list, text).expect("write");
    };
    // 03-01 in Honolulu at 16:00Z on 03-01.
    let (mut copies, _) = every_quarter_hour(
        &dir,
        &server,
        at("2027-03-01T15:00:00Z"),
        at("2027-03-01T17:00:00Z"),
    );
    // Moves to Tokyo at 22:00 Tokyo time on 03-02 (13:00Z): the morning of
    // 03-02 there passed 16 hours ago, but it is the next issue: it goes
    // now, and 03-03 the next Tokyo morning.
    set_zone("Asia/Tokyo");
    let (more, _) = every_quarter_hour(
        &dir,
        &server,
        at("2027-03-02T13:00:00Z"),
        at("2027-03-02T22:00:00Z"),
    );
    copies.extend(more);
    // Then west again, to New York: 03-03's morning there (11:00Z) brings
    // nothing (they have it), 03-04's does.
    set_zone("America/New_York");
    let (more, _) = every_quarter_hour(
        &dir,
        &server,
        at("2027-03-03T10:00:00Z"),
        at("2027-03-04T12:00:00Z"),
    );
    copies.extend(more);
    let theirs: Vec<(NaiveDate, DateTime<Utc>)> = copies
        .iter()
        .filter(|c| c.to == "honolulu@example.org")
        .map(|c| (c.issue, c.run))
        .collect();
    let d = |s: &str| s.parse::<NaiveDate>().expect("date");
    assert_eq!(
        theirs,
        [
            (d("2027-03-01"), at("2027-03-01T16:00:00Z")),
            (d("2027-03-02"), at("2027-03-02T13:00:00Z")),
            (d("2027-03-03"), at("2027-03-02T21:00:00Z")),
            (d("2027-03-04"), at("2027-03-04T11:00:00Z")),
        ]
    );
}

#[test]
fn a_reader_who_signed_up_reads_at_the_zone_their_browser_gave() {
    let server = Server::start(Options::default());
    let (_tmp, dir) = project(&server, "06:00", "2h", "");
    let served = crate::signup::serve(&dir);
    let reader = "sherpa@example.org";
    let (status, page) = crate::signup::post_form(
        &format!("{}/subscribe", served.base),
        "email=sherpa%40example.org&name=&website=&tz=Asia%2FKathmandu&page=https%3A%2F%2Fdaily.example.com%2F",
        None,
    );
    assert_eq!(status, 200, "{page}");
    wait_for("the confirmation", || {
        server
            .received()
            .iter()
            .any(|m| m.to.iter().any(|t| t == reader))
    });
    crate::signup::confirm(&server, &served, reader);
    drop(served);
    let issues = |server: &Server| {
        server
            .received()
            .iter()
            .filter(|m| m.to[0] == reader)
            .filter_map(|m| m.header("Message-ID"))
            .filter(|id| id.starts_with("<20270301."))
            .count()
    };
    // Kathmandu's morning of 03-01 is 00:15Z: not at 00:00Z, at 00:15Z.
    send_at(&dir, at("2027-03-01T00:00:00Z")).success();
    assert_eq!(issues(&server), 0);
    let run = send_at(&dir, at("2027-03-01T00:15:00Z")).success();
    assert_eq!(issues(&server), 1, "{}", run.stdout);
    let preview = run_env(
        &dir,
        &[
            "preview",
            "--date",
            "2027-03-01",
            "--as",
            reader,
            "--out",
            "p.html",
        ],
        &[SECRET],
    )
    .success();
    assert!(
        preview.stdout.contains("gets it at 06:00 Asia/Kathmandu"),
        "{}",
        preview.stdout
    );
}

#[test]
fn daily_cap_counts_across_the_issues_of_one_run() {
    let server = Server::start(Options::default());
    let (_tmp, dir) = project(&server, "06:00", "2h", "");
    let settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    std::fs::write(
        dir.join("dailyissue.toml"),
        settings.replace("daily_cap = 0", "daily_cap = 1"),
    )
    .expect("write");
    // 16:00Z: Kiritimati's 03-02 and Honolulu's 03-01 at once; room for one.
    let run = send_at(&dir, at("2027-03-01T16:00:00Z")).code(75);
    let doc = json(&run);
    assert_eq!(doc["sent"], 1, "{doc}");
    assert_eq!(doc["left_by_cap"], 1, "{doc}");
    assert_eq!(doc["issues"].as_array().map(Vec::len), Some(2), "{doc}");
    assert_eq!(server.received().len(), 1);
    // The next quarter hour is the same newsletter day: still no room.
    let run = send_at(&dir, at("2027-03-01T16:15:00Z")).code(75);
    assert_eq!(json(&run)["left_by_cap"], 1);
    assert_eq!(server.received().len(), 1);
}

#[test]
fn schedule_prints_a_run_every_15_minutes_for_local_mornings() {
    let server = Server::start(Options::default());
    let (_tmp, dir) = project(&server, "06:00", "2h", "");
    let cron = run(&dir, &["schedule", "--cron", "--env-file", "secrets.env"])
        .success()
        .stdout;
    let lines: Vec<&str> = cron.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 2, "CRON_TZ and one run:\n{cron}");
    assert!(lines[1].starts_with("*/15 * * * *  cd "), "{cron}");
    assert!(lines[1].contains(" send >> send.log 2>&1"), "{cron}");
    let units = run(
        &dir,
        &["schedule", "--systemd", "--env-file", "secrets.env"],
    )
    .success()
    .stdout;
    assert!(
        units.contains("OnCalendar=*-*-* *:00/15:00 Europe/London"),
        "{units}"
    );
    assert_eq!(units.matches("OnCalendar=").count(), 1, "{units}");
}

#[test]
fn a_copy_without_an_answer_is_resent_once_on_a_later_run_of_that_morning() {
    let server = Server::start(Options::default());
    let proxy = Proxy::start(server.port());
    let (_tmp, dir) = project_on(proxy.port(), "06:00", "6h", "", "timeout = \"1s\"");
    // Berlin's morning is 05:00Z; its copy is delivered, but the reply to
    // the final dot comes after the client gave up: the outcome is unknown.
    proxy.set_fault(
        "berlin@example.org",
        Fault::StallAfterData(std::time::Duration::from_secs(3)),
        1,
    );
    let first = json(&send_at(&dir, at("2027-03-01T05:05:00Z")).code(75));
    assert_eq!(first["unknown"].as_u64(), Some(1), "{first}");
    let berlin = |server: &Server| -> Vec<String> {
        server
            .received()
            .iter()
            .filter(|m| m.to[0] == "berlin@example.org")
            .map(|m| m.header("Message-ID").expect("Message-ID").to_string())
            .collect()
    };
    // The next quarter hour resends it once, with the same Message-ID...
    send_at(&dir, at("2027-03-01T05:20:00Z")).success();
    let ids = berlin(&server);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0], ids[1], "the resend is the same message");
    // ...and never again, however many runs follow that morning.
    for now in ["2027-03-01T05:35:00Z", "2027-03-01T06:05:00Z"] {
        send_at(&dir, at(now)).success();
    }
    assert_eq!(berlin(&server).len(), 2);
    // London's reader (no zone) got one copy at 06:00Z, unaffected.
    let london = server
        .received()
        .iter()
        .filter(|m| m.to[0] == "nozone@example.org")
        .count();
    assert_eq!(london, 1);
}

//! `send` against a flaky relay: the in-process SMTP server behind the
//! fault-injecting proxy (tests/cli/proxy.rs). Each test is one class of
//! fault; the last one mixes them all with `kill -9` and checks the bound
//! the README states: never more than two copies per reader and issue.
//!
//! Every scenario runs twice (`on_both_paths!`): once against a relay that
//! does not pipeline (the client sends MAIL, RCPT and DATA one at a time)
//! and once against one that advertises PIPELINING (the client sends them
//! in one write and reads the replies in order). The outcomes must be the
//! same; each run checks which path the client took.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::proxy::{Fault, Proxy};
use crate::smtp::{Options, Server};
use crate::support::*;

/// How the client talks to the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialogue {
    /// The relay does not advertise PIPELINING: one command at a time.
    Steps,
    /// It does: MAIL, RCPT and DATA in one write.
    Pipelined,
}

/// Runs each named scenario `fn(Dialogue)` as two tests, `NAME::step_by_step`
/// and `NAME::pipelined`.
macro_rules! on_both_paths {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn step_by_step() {
                super::$name(super::Dialogue::Steps);
            }

            #[test]
            fn pipelined() {
                super::$name(super::Dialogue::Pipelined);
            }
        }
    )*};
}

on_both_paths!(
    ten_dropped_connections_in_a_row_cost_those_readers_not_the_run,
    a_reply_lost_after_the_message_is_unknown_and_resent_once_at_most,
    a_stalled_reply_is_unknown_and_a_relay_that_never_answers_stops_the_run,
    throttling_backs_off_and_never_counts_as_a_dead_server,
    a_relay_restart_mid_run_loses_nobody,
    ctrl_c_finishes_the_messages_on_the_wire_and_leaves_no_doubt,
    no_reader_gets_more_than_two_copies_whatever_happens,
    a_refused_sender_costs_one_attempt_and_keeps_the_connection,
    refused_recipients_bounce_or_wait_and_keep_the_connection,
    a_connection_dropped_after_the_envelope_delivers_nothing,
    a_connection_dropped_mid_message_is_never_counted_as_delivered,
    a_silent_relay_costs_the_message_never_a_copy,
);

struct Relay {
    server: Server,
    proxy: Proxy,
    path: Dialogue,
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    readers: Vec<String>,
}

/// `n` readers, sending through the proxy with `smtp` settings lines, on
/// `path`.
fn relay(n: usize, smtp: &str, path: Dialogue) -> Relay {
    let server = Server::start(Options::default());
    let proxy = Proxy::start(server.port());
    proxy.pipeline(path == Dialogue::Pipelined);
    let (tmp, dir) = sample_project();
    let readers = write_list(&dir, n);
    add_smtp(&dir, proxy.port(), smtp);
    Relay {
        server,
        proxy,
        path,
        _tmp: tmp,
        dir,
        readers,
    }
}

fn send_date(dir: &Path, date: &str, extra: &[&str]) -> Run {
    let mut args = vec!["send", "--date", date, "--json"];
    args.extend_from_slice(extra);
    run_env(dir, &args, &[SECRET])
}

fn status(dir: &Path, date: &str) -> serde_json::Value {
    json(&run(dir, &["status", "--date", date, "--json"]).success())
}

/// Copies of the issue of `date` per reader (Message-IDs carry the date).
fn copies_of(server: &Server, date: &str) -> std::collections::BTreeMap<String, usize> {
    let tag = date.replace('-', "");
    let mut map = std::collections::BTreeMap::new();
    for m in server.received() {
        if m.header("Message-ID").is_some_and(|id| id.contains(&tag)) {
            for to in &m.to {
                *map.entry(to.to_lowercase()).or_default() += 1;
            }
        }
    }
    map
}

fn ten_dropped_connections_in_a_row_cost_those_readers_not_the_run(path: Dialogue) {
    let r = relay(200, "", path);
    for a in &r.readers[50..60] {
        r.proxy.set_fault(a, Fault::DropAtRcpt, u32::MAX);
    }
    let first = send(&r.dir, &["--json"]).code(75);
    let s = json(&first);
    assert_eq!(
        (s["sent"].as_u64(), s["deferred"].as_u64()),
        (Some(190), Some(10)),
        "{s}"
    );
    assert!(s["stopped"].is_null(), "the run was not stopped: {s}");
    assert!(
        s["deferred_because"]
            .as_str()
            .is_some_and(|w| w.contains("connection broke")),
        "{s}"
    );
    let got = copies(&r.server);
    assert_eq!(got.len(), 190);
    assert!(r.readers[50..60].iter().all(|a| !got.contains_key(a)));

    // A later run while they are still dropped: the others are done.
    let again = json(&send(&r.dir, &["--json"]).code(75));
    assert_eq!(
        (again["sent"].as_u64(), again["already_sent"].as_u64()),
        (Some(0), Some(190))
    );
    assert_eq!(status(&r.dir, DATE)["deferred"], 10);

    r.proxy.heal();
    let last = json(&send(&r.dir, &["--json"]).success());
    assert_eq!(last["sent"], 10);
    let got = copies(&r.server);
    assert!(
        r.readers.iter().all(|a| got.get(a) == Some(&1)),
        "exactly one copy each"
    );
    r.took_its_path();
}

fn a_reply_lost_after_the_message_is_unknown_and_resent_once_at_most(path: Dialogue) {
    let r = relay(20, "", path);
    let lost = &r.readers[5];
    r.proxy.set_fault(lost, Fault::DropAfterData, u32::MAX);

    let first = json(&send(&r.dir, &["--json"]).code(75));
    assert_eq!(
        (first["sent"].as_u64(), first["unknown"].as_u64()),
        (Some(19), Some(1))
    );
    assert_eq!(copies(&r.server)[lost], 1, "the server did accept it");
    let st = status(&r.dir, DATE);
    assert_eq!(st["unknown"], 1, "{st}");
    let text = run(&r.dir, &["status", "--date", DATE]).success().stdout;
    assert!(text.contains(&format!("unknown   {lost}")), "{text}");
    assert!(text.contains("may have it"), "{text}");

    // The one resend, with the same Message-ID; its reply is lost again.
    let second = json(&send(&r.dir, &["--json"]).success());
    assert_eq!(
        (second["sent"].as_u64(), second["unknown_twice"].as_u64()),
        (Some(0), Some(1))
    );
    let got = per_address(&r.server);
    assert_eq!(got[lost].len(), 2);
    assert_eq!(
        got[lost][0].header("Message-ID"),
        got[lost][1].header("Message-ID")
    );

    // Never again by itself, however often cron runs it.
    for _ in 0..3 {
        let later = send(&r.dir, &[]).success();
        assert!(
            later.stdout.contains("unanswered twice 1"),
            "{}",
            later.stdout
        );
    }
    assert_eq!(copies(&r.server)[lost], 2);
    assert!(
        r.readers
            .iter()
            .filter(|a| *a != lost)
            .all(|a| copies(&r.server)[a] == 1)
    );

    // The operator may choose a third copy.
    r.proxy.heal();
    let forced = json(&send(&r.dir, &["--json", "--retry-unknown"]).success());
    assert_eq!(forced["sent"], 1);
    assert_eq!(copies(&r.server)[lost], 3);
    r.took_its_path();
}

fn a_stalled_reply_is_unknown_and_a_relay_that_never_answers_stops_the_run(path: Dialogue) {
    let r = relay(30, "timeout = \"1s\"", path);
    let slow = &r.readers[3];
    r.proxy
        .set_fault(slow, Fault::StallAfterData(Duration::from_secs(3)), 1);
    let first = json(&send(&r.dir, &["--json"]).code(75));
    assert_eq!(
        (first["sent"].as_u64(), first["unknown"].as_u64()),
        (Some(29), Some(1)),
        "{first}"
    );
    assert!(
        first["stopped"].is_null(),
        "one stall does not stop the run: {first}"
    );

    // A relay that swallows every message without answering: the run
    // stops after a few instead of mailing the whole list twice.
    let day2 = "2027-03-02";
    r.proxy
        .set_random(Fault::StallAfterData(Duration::from_secs(3)), 1000);
    let stalled = json(&send_date(&r.dir, day2, &[]).code(75));
    let unknown = stalled["unknown"].as_u64().unwrap_or(0);
    // The run stops at concurrency + 1 in a row; the other workers' messages
    // were already on their way: at most twice the concurrency (4).
    assert!((5..=8).contains(&unknown), "{stalled}");
    assert!(
        stalled["stopped"]
            .as_str()
            .is_some_and(|s| s.contains("no reply after they were sent")),
        "{stalled}"
    );
    assert_eq!(
        stalled["not_attempted"].as_u64(),
        Some(30 - unknown),
        "{stalled}"
    );

    r.proxy.heal();
    send_date(&r.dir, day2, &[]).success();
    let got = copies_of(&r.server, day2);
    assert_eq!(got.len(), 30, "everyone got the issue of {day2}");
    assert!(got.values().all(|&n| n <= 2), "{got:?}");
    r.took_its_path();
}

fn throttling_backs_off_and_never_counts_as_a_dead_server(path: Dialogue) {
    let r = relay(40, "retries = 3\nretry_base = \"20ms\"", path);
    // 421 at the greeting for the first connections, 421 mid-session for some.
    r.proxy.greet_421(3);
    for a in &r.readers[10..15] {
        r.proxy.set_fault(a, Fault::Throttle, 1);
    }
    let out = json(&send(&r.dir, &["--json"]).success());
    assert_eq!(out["sent"], 40, "{out}");
    assert!(r.copies_are_one());
    let fired = r.proxy.fired();
    assert_eq!((fired.greeting_421, fired.throttle), (3, 5));

    // A relay that throttles everything: nothing is sent, nothing changes,
    // and the message says why.
    let day2 = "2027-03-02";
    r.proxy.greet_421(u32::MAX);
    let refused = send_date(&r.dir, day2, &[]).code(75);
    assert!(
        refused.stderr.contains("asks us to wait"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("421"), "{}", refused.stderr);
    assert_eq!(status(&r.dir, day2)["deferred"], 0);

    // Throttled at every recipient: each message backs off, then waits for
    // the next run; the run goes on and names the cause.
    r.proxy.heal();
    r.proxy.set_random(Fault::Throttle, 1000);
    let slowed = json(&send_date(&r.dir, day2, &[]).code(75));
    assert_eq!(
        (slowed["sent"].as_u64(), slowed["deferred"].as_u64()),
        (Some(0), Some(40))
    );
    assert!(slowed["stopped"].is_null(), "{slowed}");
    assert!(
        slowed["deferred_because"]
            .as_str()
            .is_some_and(|w| w.contains("421")),
        "{slowed}"
    );
    r.proxy.heal();
    send_date(&r.dir, day2, &[]).success();
    assert!(copies_of(&r.server, day2).values().all(|&n| n == 1));
    r.took_its_path();
}

impl Relay {
    fn copies_are_one(&self) -> bool {
        let got = copies(&self.server);
        self.readers.iter().all(|a| got.get(a) == Some(&1))
    }

    /// Checks that the client took the run's path: commands arrived before
    /// the reply to the one before them only when the relay pipelines.
    #[track_caller]
    fn took_its_path(&self) {
        let pipelined = self.proxy.fired().pipelined;
        match self.path {
            Dialogue::Steps => assert_eq!(pipelined, 0, "no pipelining unless advertised"),
            Dialogue::Pipelined => assert!(pipelined > 0, "the client pipelines"),
        }
    }
}

fn a_relay_restart_mid_run_loses_nobody(path: Dialogue) {
    let r = relay(400, "retries = 4\nretry_base = \"50ms\"", path);
    r.server.set_data_delay(Duration::from_millis(2));
    let child = spawn(&r.dir, &["send", "--date", DATE], &[SECRET]);
    wait_for("a hundred deliveries", || r.server.received().len() >= 100);
    r.proxy.restart(Duration::from_millis(300));
    let first = child.wait_with_output().expect("send");
    assert!(
        matches!(first.status.code(), Some(0 | 75)),
        "a restart is not fatal: {:?}",
        first.status
    );
    r.server.set_data_delay(Duration::ZERO);
    let mut runs = 0;
    while send(&r.dir, &[]).code != 0 {
        runs += 1;
        assert!(runs < 4, "reruns complete the list");
    }
    let got = copies(&r.server);
    assert!(r.readers.iter().all(|a| got.contains_key(a)), "nobody lost");
    assert!(got.values().all(|&n| n <= 2), "{got:?}");
    assert_eq!(status(&r.dir, DATE)["sent"], 400);
    r.took_its_path();
}

fn ctrl_c_finishes_the_messages_on_the_wire_and_leaves_no_doubt(path: Dialogue) {
    let r = relay(400, "", path);
    r.server.set_data_delay(Duration::from_millis(3));
    let child = spawn_piped(&r.dir, &["send", "--date", DATE, "--json"], &[SECRET]);
    wait_for("some deliveries", || r.server.received().len() >= 50);
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(killed.success());
    let out = child.wait_with_output().expect("send");
    assert_eq!(out.status.code(), Some(75), "left for a later run");
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("a summary even when interrupted");
    assert_eq!(summary["stopped"], "interrupted (Ctrl-C or SIGTERM)");
    let st = status(&r.dir, DATE);
    assert_eq!(
        (st["sending"].as_u64(), st["unknown"].as_u64()),
        (Some(0), Some(0)),
        "every message on the wire was finished and recorded: {st}"
    );
    r.server.set_data_delay(Duration::ZERO);
    send(&r.dir, &[]).success();
    assert!(r.copies_are_one(), "no duplicate after a gentle stop");
    r.took_its_path();
}

/// The README's bound, under every fault at once plus `kill -9` between
/// and during runs: no reader ever gets more than two copies, and once the
/// relay heals, reruns reach everyone the ledger does not list as
/// unanswered twice.
fn no_reader_gets_more_than_two_copies_whatever_happens(path: Dialogue) {
    let r = relay(
        300,
        "timeout = \"400ms\"\nretries = 1\nretry_base = \"5ms\"",
        path,
    );
    r.proxy.seed(20261126);
    r.proxy.set_random(Fault::DropAtRcpt, 40);
    r.proxy.set_random(Fault::Throttle, 40);
    r.proxy.set_random(Fault::DropAfterBatch, 20);
    r.proxy.set_random(Fault::DropMidBody, 20);
    r.proxy.set_random(Fault::DropAfterData, 40);
    r.proxy
        .set_random(Fault::StallAfterData(Duration::from_millis(1000)), 15);
    r.server.set_data_delay(Duration::from_millis(1));
    for round in 0..6 {
        if round % 2 == 0 {
            let mut child = spawn(&r.dir, &["send", "--date", DATE], &[SECRET]);
            let before = r.server.received().len();
            wait_for("some deliveries or the end", || {
                r.server.received().len() >= before + 25
                    || child.try_wait().ok().flatten().is_some()
            });
            let _ = child.kill();
            let _ = child.wait();
        } else {
            let code = send(&r.dir, &[]).code;
            assert!(matches!(code, 0 | 75), "exit {code}");
        }
    }
    r.proxy.heal();
    let mut runs = 0;
    while send(&r.dir, &[]).code != 0 {
        runs += 1;
        assert!(runs < 5, "reruns complete the list");
    }
    let got = copies(&r.server);
    let worst = got.values().copied().max().unwrap_or(0);
    assert!(worst <= 2, "at most two copies per reader: {worst}");
    let st = status(&r.dir, DATE);
    let settled = st["sent"].as_u64().unwrap_or(0) + st["unknown"].as_u64().unwrap_or(0);
    assert_eq!(settled, 300, "every row is sent or unanswered twice: {st}");
    // Only a row the ledger lists as unanswered may lack a copy.
    let unanswered: Vec<String> = st["addresses"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|p| p["status"] == "unknown")
                .filter_map(|p| p["address"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for a in &r.readers {
        assert!(
            got.contains_key(a) || unanswered.contains(a),
            "{a} lost without trace"
        );
    }
    r.took_its_path();
}

/// A refused MAIL FROM. Pipelined, the RCPT and DATA sent with it are
/// answered 503; every reply is read, the session is reset and kept, and
/// the outcome is MAIL's reply, not DATA's.
fn a_refused_sender_costs_one_attempt_and_keeps_the_connection(path: Dialogue) {
    let r = relay(20, "retries = 3\nretry_base = \"5ms\"", path);
    r.server
        .fail_mail(451, "4.3.0 sender check unavailable, try again", 3);
    let out = json(&send(&r.dir, &["--json"]).success());
    assert_eq!(out["sent"], 20, "{out}");
    assert_eq!(r.server.mail_refusals(), 3);
    assert!(r.copies_are_one());
    // The first connection (the reachability check), then one a worker:
    // a refusal never cost a connection.
    let connections = r.proxy.fired().connections;
    assert!(connections <= 1 + 4, "{connections} connections");

    let day2 = "2027-03-02";
    r.server
        .fail_mail(550, "5.7.1 sender address rejected by policy", 1);
    let refused = json(&send_date(&r.dir, day2, &[]).success());
    assert_eq!(
        (refused["sent"].as_u64(), refused["failed"].as_u64()),
        (Some(19), Some(1)),
        "{refused}"
    );
    let st = run(&r.dir, &["status", "--date", day2]).success().stdout;
    assert!(st.contains("5.7.1 sender address rejected"), "{st}");
    assert!(!st.contains("503"), "the outcome is MAIL's reply: {st}");
    assert!(copies_of(&r.server, day2).values().all(|&n| n == 1));
    r.took_its_path();
}

/// Refused recipients: an unknown mailbox bounces and is suppressed, a
/// policy refusal fails, a 4xx waits for the next run; the connection is
/// reset and kept each time. Pipelined, DATA then gets 503 (no valid
/// recipient), and the outcome is still RCPT's reply.
fn refused_recipients_bounce_or_wait_and_keep_the_connection(path: Dialogue) {
    let r = relay(20, "", path);
    let all = &r.readers;
    r.server
        .fail_rcpt(&all[3], 451, "4.7.1 try again later", u32::MAX);
    r.server
        .fail_rcpt(&all[7], 550, "5.1.1 no such user here", u32::MAX);
    r.server
        .fail_rcpt(&all[9], 554, "5.7.1 rejected by policy", u32::MAX);
    let first = send(&r.dir, &[]).code(75);
    assert!(
        first
            .stdout
            .contains("sent 17, deferred 1, unknown 0, failed 1, bounced 1"),
        "{}",
        first.stdout
    );
    let connections = r.proxy.fired().connections;
    assert!(connections <= 1 + 4, "{connections} connections");
    let st = run(&r.dir, &["status", "--date", DATE]).success().stdout;
    for (status, address, reply) in [
        ("bounced ", &all[7], "5.1.1 no such user here"),
        ("deferred", &all[3], "4.7.1 try again later"),
        ("failed  ", &all[9], "5.7.1 rejected by policy"),
    ] {
        assert!(st.contains(&format!("{status}  {address}")), "{st}");
        assert!(st.contains(reply), "{st}");
    }
    assert!(!st.contains("503"), "{st}");

    r.server.fail_rcpt(&all[3], 451, "", 0);
    let second = send(&r.dir, &[]).success();
    assert!(
        second.stdout.contains("sent 1, deferred 0"),
        "{}",
        second.stdout
    );
    let got = copies(&r.server);
    assert_eq!(got.get(&all[3]), Some(&1));
    assert!(!got.contains_key(&all[7]) && !got.contains_key(&all[9]));
    // The bounced address is suppressed for the next issue.
    let next = run_env(&r.dir, &["send", "--date", "2027-03-02"], &[SECRET]).success();
    assert!(
        next.stdout.contains("sent 18") && next.stdout.contains("suppressed 1"),
        "{}",
        next.stdout
    );
    r.took_its_path();
}

/// The connection drops once the whole envelope (DATA included) reached
/// the server, before the replies come back: the message was never sent,
/// so it is `deferred`, never `unknown`, and the next run sends it once.
fn a_connection_dropped_after_the_envelope_delivers_nothing(path: Dialogue) {
    let r = relay(20, "", path);
    let cut = &r.readers[4..7];
    for a in cut {
        r.proxy.set_fault(a, Fault::DropAfterBatch, u32::MAX);
    }
    let first = json(&send(&r.dir, &["--json"]).code(75));
    assert_eq!(
        (
            first["sent"].as_u64(),
            first["deferred"].as_u64(),
            first["unknown"].as_u64()
        ),
        (Some(17), Some(3), Some(0)),
        "{first}"
    );
    assert!(r.proxy.fired().drop_after_batch >= 3);
    let got = copies(&r.server);
    assert!(cut.iter().all(|a| !got.contains_key(a)), "{got:?}");

    r.proxy.heal();
    let last = json(&send(&r.dir, &["--json"]).success());
    assert_eq!(last["sent"], 3, "{last}");
    assert!(r.copies_are_one());
    r.took_its_path();
}

/// The connection drops halfway through the message: the server never saw
/// its final dot and delivered nothing. The client had handed the whole
/// message over, so it cannot know that: the row is `unknown` (resent once
/// by the next run) or, had the drop struck while it was still writing,
/// `deferred`; never `sent`.
fn a_connection_dropped_mid_message_is_never_counted_as_delivered(path: Dialogue) {
    let r = relay(20, "", path);
    let cut = &r.readers[8];
    r.proxy.set_fault(cut, Fault::DropMidBody, 1);
    let first = json(&send(&r.dir, &["--json"]).code(75));
    assert_eq!(first["sent"], 19, "{first}");
    assert_eq!(
        first["unknown"].as_u64().unwrap_or(0) + first["deferred"].as_u64().unwrap_or(0),
        1,
        "{first}"
    );
    assert_eq!(r.proxy.fired().drop_mid_body, 1);
    assert!(!copies(&r.server).contains_key(cut));

    send(&r.dir, &[]).success();
    assert!(r.copies_are_one());
    r.took_its_path();
}

/// A relay that falls silent once the recipient is named: no reply, no
/// drop. The client gives up after its timeout; the message was never
/// sent, so it is `deferred` and the run goes on.
fn a_silent_relay_costs_the_message_never_a_copy(path: Dialogue) {
    let r = relay(12, "timeout = \"1s\"", path);
    let quiet = &r.readers[2..4];
    for a in quiet {
        r.proxy.set_fault(a, Fault::Silence, u32::MAX);
    }
    let first = json(&send(&r.dir, &["--json"]).code(75));
    assert_eq!(
        (
            first["sent"].as_u64(),
            first["deferred"].as_u64(),
            first["unknown"].as_u64()
        ),
        (Some(10), Some(2), Some(0)),
        "{first}"
    );
    assert!(
        first["deferred_because"]
            .as_str()
            .is_some_and(|w| w.contains("no reply in time")),
        "{first}"
    );
    assert!(first["stopped"].is_null(), "{first}");
    let got = copies(&r.server);
    assert!(quiet.iter().all(|a| !got.contains_key(a)));

    r.proxy.heal();
    send(&r.dir, &[]).success();
    assert!(r.copies_are_one());
    r.took_its_path();
}

/// One fault of the matrix: how to break the relay, and when to break it.
struct Scenario {
    name: &'static str,
    setup: fn(&Proxy, &[String]),
    /// Called once while the first run is going (after ~1,000 deliveries).
    during: Option<fn(&Proxy)>,
}

/// The reliability matrix behind RELIABILITY.md: a list sent through each
/// fault, rerun until a run exits 0. Slow (minutes in release), so it is
/// ignored by `cargo test`; `scripts/fault-matrix` runs it.
#[test]
#[ignore = "minutes long: run with scripts/fault-matrix"]
fn fault_matrix() {
    let readers: usize = std::env::var("FAULT_MATRIX_READERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000);
    let scenarios = [
        Scenario {
            name: "no fault",
            setup: |_, _| {},
            during: None,
        },
        Scenario {
            name: "drop before DATA, 1%",
            setup: |p, _| p.set_random(Fault::DropAtRcpt, 10),
            during: None,
        },
        Scenario {
            name: "drop after the envelope (MAIL, RCPT, DATA), 1%",
            setup: |p, _| p.set_random(Fault::DropAfterBatch, 10),
            during: None,
        },
        Scenario {
            name: "drop mid-message, 1%",
            setup: |p, _| p.set_random(Fault::DropMidBody, 10),
            during: None,
        },
        Scenario {
            name: "drop after DATA, 1%",
            setup: |p, _| p.set_random(Fault::DropAfterData, 10),
            during: None,
        },
        Scenario {
            name: "10 consecutive poisoned readers (2 runs)",
            setup: |p, all| {
                for a in &all[50..60] {
                    p.set_fault(a, Fault::DropAtRcpt, 2);
                }
            },
            during: None,
        },
        Scenario {
            name: "421 throttling (greeting ×5, RCPT 2%)",
            setup: |p, _| {
                p.greet_421(5);
                p.set_random(Fault::Throttle, 20);
            },
            during: None,
        },
        Scenario {
            name: "stall past the timeout, 1%",
            setup: |p, _| p.set_random(Fault::StallAfterData(Duration::from_millis(2500)), 10),
            during: None,
        },
        Scenario {
            name: "relay silent from RCPT on, 0.2%",
            setup: |p, _| p.set_random(Fault::Silence, 2),
            during: None,
        },
        Scenario {
            name: "server restarted mid-run (0.5 s down)",
            setup: |_, _| {},
            during: Some(|p| p.restart(Duration::from_millis(500))),
        },
    ];
    let mut table = String::from(
        "| fault | path | readers | delivered | lost | max copies | readers with 2 copies | runs (exit codes) | seconds |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let paths = [
        (Dialogue::Steps, "step by step"),
        (Dialogue::Pipelined, "pipelined"),
    ];
    for (sc, (path, path_name)) in scenarios
        .iter()
        .flat_map(|sc| paths.iter().map(move |p| (sc, *p)))
    {
        let started = std::time::Instant::now();
        let r = relay(
            readers,
            "concurrency = 8\nretries = 2\nretry_base = \"50ms\"\ntimeout = \"1s\"",
            path,
        );
        r.proxy.seed(7);
        (sc.setup)(&r.proxy, &r.readers);
        let mut codes = Vec::new();
        if let Some(during) = sc.during {
            let child = spawn(&r.dir, &["send", "--date", DATE], &[SECRET]);
            wait_for("1,000 deliveries", || {
                r.server.received().len() >= 1000.min(readers / 2)
            });
            during(&r.proxy);
            let out = child.wait_with_output().expect("send");
            codes.push(out.status.code().unwrap_or(-1));
        }
        while codes.last() != Some(&0) && codes.len() < 10 {
            codes.push(send(&r.dir, &[]).code);
        }
        let got = copies(&r.server);
        let delivered = r.readers.iter().filter(|a| got.contains_key(*a)).count();
        let max = got.values().copied().max().unwrap_or(0);
        let twice = got.values().filter(|&&n| n >= 2).count();
        let codes: Vec<String> = codes.iter().map(i32::to_string).collect();
        let line = format!(
            "| {} | {path_name} | {readers} | {delivered} | {} | {max} | {twice} | {} ({}) | {:.1} |\n",
            sc.name,
            readers - delivered,
            codes.len(),
            codes.join(", "),
            started.elapsed().as_secs_f64()
        );
        eprint!("fault-matrix: {line}");
        table.push_str(&line);
        assert_eq!(delivered, readers, "{}: nobody lost", sc.name);
        assert!(max <= 2, "{}: at most two copies", sc.name);
        r.took_its_path();
    }
    println!("\n{table}");
}

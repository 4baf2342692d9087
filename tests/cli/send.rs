//! `send` against a real SMTP server in-process (tests/cli/smtp.rs), driving
//! the real binary.

use std::time::Duration;

use crate::smtp::{Options, Server};
use crate::support::*;

#[test]
fn five_hundred_readers_get_exactly_one_copy_and_a_rerun_sends_nothing() {
    let server = Server::start(Options {
        tls: false,
        auth: None,
    });
    let (_tmp, dir) = sample_project();
    let all = write_list(&dir, 500);
    add_smtp(&dir, server.port(), "");
    let out = send(&dir, &["--json"]).success();
    let summary: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("json summary");
    assert_eq!(summary["sent"], 500, "{}", out.stdout);
    let got = per_address(&server);
    assert_eq!(got.len(), 500);
    assert!(
        all.iter().all(|a| got.get(a).map(Vec::len) == Some(1)),
        "exactly one each"
    );
    let first = &got[&all[0]][0];
    assert!(first.header("List-Unsubscribe-Post").is_some());
    assert!(
        first
            .header("Message-ID")
            .is_some_and(|id| id.contains("@example.com"))
    );

    let again = send(&dir, &[]).success();
    assert!(
        again.stdout.contains("sent 0") && again.stdout.contains("already sent 500"),
        "{}",
        again.stdout
    );
    assert_eq!(server.received().len(), 500, "a rerun sends nothing");
    let status = run(&dir, &["status", "--date", DATE, "--json"]).success();
    let status: serde_json::Value = serde_json::from_str(status.stdout.trim()).expect("json");
    assert_eq!(status["sent"], 500);
}

#[test]
fn soft_failures_are_deferred_then_delivered_and_hard_bounces_are_suppressed() {
    let server = Server::start(Options {
        tls: false,
        auth: None,
    });
    let (_tmp, dir) = sample_project();
    let all = write_list(&dir, 20);
    add_smtp(&dir, server.port(), "");
    server.fail_rcpt(&all[3], 451, "4.7.1 try again later", u32::MAX);
    server.fail_rcpt(&all[7], 550, "5.1.1 no such user here", u32::MAX);
    server.fail_rcpt(&all[9], 554, "5.7.1 rejected by policy", u32::MAX);

    let first = send(&dir, &[]).code(75);
    assert!(
        first
            .stdout
            .contains("sent 17, deferred 1, unknown 0, failed 1, bounced 1"),
        "{}",
        first.stdout
    );
    let status = run(&dir, &["status", "--date", DATE]).success();
    assert!(
        status.stdout.contains(&format!("bounced   {}", all[7])),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("5.1.1 no such user here"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains(&format!("deferred  {}", all[3])),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains(&format!("failed    {}", all[9])),
        "{}",
        status.stdout
    );

    server.fail_rcpt(&all[3], 451, "", 0);
    let second = send(&dir, &[]).success();
    assert!(
        second.stdout.contains("sent 1, deferred 0"),
        "{}",
        second.stdout
    );
    assert!(
        second.stdout.contains("suppressed 1") && second.stdout.contains("failed earlier 1"),
        "{}",
        second.stdout
    );
    let got = per_address(&server);
    assert_eq!(got.get(&all[3]).map(Vec::len), Some(1));
    assert!(!got.contains_key(&all[7]));

    // The next issue skips the bounced address.
    let next = run_env(&dir, &["send", "--date", "2027-03-02"], &[SECRET]).success();
    assert!(
        next.stdout.contains("sent 18") && next.stdout.contains("suppressed 1"),
        "{}",
        next.stdout
    );
}

#[test]
fn starttls_with_a_self_signed_certificate_and_auth_from_the_environment() {
    let server = Server::start(Options {
        tls: true,
        auth: Some(("daily@example.com".into(), "s3cret pass".into())),
    });
    let (_tmp, dir) = sample_project();
    write_list(&dir, 3);
    let cert = server.cert_pem_path().expect("cert");
    let settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    std::fs::write(
        dir.join("dailyissue.toml"),
        format!(
            "{settings}\n[smtp]\nhost = \"localhost\"\nport = {}\ntls = \"starttls\"\nusername = \"daily@example.com\"\npassword_env = \"TEST_SMTP_PASSWORD\"\nca_file = \"{}\"\n",
            server.port(),
            cert.display()
        ),
    )
    .expect("write");
    let missing = send(&dir, &[]).code(2);
    assert!(
        missing.stderr.contains("TEST_SMTP_PASSWORD"),
        "{}",
        missing.stderr
    );
    assert!(server.received().is_empty());

    let out = run_env(
        &dir,
        &["send", "--date", DATE],
        &[SECRET, ("TEST_SMTP_PASSWORD", "s3cret pass")],
    )
    .success();
    assert!(out.stdout.contains("sent 3"), "{}", out.stdout);
    assert!(
        !out.stdout.contains("s3cret") && !out.stderr.contains("s3cret"),
        "password never printed"
    );
    let received = server.received();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|m| m.tls), "every message over TLS");
    assert!(server.auth_successes() >= 1);
}

#[test]
fn kill_9_mid_send_then_rerun_delivers_everyone_with_few_duplicates() {
    let server = Server::start(Options {
        tls: false,
        auth: None,
    });
    let (_tmp, dir) = sample_project();
    let all = write_list(&dir, 2000);
    add_smtp(&dir, server.port(), "");
    server.set_data_delay(Duration::from_millis(4));
    let mut child = spawn(&dir, &["send", "--date", DATE], &[SECRET]);
    // Wait until a good part has gone out, then kill without warning.
    wait_for("600 messages", || server.received().len() >= 600);
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let before = server.received().len();
    assert!(
        before > 0 && before < 2000,
        "killed mid-send after {before}"
    );

    server.set_data_delay(Duration::ZERO);
    send(&dir, &[]).success();
    let got = per_address(&server);
    assert!(
        all.iter().all(|a| got.contains_key(a)),
        "every address received"
    );
    let duplicates: usize = got.values().map(|v| v.len() - 1).sum();
    assert!(
        duplicates <= 4,
        "at most `concurrency` duplicates, got {duplicates}"
    );
    for copies in got.values().filter(|v| v.len() > 1) {
        let ids: Vec<_> = copies.iter().map(|m| m.header("Message-ID")).collect();
        assert!(
            ids.windows(2).all(|w| w[0] == w[1]),
            "a resend carries the same Message-ID: {ids:?}"
        );
    }
    let status = run(&dir, &["status", "--date", DATE, "--json"]).success();
    let status: serde_json::Value = serde_json::from_str(status.stdout.trim()).expect("json");
    assert_eq!(status["sent"], 2000);
    assert_eq!(status["sending"], 0);
}

#[test]
fn overlapping_runs_one_sends_the_other_exits_75() {
    let server = Server::start(Options {
        tls: false,
        auth: None,
    });
    let (_tmp, dir) = sample_project();
    write_list(&dir, 200);
    add_smtp(&dir, server.port(), "");
    server.set_data_delay(Duration::from_millis(10));
    let mut first = spawn(&dir, &["send", "--date", DATE], &[SECRET]);
    wait_for("the first message", || !server.received().is_empty());
    let second = send(&dir, &[]).code(75);
    assert!(
        second.stderr.contains("another dailyissue run (pid"),
        "{}",
        second.stderr
    );
    assert!(first.wait().expect("first run").success());
    server.set_data_delay(Duration::ZERO);
    assert_eq!(per_address(&server).len(), 200);
    assert_eq!(server.received().len(), 200);
}

#[test]
fn dry_run_touches_neither_server_nor_ledger() {
    let server = Server::start(Options {
        tls: false,
        auth: None,
    });
    let (_tmp, dir) = sample_project();
    write_list(&dir, 10);
    add_smtp(&dir, server.port(), "");
    let out = send(&dir, &["--dry-run", "--outbox", "dry"]).success();
    assert!(out.stdout.contains("would send 10"), "{}", out.stdout);
    assert!(server.received().is_empty());
    assert!(!dir.join(".dailyissue").exists(), "no ledger");
    assert_eq!(
        std::fs::read_dir(dir.join(format!("dry/{DATE}")))
            .expect("eml files")
            .count(),
        10
    );
}

#[test]
fn an_unreachable_server_exits_75_and_changes_nothing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let (_tmp, dir) = sample_project();
    write_list(&dir, 5);
    add_smtp(&dir, port, "");
    let out = send(&dir, &[]).code(75);
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        out.stderr
    );
    let status = run(&dir, &["status", "--date", DATE, "--json"]).success();
    let status: serde_json::Value = serde_json::from_str(status.stdout.trim()).expect("json");
    assert_eq!(
        (
            status["sent"].as_u64(),
            status["sending"].as_u64(),
            status["deferred"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );
}

#[test]
fn test_copies_are_not_deliveries() {
    let server = Server::start(Options {
        tls: false,
        auth: None,
    });
    let (_tmp, dir) = sample_project();
    write_list(&dir, 3);
    add_smtp(&dir, server.port(), "");
    send(&dir, &["--to", "editor@example.org"]).success();
    assert_eq!(server.received().len(), 1);
    let status = run(&dir, &["status", "--date", DATE, "--json"]).success();
    let status: serde_json::Value = serde_json::from_str(status.stdout.trim()).expect("json");
    assert_eq!(
        (status["sent"].as_u64(), status["test_copies"].as_u64()),
        (Some(0), Some(1))
    );
    let out = send(&dir, &[]).success();
    assert!(out.stdout.contains("sent 3"), "{}", out.stdout);
}

#[test]
fn file_transport_by_default_and_daily_cap_defers_the_rest() {
    let (_tmp, dir) = sample_project();
    write_list(&dir, 10);
    let first = run(&dir, &["send", "--date", DATE]).success();
    assert!(
        first.stdout.contains("sent 10") && first.stdout.contains("files in"),
        "{}",
        first.stdout
    );
    assert_eq!(
        std::fs::read_dir(dir.join(format!("outbox/{DATE}")))
            .expect("outbox")
            .count(),
        10
    );
    run(&dir, &["send", "--date", DATE]).success();
    assert_eq!(
        std::fs::read_dir(dir.join(format!("outbox/{DATE}")))
            .expect("outbox")
            .count(),
        10
    );

    let settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    std::fs::write(
        dir.join("dailyissue.toml"),
        settings.replace("daily_cap = 0", "daily_cap = 14"),
    )
    .expect("write");
    let capped = run(&dir, &["send", "--date", "2027-03-02"]).code(75);
    assert!(
        capped.stdout.contains("sent 4") && capped.stdout.contains("left for the next run"),
        "{}",
        capped.stdout
    );
}

#[test]
fn an_edited_record_after_delivery_began_needs_force() {
    let (_tmp, dir) = sample_project();
    write_list(&dir, 4);
    run(&dir, &["send", "--date", DATE, "--limit", "2"]).code(75);
    let path = dir.join(format!("issues/{DATE}.toml"));
    let record = std::fs::read_to_string(&path).expect("record");
    std::fs::write(
        &path,
        record.replace("subject = ", "subject = \"Edited\"\n# was: "),
    )
    .expect("edit");
    let refused = run(&dir, &["send", "--date", DATE]).code(2);
    assert!(
        refused.stderr.contains("changed after delivery began"),
        "{}",
        refused.stderr
    );
    run(&dir, &["send", "--date", DATE, "--force"]).success();
}

/// A TCP relay in front of the SMTP server that can be cut: existing
/// connections are shut down and new ones refused, as when a relay dies.
struct Relay {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    fn start(target: u16) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let port = listener.local_addr().expect("addr").port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = cut.clone();
        std::thread::spawn(move || {
            let mut open: Vec<std::net::TcpStream> = Vec::new();
            listener.set_nonblocking(true).expect("nonblocking");
            loop {
                if flag.load(Ordering::Relaxed) {
                    for s in &open {
                        let _ = s.shutdown(std::net::Shutdown::Both);
                    }
                    return; // drops the listener: new connections are refused
                }
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).expect("blocking");
                        let server = std::net::TcpStream::connect(("127.0.0.1", target))
                            .expect("connect target");
                        for (mut from, mut to) in [
                            (
                                client.try_clone().expect("clone"),
                                server.try_clone().expect("clone"),
                            ),
                            (
                                server.try_clone().expect("clone"),
                                client.try_clone().expect("clone"),
                            ),
                        ] {
                            std::thread::spawn(move || {
                                let _ = std::io::copy(&mut from, &mut to);
                                let _ = to.shutdown(std::net::Shutdown::Both);
                            });
                        }
                        open.push(client);
                        open.push(server);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Relay { port, cut }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_server_that_dies_mid_run_leaves_the_rest_for_the_next_run() {
    let server = Server::start(Options {
        tls: false,
        auth: None,
    });
    let relay = Relay::start(server.port());
    let (_tmp, dir) = sample_project();
    let all = write_list(&dir, 400);
    add_smtp(&dir, relay.port, "");
    server.set_data_delay(Duration::from_millis(3));
    let child = spawn(&dir, &["send", "--date", DATE, "--json"], &[SECRET]);
    wait_for("some deliveries", || server.received().len() >= 40);
    relay.cut();
    let out = child.wait_with_output().expect("send");
    assert_eq!(
        out.status.code(),
        Some(75),
        "exit 75 when the server goes away"
    );
    let delivered = per_address(&server).len();
    assert!(delivered < 400, "the run stopped: {delivered}");

    // The relay is back (straight to the server now): the rest goes out.
    server.set_data_delay(Duration::ZERO);
    let settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    std::fs::write(
        dir.join("dailyissue.toml"),
        settings.replace(
            &format!("port = {}", relay.port),
            &format!("port = {}", server.port()),
        ),
    )
    .expect("write");
    send(&dir, &[]).success();
    let got = per_address(&server);
    assert!(all.iter().all(|a| got.contains_key(a)), "everyone received");
    let duplicates: usize = got.values().map(|v| v.len() - 1).sum();
    assert!(
        duplicates <= 4,
        "at most `concurrency` duplicates: {duplicates}"
    );
}

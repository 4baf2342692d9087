//! Logs on stderr: `-q`, `-v`, `RUST_LOG`, timestamps when stderr is not a
//! terminal (always so here), and no address or token in `serve`'s lines.

use std::io::Read;

use dailyissue::mail::token::{Secrets, token};

use crate::support::*;

/// Every line of `stderr` starts with an RFC 3339 timestamp and a level.
#[track_caller]
fn timestamped(stderr: &str) {
    for line in stderr.lines() {
        let (stamp, rest) = line.split_once(' ').unwrap_or((line, ""));
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "no timestamp: {line:?}"
        );
        assert!(
            ["error: ", "warning: ", "note: ", "debug: ", "trace: "]
                .iter()
                .any(|l| rest.starts_with(l)),
            "no level: {line:?}"
        );
    }
}

#[test]
fn warnings_are_timestamped_lines_off_a_terminal() {
    // `init`'s sample: tools and tips repeat on day 17, terms on day 28.
    let (_tmp, dir) = init_project();
    let out = run(&dir, &["plan", "--date", DATE, "--days", "28"]).success();
    assert_eq!(out.stderr.lines().count(), 3, "{}", out.stderr);
    timestamped(&out.stderr);
    assert!(
        out.stderr
            .contains(" warning: section `term` ran out of unused items on 2027-03-28"),
        "{}",
        out.stderr
    );
    // The report on stdout is not a log: no timestamps there.
    assert!(out.stdout.starts_with("DATE "), "{}", out.stdout);
}

#[test]
fn quiet_hides_notes_and_warnings_but_not_errors() {
    // `init`'s sample: tools and tips repeat on day 17, terms on day 28.
    let (_tmp, dir) = init_project();
    let out = run(&dir, &["-q", "plan", "--date", DATE, "--days", "28"]).success();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    assert!(out.stdout.contains("28 new records"), "{}", out.stdout);

    let sent = run(&dir, &["send", "--date", DATE, "--quiet"]).success();
    assert!(sent.stderr.is_empty(), "no secret note: {}", sent.stderr);

    std::fs::write(dir.join("content/terms/token.md"), "no front matter\n").expect("write");
    let failed = run(&dir, &["-q", "check", "--date", DATE]).code(2);
    assert!(
        failed.stderr.starts_with("content/terms/token.md:1: "),
        "the error report is never hidden: {}",
        failed.stderr
    );
}

#[test]
fn verbose_adds_debug_lines_and_rust_log_overrides_the_flags() {
    let (_tmp, dir) = sample_project();
    let quiet = run(&dir, &["status", "--date", DATE]).success();
    assert!(!quiet.stderr.contains("debug: "), "{}", quiet.stderr);

    let verbose = run(&dir, &["-v", "send", "--date", DATE]).success();
    timestamped(&verbose.stderr);
    for expected in [
        "debug: project: ",
        "debug: holding the run lock",
        "debug: loaded content, templates, issue records and the list in ",
        "debug: prepared issue 1 of 2027-03-01",
        "debug: the pipeline took ",
    ] {
        assert!(
            verbose.stderr.contains(expected),
            "{expected}: {}",
            verbose.stderr
        );
    }
    assert!(!verbose.stderr.contains("trace: "), "{}", verbose.stderr);

    // -vv: one line per message, the address masked.
    let (_tmp2, dir2) = sample_project();
    let traced = run(&dir2, &["send", "--date", DATE, "-vv"]).success();
    assert!(
        traced
            .stderr
            .contains("trace: a***@example.net sent: written to "),
        "{}",
        traced.stderr
    );
    assert!(!traced.stderr.contains("ada.park@"), "{}", traced.stderr);

    let env = run_env(
        &dir,
        &["status", "--date", DATE],
        &[("RUST_LOG", "dailyissue=debug")],
    );
    assert!(env.success().stderr.contains("debug: project: "));
    let over_quiet = run_env(&dir, &["-q", "status"], &[("RUST_LOG", "dailyissue=debug")]);
    assert!(over_quiet.success().stderr.contains("debug: project: "));
    let off = run_env(&dir, &["-v", "status"], &[("RUST_LOG", "off")]);
    assert!(off.success().stderr.is_empty());
}

#[test]
fn serve_logs_requests_without_addresses_or_tokens() {
    let (_tmp, dir) = sample_project();
    let secret = "log-test-secret-0123456789";
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut child = spawn_piped(
        &dir,
        &["-v", "serve", "--listen", &format!("127.0.0.1:{port}")],
        &[("DAILYISSUE_UNSUBSCRIBE_SECRET", secret)],
    );
    let base = format!("http://127.0.0.1:{port}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    wait_for("serve to answer", || {
        agent.get(format!("{base}/healthz")).call().is_ok()
    });
    let tok = token(
        &Secrets::new(secret.as_bytes(), None),
        "beginners-in-ai.daily.example.com",
        &"ada.park@example.net".into(),
    );
    let posted = agent
        .post(format!("{base}/u/{tok}"))
        .content_type("application/x-www-form-urlencoded")
        .send("List-Unsubscribe=One-Click")
        .expect("POST");
    assert_eq!(posted.status(), 200);
    let forged = agent
        .post(format!("{base}/u/garbage"))
        .send("")
        .expect("POST");
    assert_eq!(forged.status(), 400);
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read");
    timestamped(&stderr);
    for expected in [
        " note: serving unsubscribe links and ",
        " note: unsubscribe: a***@example.net (one-click)",
        " note: unsubscribe: refused an invalid token",
        " debug: POST /u/*** 200 in ",
        " debug: POST /u/*** 400 in ",
        " debug: GET /healthz 200 in ",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    assert!(!stderr.contains("ada.park"), "{stderr}");
    assert!(!stderr.contains(&tok), "{stderr}");
    assert!(!stderr.contains("garbage"), "{stderr}");
}

#[test]
fn the_systemd_journal_gets_no_timestamps_but_a_redirection_does() {
    use std::os::unix::fs::MetadataExt;
    let (_tmp, dir) = init_project();
    let log = dir.join("stderr.log");
    let run_to_file = |journal: &dyn Fn(&std::fs::Metadata) -> String| {
        let file = std::fs::File::create(&log).expect("log file");
        let meta = file.metadata().expect("metadata");
        let status = std::process::Command::new(BIN)
            .current_dir(&dir)
            .args(["plan", "--date", DATE, "--days", "17"])
            .env_remove("RUST_LOG")
            .env("JOURNAL_STREAM", journal(&meta))
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .status()
            .expect("run");
        assert!(status.success());
        std::fs::remove_dir_all(dir.join("issues")).expect("clean");
        std::fs::read_to_string(&log).expect("read log")
    };
    // stderr is the journal: it stamps lines itself.
    let journal = run_to_file(&|m| format!("{}:{}", m.dev(), m.ino()));
    assert!(
        journal.starts_with("warning: section `tip` ran out"),
        "{journal}"
    );
    // Inside a service, but stderr redirected elsewhere: stamped.
    let redirected = run_to_file(&|m| format!("{}:{}", m.dev(), m.ino() + 1));
    timestamped(&redirected);
    assert_eq!(redirected.lines().count(), 2, "{redirected}");
}

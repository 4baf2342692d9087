//! `bounces`: real-shaped bounce and complaint mail (tests/fixtures/bounces/:
//! DSNs as Postfix, Exim, Gmail, Microsoft 365 and Amazon SES send them, an
//! ARF report, an auto-reply, a DSN about a stranger, other mail, a broken
//! message) through the real binary, from stdin, a maildir and an mbox;
//! VERP end to end through the in-process SMTP server; the rates guard.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::proxy::Proxy;
use crate::smtp::{Options, Server};
use crate::support::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo_root().join("tests/fixtures/bounces").join(name)).expect("fixture")
}

/// Runs `dailyissue ARGS` in `dir` with `input` on stdin.
fn run_stdin(dir: &Path, args: &[&str], input: &[u8]) -> Run {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dailyissue");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The sample project with ten readers (reader00000..reader00009), the
/// issue of DATE delivered to all of them as files.
fn sent_project() -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = sample_project();
    write_list(&dir, 10);
    run(&dir, &["send", "--date", DATE]).success();
    (tmp, dir)
}

fn suppressed(dir: &Path) -> Vec<(String, String)> {
    let list = json(&run(dir, &["suppressions", "list", "--json"]).success());
    list["suppressions"]
        .as_array()
        .expect("suppressions")
        .iter()
        .map(|s| {
            (
                s["address"].as_str().unwrap_or_default().to_string(),
                s["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn real_shaped_bounces_complaints_and_other_mail_land_in_their_class() {
    let (_tmp, dir) = sent_project();
    // (fixture, verdict, outcome, address, kind, suppressed)
    let cases = [
        (
            "postfix-hard.eml",
            "report",
            "new",
            "reader00001@example.net",
            "hard",
            true,
        ),
        (
            "postfix-delayed.eml",
            "report",
            "new",
            "reader00002@example.net",
            "soft",
            false,
        ),
        (
            "exim-hard.eml",
            "report",
            "new",
            "reader00003@example.net",
            "hard",
            true,
        ),
        (
            "gmail-hard.eml",
            "report",
            "new",
            "reader00004@example.net",
            "hard",
            true,
        ),
        (
            "microsoft365-hard.eml",
            "report",
            "new",
            "reader00005@example.net",
            "hard",
            true,
        ),
        (
            "ses-hard.eml",
            "report",
            "new",
            "reader00006@example.net",
            "hard",
            true,
        ),
        (
            "arf-abuse.eml",
            "report",
            "new",
            "reader00007@example.net",
            "complaint",
            true,
        ),
        ("never-sent.eml", "report", "unmatched", "", "hard", false),
        ("vacation.eml", "ignored", "", "", "", false),
        ("human-reply.eml", "unrecognised", "", "", "", false),
        ("malformed.eml", "unrecognised", "", "", "", false),
    ];
    for (file, verdict, outcome, address, kind, suppressed) in cases {
        let out = json(&run_stdin(&dir, &["bounces", "--json"], &fixture(file)).success());
        let m = &out["messages"][0];
        assert_eq!(m["verdict"], verdict, "{file}: {out}");
        if outcome.is_empty() {
            assert_eq!(
                m["outcomes"].as_array().map(Vec::len),
                Some(0),
                "{file}: {out}"
            );
            continue;
        }
        let o = &m["outcomes"][0];
        assert_eq!(
            (o["outcome"].as_str(), o["kind"].as_str()),
            (Some(outcome), Some(kind)),
            "{file}: {out}"
        );
        if outcome == "new" {
            assert_eq!(o["address"], address, "{file}: {out}");
            assert_eq!(o["issue_date"], DATE, "{file}");
            assert_eq!(o["suppressed"].is_string(), suppressed, "{file}: {out}");
        }
    }
    let mut got = suppressed(&dir);
    got.sort();
    let mut want: Vec<(String, String)> = [1, 3, 4, 5, 6]
        .iter()
        .map(|i| (format!("reader{i:05}@example.net"), "bounced".to_string()))
        .collect();
    want.push(("reader00007@example.net".into(), "complained".into()));
    assert_eq!(
        got, want,
        "the soft bounce and the stranger suppress nobody"
    );

    // The same DSN again (the MTA retried): recorded once.
    let again =
        json(&run_stdin(&dir, &["bounces", "--json"], &fixture("postfix-hard.eml")).success());
    assert_eq!(
        (again["recorded"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(1)),
        "{again}"
    );

    // The evidence behind each suppression.
    let list = json(&run(&dir, &["bounces", "list", "--json"]).success());
    let events = list["events"].as_array().expect("events");
    assert_eq!(events.len(), 7, "{list}");
    let postfix = events
        .iter()
        .find(|e| e["address"] == "reader00001@example.net")
        .expect("postfix event");
    assert_eq!(postfix["status"], "5.1.1");
    assert_eq!(postfix["report_type"], "delivery-status");
    assert_eq!(postfix["source"], "stdin");
    assert!(
        postfix["diagnostic"]
            .as_str()
            .is_some_and(|d| d.contains("User unknown")),
        "{postfix}"
    );
    assert!(
        postfix["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("Undelivered Mail Returned to Sender"))
    );
    let text = run(&dir, &["bounces", "list", "reader00007@example.net"])
        .success()
        .stdout;
    assert!(
        text.contains("complaint") && text.contains("suppressed (complained)"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 2, "one event, two lines: {text}");

    // Status shows what came back and the rates.
    let st = json(&run(&dir, &["status", "--date", DATE, "--json"]).success());
    let f = &st["feedback"];
    assert_eq!(
        (
            f["sent"].as_u64(),
            f["hard"].as_u64(),
            f["soft"].as_u64(),
            f["complaints"].as_u64()
        ),
        (Some(10), Some(5), Some(1), Some(1)),
        "{st}"
    );
    assert!(
        (st["rates"]["complaint_rate"].as_f64().unwrap_or_default() - 0.1).abs() < 1e-9,
        "{st}"
    );
}

#[test]
fn a_complaint_rate_over_the_limit_stops_send_and_fails_check_until_forced() {
    let (_tmp, dir) = sent_project();
    run_stdin(&dir, &["bounces"], &fixture("arf-abuse.eml")).success();
    run_stdin(&dir, &["bounces"], &fixture("postfix-hard.eml")).success();
    let next = "2027-03-02";
    let check = run(&dir, &["check", "--date", next]).code(2);
    assert!(
        check.stderr.contains(".dailyissue/state.db: complaint rate too high: the issue of 2027-03-01 drew complaints from 1 of 10 readers (10.00%)"),
        "{}",
        check.stderr
    );
    assert!(
        check.stderr.contains("COMPLAINT RATE 10.00%")
            && check.stderr.contains("BOUNCE RATE 10.00%"),
        "warned loudly: {}",
        check.stderr
    );
    let refused = run_env(&dir, &["send", "--date", next], &[SECRET]).code(2);
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert!(!dir.join("outbox").join(next).exists(), "nothing sent");
    // Test copies are not the list.
    run_env(
        &dir,
        &["send", "--date", next, "--to", "me@example.org"],
        &[SECRET],
    )
    .success();
    let forced = json(
        &run_env(
            &dir,
            &["send", "--date", next, "--force", "--json"],
            &[SECRET],
        )
        .success(),
    );
    assert_eq!(
        forced["sent"].as_u64(),
        Some(8),
        "the two suppressed readers are skipped: {forced}"
    );
    assert!(
        forced["warnings"]
            .to_string()
            .contains("--force: sending despite it"),
        "{forced}"
    );
}

/// A maildir holding `files` in new/ (as delivered) and one message
/// already read in cur/.
fn maildir(root: &Path, files: &[&str]) -> PathBuf {
    let md = root.join("Maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(md.join(sub)).expect("mkdir");
    }
    for (i, f) in files.iter().enumerate() {
        std::fs::write(
            md.join("new").join(format!("17000000{i:02}.M{i}P1.mx.{f}")),
            fixture(f),
        )
        .expect("write");
    }
    std::fs::write(
        md.join("cur/1699999999.M0P1.mx:2,S"),
        fixture("human-reply.eml"),
    )
    .expect("write");
    md
}

/// Every file of the maildir: (folder/name, bytes, modified time).
fn snapshot(md: &Path) -> Vec<(String, Vec<u8>, std::time::SystemTime)> {
    let mut out = Vec::new();
    for sub in ["new", "cur", "tmp"] {
        for e in std::fs::read_dir(md.join(sub)).expect("list") {
            let e = e.expect("entry");
            let meta = e.metadata().expect("meta");
            out.push((
                format!("{sub}/{}", e.file_name().to_string_lossy()),
                std::fs::read(e.path()).expect("read"),
                meta.modified().expect("mtime"),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn a_maildir_run_moves_what_it_handled_and_never_touches_other_mail() {
    let (_tmp, dir) = sent_project();
    let files = [
        "postfix-hard.eml",
        "vacation.eml",
        "human-reply.eml",
        "malformed.eml",
        "never-sent.eml",
    ];
    let md = maildir(&dir, &files);
    let before = snapshot(&md);
    let out = json(&run(&dir, &["bounces", "--maildir", "Maildir", "--json"]).success());
    assert_eq!(
        (
            out["recorded"].as_u64(),
            out["ignored"].as_u64(),
            out["unrecognised"].as_u64(),
            out["unmatched"].as_u64()
        ),
        (Some(1), Some(1), Some(2), Some(1)),
        "{out}"
    );
    let after = snapshot(&md);
    let untouched = |name: &str| {
        let was = before
            .iter()
            .find(|(n, ..)| n.ends_with(name))
            .expect("was there");
        after.iter().any(|now| now == was)
    };
    for other in ["human-reply.eml", "malformed.eml", "1699999999.M0P1.mx:2,S"] {
        assert!(
            untouched(other),
            "{other} left exactly as it was: {after:?}"
        );
    }
    for handled in ["postfix-hard.eml", "vacation.eml", "never-sent.eml"] {
        let (_, bytes, _) = before
            .iter()
            .find(|(n, ..)| n.ends_with(handled))
            .expect("was there");
        assert!(
            after.iter().any(|(n, b, _)| n.starts_with("cur/")
                && n.ends_with(&format!("{handled}:2,S"))
                && b == bytes),
            "{handled} moved to cur/ flagged seen, bytes kept: {after:?}"
        );
    }
    assert_eq!(after.len(), before.len(), "nothing deleted");
    // A second run finds nothing new and changes nothing.
    let again = json(&run(&dir, &["bounces", "--maildir", "Maildir", "--json"]).success());
    assert_eq!(again["recorded"].as_u64(), Some(0), "{again}");
    assert_eq!(snapshot(&md), after);
    let err = run(&dir, &["bounces", "--maildir", "content"]).code(2);
    assert!(err.stderr.contains("is not a maildir"), "{}", err.stderr);
}

#[test]
fn an_mbox_is_read_and_never_written() {
    let (_tmp, dir) = sent_project();
    let mut mbox = Vec::new();
    for f in ["gmail-hard.eml", "vacation.eml", "arf-abuse.eml"] {
        mbox.extend_from_slice(b"From MAILER-DAEMON Mon Mar  1 11:00:04 2027\n");
        mbox.extend_from_slice(&fixture(f));
        mbox.extend_from_slice(b"\n");
    }
    let path = dir.join("bounces.mbox");
    std::fs::write(&path, &mbox).expect("write");
    let out = json(&run(&dir, &["bounces", "--mbox", "bounces.mbox", "--json"]).success());
    assert_eq!(
        (out["recorded"].as_u64(), out["ignored"].as_u64()),
        (Some(2), Some(1)),
        "{out}"
    );
    assert_eq!(out["messages"][0]["name"], "message 1");
    assert_eq!(std::fs::read(&path).expect("read"), mbox, "read only");
    let again = json(&run(&dir, &["bounces", "--mbox", "bounces.mbox", "--json"]).success());
    assert_eq!(
        (again["recorded"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(2)),
        "{again}"
    );
    // A missing mbox is bad input, as a missing maildir is: exit 2.
    let err = run(&dir, &["bounces", "--mbox", "no-such.mbox"]).code(2);
    assert!(
        err.stderr.contains("no-such.mbox: cannot read"),
        "{}",
        err.stderr
    );
}

#[test]
fn a_report_that_cannot_be_recorded_exits_75_for_the_mail_server_to_retry() {
    let (_tmp, dir) = sent_project();
    let ledger = dir.join(".dailyissue/state.db");
    std::fs::rename(&ledger, dir.join("kept.db")).expect("move");
    std::fs::create_dir(&ledger).expect("a folder where the ledger should be");
    let out = run_stdin(&dir, &["bounces"], &fixture("postfix-hard.eml")).code(75);
    assert!(
        out.stderr.contains("cannot record bounces now") && out.stderr.contains("left for a retry"),
        "{}",
        out.stderr
    );
    // Mail that needs no ledger is still handled.
    run_stdin(&dir, &["bounces"], &fixture("vacation.eml")).success();
}

#[test]
fn verp_end_to_end_a_dsn_to_the_envelope_sender_suppresses_its_reader() {
    let server = Server::start(Options::default());
    let (_tmp, dir) = sample_project();
    let readers = write_list(&dir, 3);
    add_smtp(&dir, server.port(), "");
    let mut settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    settings.push_str("\n[bounces]\nreturn_path = \"bounces+{token}@example.com\"\n");
    std::fs::write(dir.join("dailyissue.toml"), settings).expect("write");
    send(&dir, &[]).success();
    let got = per_address(&server);
    let senders: Vec<String> = readers.iter().map(|r| got[r][0].from.clone()).collect();
    for (reader, sender) in readers.iter().zip(&senders) {
        let local = sender.strip_suffix("@example.com").expect("our domain");
        assert!(
            local.starts_with("bounces+") && local.len() <= 64,
            "{sender}"
        );
        assert!(
            !sender.contains(reader.split('@').next().unwrap_or("?")),
            "the address does not show: {sender}"
        );
    }
    assert_ne!(senders[0], senders[1], "one envelope sender per delivery");

    // An out-of-office reply sent to the envelope sender (some
    // autoresponders answer the Return-Path), with no Auto-Submitted
    // header: the VERP token is there, but it is no bounce.
    let away = format!(
        "Return-Path: <{reader}>\nDelivered-To: {sender}\nFrom: {reader}\nTo: {sender}\nSubject: Automatic reply: away until Monday\nMessage-ID: <away-1@example.net>\nMIME-Version: 1.0\nContent-Type: text/plain\n\nI am out of the office until Monday.\n",
        reader = readers[0],
        sender = senders[0]
    );
    let out = json(&run_stdin(&dir, &["bounces", "--json"], away.as_bytes()).success());
    assert_eq!(
        (out["ignored"].as_u64(), out["recorded"].as_u64()),
        (Some(1), Some(0)),
        "{out}"
    );

    // A bounce that quotes nothing of the original, naming another address
    // (forwarded mail): the envelope sender alone finds the delivery.
    let dsn = format!(
        "Return-Path: <>\nDelivered-To: {sender}\nFrom: MAILER-DAEMON@mx.example.net\nTo: {sender}\nSubject: Undelivered Mail Returned to Sender\nMessage-ID: <dsn-1@mx.example.net>\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nGone.\n\n--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; forwarded@elsewhere.example\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 no such user\n\n--b--\n",
        sender = senders[1].to_uppercase()
    );
    let out = json(&run_stdin(&dir, &["bounces", "--json"], dsn.as_bytes()).success());
    let o = &out["messages"][0]["outcomes"][0];
    assert_eq!(
        (o["address"].as_str(), o["suppressed"].as_str()),
        (Some(readers[1].as_str()), Some("bounced")),
        "{out}"
    );

    // The next issue skips that reader.
    let next =
        json(&run_env(&dir, &["send", "--date", "2027-03-02", "--json"], &[SECRET]).success());
    assert_eq!(
        (next["sent"].as_u64(), next["suppressed"].as_u64()),
        (Some(2), Some(1)),
        "{next}"
    );
    let got = per_address(&server);
    assert_eq!(
        got[&readers[1]].len(),
        1,
        "only the first issue reached the bounced reader"
    );
    assert_eq!(
        got[&readers[0]].len(),
        2,
        "the auto-reply suppressed nobody"
    );
}

#[test]
fn verp_senders_go_out_on_the_pipelined_path_too() {
    let server = Server::start(Options::default());
    let proxy = Proxy::start(server.port());
    proxy.pipeline(true);
    let (_tmp, dir) = sample_project();
    let readers = write_list(&dir, 3);
    add_smtp(&dir, proxy.port(), "");
    let mut settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    settings.push_str("\n[bounces]\nreturn_path = \"bounces+{token}@example.com\"\n");
    std::fs::write(dir.join("dailyissue.toml"), settings).expect("write");
    send(&dir, &[]).success();
    assert!(proxy.fired().pipelined > 0, "the client pipelined");
    let got = per_address(&server);
    let sender = got[&readers[2]][0].from.clone();
    assert!(sender.starts_with("bounces+"), "{sender}");
    let dsn = format!(
        "From: MAILER-DAEMON@mx.example.net\nTo: {sender}\nSubject: failure notice\nMessage-ID: <dsn-p@mx.example.net>\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; someone@elsewhere.example\nAction: failed\nStatus: 5.1.1\n\n--b--\n"
    );
    let out = json(&run_stdin(&dir, &["bounces", "--json"], dsn.as_bytes()).success());
    assert_eq!(
        out["messages"][0]["outcomes"][0]["address"].as_str(),
        Some(readers[2].as_str()),
        "{out}"
    );
}

#[test]
fn what_a_report_says_is_shown_without_terminal_controls() {
    let (_tmp, dir) = sent_project();
    // Whoever sends a bounce writes its diagnostic: escape sequences in it
    // must not reach the operator's terminal through `bounces list`.
    let dsn = String::from_utf8(fixture("postfix-hard.eml"))
        .expect("text")
        .replace(
            "Recipient address\n",
            "Recipient \u{1b}[2J\u{1b}]0;owned\u{7}address\n",
        );
    assert!(dsn.contains('\u{1b}'), "the fixture changed");
    run_stdin(&dir, &["bounces"], dsn.as_bytes()).success();
    let listed = run(&dir, &["bounces", "list"]).success().stdout;
    assert!(listed.contains("reader00001@example.net"), "{listed}");
    assert!(
        !listed.contains(|c: char| c.is_control() && c != '\n'),
        "{listed:?}"
    );
    // The evidence itself is kept as it came.
    let doc = json(&run(&dir, &["bounces", "list", "--json"]).success());
    assert!(doc.to_string().contains("\\u001b[2J"), "{doc}");
}

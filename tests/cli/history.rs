//! `history`: one row per issue that went out, across three issues with
//! faults (deferrals, a bounce at send, a permanent failure), unsubscribes
//! between them, a bounce and a complaint that came back later, and the
//! readers' feedback votes.

use std::io::Write as _;

use crate::smtp::{Options, Server};
use crate::support::*;

/// `dailyissue bounces` with a fixture of tests/fixtures/bounces/ on stdin.
fn bounce(dir: &std::path::Path, fixture: &str) {
    let mail =
        std::fs::read(repo_root().join("tests/fixtures/bounces").join(fixture)).expect("fixture");
    let mut child = std::process::Command::new(BIN)
        .current_dir(dir)
        .args(["bounces"])
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn dailyissue");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&mail)
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{fixture}: {out:?}");
}

#[test]
fn three_issues_with_faults_and_unsubscribes_between_them() {
    let server = Server::start(Options {
        tls: false,
        auth: None,
    });
    let (_tmp, dir) = sample_project();
    let r = write_list(&dir, 12);
    add_smtp(&dir, server.port(), "");
    let plan = json(
        &run(
            &dir,
            &["plan", "--date", "2027-03-01", "--days", "3", "--json"],
        )
        .success(),
    );
    // The second record leaves its subject to the settings' template.
    let second = dir.join("issues/2027-03-02.toml");
    let text = std::fs::read_to_string(&second).expect("record");
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("subject = "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(text, without);
    std::fs::write(&second, without).expect("write record");

    assert_eq!(
        json(&run(&dir, &["history", "--json"]).success())["issues"],
        serde_json::json!([]),
        "nothing went out yet"
    );

    server.fail_rcpt(&r[3], 451, "4.7.1 try again later", u32::MAX);
    server.fail_rcpt(&r[5], 550, "5.1.1 no such user", u32::MAX);
    run_env(&dir, &["send", "--date", "2027-03-01"], &[SECRET]).code(75);
    run(&dir, &["unsubscribe", &r[0]]).success();

    server.fail_rcpt(&r[7], 554, "5.7.1 rejected by policy", u32::MAX);
    run_env(&dir, &["send", "--date", "2027-03-02"], &[SECRET]).code(75);
    run(&dir, &["unsubscribe", &r[1]]).success();
    run(&dir, &["unsubscribe", &r[2]]).success();

    run_env(&dir, &["send", "--date", "2027-03-03"], &[SECRET]).code(75);
    // Later, about the first issue: reader 1's mailbox is gone after all,
    // and reader 7 reports it as spam.
    bounce(&dir, "postfix-hard.eml");
    bounce(&dir, "arf-abuse.eml");
    // Votes: two yes and a no on the first issue, a no on the third.
    let secrets = dailyissue::mail::token::Secrets::new(SECRET.1.as_bytes(), None);
    let served = crate::signup::serve(&dir);
    for (reader, date, vote) in [
        (8, "2027-03-01", "yes"),
        (9, "2027-03-01", "yes"),
        (10, "2027-03-01", "no"),
        (8, "2027-03-03", "no"),
    ] {
        let token = dailyissue::mail::token::feedback_token(
            &secrets,
            "beginners-in-ai.daily.example.com",
            &r[reader].as_str().into(),
            date.parse().expect("date"),
        );
        let url = format!("{}/feedback/{token}", served.base);
        let (status, page) = crate::signup::post_form(&url, &format!("vote={vote}"), None);
        assert_eq!(status, 200, "{page}");
    }
    drop(served);

    let doc = json(&run(&dir, &["history", "--json"]).success());
    let issues = doc["issues"].as_array().expect("issues");
    let row = |i: usize| {
        let x = &issues[i];
        (
            x["number"].as_u64(),
            x["date"].as_str().map(str::to_owned),
            [
                "list_size",
                "sent",
                "deferred",
                "unknown",
                "failed",
                "bounced",
                "bounced_later",
                "complaints",
                "unsubscribes",
            ]
            .map(|k| x[k].as_u64().unwrap_or_else(|| panic!("{k}: {x}"))),
            (x["votes"]["yes"].as_u64(), x["votes"]["no"].as_u64()),
        )
    };
    assert_eq!(issues.len(), 3, "{doc}");
    // Newest first. Issue 3: 12 less the bounced and three unsubscribed.
    assert_eq!(
        row(0),
        (
            Some(3),
            Some("2027-03-03".into()),
            [8, 6, 1, 0, 1, 0, 0, 0, 0],
            (Some(0), Some(1))
        )
    );
    // Issue 2: less the bounced and the first unsubscribed; two left after it.
    assert_eq!(
        row(1),
        (
            Some(2),
            Some("2027-03-02".into()),
            [10, 8, 1, 0, 1, 0, 0, 0, 2],
            (Some(0), Some(0))
        )
    );
    assert_eq!(
        row(2),
        (
            Some(1),
            Some("2027-03-01".into()),
            [12, 10, 1, 0, 0, 1, 1, 1, 1],
            (Some(2), Some(1))
        )
    );
    for (i, day) in [(0, 2), (1, 1), (2, 0)] {
        assert_eq!(issues[i]["subject"], plan["days"][day]["subject"], "{doc}");
        assert!(issues[i]["subject"].as_str().is_some_and(|s| !s.is_empty()));
    }

    let last = json(&run(&dir, &["history", "--last", "2", "--json"]).success());
    let dates: Vec<&str> = last["issues"]
        .as_array()
        .expect("issues")
        .iter()
        .filter_map(|i| i["date"].as_str())
        .collect();
    assert_eq!(dates, ["2027-03-03", "2027-03-02"]);

    let text = run(&dir, &["history"]).success().stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let head: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        head,
        [
            "NO.",
            "DATE",
            "SUBJECT",
            "LIST",
            "SENT",
            "DEFERRED",
            "UNKNOWN",
            "FAILED",
            "BOUNCED",
            "COMPLAINTS",
            "VOTES",
            "UNSUBS"
        ]
    );
    assert!(lines[3].starts_with("1    2027-03-01  "), "{text}");
    // Bounced at send and later: 2.
    let counts: Vec<&str> = lines[3].split_whitespace().rev().take(9).collect();
    assert_eq!(
        counts,
        ["1", "+2/-1", "1", "2", "0", "0", "1", "10", "12"],
        "{text}"
    );
    run(&dir, &["history", "--last", "0"]).code(2);
}

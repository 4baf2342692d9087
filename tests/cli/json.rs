//! `--json`: every command that has it prints exactly one JSON document on
//! stdout, whether it succeeds or fails, with the fields docs/json.md
//! promises.

use serde_json::Value;

use crate::support::*;

/// The one document on stdout, with the envelope every document has.
#[track_caller]
fn document(out: &Run) -> Value {
    assert_eq!(
        out.stdout.trim().lines().count(),
        1,
        "one line of JSON:\n{}",
        out.stdout
    );
    let doc = json(out);
    assert_eq!(doc["exit_code"], out.code, "{doc}");
    assert_eq!(doc["ok"], out.code == 0, "{doc}");
    assert!(doc["warnings"].is_array(), "{doc}");
    doc
}

#[test]
fn check_reports_the_issue_and_what_each_section_has_left() {
    let (_tmp, dir) = sample_project();
    let doc = document(&run(&dir, &["check", "--date", DATE, "--json"]).success());
    assert_eq!(doc["newsletter"], "Beginners in AI");
    assert_eq!(doc["sections"], serde_json::json!(["term", "tool", "tip"]));
    assert_eq!(doc["issue"]["date"], DATE);
    assert_eq!(doc["issue"]["number"], 1);
    assert_eq!(doc["issue"]["planned"], false);
    assert_eq!(doc["subscribers"]["active"], doc["issue"]["readers"]);
    assert_eq!(doc["days_left"][0]["section"], "term");
    assert!(doc["days_left"][0]["days"].as_u64() > Some(0), "{doc}");
    assert!(doc["content"][0]["items"].as_u64() > Some(0), "{doc}");
}

#[test]
fn a_failing_check_is_one_document_listing_every_problem() {
    let (_tmp, dir) = init_project();
    let fixture = repo_root().join("tests/fixtures/invalid/many-problems-at-once");
    overlay(&fixture, &dir);
    std::fs::remove_file(dir.join("expected.txt")).expect("expected.txt");
    let expected = std::fs::read_to_string(fixture.join("expected.txt")).expect("expected");
    let out = run(&dir, &["check", "--date", DATE, "--json"]).code(2);
    let doc = document(&out);
    assert_eq!(doc["kind"], "input");
    let problems = doc["problems"].as_array().expect("problems");
    // The same problems as the text, in the same order.
    let lines: Vec<String> = problems
        .iter()
        .map(|p| match p["line"].as_u64() {
            Some(line) => format!(
                "{}:{line}: {}",
                p["path"].as_str().unwrap_or(""),
                p["message"].as_str().unwrap_or("")
            ),
            None => format!(
                "{}: {}",
                p["path"].as_str().unwrap_or(""),
                p["message"].as_str().unwrap_or("")
            ),
        })
        .collect();
    let mut expected_lines: Vec<&str> = expected.lines().collect();
    let total = expected_lines.pop().expect("the count line");
    assert_eq!(lines, expected_lines, "{doc}");
    assert_eq!(doc["error"], total, "{doc}");
    assert!(problems.len() > 1, "{doc}");
    // People reading stderr (cron logs) still get the text.
    assert_eq!(out.stderr, expected);
}

#[test]
fn usage_and_argument_errors_are_documents_too() {
    let (_tmp, dir) = sample_project();
    let bad_date = run(&dir, &["check", "--json", "--date", "2027-02-30"]).code(2);
    let doc = document(&bad_date);
    assert_eq!(doc["kind"], "usage");
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.contains("YYYY-MM-DD")),
        "{doc}"
    );
    assert!(
        bad_date.stderr.contains("YYYY-MM-DD"),
        "{}",
        bad_date.stderr
    );

    let too_far = run(
        &dir,
        &["plan", "--json", "--date", "9999-12-30", "--days", "5"],
    )
    .code(2);
    let doc = document(&too_far);
    assert_eq!(doc["kind"], "usage");
    assert!(doc["problems"].as_array().is_some_and(Vec::is_empty));

    // Without --json, clap's own message and nothing on stdout.
    let plain = run(&dir, &["check", "--date", "2027-02-30"]).code(2);
    assert!(plain.stdout.is_empty(), "{}", plain.stdout);
}

#[test]
fn plan_lists_each_day_with_its_picks_and_whether_it_is_new() {
    let (_tmp, dir) = sample_project();
    let doc = document(&run(&dir, &["plan", "--date", DATE, "--days", "3", "--json"]).success());
    assert_eq!(
        (doc["new"].as_u64(), doc["kept"].as_u64()),
        (Some(3), Some(0))
    );
    let days = doc["days"].as_array().expect("days");
    assert_eq!(days.len(), 3);
    assert_eq!(days[0]["date"], DATE);
    assert_eq!(days[0]["number"], 1);
    assert_eq!(days[0]["new"], true);
    for section in ["term", "tool", "tip"] {
        let slug = days[0]["picks"][section].as_str().expect("a pick");
        assert!(
            std::fs::read_to_string(dir.join(format!("issues/{DATE}.toml")))
                .expect("record")
                .contains(slug)
        );
    }
    let again = document(&run(&dir, &["plan", "--date", DATE, "--days", "1", "--json"]).success());
    assert_eq!(
        (again["new"].as_u64(), again["kept"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(again["days"][0]["picks"], days[0]["picks"]);
}

#[test]
fn plan_warnings_are_in_the_document_even_when_quiet() {
    let (_tmp, dir) = init_project();
    // 16 tools and tips: the 17th day repeats them; 27 terms eligible
    // (one draft, one pinned to June): the 28th repeats one.
    let out = run(
        &dir,
        &["-q", "plan", "--date", DATE, "--days", "28", "--json"],
    )
    .success();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let doc = document(&out);
    let warnings = doc["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 3, "one per section: {doc}");
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|w| w.contains("ran out of unused items on 2027-03-17")),
        "{doc}"
    );
    assert!(
        warnings[2]
            .as_str()
            .is_some_and(|w| w.contains("section `term` ran out of unused items on 2027-03-28")),
        "{doc}"
    );
    assert_eq!(doc["days"][16]["repeats"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["days"][27]["repeats"][0]["section"], "term", "{doc}");
}

#[test]
fn send_status_suppressions_and_archive_speak_json() {
    let (_tmp, dir) = sample_project();
    let sent = document(&send(&dir, &["--json"]).success());
    assert_eq!(sent["sent"], 9, "{sent}");
    assert_eq!(sent["date"], DATE);

    let status = document(&run(&dir, &["status", "--date", DATE, "--json"]).success());
    assert_eq!(status["sent"], 9, "{status}");
    assert_eq!(status["addresses"], serde_json::json!([]));

    run(
        &dir,
        &[
            "suppressions",
            "add",
            "Ada.Park@example.net",
            "--reason",
            "complained",
        ],
    )
    .success();
    let list = document(&run(&dir, &["suppressions", "list", "--json"]).success());
    let rows = list["suppressions"].as_array().expect("suppressions");
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["address"], "ada.park@example.net");
    assert_eq!(rows[0]["reason"], "complained");
    assert!(rows[0]["created_at"].is_string(), "{list}");

    let archive = document(&run(&dir, &["archive", "--json"]).success());
    assert_eq!(archive["issues"], 1, "{archive}");
    assert!(archive["written"].as_u64() > Some(0), "{archive}");
    assert!(
        archive["out"]
            .as_str()
            .is_some_and(|o| o.ends_with("public")),
        "{archive}"
    );
    let rebuilt = document(&run(&dir, &["archive", "--json"]).success());
    assert_eq!(rebuilt["written"], 0, "{rebuilt}");
    assert_eq!(rebuilt["unchanged"], archive["written"], "{rebuilt}");
}

#[test]
fn an_empty_archive_says_why_in_warnings() {
    let (_tmp, dir) = sample_project();
    let doc = document(&run(&dir, &["archive", "--json"]).success());
    assert_eq!(doc["issues"], 0);
    assert!(
        doc["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("no issue has been delivered yet")),
        "{doc}"
    );
}

#[test]
fn a_send_left_for_later_is_a_document_with_exit_75() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let (_tmp, dir) = sample_project();
    add_smtp(&dir, port, "");
    let out = send(&dir, &["--json"]).code(75);
    let doc = document(&out);
    assert_eq!(doc["kind"], "temporary");
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("127.0.0.1:{port}"))),
        "{doc}"
    );
}

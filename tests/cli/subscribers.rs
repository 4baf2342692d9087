//! `subscribers`: the merged list (CSV rows and confirmed signups), the
//! operator's additions and removals, export and import, and `send`
//! reading the merged list.

use crate::support::*;

fn listed(dir: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["subscribers", "list", "--json"];
    args.extend_from_slice(extra);
    json(&run(dir, &args).success())
}

#[test]
fn an_added_reader_is_on_the_list_and_gets_the_issue_once() {
    let (_tmp, dir) = sample_project();
    let out = run(
        &dir,
        &[
            "subscribers",
            "add",
            "New.Reader@example.org",
            "--name",
            "New Reader",
        ],
    )
    .success();
    assert_eq!(out.stdout, "new.reader@example.org: added\n");
    let out = run(&dir, &["subscribers", "add", "ADA.park@example.net"]).success();
    assert!(
        out.stdout
            .contains("already on the list (row subscribers.example.csv:2)"),
        "{}",
        out.stdout
    );
    let doc = listed(&dir, &[]);
    assert_eq!(
        (doc["csv_rows"].as_u64(), doc["signups"].as_u64()),
        (Some(10), Some(1))
    );
    let last = &doc["readers"][10];
    assert_eq!(last["address"], "new.reader@example.org");
    assert_eq!(
        (last["status"].as_str(), last["source"].as_str()),
        (Some("confirmed"), Some("added"))
    );
    assert!(last["confirmed_at"].is_string());
    let check = run_env(&dir, &["check", "--date", DATE], &[SECRET]).success();
    assert!(
        check.stdout.contains("signups: 1 confirmed, 0 pending"),
        "{}",
        check.stdout
    );
    // A preview as the signup is their copy, with their name.
    let preview = run(
        &dir,
        &[
            "preview",
            "--date",
            DATE,
            "--as",
            "new.reader@example.org",
            "--format",
            "text",
        ],
    )
    .success();
    assert!(
        preview.stdout.contains("Good morning, New."),
        "{}",
        preview.stdout
    );

    let sent = json(&send(&dir, &["--json"]).success());
    assert_eq!(
        (sent["active"].as_u64(), sent["sent"].as_u64()),
        (Some(10), Some(10))
    );
    let eml =
        std::fs::read_to_string(dir.join(format!("outbox/{DATE}/new.reader@example.org.eml")))
            .expect("the signup's copy");
    assert!(
        eml.contains("To: \"New Reader\" <new.reader@example.org>"),
        "{eml}"
    );
    let again = json(&send(&dir, &["--json"]).success());
    assert_eq!(
        (again["sent"].as_u64(), again["already_sent"].as_u64()),
        (Some(0), Some(10))
    );
}

#[test]
fn a_suppressed_address_cannot_be_added_and_a_removed_signup_gets_nothing() {
    let (_tmp, dir) = sample_project();
    run(&dir, &["suppressions", "add", "gone@example.org"]).success();
    let out = run(&dir, &["subscribers", "add", "gone@example.org"]).code(2);
    assert!(
        out.stderr.contains("is suppressed (manual)"),
        "{}",
        out.stderr
    );
    run(&dir, &["subscribers", "add", "brief@example.org"]).success();
    let out = run(&dir, &["subscribers", "remove", "brief@example.org"]).success();
    assert_eq!(out.stdout, "brief@example.org: removed\n");
    let out = run(&dir, &["subscribers", "remove", "ben.okafor@example.org"]).success();
    assert!(
        out.stdout
            .contains("not a signup (still in subscribers.example.csv:3"),
        "{}",
        out.stdout
    );
    run(&dir, &["subscribers", "remove", "not an address"]).code(2);
    let sent = json(&send(&dir, &["--json"]).success());
    assert_eq!(sent["sent"], 9);
    assert!(
        !dir.join(format!("outbox/{DATE}/brief@example.org.eml"))
            .exists()
    );
}

#[test]
fn import_reports_every_row_and_adds_only_the_new() {
    let (_tmp, dir) = sample_project();
    run(
        &dir,
        &[
            "suppressions",
            "add",
            "left@example.org",
            "--reason",
            "unsubscribed",
        ],
    )
    .success();
    std::fs::write(
        dir.join("mailchimp.csv"),
        "Email Address,First Name,Last Name,MEMBER_RATING\n\
         fresh@example.org,Fresh,Reader,2\n\
         ben.okafor@example.org,Ben,Okafor,5\n\
         not-an-address,X,Y,1\n\
         left@example.org,Left,Behind,1\n\
         FRESH@example.org,Fresh,Again,2\n\
         ip@[127.0.0.1],Ip,Literal,1\n",
    )
    .expect("write");
    let out = run(&dir, &["subscribers", "import", "mailchimp.csv", "--json"]).success();
    let doc = json(&out);
    let counts = ["new", "existing", "invalid", "suppressed"].map(|k| doc[k].as_u64());
    assert_eq!(counts, [Some(1), Some(2), Some(2), Some(1)], "{doc}");
    let outcomes: Vec<(u64, &str)> = doc["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap_or(0),
                r["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (2, "new"),
            (3, "existing"),
            (4, "invalid"),
            (5, "suppressed"),
            (6, "existing"),
            (7, "invalid")
        ]
    );
    let text = run(&dir, &["subscribers", "import", "mailchimp.csv"])
        .success()
        .stdout;
    assert!(
        text.starts_with("mailchimp.csv: 0 new, 3 existing, 2 invalid, 1 suppressed\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "mailchimp.csv:4: invalid not-an-address (`not-an-address` is not a valid email address"
        ),
        "{text}"
    );
    let doc = listed(&dir, &[]);
    let fresh = &doc["readers"][10];
    assert_eq!(
        (
            fresh["address"].as_str(),
            fresh["name"].as_str(),
            fresh["source"].as_str()
        ),
        (
            Some("fresh@example.org"),
            Some("Fresh Reader"),
            Some("imported")
        )
    );

    // A value with a line break in it (a quoted CSV field) stays on its
    // row's one report line: nothing from the file forges another line.
    std::fs::write(
        dir.join("hostile.csv"),
        "email\n\"a@b.example\r\nhostile.csv:9: new forged@example.org\"\n",
    )
    .expect("write");
    let text = run(&dir, &["subscribers", "import", "hostile.csv"])
        .success()
        .stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[1].starts_with("hostile.csv:2: invalid a@b.example hostile.csv:9"),
        "{text}"
    );

    std::fs::write(dir.join("broken.csv"), "name\nx\n").expect("write");
    let out = run(&dir, &["subscribers", "import", "broken.csv"]).code(2);
    assert!(
        out.stderr.contains("broken.csv:1: no email column"),
        "{}",
        out.stderr
    );
}

#[test]
fn export_is_the_merged_list_with_suppressions_marked() {
    let (_tmp, dir) = sample_project();
    run(
        &dir,
        &[
            "subscribers",
            "add",
            "new@example.org",
            "--name",
            "Park, Ada",
        ],
    )
    .success();
    run(
        &dir,
        &[
            "suppressions",
            "add",
            "ada.park@example.net",
            "--reason",
            "unsubscribed",
        ],
    )
    .success();
    let out = run(&dir, &["subscribers", "export"]).success().stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "email,name,status,source,suppressed,subscribed_at,timezone,signup_source"
    );
    assert_eq!(
        lines[1],
        "ada.park@example.net,Ada Park,active,csv,unsubscribed,,,website"
    );
    assert!(
        lines[11].starts_with("new@example.org,\"Park, Ada\",active,added,,20"),
        "{out}"
    );
    assert_eq!(lines.len(), 12);
    let out = run(&dir, &["subscribers", "export", "all.csv"]).success();
    assert_eq!(
        out.stdout,
        "11 readers written to all.csv (1 marked suppressed)\n"
    );
    // The export is a list `send` can read.
    let settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    std::fs::write(
        dir.join("dailyissue.toml"),
        settings.replace("subscribers.example.csv", "all.csv"),
    )
    .expect("write");
    run(&dir, &["subscribers", "remove", "new@example.org"]).success();
    let doc = listed(&dir, &[]);
    assert_eq!(
        (doc["csv_rows"].as_u64(), doc["signups"].as_u64()),
        (Some(11), Some(0))
    );
}

//! Output a user can trust (issue #14, section 2): what each command says,
//! and the exit codes behind it, as a new user meets them.

use std::path::{Path, PathBuf};

use crate::support::*;

/// 07:00 in New York on 2027-03-01: after the sample's 06:00 send time.
const MORNING: (&str, &str) = ("DAILYISSUE_NOW", "2027-03-01T12:00:00Z");

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn get(url: &str) -> (u16, String) {
    let mut r = agent().get(url).call().expect("GET");
    let body = r.body_mut().read_to_string().unwrap_or_default();
    (r.status().as_u16(), body)
}

/// `serve` on a free loopback port, stopped (and its stderr given back)
/// by [`Served::stop`].
struct Served {
    child: Option<std::process::Child>,
    base: String,
}

impl Served {
    fn start(dir: &Path, env: &[(&str, &str)]) -> Served {
        let port = free_port();
        let child = spawn_piped(
            dir,
            &["serve", "--listen", &format!("127.0.0.1:{port}")],
            env,
        );
        let served = Served {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
        };
        wait_for("serve to answer /healthz", || {
            agent()
                .get(format!("{}/healthz", served.base))
                .call()
                .is_ok_and(|r| r.status() == 200)
        });
        served
    }

    fn stop(mut self) -> String {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let out = child.wait_with_output().expect("serve's output");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `List-Unsubscribe` links of each message in `outbox/DATE/`:
/// (https link, mailto link).
fn unsubscribe_links(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(format!("outbox/{DATE}")))
        .expect("outbox")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let eml = std::fs::read_to_string(f).expect("eml");
            let mut header = String::new();
            let mut inside = false;
            for line in eml.lines() {
                if line.is_empty() {
                    break;
                }
                if let Some(value) = line.strip_prefix("List-Unsubscribe:") {
                    inside = true;
                    header.push_str(value);
                } else if inside && line.starts_with([' ', '\t']) {
                    header.push_str(line.trim_start());
                } else {
                    inside = false;
                }
            }
            let links: Vec<String> = header
                .split(',')
                .map(|l| l.trim().trim_matches(['<', '>']).to_string())
                .collect();
            (links[0].clone(), links[1].clone())
        })
        .collect()
}

#[test]
fn preview_shows_the_next_issue_today_s_until_it_has_gone_out() {
    let (_tmp, dir) = init_project();
    let first = run_env(&dir, &["preview", "--format", "text"], &[MORNING]).success();
    assert!(
        first
            .stderr
            .contains("the next issue is today's, 2027-03-01: it has not gone out yet"),
        "{}",
        first.stderr
    );
    assert!(dir.join("issues/2027-03-01.toml").is_file());
    assert!(!dir.join("issues/2027-03-02.toml").exists());

    run_env(&dir, &["send"], &[MORNING]).success();
    let next = run_env(&dir, &["preview", "--format", "text"], &[MORNING]).success();
    assert!(
        next.stderr
            .contains("the next issue is tomorrow's, 2027-03-02: today's has gone out"),
        "{}",
        next.stderr
    );
    assert!(dir.join("issues/2027-03-02.toml").is_file());
    // The Quickstart says so.
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README");
    assert!(
        readme.contains("dailyissue preview --open               # see the next issue"),
        "README Quickstart"
    );
}

#[test]
fn a_dry_run_says_would_send_and_never_asks_for_a_rerun() {
    let (_tmp, dir) = init_project();
    write_list(&dir, 5);
    let out = run(&dir, &["send", "--date", DATE, "--dry-run", "--limit", "2"]).success();
    assert!(out.stdout.contains("  would send 2\n"), "{}", out.stdout);
    assert!(!out.stdout.contains("  sent "), "{}", out.stdout);
    assert!(
        !out.stdout.contains("run `dailyissue send` again"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("a real run would leave for the next one by --limit: "),
        "{}",
        out.stdout
    );
    let doc = json(
        &run(
            &dir,
            &[
                "send",
                "--date",
                DATE,
                "--dry-run",
                "--limit",
                "1",
                "--json",
            ],
        )
        .success(),
    );
    assert_eq!(doc["exit_code"], 0, "{doc}");
    assert_eq!(doc["dry_run"], true, "{doc}");
    // A real run with --limit is another matter.
    run(&dir, &["send", "--date", DATE, "--limit", "1"]).code(75);
}

#[test]
fn the_development_secret_is_accepted_by_unsubscribe_and_a_local_serve_with_the_same_note() {
    let (_tmp, dir) = init_project();
    write_list(&dir, 4);
    let note = "note: DAILYISSUE_UNSUBSCRIBE_SECRET is not set: unsubscribe links use the development secret and will not verify in production";
    let sent = run(&dir, &["send", "--date", DATE]).success();
    assert!(sent.stderr.contains(note), "{}", sent.stderr);
    let links = unsubscribe_links(&dir);
    assert!(links.len() >= 3, "{links:?}");

    // The whole https link, as pasted from the email.
    let by_link = run(&dir, &["unsubscribe", &links[0].0]).success();
    assert!(
        by_link.stdout.ends_with(" is unsubscribed\n"),
        "{}",
        by_link.stdout
    );
    assert!(by_link.stderr.contains(note), "{}", by_link.stderr);

    // The mailto link's subject, as it arrives: "unsubscribe TOKEN".
    let subject = links[1]
        .1
        .split("subject=")
        .nth(1)
        .expect("a subject")
        .replace("%20", " ");
    assert!(subject.starts_with("unsubscribe "), "{subject}");
    let by_subject = run(&dir, &["unsubscribe", &subject]).success();
    assert!(
        by_subject.stdout.ends_with(" is unsubscribed\n"),
        "{}",
        by_subject.stdout
    );
    assert_ne!(by_link.stdout, by_subject.stdout, "two readers");

    // `serve` on this machine takes the same links, with the same note.
    let served = Served::start(&dir, &[]);
    let path = links[2].0.split("/u/").nth(1).expect("token");
    let (code, page) = get(&format!("{}/u/{path}", served.base));
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("will get no more emails"), "{page}");
    let stderr = served.stop();
    assert!(stderr.contains(note), "{stderr}");

    // With [smtp], serve's signup letters would be real mail: no
    // development secret then, on any address.
    add_smtp(&dir, 1, "");
    let served = Served::start(&dir, &[]);
    let (code, _) = get(&format!("{}/u/{path}", served.base));
    assert_eq!(code, 503);
    let stderr = served.stop();
    assert!(!stderr.contains(note), "{stderr}");

    // A real secret does not take development tokens.
    let real = run_env(&dir, &["unsubscribe", &links[2].0], &[SECRET]).code(2);
    assert!(
        real.stderr.starts_with("error: that token is not valid"),
        "{}",
        real.stderr
    );
}

#[test]
fn unsubscribe_says_when_its_argument_is_neither_an_address_nor_a_token() {
    let (_tmp, dir) = init_project();
    for pasted in ["hello", "please take me off", "https://example.com/u/"] {
        let out = run(&dir, &["unsubscribe", pasted]).code(2);
        assert!(
            out.stderr.starts_with(&format!(
                "error: `{pasted}` is neither an email address nor an unsubscribe token"
            )),
            "{}",
            out.stderr
        );
    }
    assert!(!dir.join(".dailyissue").exists(), "nothing written");
}

#[test]
fn preview_out_is_a_folder_unless_it_names_a_file() {
    let (_tmp, dir) = init_project();
    let preview = |extra: &[&str]| {
        let mut args = vec!["preview", "--date", DATE];
        args.extend_from_slice(extra);
        run(&dir, &args)
    };
    // No trailing slash, no extension: a folder, not one file named so.
    preview(&["--out", "previews"]).success();
    for ext in ["html", "txt", "eml"] {
        assert!(
            dir.join(format!("previews/{DATE}.{ext}")).is_file(),
            "{ext}"
        );
    }
    // A folder that exists, whatever its name.
    std::fs::create_dir(dir.join("v1.0")).expect("mkdir");
    preview(&["--out", "v1.0"]).success();
    assert!(dir.join(format!("v1.0/{DATE}.eml")).is_file());
    // A file: the format its extension names.
    preview(&["--out", "one.txt"]).success();
    let text = std::fs::read_to_string(dir.join("one.txt")).expect("one.txt");
    assert!(!text.contains("<html"), "plain text: {text}");
    // An extension that says another format than --format: refused.
    let refused = preview(&["--out", "x.html", "--format", "text"]).code(2);
    assert!(
        refused.stderr.starts_with(
            "error: --out x.html: the extension says html, but --format is text; write to x.txt instead"
        ),
        "{}",
        refused.stderr
    );
    assert!(!dir.join("x.html").exists());
}

#[test]
fn serve_before_archive_says_there_is_no_archive_yet() {
    let (_tmp, dir) = init_project();
    let served = Served::start(&dir, &[SECRET]);
    let (code, page) = get(&format!("{}/", served.base));
    assert_eq!(code, 404);
    assert!(
        page.contains("No archive built yet") && page.contains("dailyissue archive"),
        "{page}"
    );
    run(&dir, &["plan", "--date", DATE, "--days", "1"]).success();
    run(&dir, &["archive", "--all"]).success();
    let (code, page) = get(&format!("{}/", served.base));
    assert_eq!(code, 200, "{page}");
    let stderr = served.stop();
    assert!(
        stderr.contains("warning: no archive built yet in ")
            && stderr.contains("run `dailyissue archive`"),
        "{stderr}"
    );
}

#[test]
fn repeats_name_the_day_an_item_was_last_picked() {
    let (_tmp, dir) = init_project();
    // 16 tools: the 17th day repeats the first day's.
    let out = run(&dir, &["plan", "--date", DATE, "--days", "17", "--json"]).success();
    let doc = json(&out);
    let repeat = &doc["days"][16]["repeats"][0];
    assert_eq!(repeat["last_picked"], DATE, "{doc}");
    assert_eq!(repeat["last_sent"], DATE, "the older name stays: {doc}");
    assert!(
        out.stderr.contains(&format!("(last picked {DATE})")) && !out.stderr.contains("last sent"),
        "{}",
        out.stderr
    );
    std::fs::remove_file(dir.join("issues/2027-03-17.toml")).expect("rm");
    let preview = run(
        &dir,
        &["preview", "--date", "2027-03-17", "--format", "text"],
    )
    .success();
    assert!(
        preview.stderr.contains(&format!("(last picked {DATE})")),
        "{}",
        preview.stderr
    );
}

#[test]
fn counts_agree_with_their_nouns_and_every_column_has_a_header() {
    let (_tmp, dir) = init_project();
    let plan = run(&dir, &["plan", "--date", DATE, "--days", "1"]).success();
    let mut lines = plan.stdout.lines();
    let head: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    let row: Vec<&str> = lines
        .next()
        .expect("a day")
        .split("  ")
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(head.last(), Some(&"RECORD"), "{}", plan.stdout);
    assert_eq!(
        head.len(),
        row.len(),
        "a header per column: {}",
        plan.stdout
    );
    assert!(
        plan.stdout.ends_with("1 new record in issues/, 0 kept\n"),
        "{}",
        plan.stdout
    );

    let added = run(
        &dir,
        &["suppressions", "add", "a@example.org", "a@example.org"],
    )
    .success();
    assert_eq!(added.stdout, "1 added, 1 was already suppressed\n");
    let removed = run(
        &dir,
        &["suppressions", "remove", "a@example.org", "b@example.org"],
    )
    .success();
    assert_eq!(removed.stdout, "1 removed, 1 was not suppressed\n");
    let removed = run(
        &dir,
        &["suppressions", "remove", "b@example.org", "c@example.org"],
    )
    .success();
    assert_eq!(removed.stdout, "0 removed, 2 were not suppressed\n");
}

#[test]
fn suppressions_list_prints_the_columns_the_readme_names() {
    let (_tmp, dir) = init_project();
    run(
        &dir,
        &[
            "suppressions",
            "add",
            "x@example.org",
            "--reason",
            "complained",
        ],
    )
    .success();
    run(&dir, &["unsubscribe", "y@example.org"]).success();
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README");
    assert!(
        readme.contains("four tab-separated columns: address, reason, date, how it came"),
        "README"
    );
    let list = run(&dir, &["suppressions", "list"]).success().stdout;
    let rows: Vec<Vec<&str>> = list.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2, "{list}");
    for row in &rows {
        assert_eq!(row.len(), 4, "{list}");
        assert_eq!(row[2].len(), 10, "a date: {list}");
    }
    assert_eq!(rows[0][..2], ["x@example.org", "complained"]);
    assert_eq!(rows[0][3], "by hand");
    assert_eq!(rows[1][..2], ["y@example.org", "unsubscribed"]);
}

#[test]
fn errors_carry_the_error_label_and_listen_failures_are_not_bad_input() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let none = run(tmp.path(), &["check"]).code(2);
    assert!(
        none.stderr.starts_with("error: no dailyissue.toml in "),
        "{}",
        none.stderr
    );

    let (_tmp, dir) = init_project();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let busy = run_env(
        &dir,
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
        &[SECRET],
    )
    .code(75);
    // The error is the last line, labelled (notes may come before it).
    let last = |stderr: &str| stderr.lines().last().unwrap_or_default().to_string();
    assert!(
        last(&busy.stderr).starts_with(&format!("error: cannot listen on 127.0.0.1:{port}")),
        "{}",
        busy.stderr
    );
    // An address this machine does not have (TEST-NET-1): for the
    // operator to fix, not bad input and not worth a retry.
    let foreign = run_env(&dir, &["serve", "--listen", "192.0.2.1:8080"], &[SECRET]).code(1);
    assert!(
        last(&foreign.stderr).starts_with("error: cannot listen on 192.0.2.1:8080"),
        "{}",
        foreign.stderr
    );
}

/// The number before ` msg/s` in `text`, checked to group thousands.
fn rate_in(text: &str) -> String {
    let at = text.find(" msg/s").expect("a rate");
    let number = text[..at].rsplit([' ', '(']).next().expect("number");
    let groups: Vec<&str> = number.split(',').collect();
    assert!(
        groups[0].len() <= 3
            && groups[1..].iter().all(|g| g.len() == 3)
            && groups
                .iter()
                .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit())),
        "whole messages, thousands grouped: {number}"
    );
    number.to_string()
}

#[test]
fn send_announces_itself_before_the_run_and_stamps_progress_off_a_terminal() {
    let (_tmp, dir) = init_project();
    write_list(&dir, 40);
    let out = run(&dir, &["-v", "send", "--date", DATE]).success();
    let lines: Vec<&str> = out.stderr.lines().collect();
    let find = |what: &str| {
        lines
            .iter()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("{what}:\n{}", out.stderr))
    };
    let header = find(&format!("note: issue 1 of {DATE} via files in "));
    let progress = find("note: progress: 1/40 (");
    let pipeline = find("debug: the pipeline took");
    assert!(header < progress && progress < pipeline, "{}", out.stderr);
    for line in [lines[header], lines[progress]] {
        // 2027-03-01T11:00:00.412Z note: ...
        let stamp = line.split(' ').next().expect("stamp");
        assert!(
            stamp.len() == 24 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "{line}"
        );
    }
    rate_in(lines[progress]);
    rate_in(&out.stdout);
    assert!(
        out.stdout
            .starts_with(&format!("issue 1 of {DATE} via files in ")),
        "{}",
        out.stdout
    );
}

#[test]
fn man_pages_one_per_command_with_exit_status_environment_and_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wrote = run(tmp.path(), &["man", "--out", "man"]).success();
    assert!(wrote.stdout.starts_with("wrote "), "{}", wrote.stdout);
    let main = std::fs::read_to_string(tmp.path().join("man/dailyissue.1")).expect("main page");
    for section in [".SH \"EXIT STATUS\"", ".SH ENVIRONMENT", ".SH FILES"] {
        assert!(main.contains(section), "{section}");
    }
    for var in ["DAILYISSUE_UNSUBSCRIBE_SECRET", "DAILYISSUE_SMTP_PASSWORD"] {
        assert!(main.contains(var), "{var}");
    }
    for command in [
        "init",
        "check",
        "plan",
        "preview",
        "send",
        "status",
        "history",
        "schedule",
        "unsubscribe",
        "serve",
        "archive",
    ] {
        assert!(
            tmp.path()
                .join(format!("man/dailyissue-{command}.1"))
                .is_file(),
            "{command}"
        );
        assert!(
            main.contains(&format!("dailyissue\\-{command}(1)")),
            "{command}"
        );
    }
    let send = run(tmp.path(), &["man", "send"]).success();
    let title = send
        .stdout
        .lines()
        .find(|l| l.starts_with(".TH "))
        .expect("a title");
    assert!(
        title
            .replace("\\-", "-")
            .starts_with(".TH dailyissue-send 1"),
        "{title}"
    );
    assert!(send.stdout.contains("dry\\-run"));
    run(tmp.path(), &["man", "nosuch"]).code(2);
    for args in [&["--help"][..], &["send", "--help"], &["serve", "-h"]] {
        let help = run(tmp.path(), args).success();
        assert!(
            help.stdout.contains("Exit codes: 0 done") && help.stdout.contains("75 temporary"),
            "{args:?}: {}",
            help.stdout
        );
    }
}

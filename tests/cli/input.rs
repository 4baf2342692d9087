//! Hostile input and operator mistakes (issue #9): a broken subscriber CSV,
//! an undeliverable issue, unsafe links, settings and records that would
//! brick the project later, repeated issue numbers, colliding paths, and
//! what `serve` may hand out. Every case must stop with exit 2 and
//! `path:line` (or be refused) before anything is sent or written.

use std::path::Path;

use crate::support::*;

const DATE: &str = "2027-03-01";
const LIST: &str = "subscribers.example.csv";

fn write_list(dir: &Path, text: &str) {
    std::fs::write(dir.join(LIST), text).expect("write list");
}

/// `n` valid rows of the sample list's shape.
fn rows(n: usize) -> String {
    (1..=n)
        .map(|i| format!("reader{i}@example.org,Reader {i},active,test\n"))
        .collect()
}

/// Every `.eml` file the file sink wrote, anywhere under `outbox/`.
fn outbox(dir: &Path) -> Vec<std::path::PathBuf> {
    fn walk(p: &Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(p) else {
            return;
        };
        for e in entries.flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("outbox"), &mut out);
    out
}

fn send(dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["send", "--date", DATE];
    args.extend_from_slice(extra);
    run(dir, &args)
}

// --- 4. A broken CSV stops check and send -------------------------------

#[test]
fn an_unclosed_quote_stops_check_and_send_and_nothing_is_sent() {
    let (_tmp, dir) = sample_project();
    write_list(
        &dir,
        &format!(
            "email,name,status,signup_source\na1@example.org,\"A1,active,test\n{}",
            rows(8)
        ),
    );
    let check = run(&dir, &["check", "--date", DATE]).code(2);
    assert!(
        check.stderr.contains(&format!(
            "{LIST}:2: a quote is probably not closed: the field that opens here runs on to the end of the file"
        )),
        "{}",
        check.stderr
    );
    let sent = send(&dir, &[]).code(2);
    assert!(
        sent.stderr
            .contains(&format!("{LIST}:2: a quote is probably not closed")),
        "{}",
        sent.stderr
    );
    assert!(
        outbox(&dir).is_empty(),
        "nothing is sent: {:?}",
        outbox(&dir)
    );
    assert!(
        !dir.join(".dailyissue/state.db").exists(),
        "no ledger written"
    );
}

#[test]
fn rows_of_the_wrong_shape_stop_check_and_send() {
    for (list, expected) in [
        (
            format!(
                "email,name,status,signup_source\n{}park@example.org,Park, Ada,active,test\n",
                rows(2)
            ),
            format!("{LIST}:4: this row has 5 fields but the header has 4"),
        ),
        (
            format!(
                "email,name,status,signup_source\n\"split@\nexample.org\",S,active,test\n{}",
                rows(2)
            ),
            format!("{LIST}:2: the email field spans several lines"),
        ),
        (
            format!("email,name,email,signup_source\n{}", rows(2)),
            format!("{LIST}:1: the header row names the column `email` twice"),
        ),
    ] {
        let (_tmp, dir) = sample_project();
        write_list(&dir, &list);
        let check = run(&dir, &["check", "--date", DATE]).code(2);
        assert!(check.stderr.contains(&expected), "{}", check.stderr);
        let sent = send(&dir, &[]).code(2);
        assert!(sent.stderr.contains(&expected), "{}", sent.stderr);
        assert!(outbox(&dir).is_empty());
    }
}

// --- 5. check and send agree ---------------------------------------------

/// Makes the day's term body about 5 MB.
fn huge_body(dir: &Path) {
    let path = dir.join("content/terms/hallucination.md");
    let mut text = std::fs::read_to_string(&path).expect("term");
    let paragraph = "A very long paragraph that nobody should ever mail. ".repeat(20);
    for _ in 0..5000 {
        text.push_str(&paragraph);
        text.push_str("\n\n");
    }
    assert!(text.len() > 5_000_000);
    std::fs::write(&path, text).expect("write term");
}

#[test]
fn an_oversized_issue_stops_send_as_it_fails_check() {
    let (_tmp, dir) = sample_project();
    huge_body(&dir);
    let expected = "the HTML of the issue of 2027-03-01 is";
    let check = run(&dir, &["check", "--date", DATE]).code(2);
    assert!(check.stderr.contains(expected), "{}", check.stderr);
    for extra in [&[][..], &["--dry-run"], &["--to", "me@example.org"]] {
        let sent = send(&dir, extra).code(2);
        assert!(sent.stderr.contains(expected), "{extra:?}: {}", sent.stderr);
        assert!(outbox(&dir).is_empty(), "{extra:?}: nothing is sent");
    }
    assert!(!dir.join(".dailyissue/state.db").exists(), "no ledger rows");
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(run.stdout.trim()).expect("json summary")
}

#[test]
fn a_huge_name_is_blamed_on_its_row_and_send_skips_and_counts_it() {
    let (_tmp, dir) = sample_project();
    let name = "N".repeat(10 * 1024 * 1024);
    write_list(
        &dir,
        &format!(
            "email,name,status,signup_source\n{}huge@example.org,{name},active,test\n{}",
            rows(2),
            rows(5).replace("reader", "later")
        ),
    );
    let check = run(&dir, &["check", "--date", DATE]).code(2);
    assert_eq!(
        check.stderr,
        format!(
            "{LIST}:4: the `name` field is 10240 KB long; a field may hold at most 1000 bytes (it is copied into every message): shorten it or delete the row\n1 problem found\n"
        )
    );
    let sent = send(&dir, &["--json"]).success();
    let summary = json(&sent);
    assert_eq!(summary["sent"], 7, "{}", sent.stdout);
    assert_eq!(summary["invalid_rows"], 1, "{}", sent.stdout);
    assert!(
        sent.stderr.contains(&format!(
            "warning: skipped: {LIST}:4: the `name` field is 10240 KB long"
        )),
        "{}",
        sent.stderr
    );
    assert_eq!(outbox(&dir).len(), 7);
    assert!(
        outbox(&dir)
            .iter()
            .all(|p| !p.to_string_lossy().contains("huge@"))
    );
}

#[test]
fn address_literals_fail_check_and_are_skipped_by_send() {
    let (_tmp, dir) = sample_project();
    write_list(
        &dir,
        &format!(
            "email,name,status,signup_source\n{}lit@[127.0.0.1],Lit,active,test\n",
            rows(2)
        ),
    );
    let expected = format!("{LIST}:4: `lit@[127.0.0.1]` is an address literal");
    let check = run(&dir, &["check", "--date", DATE]).code(2);
    assert!(check.stderr.contains(&expected), "{}", check.stderr);
    let sent = send(&dir, &["--json"]).success();
    assert_eq!(json(&sent)["invalid_rows"], 1);
    assert_eq!(json(&sent)["sent"], 2);
    assert!(sent.stderr.contains(&expected), "{}", sent.stderr);
    send(&dir, &["--to", "me@[127.0.0.1]"]).code(2);
}

#[test]
fn a_copy_pushed_over_the_limit_by_its_row_is_blamed_on_that_row() {
    let (_tmp, dir) = sample_project();
    // The HTML template repeats a column; one row fills it to the brim.
    let html = std::fs::read_to_string(dir.join("templates/email.html")).expect("html");
    let html = html.replacen(
        "</body>",
        "{% for i in range(150) %}{{ subscriber.signup_source }}{% endfor %}</body>",
        1,
    );
    std::fs::write(dir.join("templates/email.html"), html).expect("write");
    let full = "s".repeat(990);
    write_list(
        &dir,
        &format!(
            "email,name,status,signup_source\n{}big@example.org,Big,active,{full}\n",
            rows(2)
        ),
    );
    let check = run(&dir, &["check", "--date", DATE]).code(2);
    assert!(
        check
            .stderr
            .starts_with(&format!("{LIST}:4: the copy for big@example.org is 1"))
            && check
                .stderr
                .contains("because of this row's values; shorten them\n1 problem found\n"),
        "{}",
        check.stderr
    );
}

// --- 6. Unsafe links never reach readers ----------------------------------

#[test]
fn unsafe_links_are_text_in_mail_and_archive_with_a_warning_from_check() {
    let (_tmp, dir) = sample_project();
    let path = dir.join("content/terms/hallucination.md");
    let text = std::fs::read_to_string(&path).expect("term");
    let body_start = text.match_indices("+++\n").nth(1).expect("front matter").0;
    let line = text[..body_start].lines().count() + 2;
    let text = format!(
        "{}+++\nSee [this trick](javascript://%0Aalert(1)) and ![pic](data:image/png;base64,AAAA).\n{}",
        &text[..body_start],
        &text[body_start + 4..]
    );
    std::fs::write(&path, text).expect("write");

    let check = run(&dir, &["check", "--date", DATE]).success();
    assert!(
        check.stderr.contains(&format!(
            "warning: content/terms/hallucination.md:{line}: the link to `javascript://%0Aalert(1)` is shown as plain text"
        )) && check.stderr.contains(&format!(
            "warning: content/terms/hallucination.md:{line}: the link to `data:image/png;base64,AAAA` is shown as plain text"
        )),
        "{}",
        check.stderr
    );
    send(&dir, &[]).success();
    let mails = outbox(&dir);
    assert!(!mails.is_empty());
    for mail in mails {
        let raw = std::fs::read_to_string(&mail)
            .expect("eml")
            .replace("=\r\n", "");
        assert!(raw.contains("See this trick and pic."), "rendered as text");
        assert!(
            !raw.contains("javascript:") && !raw.contains("data:image"),
            "{raw}"
        );
    }
    run(&dir, &["archive", "--all"]).success();
    for page in [
        "public/issues/2027-03-01/index.html",
        "public/glossary/hallucination/index.html",
    ] {
        let html = std::fs::read_to_string(dir.join(page)).expect("page");
        assert!(html.contains("See this trick and pic."), "{page}");
        assert!(
            !html.contains("javascript:") && !html.contains("data:image"),
            "{page}"
        );
    }
}

// --- 7. Settings and dates that would brick the project later ------------

fn append_settings(dir: &Path, extra: &str) {
    let path = dir.join("dailyissue.toml");
    let text = std::fs::read_to_string(&path).expect("settings");
    std::fs::write(&path, format!("{text}\n{extra}\n")).expect("write settings");
}

fn replace_setting(dir: &Path, line_start: &str, with: &str) {
    let path = dir.join("dailyissue.toml");
    let text = std::fs::read_to_string(&path).expect("settings");
    let text: Vec<&str> = text
        .lines()
        .map(|l| if l.starts_with(line_start) { with } else { l })
        .collect();
    std::fs::write(&path, text.join("\n")).expect("write settings");
}

#[test]
fn a_name_with_a_line_break_is_refused_before_any_record_is_written() {
    let (_tmp, dir) = sample_project();
    replace_setting(&dir, "name = ", "name = \"Beginners\\nin AI\"");
    for args in [
        &["check", "--date", DATE][..],
        &["send", "--date", DATE],
        &["plan", "--date", DATE],
    ] {
        let out = run(&dir, args).code(2);
        assert!(
            out.stderr
                .starts_with("dailyissue.toml:3: `name` must be one line"),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert!(!dir.join("issues").exists(), "no record written");
}

#[test]
fn dates_past_9999_are_refused_and_nothing_is_written() {
    let (_tmp, dir) = sample_project();
    let out = run(&dir, &["plan", "--date", "9999-12-31", "--days", "2"]).code(2);
    assert!(out.stderr.contains("past 9999-12-31"), "{}", out.stderr);
    assert!(!dir.join("issues").exists(), "no record written");
    for args in [
        &["send", "--date", "+10000-01-01"][..],
        &["check", "--date", "0999-12-31"],
        &["preview", "--date", "10000-01-01"],
    ] {
        let out = run(&dir, args).code(2);
        assert!(
            out.stderr.contains("YYYY-MM-DD") || out.stderr.contains("1000-01-01 to 9999-12-31"),
            "{args:?}: {}",
            out.stderr
        );
    }
    run(&dir, &["plan", "--date", "9999-12-31", "--days", "1"]).success();
    run(&dir, &["check", "--date", "9999-12-31"]).success();
}

#[test]
fn an_unusable_smtp_setting_is_bad_input_not_a_temporary_failure() {
    for extra in ["port = 0", "timeout = \"0s\""] {
        let (_tmp, dir) = sample_project();
        append_settings(
            &dir,
            &format!("[smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n{extra}"),
        );
        let out = run_env(
            &dir,
            &["send", "--date", DATE],
            &[("DAILYISSUE_UNSUBSCRIBE_SECRET", "test-secret-0123456789")],
        )
        .code(2);
        assert!(
            out.stderr.starts_with("dailyissue.toml:"),
            "{extra}: {}",
            out.stderr
        );
    }
}

#[test]
fn front_matter_dates_need_four_digit_years() {
    let (_tmp, dir) = sample_project();
    let path = dir.join("content/terms/hallucination.md");
    let text = std::fs::read_to_string(&path).expect("term");
    std::fs::write(
        &path,
        text.replace("last_reviewed = 2026-11-01", "last_reviewed = 0026-11-01"),
    )
    .expect("write");
    let out = run(&dir, &["check", "--date", DATE]).code(2);
    assert!(
        out.stderr.starts_with(
            "content/terms/hallucination.md:9: `last_reviewed` must be a date from 1000-01-01 to 9999-12-31"
        ),
        "{}",
        out.stderr
    );
}

// --- 8. Issue numbers never repeat ---------------------------------------

#[test]
fn a_record_before_later_ones_is_refused_rather_than_numbered_twice() {
    let (_tmp, dir) = sample_project();
    // Sending a future date first makes it no. 1 ...
    run(&dir, &["send", "--date", "2027-03-05"]).success();
    let before = outbox(&dir).len();
    // ... so the earlier date cannot become another no. 1.
    for args in [
        &["plan", "--date", "2027-03-01", "--days", "1"][..],
        &["preview", "--date", "2027-03-01"],
        &["send", "--date", "2027-03-01"],
        &["check", "--date", "2027-03-01"],
    ] {
        let out = run(&dir, args).code(2);
        assert!(
            out.stderr.starts_with(
                "issues/2027-03-05.toml:4: a new record for 2027-03-01 would be no. 1, but this later issue is no. 1: numbers grow with the date"
            ),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert!(!dir.join("issues/2027-03-01.toml").exists());
    assert_eq!(outbox(&dir).len(), before, "nothing more sent");
    // Days after the last record are fine.
    run(&dir, &["plan", "--date", "2027-03-06", "--days", "2"]).success();
}

// --- 9. Paths that collide --------------------------------------------------

#[test]
fn a_ledger_at_its_own_lock_path_is_refused_before_anything_is_written() {
    let (_tmp, dir) = sample_project();
    replace_setting(&dir, "ledger = ", "ledger = \".dailyissue/state.lock\"");
    for args in [
        &["check", "--date", DATE][..],
        &["send", "--date", DATE],
        &["status"],
    ] {
        let out = run(&dir, args).code(2);
        assert!(
            out.stderr.starts_with(
                "dailyissue.toml:12: `ledger` (\".dailyissue/state.lock\") collides with the ledger's lock file: taking the run's lock would empty the ledger"
            ),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert!(!dir.join(".dailyissue").exists());
    assert!(outbox(&dir).is_empty());
}

#[test]
fn a_list_inside_the_outbox_or_the_archive_is_refused() {
    for (key, value, blamed) in [
        (
            "subscribers = ",
            "subscribers = \"outbox/list.csv\"",
            "`subscribers` (\"outbox/list.csv\") collides with `outbox`",
        ),
        (
            "subscribers = ",
            "subscribers = \"public/list.csv\"",
            "`subscribers` (\"public/list.csv\") collides with `archive_dir`",
        ),
        (
            "ledger = ",
            "ledger = \"templates/state.db\"",
            "`ledger` (\"templates/state.db\") collides with templates/",
        ),
    ] {
        let (_tmp, dir) = sample_project();
        replace_setting(&dir, key, value);
        let out = run(&dir, &["check", "--date", DATE]).code(2);
        assert!(out.stderr.contains(blamed), "{value}: {}", out.stderr);
    }
}

// --- 12. What serve and archive may publish ---------------------------------

#[test]
fn archive_and_serve_refuse_a_folder_holding_private_data() {
    let (_tmp, dir) = sample_project();
    run(&dir, &["plan", "--date", DATE, "--days", "1"]).success();
    for out in [".", ".dailyissue", "outbox/.."] {
        let res = run(&dir, &["archive", "--all", "--out", out]).code(2);
        assert!(
            res.stderr.contains("the web archive is published whole"),
            "{out}: {}",
            res.stderr
        );
    }
    assert!(!dir.join("index.html").exists(), "nothing written");
    // An absolute archive_dir that is the project itself.
    let abs = dir.canonicalize().expect("abs");
    replace_setting(
        &dir,
        "ledger = ",
        &format!(
            "ledger = \".dailyissue/state.db\"\narchive_dir = \"{}\"",
            abs.display()
        ),
    );
    let check = run(&dir, &["check", "--date", DATE]).code(2);
    assert!(
        check.stderr.starts_with("dailyissue.toml:13: ")
            && check
                .stderr
                .contains("holds the settings file dailyissue.toml"),
        "{}",
        check.stderr
    );
    run(&dir, &["archive", "--all"]).code(2);
    let serve = run(&dir, &["serve", "--listen", "127.0.0.1:0"]).code(2);
    assert!(
        serve
            .stderr
            .contains("the subscriber list (subscribers.example.csv)"),
        "{}",
        serve.stderr
    );
}

#[test]
fn an_archive_dir_holding_the_project_stops_check_archive_and_serve() {
    let (_tmp, dir) = sample_project();
    replace_setting(
        &dir,
        "ledger = ",
        "ledger = \".dailyissue/state.db\"\narchive_dir = \".\"",
    );
    for args in [
        &["check", "--date", DATE][..],
        &["archive", "--all"],
        &["serve", "--listen", "127.0.0.1:0"],
    ] {
        let out = run(&dir, args).code(2);
        assert!(
            out.stderr.starts_with(
                "dailyissue.toml:13: `archive_dir` (\".\") collides with the settings file"
            ),
            "{args:?}: {}",
            out.stderr
        );
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// `serve` on the sample project with its archive built; the base URL.
fn served_archive(dir: &Path) -> (Served, String) {
    run(dir, &["plan", "--date", DATE, "--days", "1"]).success();
    run(dir, &["archive", "--all"]).success();
    let port = free_port();
    let served = Served(spawn(
        dir,
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
        &[],
    ));
    let base = format!("http://127.0.0.1:{port}");
    wait_for("serve to answer /healthz", || {
        agent()
            .get(format!("{base}/healthz"))
            .call()
            .is_ok_and(|r| r.status() == 200)
    });
    (served, base)
}

#[test]
fn serve_hands_out_no_dotfiles_and_only_answers_get_and_head() {
    let (_tmp, dir) = sample_project();
    std::fs::create_dir_all(dir.join("public/.git")).expect("dot-folder");
    std::fs::write(dir.join("public/.env"), "SECRET=1").expect("dotfile");
    std::fs::write(dir.join("public/.git/config"), "[core]").expect("dotfile");
    let (_served, base) = served_archive(&dir);
    let get = |path: &str| {
        agent()
            .get(format!("{base}{path}"))
            .call()
            .expect("GET")
            .status()
            .as_u16()
    };
    assert_eq!(get("/"), 200);
    assert_eq!(get("/style.css"), 200);
    for hidden in [
        "/.env",
        "/.git/config",
        "/.dailyissue-archive",
        "/issues/../.env",
        "/%2Eenv",
        "/%2egit/config",
        "/issues%2F..%2F.env",
    ] {
        assert_eq!(get(hidden), 404, "{hidden}");
    }
    let head = agent().head(format!("{base}/")).call().expect("HEAD");
    assert_eq!(head.status(), 200);
    for method in ["POST", "PUT", "DELETE"] {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{base}/"))
            .body(())
            .expect("request");
        let res = agent().run(req).expect(method);
        assert_eq!(res.status(), 405, "{method}");
        // The list is what counts ("GET,HEAD" from ServeDir).
        let allow: Vec<String> = res
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_string())
            .collect();
        assert_eq!(allow, ["GET", "HEAD"], "{method}");
    }
}

#[test]
fn serve_labels_content_types_and_answers_head_and_missing_pages() {
    let (_tmp, dir) = sample_project();
    let public = dir.join("public");
    std::fs::create_dir_all(&public).expect("public");
    for (name, bytes) in [
        ("logo.png", &b"\x89PNG\r\n\x1a\n"[..]),
        ("logo.svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
        ("robots.txt", "User-agent: *\n# caf\u{e9}\n".as_bytes()),
        (
            "feed.atom",
            b"<feed xmlns=\"http://www.w3.org/2005/Atom\"/>",
        ),
    ] {
        std::fs::write(public.join(name), bytes).expect("file");
    }
    let (_served, base) = served_archive(&dir);
    let content_type = |path: &str| {
        let res = agent().get(format!("{base}{path}")).call().expect("GET");
        assert_eq!(res.status(), 200, "{path}");
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    for (path, want) in [
        ("/", "text/html; charset=utf-8"),
        ("/issues/2027-03-01/", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/feed.xml", "text/xml; charset=utf-8"),
        ("/sitemap.xml", "text/xml; charset=utf-8"),
        ("/feed.atom", "application/atom+xml; charset=utf-8"),
        ("/logo.png", "image/png"),
        ("/logo.svg", "image/svg+xml"),
        ("/robots.txt", "text/plain; charset=utf-8"),
    ] {
        assert_eq!(content_type(path).as_deref(), Some(want), "{path}");
    }

    // HEAD: the same headers, no body.
    let css = std::fs::read(public.join("style.css")).expect("css");
    let mut head = agent()
        .head(format!("{base}/style.css"))
        .call()
        .expect("HEAD");
    assert_eq!(head.status(), 200);
    let header = |res: &ureq::http::Response<ureq::Body>, name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header(&head, "content-type").as_deref(),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(header(&head, "content-length"), Some(css.len().to_string()));
    assert_eq!(head.body_mut().read_to_vec().expect("body"), b"");

    // A folder without its slash is sent to it, so relative links resolve.
    let res = agent()
        .get(format!("{base}/issues/2027-03-01"))
        .call()
        .expect("GET");
    assert_eq!(res.status(), 307);
    assert_eq!(
        header(&res, "location").as_deref(),
        Some("/issues/2027-03-01/")
    );

    // Missing: 404 with a page that leads back.
    for path in [
        "/nope.html",
        "/issues/1999-01-01/",
        "/feed.xml/",
        "/feed.xml/x",
    ] {
        let mut res = agent().get(format!("{base}{path}")).call().expect("GET");
        assert_eq!(res.status(), 404, "{path}");
        let page = res.body_mut().read_to_string().expect("body");
        assert!(page.contains("Page not found"), "{path}: {page}");
        assert!(page.contains("href=\"/\""), "{path}: {page}");
    }
}

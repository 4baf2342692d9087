//! Rendering the sample issue: snapshots, an independent MIME parser,
//! escaping and header-injection cases, and every sample item.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use dailyissue::cmd::{Day, DayOptions, SecretUse, open_day};
use dailyissue::project::Project;
use dailyissue::project::subscribers::{ListStatus, Subscriber};
use mail_parser::{MessageParser, MimeHeaders};

use crate::support::*;

fn sent_at() -> DateTime<Utc> {
    "2027-03-01T11:00:00Z".parse().expect("time")
}

fn load(dir: &Path, date: &str) -> Day {
    let project = Project::discover(dir).expect("project");
    open_day(
        &project,
        DayOptions {
            date: date.parse().expect("date"),
            now: sent_at(),
            secrets: SecretUse::Local,
            write_record: true,
        },
    )
    .expect("edition")
}

fn reader(email: &str, name: &str) -> Subscriber {
    Subscriber {
        email: email.parse().expect("address"),
        key: email.into(),
        name: name.into(),
        status: ListStatus::Active,
        fields: vec!["website".to_string()],
        zone: None,
        line: 2,
    }
}

fn eml(edition: &Day, r: &Subscriber) -> String {
    String::from_utf8(edition.edition.email.message(r).expect("message")).expect("utf-8")
}

#[test]
fn sample_issue_snapshots() {
    let (_tmp, dir) = sample_project();
    let edition = load(&dir, "2027-03-01");
    let ada = edition
        .loaded
        .list
        .find("ada.park@example.net")
        .expect("listed")
        .clone();
    let rendered = edition.edition.email.render(&ada).expect("render");
    insta::assert_snapshot!("sample_html", rendered.html);
    insta::assert_snapshot!("sample_text", rendered.text);
    let full = eml(&edition, &ada);
    let headers = &full[..full.find("\r\n\r\n").expect("header end")];
    insta::assert_snapshot!("sample_headers", headers.replace("\r\n", "\n"));
}

#[test]
fn eml_parses_as_multipart_alternative_with_list_headers() {
    let (_tmp, dir) = sample_project();
    let edition = load(&dir, "2027-03-01");
    let ada = edition
        .loaded
        .list
        .find("ada.park@example.net")
        .expect("listed")
        .clone();
    let raw = eml(&edition, &ada);
    assert!(raw.len() < 100 * 1024, "message is {} bytes", raw.len());
    assert!(raw.split("\r\n").all(|l| l.len() <= 998), "line too long");
    assert!(raw.is_ascii(), "7-bit clean");
    let msg = MessageParser::default()
        .parse(raw.as_bytes())
        .expect("parses");
    let ct = msg.content_type().expect("content type");
    assert_eq!(
        (ct.ctype(), ct.subtype()),
        ("multipart", Some("alternative"))
    );
    assert_eq!(
        msg.subject(),
        Some("Hallucination, NotebookLM, and one tip")
    );
    let to = msg.to().and_then(|a| a.first()).expect("to");
    assert_eq!(to.name(), Some("Ada Park"));
    assert_eq!(to.address(), Some("ada.park@example.net"));
    assert_eq!(
        msg.from().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("daily@example.com")
    );
    assert_eq!(
        msg.reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some("hello@example.com")
    );
    let id = msg.message_id().expect("message id");
    assert!(
        id.starts_with("20270301.") && id.ends_with("@example.com"),
        "{id}"
    );
    let header = |name: &str| {
        msg.header_raw(name)
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let url = edition.edition.email.unsubscribe_url(&ada);
    assert_eq!(
        header("List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    assert!(header("List-Unsubscribe").starts_with(&format!(
        "<{url}>, <mailto:unsubscribe@example.com?subject=unsubscribe%20"
    )));
    assert_eq!(
        header("List-Id"),
        "\"Beginners in AI\" <beginners-in-ai.daily.example.com>"
    );
    assert_eq!(header("Auto-Submitted"), "auto-generated");
    assert_eq!(header("Precedence"), "bulk");
    assert_eq!(msg.parts.len(), 3, "container, text, html");
    let text = msg.body_text(0).expect("text part");
    let html = msg.body_html(0).expect("html part");
    assert_eq!(
        msg.parts[1].content_type().and_then(|c| c.subtype()),
        Some("plain"),
        "text comes first"
    );
    assert!(text.contains(&url), "unsubscribe URL in text");
    assert!(html.contains(&url), "unsubscribe URL in HTML");
    assert!(text.contains("Beginners in AI, 123 Example Street"));
    assert!(html.contains("Beginners in AI, 123 Example Street"));
    assert!(text.contains("Good morning, Ada."));
    assert_eq!(
        html.replace("\r\n", "\n"),
        edition.edition.email.render(&ada).expect("render").html,
        "decodes to the rendered HTML"
    );
    assert_eq!(
        text.replace("\r\n", "\n"),
        edition.edition.email.render(&ada).expect("render").text,
        "decodes to the rendered text"
    );
}

#[test]
fn html_is_email_safe() {
    let (_tmp, dir) = sample_project();
    let edition = load(&dir, "2027-03-01");
    let html = edition
        .edition
        .email
        .render(&reader("x@example.org", "X"))
        .expect("render")
        .html;
    assert!(!html.to_lowercase().contains("<script"), "no script");
    assert!(html.contains("name=\"color-scheme\""));
    assert!(html.contains("display:none"), "hidden preheader");
    assert!(
        html.contains("max-width: 600px") || html.contains("max-width:600px"),
        "column at most 640 px"
    );
    let style =
        &html[html.find("<style>").expect("style kept")..html.find("</style>").expect("end")];
    assert!(style.contains("@media") && style.contains("prefers-color-scheme"));
    assert!(
        !style.contains(".label {") && !style.contains("font-family"),
        "plain rules are inlined, not kept: {style}"
    );
    for href in html.split("href=\"").skip(1) {
        let url = &href[..href.find('"').expect("quote")];
        assert!(
            url.starts_with("https://") || url.starts_with("mailto:"),
            "not absolute https: {url}"
        );
    }
    for img in html.split("<img").skip(1) {
        assert!(
            img[..img.find('>').expect("end")].contains("alt="),
            "image without alt"
        );
    }
}

#[test]
fn names_are_escaped_and_cannot_inject_headers() {
    let (_tmp, dir) = sample_project();
    let edition = load(&dir, "2027-03-01");
    let evil = reader("eve@example.org", "<script>alert(1)</script>");
    let html = edition.edition.email.render(&evil).expect("render").html;
    assert!(!html.contains("<script>alert(1)"), "script in HTML");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    let list = dailyissue::project::subscribers::parse(
        b"email,name\neve@example.org,\"Eve\r\nBcc: victim@example.net\"\n",
        Path::new("s.csv"),
    )
    .expect("csv");
    let raw = eml(&edition, &list.readers().next().expect("a reader"));
    let msg = MessageParser::default()
        .parse(raw.as_bytes())
        .expect("parses");
    assert!(msg.bcc().is_none(), "no Bcc header");
    assert!(!raw.contains("\r\nBcc:"), "{raw}");
    assert_eq!(
        msg.to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("eve@example.org")
    );
}

#[test]
fn every_sample_item_renders() {
    let (_tmp, dir) = sample_project();
    let project = Project::discover(&dir).expect("project");
    let pool = project.pool().expect("pool");
    let sections: Vec<&dailyissue::project::content::Section> = pool.sections.iter().collect();
    let most = sections.iter().map(|s| s.items.len()).max().expect("items");
    // One issue per day; day i takes item i of each section (wrapping), so
    // every item, drafts included, is rendered at least once.
    let start: chrono::NaiveDate = "2030-01-01".parse().expect("date");
    for (i, day) in start.iter_days().take(most).enumerate() {
        let picks: BTreeMap<String, String> = sections
            .iter()
            .map(|s| (s.name.clone(), s.items[i % s.items.len()].slug.clone()))
            .collect();
        let mut text = format!("number = {}\ndate = {day}\n\n[picks]\n", i + 1);
        for (s, slug) in &picks {
            text.push_str(&format!("{s} = \"{slug}\"\n"));
        }
        std::fs::create_dir_all(dir.join("issues")).expect("mkdir");
        std::fs::write(dir.join(format!("issues/{day}.toml")), text).expect("write");
    }
    // Drafts cannot be picked; render them by un-drafting a copy.
    for s in &sections {
        for item in s.items.iter().filter(|i| i.draft) {
            let path = dir.join(&item.path);
            let text = std::fs::read_to_string(&path)
                .expect("read")
                .replace("draft = true", "draft = false");
            std::fs::write(&path, text).expect("write");
        }
    }
    for day in start.iter_days().take(most) {
        let edition = load(&dir, &day.to_string());
        let r = edition
            .edition
            .email
            .render(&reader("x@example.org", "X"))
            .expect("render");
        assert!(r.html.len() < 100 * 1024, "{day}: {} bytes", r.html.len());
        edition
            .edition
            .email
            .message(&reader("x@example.org", ""))
            .expect("message");
    }
}

/// `preview --open` where no browser can start fails with the reason and
/// the file's path; a `BROWSER` command gets the file.
#[cfg(all(unix, not(target_os = "macos")))]
#[test]
fn preview_open_says_when_no_browser_can_open() {
    let (_tmp, dir) = sample_project();
    let open = |browser: Option<&Path>| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.current_dir(&dir).args([
            "preview",
            "--date",
            "2027-03-01",
            "--out",
            "pv.html",
            "--open",
        ]);
        for var in [
            "RUST_LOG",
            "DISPLAY",
            "WAYLAND_DISPLAY",
            "BROWSER",
            "WSL_DISTRO_NAME",
        ] {
            cmd.env_remove(var);
        }
        if let Some(browser) = browser {
            cmd.env("BROWSER", browser);
        }
        let out = cmd.output().expect("run dailyissue");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, stderr) = open(None);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot open a browser for")
            && stderr.contains("pv.html")
            && stderr.contains("BROWSER is not set"),
        "{stderr}"
    );
    assert!(
        dir.join("pv.html").is_file(),
        "the preview is still written"
    );

    let (code, stderr) = open(Some(&dir.join("no-such-browser")));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no-such-browser"), "{stderr}");

    // Written by a child process, so that no descriptor open for writing
    // leaks into programs other test threads start (exec would then fail
    // with "text file busy").
    let browser = dir.join("browser.sh");
    let made = std::process::Command::new("sh")
        .arg("-c")
        .arg(
            "printf '#!/bin/sh\\nprintf %%s \"$1\" > \"$0.opened\"\\n' > \"$1\" && chmod +x \"$1\"",
        )
        .arg("sh")
        .arg(&browser)
        .status()
        .expect("sh");
    assert!(made.success());
    let (code, stderr) = open(Some(&browser));
    assert_eq!(code, Some(0), "{stderr}");
    let opened = dir.join("browser.sh.opened");
    wait_for("the browser command to run", || {
        std::fs::read_to_string(&opened).is_ok_and(|arg| arg.ends_with("pv.html"))
    });
}

#[test]
fn preview_cli_writes_all_formats_and_never_a_ledger() {
    let (_tmp, dir) = sample_project();
    let out = run(
        &dir,
        &[
            "preview",
            "--date",
            "2027-03-01",
            "--as",
            "ben.okafor@example.org",
            "--out",
            "pv/",
        ],
    )
    .success();
    for ext in ["html", "txt", "eml"] {
        assert!(
            dir.join(format!("pv/2027-03-01.{ext}")).is_file(),
            "{ext}: {}",
            out.stderr
        );
    }
    assert!(
        std::fs::read_to_string(dir.join("pv/2027-03-01.txt"))
            .expect("txt")
            .contains("Good morning, Ben.")
    );
    assert!(
        dir.join("issues/2027-03-01.toml").is_file(),
        "the record is written on first use"
    );
    assert!(!dir.join(".dailyissue").exists(), "no delivery state");
    let text = run(
        &dir,
        &["preview", "--date", "2027-03-01", "--format", "text"],
    )
    .success();
    assert!(
        text.stdout.contains("TERM OF THE DAY: HALLUCINATION"),
        "{}",
        text.stdout
    );
    let eml = run(
        &dir,
        &[
            "preview",
            "--date",
            "2027-03-01",
            "--format",
            "eml",
            "--out",
            "x.eml",
        ],
    )
    .success();
    // With --out, what was written (and for whom) is the report, on stdout.
    assert!(eml.stdout.starts_with("wrote x.eml (as "), "{}", eml.stdout);
    assert!(
        std::fs::read_to_string(dir.join("x.eml"))
            .expect("eml")
            .contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    );
}

#[test]
fn template_errors_name_file_line_and_date() {
    let (_tmp, dir) = sample_project();
    std::fs::write(
        dir.join("templates/email.txt"),
        "line one\n{{ term.titel }}\n",
    )
    .expect("write");
    let out = run(
        &dir,
        &["preview", "--date", "2027-03-01", "--format", "text"],
    )
    .code(2);
    assert!(
        out.stderr
            .contains("templates/email.txt:2: undefined value `term.titel`")
            && out.stderr.contains("issue of 2027-03-01"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_first_name_column_wins_over_the_first_word_of_the_name() {
    let (_tmp, dir) = sample_project();
    std::fs::write(
        dir.join("subscribers.example.csv"),
        "email,name,first_name\nbob@example.org,Robert Smith,Bobby\nann@example.org,Ann Lee,\n",
    )
    .expect("list");
    let as_reader = |addr: &str| {
        run(
            &dir,
            &[
                "preview",
                "--date",
                "2027-03-01",
                "--as",
                addr,
                "--format",
                "text",
            ],
        )
        .success()
        .stdout
    };
    assert!(as_reader("bob@example.org").contains("Good morning, Bobby."));
    let ann = as_reader("ann@example.org");
    assert!(
        !ann.contains("Good morning,"),
        "an empty column is empty: {ann}"
    );
}

#[test]
fn a_template_that_compares_a_personal_value_gets_each_readers_own_answer() {
    let (_tmp, dir) = sample_project();
    std::fs::write(
        dir.join("subscribers.example.csv"),
        "email,name,plan\nvip@example.org,Vera,vip\nfree@example.org,Fred,free\n",
    )
    .expect("list");
    let txt = std::fs::read_to_string(dir.join("templates/email.txt")).expect("template");
    std::fs::write(
        dir.join("templates/email.txt"),
        format!("{{% if subscriber.plan == \"vip\" %}}THANK YOU, SUPPORTER{{% endif %}}\n{{{{ subscriber.name | upper }}}}\n{txt}"),
    )
    .expect("write");
    run(&dir, &["send", "--date", "2027-03-01"]).success();
    let read = |addr: &str| {
        let eml = std::fs::read(dir.join(format!("outbox/2027-03-01/{addr}.eml"))).expect("eml");
        let msg = mail_parser::MessageParser::default()
            .parse(&eml)
            .expect("parses");
        msg.body_text(0).expect("text part").into_owned()
    };
    let vip = read("vip@example.org");
    let free = read("free@example.org");
    assert!(
        vip.contains("THANK YOU, SUPPORTER") && vip.contains("VERA"),
        "{vip}"
    );
    assert!(
        !free.contains("THANK YOU") && free.contains("FRED"),
        "{free}"
    );
}

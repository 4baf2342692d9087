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
        !style.contains(".footer p {") && !style.contains("font-family"),
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

/// The heading levels of an HTML page, in order (`<h2 …>` gives 2).
pub(crate) fn heading_levels(html: &str) -> Vec<u8> {
    let bytes = html.as_bytes();
    html.match_indices("<h")
        .filter_map(|(i, _)| {
            let (digit, after) = (*bytes.get(i + 2)?, *bytes.get(i + 3)?);
            (digit.is_ascii_digit() && (after == b'>' || after == b' ')).then_some(digit - b'0')
        })
        .collect()
}

/// What is wrong with a page's outline, if anything: it must open with
/// an h1 and never skip a level on the way down (h1 → h3).
pub(crate) fn outline_problem(html: &str) -> Option<String> {
    let levels = heading_levels(html);
    if levels.first() != Some(&1) {
        return Some(format!("the first heading is not an h1: {levels:?}"));
    }
    levels
        .windows(2)
        .find(|w| w[1] > w[0] + 1)
        .map(|w| format!("h{} follows h{}: {levels:?}", w[1], w[0]))
}

/// Lines of a text part over 78 columns, but for a URL alone on its line
/// (a link cannot be broken).
pub(crate) fn long_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.chars().count() > 78)
        .filter(|l| {
            let l = l.trim();
            l.contains(' ') || !(l.starts_with("https://") || l.starts_with("http://"))
        })
        .collect()
}

#[test]
fn outline_and_line_checks_catch_what_they_are_for() {
    assert_eq!(
        heading_levels("<head><header><h1>a</h1><h2 id=x>b<hr><h3>"),
        [1, 2, 3]
    );
    assert!(outline_problem("<h1>a</h1><h2>b</h2><h3>c</h3><h2>d</h2>").is_none());
    assert!(outline_problem("<h1>a</h1><h3>b</h3>").is_some());
    assert!(outline_problem("<h2>a</h2>").is_some());
    let url = format!("https://example.com/{}", "x".repeat(80));
    assert!(long_lines(&format!("ok\n{url}\n  {url}\n")).is_empty());
    assert_eq!(long_lines(&format!("see {url}\n")).len(), 1);
    assert_eq!(long_lines(&"word ".repeat(20)).len(), 1);
}

/// Every sample item, in the email: the outline starts at the masthead's
/// h1 and never skips a level, text lines fit 78 columns, the signature
/// separator keeps its space, and the opening line names the day's items
/// and the reading time.
#[test]
fn every_sample_issue_has_a_sound_outline_and_short_lines() {
    let (_tmp, dir) = sample_project();
    run(&dir, &["plan", "--date", "2027-03-01", "--days", "27"]).success();
    for day in 1..=27 {
        let date = format!("2027-03-{day:02}");
        let edition = load(&dir, &date);
        let r = edition
            .edition
            .email
            .render(&reader("ada.park@example.net", "Ada Park"))
            .expect("render");
        if let Some(p) = outline_problem(&r.html) {
            panic!("{date}: {p}");
        }
        assert_eq!(long_lines(&r.text), Vec::<&str>::new(), "{date}");
        assert!(r.text.contains("\n-- \nYou get this email"), "{date}");
        let today = &r.text[r.text.find("Today: ").expect("opening line")..];
        let today = &today[..today.find("\n\n").expect("one paragraph")];
        let today = today.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            today.ends_with("-minute read.") && today.contains(" to try, and a tip: “"),
            "{date}: {today}"
        );
        assert!(
            r.html.contains("<td class=\"intro\"") && r.html.contains("-minute read.</td>"),
            "{date}"
        );
    }
}

/// The sample issue's typography: curly quotes and apostrophes in prose
/// (bodies and front matter), straight ones left in URLs; a review date
/// people say ("Reviewed November 2026"); `content` on Apple's meta tag;
/// consistent `*strong*` markers in the text part.
#[test]
fn the_sample_issue_reads_like_typeset_prose() {
    let (_tmp, dir) = sample_project();
    let edition = load(&dir, "2027-03-01");
    let r = edition
        .edition
        .email
        .render(&reader("x@example.org", "X"))
        .expect("render");
    for part in [&r.html, &r.text] {
        assert!(part.contains("An AI “hallucination” is"), "body quotes");
        assert!(
            part.contains("app’s memory") || part.contains("APP’S MEMORY"),
            "title apostrophe"
        );
        assert!(
            part.contains("Google’s research notebook"),
            "summary apostrophe"
        );
        assert!(part.contains("Reviewed November 2026"), "review date");
        assert!(!part.contains("2026-11-01"), "no ISO review date");
        assert!(!part.contains("app's") && !part.contains("\"hallucination\""));
    }
    assert!(r.html.contains(
        "href=\"https://en.wikipedia.org/wiki/Hallucination_(artificial_intelligence)\""
    ));
    assert!(
        r.html
            .contains("<meta name=\"x-apple-disable-message-reformatting\" content=\"\">")
    );
    for label in [
        "*What it is:*",
        "*Who it is for:*",
        "*Best if:*",
        "*Sources:*",
        "*Try this:*",
    ] {
        assert!(r.text.contains(label), "{label}");
    }
}

/// "Related": every entry a link, terms apart from tips. A related term
/// already featured links its glossary page, one not featured yet its
/// first source; a tip links the issue that featured it, at its card; a
/// tip not featured yet has nowhere to go and is left out.
#[test]
fn related_items_are_links_grouped_by_section() {
    let (_tmp, dir) = sample_project();
    std::fs::create_dir_all(dir.join("issues")).expect("mkdir");
    for (n, date, term, tool, tip) in [
        (
            1,
            "2027-03-01",
            "retrieval-augmented-generation",
            "chatgpt",
            "ask-for-sources-and-check-them",
        ),
        (
            2,
            "2027-03-02",
            "hallucination",
            "notebooklm",
            "break-big-tasks-into-steps",
        ),
    ] {
        std::fs::write(
            dir.join(format!("issues/{date}.toml")),
            format!("number = {n}\ndate = {date}\n\n[picks]\nterm = \"{term}\"\ntool = \"{tool}\"\ntip = \"{tip}\"\n"),
        )
        .expect("record");
    }
    let edition = load(&dir, "2027-03-02");
    let r = edition
        .edition
        .email
        .render(&reader("x@example.org", "X"))
        .expect("render");
    let html = &r.html;
    let terms = html
        .find("<strong>Related terms:</strong>")
        .expect("terms group");
    let tips = html
        .find("<strong>Related tips:</strong>")
        .expect("tips group");
    assert!(terms < tips, "terms first, as the settings order sections");
    let link = |href: &str, title: &str| {
        format!(
            "<a href=\"{href}\" style=\"color: #2a6f97;text-decoration: underline;\">{title}</a>"
        )
    };
    let terms_html = &html[terms..tips];
    assert!(
        terms_html.contains(&link(
            "https://daily.example.com/glossary/retrieval-augmented-generation/",
            "Retrieval-augmented generation"
        )) && terms_html.contains(" · ")
            && terms_html.contains(&link(
                "https://en.wikipedia.org/wiki/Large_language_model",
                "Large language model"
            )),
        "{terms_html}"
    );
    let tips_html = &html[tips..tips + html[tips..].find("</p>").expect("end")];
    assert!(
        tips_html.contains(&link(
            "https://daily.example.com/issues/2027-03-01/#tip",
            "Ask for sources, then actually open them"
        )),
        "{tips_html}"
    );
    assert!(
        !html.contains("Check AI maths"),
        "a tip with nowhere to go is left out"
    );
    assert!(
        r.text.contains(
            "*Related tips:*\n- Ask for sources, then actually open them\n  https://daily.example.com/issues/2027-03-01/#tip\n"
        ),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("*Related terms:*\n- Retrieval-augmented generation\n  https://daily.example.com/glossary/retrieval-augmented-generation/\n"),
        "{}",
        r.text
    );
}

/// "View in browser" stays at phone width: no rule of the phone-width
/// block hides (`display: none`) the masthead's cells, where the link is.
#[test]
fn view_in_browser_stays_at_phone_width() {
    let (_tmp, dir) = sample_project();
    let edition = load(&dir, "2027-03-01");
    let html = edition
        .edition
        .email
        .render(&reader("x@example.org", "X"))
        .expect("render")
        .html;
    let style = &html[html.find("<style>").expect("style")..html.find("</style>").expect("end")];
    let phone = &style[style.find("max-width: 620px").expect("phone rules")..];
    let phone = &phone[phone.find('{').expect("block") + 1..];
    let phone = &phone[..phone.find("@media").unwrap_or(phone.len())];
    let hiding: Vec<&str> = phone
        .split('}')
        .filter_map(|rule| rule.split_once('{'))
        .filter(|(_, body)| body.replace(' ', "").contains("display:none"))
        .map(|(selectors, _)| selectors.trim())
        .collect();
    let hidden = |class: &str| {
        hiding.iter().any(|s| {
            s.split('.').skip(1).any(|c| {
                c.split(|ch: char| !(ch.is_alphanumeric() || ch == '-' || ch == '_'))
                    .next()
                    == Some(class)
            })
        })
    };
    let masthead = html.find("class=\"masthead\"").expect("masthead");
    let link = masthead
        + html[masthead..]
            .find(">View in browser</a>")
            .expect("the link in the masthead");
    assert!(
        link < html.find("class=\"card\"").expect("cards"),
        "the masthead's link, not the footer's"
    );
    let classes: Vec<&str> = html[masthead..link]
        .split("class=\"")
        .skip(1)
        .flat_map(|c| c[..c.find('"').expect("quote")].split_whitespace())
        .collect();
    assert!(classes.contains(&"promise"), "{classes:?}");
    for class in classes {
        assert!(
            !hidden(class),
            ".{class} is hidden at phone width: {hiding:?}"
        );
    }
}

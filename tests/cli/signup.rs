//! Signups with real parts: `serve` on a free port, a real HTTP client
//! posting the archive's form as a browser does, the in-process SMTP
//! server receiving the confirmation and the welcome, `send` reading the
//! merged list, the reader's one-click unsubscribe; the limits, the quiet
//! refusals, and one-click feedback.

use std::path::Path;
use std::process::Child;

use crate::smtp::{Options, Received, Server};

const LIST_ID: &str = "beginners-in-ai.daily.example.com";
use crate::support::*;

pub struct Served {
    child: Option<Child>,
    pub base: String,
}

impl Served {
    /// Stops `serve` and gives what it logged on stderr.
    pub fn stop(mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return String::new();
        };
        let _ = child.kill();
        let out = child.wait_with_output().expect("serve output");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `serve -vv` on a free port, its log kept.
pub fn serve(dir: &Path) -> Served {
    let port = free_port();
    let child = spawn_piped(
        dir,
        &["-vv", "serve", "--listen", &format!("127.0.0.1:{port}")],
        &[SECRET],
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

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// POSTs a form-encoded body, as a browser does; `client` sets the
/// address a local proxy would forward.
pub fn post_form(url: &str, body: &str, client: Option<&str>) -> (u16, String) {
    let mut request = agent()
        .post(url)
        .content_type("application/x-www-form-urlencoded");
    if let Some(ip) = client {
        request = request.header("X-Forwarded-For", ip);
    }
    let mut r = request.send(body).expect("POST");
    let page = r.body_mut().read_to_string().unwrap_or_default();
    (r.status().as_u16(), page)
}

pub fn get(url: &str) -> (u16, String) {
    let mut r = agent().get(url).call().expect("GET");
    let page = r.body_mut().read_to_string().unwrap_or_default();
    (r.status().as_u16(), page)
}

fn signup_body(address: &str, name: &str) -> String {
    format!(
        "email={}&name={}&website=&tz=Europe%2FBerlin&page=https%3A%2F%2Fdaily.example.com%2Fglossary%2F",
        address.replace('@', "%40"),
        name.replace(' ', "+")
    )
}

/// Messages received for `address`.
fn mail_for(server: &Server, address: &str) -> Vec<Received> {
    per_address(server).remove(address).unwrap_or_default()
}

fn text_of(m: &Received) -> String {
    mail_parser::MessageParser::default()
        .parse(&m.data)
        .expect("parses")
        .body_text(0)
        .expect("text part")
        .into_owned()
}

/// The first URL in `text` that starts with `prefix`.
fn link(text: &str, prefix: &str) -> String {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"));
    text[at..]
        .split(|c: char| c.is_whitespace() || c == '>')
        .next()
        .unwrap_or("")
        .to_string()
}

fn local(url: &str, served: &Served) -> String {
    url.replace("https://daily.example.com", &served.base)
}

/// Replaces the table `[name]` of the settings (the sample has
/// `[subscribe]`) with one holding `body`: a table or key given twice is an
/// error in TOML.
fn set_table(dir: &Path, name: &str, body: &str) {
    let settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    let header = format!("[{name}]");
    let mut kept = String::new();
    let mut inside = false;
    for line in settings.lines() {
        if line.trim_start().starts_with('[') {
            inside = line.trim() == header;
        }
        if !inside {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    std::fs::write(
        dir.join("dailyissue.toml"),
        format!("{kept}\n{header}\n{body}\n"),
    )
    .expect("write");
}

/// The sample project sending through `server`, with `subscribe` as its
/// `[subscribe]` table when not empty.
fn project(server: &Server, subscribe: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, dir) = sample_project();
    if !subscribe.is_empty() {
        set_table(&dir, "subscribe", subscribe);
    }
    add_smtp(&dir, server.port(), "");
    (tmp, dir)
}

fn pending(dir: &Path) -> Vec<String> {
    json(&run(dir, &["subscribers", "list", "--pending", "--json"]).success())["readers"]
        .as_array()
        .expect("readers")
        .iter()
        .map(|r| r["address"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Copies of the issue of `date` a reader received (by Message-ID).
fn issues_for(server: &Server, address: &str, date: &str) -> usize {
    let prefix = format!("<{}.", date.replace('-', ""));
    mail_for(server, address)
        .iter()
        .filter(|m| {
            m.header("Message-ID")
                .is_some_and(|id| id.starts_with(&prefix))
        })
        .count()
}

/// Confirms `address` through the link in its (last) confirmation.
pub fn confirm(server: &Server, served: &Served, address: &str) {
    let mail = mail_for(server, address);
    let last = mail.last().expect("a confirmation");
    let url = local(
        &link(&text_of(last), "https://daily.example.com/confirm/"),
        served,
    );
    let (status, page) = post_form(&url, "", None);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You are subscribed"), "{page}");
}

#[test]
fn a_reader_signs_up_confirms_gets_the_issue_once_and_unsubscribes_in_one_click() {
    let server = Server::start(Options::default());
    let (_tmp, dir) = project(&server, "");
    let served = serve(&dir);
    let new = "new.reader@example.org";

    let (status, page) = post_form(
        &format!("{}/subscribe", served.base),
        &signup_body("New.Reader@Example.org", "New Reader"),
        None,
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Check your inbox"), "{page}");
    wait_for("the confirmation", || !mail_for(&server, new).is_empty());
    let confirmation = &mail_for(&server, new)[0];
    assert_eq!(
        confirmation.header("Subject").as_deref(),
        Some("Confirm your subscription to Beginners in AI")
    );
    assert!(
        confirmation.header("List-Unsubscribe").is_none(),
        "transactional"
    );
    assert!(confirmation.header("List-Id").is_none(), "transactional");
    assert_eq!(
        confirmation.header("To").as_deref(),
        Some(new),
        "no name from the form"
    );
    assert!(
        confirmation
            .header("Message-ID")
            .is_some_and(|id| id.starts_with("<confirm."))
    );
    let url = local(
        &link(&text_of(confirmation), "https://daily.example.com/confirm/"),
        &served,
    );

    let (status, page) = get(&url);
    assert_eq!(status, 200);
    assert!(
        page.contains("<button") && page.contains("Confirm my subscription"),
        "{page}"
    );
    assert_eq!(pending(&dir), [new], "a GET confirms nothing");

    let (status, page) = post_form(&url, "", None);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You are subscribed"), "{page}");
    assert!(pending(&dir).is_empty());
    wait_for("the welcome", || mail_for(&server, new).len() == 2);
    let (status, _) = post_form(&url, "", None);
    assert_eq!(status, 200, "confirming twice is harmless");
    let welcome = &mail_for(&server, new)[1];
    assert_eq!(
        welcome.header("Subject").as_deref(),
        Some("Welcome to Beginners in AI")
    );
    assert_eq!(
        welcome.header("To").as_deref(),
        Some("\"New Reader\" <new.reader@example.org>")
    );
    assert!(welcome.header("List-Unsubscribe-Post").is_some());
    assert!(text_of(welcome).contains("06:00 (America/New_York time)"));

    let sent = json(&send(&dir, &["--json"]).success());
    assert_eq!(
        (sent["active"].as_u64(), sent["sent"].as_u64()),
        (Some(10), Some(10)),
        "{sent}"
    );
    assert_eq!(issues_for(&server, new, DATE), 1);
    assert_eq!(json(&send(&dir, &["--json"]).success())["sent"], 0);
    let issue = mail_for(&server, new)
        .into_iter()
        .find(|m| {
            m.header("Message-ID")
                .is_some_and(|id| id.starts_with("<20270301."))
        })
        .expect("the issue");
    let list_unsubscribe = issue.header("List-Unsubscribe").expect("header");
    let one_click = local(
        &link(&list_unsubscribe, "https://daily.example.com/u/"),
        &served,
    );
    let (status, page) = post_form(&one_click, "List-Unsubscribe=One-Click", None);
    assert_eq!(status, 200, "{page}");
    let next =
        json(&run_env(&dir, &["send", "--date", "2027-03-02", "--json"], &[SECRET]).success());
    assert_eq!(
        (next["sent"].as_u64(), next["suppressed"].as_u64()),
        (Some(9), Some(1)),
        "{next}"
    );
    assert_eq!(issues_for(&server, new, "2027-03-02"), 0);

    let log = served.stop();
    assert!(log.contains("signup: n***@example.org confirmed"), "{log}");
}

#[test]
fn a_csv_reader_who_signs_up_again_gets_one_copy() {
    let server = Server::start(Options::default());
    let (_tmp, dir) = project(&server, "");
    let served = serve(&dir);
    let ada = "ada.park@example.net";
    let (status, _) = post_form(
        &format!("{}/subscribe", served.base),
        &signup_body(ada, ""),
        None,
    );
    assert_eq!(status, 200);
    wait_for("the confirmation", || !mail_for(&server, ada).is_empty());
    confirm(&server, &served, ada);
    wait_for("the welcome", || mail_for(&server, ada).len() == 2);
    let sent = json(&send(&dir, &["--json"]).success());
    assert_eq!(
        (sent["active"].as_u64(), sent["sent"].as_u64()),
        (Some(9), Some(9)),
        "{sent}"
    );
    assert_eq!(issues_for(&server, ada, DATE), 1, "no duplicate");
}

#[test]
fn every_answer_to_the_form_is_the_same_page_and_a_suppressed_address_gets_no_mail() {
    let server = Server::start(Options::default());
    let (_tmp, dir) = project(&server, "");
    run(
        &dir,
        &[
            "suppressions",
            "add",
            "gone@example.org",
            "--reason",
            "unsubscribed",
        ],
    )
    .success();
    run(&dir, &["subscribers", "add", "member@example.org"]).success();
    let served = serve(&dir);
    let url = format!("{}/subscribe", served.base);
    let pages: Vec<(u16, String)> = [
        signup_body("gone@example.org", ""),
        signup_body("member@example.org", ""),
        signup_body("first@example.org", ""),
        signup_body("first@example.org", ""),
        format!(
            "{}&website=https%3A%2F%2Fspam.example",
            signup_body("bot@example.org", "")
        ),
        format!(
            "{}&pad={}",
            signup_body("big@example.org", ""),
            "x".repeat(10_000)
        ),
    ]
    .iter()
    .map(|body| post_form(&url, body, None))
    .collect();
    let json_post = agent()
        .post(&url)
        .content_type("application/json")
        .send("{\"email\":\"json@example.org\"}")
        .expect("POST")
        .body_mut()
        .read_to_string()
        .expect("page");
    for (status, page) in &pages {
        assert_eq!((*status, page.as_str()), (pages[0].0, pages[0].1.as_str()));
    }
    assert_eq!(json_post, pages[0].1, "not a form: the same page");
    wait_for("the two confirmations", || {
        mail_for(&server, "first@example.org").len() == 2
    });
    // A marker after everything: its confirmation comes after any other.
    post_form(&url, &signup_body("last@example.org", ""), None);
    wait_for("the last confirmation", || {
        !mail_for(&server, "last@example.org").is_empty()
    });
    let got = per_address(&server);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        ["first@example.org", "last@example.org"],
        "nothing for the suppressed, the member, the bot, the oversized or the JSON post"
    );

    let (status, page) = post_form(&url, "email=not+an+address&name=X", None);
    assert_eq!(status, 400);
    assert!(
        page.contains("aria-invalid=\"true\"")
            && page.contains("role=\"alert\"")
            && page.contains("value=\"not an address\""),
        "{page}"
    );
    let status = json(&run(&dir, &["status", "--date", DATE, "--json"]).success());
    let growth = &status["growth"];
    assert_eq!(growth["requested"], 3, "{status}");
    assert_eq!(growth["refused"], 4, "{status}");
    assert_eq!(growth["refused_by_reason"]["suppressed"], 1, "{status}");
    assert_eq!(growth["refused_by_reason"]["honeypot"], 1, "{status}");
}

#[test]
fn the_limits_stop_list_bombing_before_any_mail_is_sent() {
    let server = Server::start(Options::default());
    let (_tmp, dir) = project(&server, "per_address_per_day = 2\nper_ip_per_hour = 3");
    let served = serve(&dir);
    let url = format!("{}/subscribe", served.base);
    for _ in 0..4 {
        post_form(
            &url,
            &signup_body("victim@example.org", ""),
            Some("203.0.113.1"),
        );
    }
    let others: Vec<String> = (0..5).map(|i| format!("other{i}@example.org")).collect();
    for other in &others {
        post_form(&url, &signup_body(other, ""), Some("203.0.113.2"));
    }
    post_form(
        &url,
        &signup_body("marker@example.org", ""),
        Some("203.0.113.3"),
    );
    wait_for("the marker's confirmation", || {
        !mail_for(&server, "marker@example.org").is_empty()
    });
    wait_for("the allowed confirmations", || server.received().len() >= 6);
    assert_eq!(
        mail_for(&server, "victim@example.org").len(),
        2,
        "per address per day"
    );
    let mailed = others
        .iter()
        .filter(|o| !mail_for(&server, o).is_empty())
        .count();
    assert_eq!(mailed, 3, "per client per hour");
    assert_eq!(server.received().len(), 6);
    let status = json(&run(&dir, &["status", "--date", DATE, "--json"]).success());
    let refused = &status["growth"]["refused_by_reason"];
    assert_eq!(
        (
            refused["address limit"].as_u64(),
            refused["ip limit"].as_u64()
        ),
        (Some(2), Some(2)),
        "{status}"
    );
}

#[test]
fn expired_and_forged_confirmation_links_confirm_nothing() {
    use dailyissue::mail::token::{Secrets, confirm_token};
    let server = Server::start(Options::default());
    let (_tmp, dir) = project(&server, "");
    let served = serve(&dir);
    let url = format!("{}/subscribe", served.base);
    post_form(&url, &signup_body("late@example.org", ""), None);
    wait_for("the confirmation", || {
        !mail_for(&server, "late@example.org").is_empty()
    });
    let secrets = Secrets::new(SECRET.1.as_bytes(), None);
    let expired = confirm_token(&secrets, LIST_ID, &"late@example.org".into(), 1_000_000);
    let (status, page) = post_form(&format!("{}/confirm/{expired}", served.base), "", None);
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("This link has expired"));
    let forged = confirm_token(
        &Secrets::new(b"guess", None),
        LIST_ID,
        &"late@example.org".into(),
        4_000_000_000,
    );
    assert_eq!(
        post_form(&format!("{}/confirm/{forged}", served.base), "", None).0,
        400
    );
    let unsubscribe = dailyissue::mail::token::token(&secrets, LIST_ID, &"late@example.org".into());
    assert_eq!(
        post_form(&format!("{}/confirm/{unsubscribe}", served.base), "", None).0,
        400,
        "another purpose's token"
    );
    assert_eq!(pending(&dir), ["late@example.org"]);
}

#[test]
fn one_click_feedback_records_one_vote_per_reader_and_only_counts_are_shown() {
    let (_tmp, dir) = sample_project();
    send(&dir, &[]).success();
    let eml =
        std::fs::read(dir.join(format!("outbox/{DATE}/ben.okafor@example.org.eml"))).expect("eml");
    let text = mail_parser::MessageParser::default()
        .parse(&eml)
        .expect("parses")
        .body_text(0)
        .expect("text")
        .into_owned();
    assert!(text.contains("Was today’s issue useful?"), "{text}");
    let yes = link(&text, "https://daily.example.com/feedback/");
    assert!(yes.ends_with("?vote=yes"), "{yes}");
    let served = serve(&dir);
    let yes = local(&yes, &served);
    let (status, page) = get(&yes);
    assert_eq!(status, 200);
    assert!(
        page.contains("Was the issue of Monday, March 1, 2027 useful?"),
        "{page}"
    );
    let votes = |dir: &Path| {
        let s = json(&run(dir, &["status", "--date", DATE, "--json"]).success());
        (s["votes"]["yes"].as_u64(), s["votes"]["no"].as_u64())
    };
    assert_eq!(votes(&dir), (Some(0), Some(0)), "a GET records nothing");
    let form = yes.split('?').next().expect("url").to_string();
    assert_eq!(post_form(&form, "vote=yes", None).0, 200);
    assert_eq!(post_form(&form, "vote=yes", None).0, 200);
    assert_eq!(votes(&dir), (Some(1), Some(0)));
    let (status, page) = post_form(&form, "vote=no", None);
    assert_eq!(status, 200);
    assert!(page.contains("Thank you"));
    assert_eq!(
        votes(&dir),
        (Some(0), Some(1)),
        "a second click changes the vote"
    );
    assert_eq!(post_form(&form, "vote=maybe", None).0, 400);
    let log = served.stop();
    assert!(
        log.contains("feedback: a vote on the issue of 2027-03-01"),
        "{log}"
    );
    assert!(
        !log.contains("ben") && !log.contains(form.rsplit('/').next().unwrap_or("-")),
        "{log}"
    );
}

/// Every link in a message: `href`s and URLs of both parts, and the
/// `List-Unsubscribe` header's.
fn links(m: &Received) -> Vec<String> {
    let parsed = mail_parser::MessageParser::default()
        .parse(&m.data)
        .expect("parses");
    let mut text = String::new();
    for i in 0..2 {
        text.push_str(parsed.body_text(i).as_deref().unwrap_or(""));
        text.push_str(parsed.body_html(i).as_deref().unwrap_or(""));
    }
    text.push_str(&m.header("List-Unsubscribe").unwrap_or_default());
    let mut out = Vec::new();
    for scheme in ["https://", "http://", "mailto:"] {
        for (at, _) in text.match_indices(scheme) {
            let url: String = text[at..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !"\"'<>".contains(*c))
                .collect();
            out.push(url);
        }
    }
    out
}

/// `address` as a link could carry it.
fn encodings(address: &str) -> Vec<String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out = Vec::new();
    for a in [address.to_string(), address.to_lowercase()] {
        out.push(a.clone());
        out.push(a.replace('@', "%40"));
        out.push(a.replace('@', "%40").replace('.', "%2E"));
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            out.push(engine.encode(&a));
            // Inside a longer value the address may start 1 or 2 bytes into
            // a 3-byte group: what shows then is the middle of the encoding
            // of the address after 1 or 2 other bytes.
            for shift in 1..3 {
                let mut bytes = vec![0u8; shift];
                bytes.extend_from_slice(a.as_bytes());
                let encoded = engine.encode(&bytes);
                let middle = encoded
                    .trim_end_matches('=')
                    .get(4..encoded.trim_end_matches('=').len().saturating_sub(4))
                    .unwrap_or("");
                if middle.len() >= 8 {
                    out.push(middle.to_string());
                }
            }
        }
        out.push(a.split('@').next().unwrap_or("").to_string());
    }
    out
}

#[test]
fn no_link_reveals_the_reader_old_links_still_unsubscribe_and_serve_logs_neither() {
    let server = Server::start(Options::default());
    let (_tmp, dir) = project(&server, "");
    // The issue's bounce address carries a token too (VERP, #13).
    set_table(
        &dir,
        "bounces",
        "return_path = \"bounces+{token}@example.com\"",
    );
    let served = serve(&dir);
    let new = "new.reader@example.org";
    post_form(
        &format!("{}/subscribe", served.base),
        &signup_body(new, "New Reader"),
        None,
    );
    wait_for("the confirmation", || !mail_for(&server, new).is_empty());
    confirm(&server, &served, new);
    wait_for("the welcome", || mail_for(&server, new).len() == 2);
    send(&dir, &[]).success();
    let received = server.received();
    assert_eq!(received.len(), 2 + 10);
    let mut tokens = Vec::new();
    let mut verp = 0;
    for m in &received {
        let to = &m.to[0];
        let mut links = links(m);
        // The envelope sender, where bounces go, is a link of sorts too.
        if m.from.starts_with("bounces+") {
            verp += 1;
        }
        links.push(m.from.clone());
        assert!(
            links
                .iter()
                .any(|l| l.contains("/u/") || l.contains("/confirm/")),
            "{links:?}"
        );
        for link in &links {
            for encoded in encodings(to) {
                assert!(!link.contains(&encoded), "{link} carries {to} as {encoded}");
            }
            for prefix in ["/u/", "/confirm/", "/feedback/"] {
                if let Some((_, rest)) = link.split_once(prefix) {
                    tokens.push(rest.split('?').next().unwrap_or("").to_string());
                }
            }
        }
        // The link in the issue works: the feedback page answers.
        if let Some(f) = links.iter().find(|l| l.contains("/feedback/")) {
            assert_eq!(get(&local(f, &served)).0, 200);
        }
        // Whoever opens a link (a forwarded issue's reader, a link scanner)
        // gets a page that does not name the reader either.
        for l in links
            .iter()
            .filter(|l| l.starts_with("https://daily.example.com/"))
            .filter(|l| {
                ["/u/", "/confirm/", "/feedback/"]
                    .iter()
                    .any(|p| l.contains(p))
            })
        {
            let (status, page) = get(&local(l, &served));
            assert_eq!(status, 200, "{l}: {page}");
            for encoded in encodings(to) {
                assert!(!page.contains(&encoded), "{l}'s page names {to}: {page}");
            }
        }
    }

    assert_eq!(verp, 10, "every issue's envelope sender is a VERP address");

    // A link in the readable form mailed before opaque tokens still works.
    let secrets = dailyissue::mail::token::Secrets::new(SECRET.1.as_bytes(), None);
    let old =
        dailyissue::mail::token::legacy_token(&secrets, LIST_ID, &"ben.okafor@example.org".into());
    assert!(
        old.starts_with("YmVu"),
        "the old form shows the address: {old}"
    );
    let (status, page) = post_form(
        &format!("{}/u/{old}", served.base),
        "List-Unsubscribe=One-Click",
        None,
    );
    assert_eq!(status, 200, "{page}");
    let suppressed = run(&dir, &["suppressions", "list"]).success().stdout;
    assert!(
        suppressed.starts_with("ben.okafor@example.org\tunsubscribed"),
        "{suppressed}"
    );
    tokens.push(old);

    let log = served.stop();
    assert!(
        log.contains("debug: POST /confirm/*** 200"),
        "requests are logged: {log}"
    );
    for m in &received {
        assert!(!log.contains(&m.to[0]), "{} in the log:\n{log}", m.to[0]);
    }
    for t in tokens.iter().filter(|t| t.len() > 8) {
        assert!(!log.contains(t.as_str()), "a token in the log:\n{log}");
    }
}

/// The archive's pages as (path below `public/`, text).
fn pages(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("public")];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "html") {
                let rel = path.strip_prefix(dir.join("public")).expect("prefix");
                out.push((
                    rel.display().to_string(),
                    std::fs::read_to_string(&path).expect("page"),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_archive_page_carries_the_form_and_the_settings_move_or_remove_it() {
    let (_tmp, dir) = sample_project();
    run(&dir, &["plan", "--date", DATE, "--days", "3"]).success();
    run(&dir, &["archive", "--all"]).success();
    let built = pages(&dir);
    for kind in [
        "index.html",
        "issues/2027-03-01/index.html",
        "glossary/index.html",
        "tools/index.html",
    ] {
        assert!(built.iter().any(|(p, _)| p == kind), "no {kind}");
    }
    assert!(
        built
            .iter()
            .any(|(p, _)| p.starts_with("glossary/") && p != "glossary/index.html"),
        "no glossary page"
    );
    for (path, html) in &built {
        for part in [
            "<form class=\"subscribe-form\" method=\"post\" action=\"https://daily.example.com/subscribe\"",
            "<label for=\"subscribe-email\">",
            "<input id=\"subscribe-email\" name=\"email\" type=\"email\" required",
            "<input id=\"subscribe-name\" name=\"name\"",
            "name=\"website\" type=\"text\" tabindex=\"-1\"",
            "Get smarter about AI every morning — free daily newsletter, one term, one tool, one tip. Free forever. Unsubscribe anytime.",
            "issues/2027-03-03/index.html\">Read the latest issue</a>",
        ] {
            assert!(html.contains(part), "{path} lacks {part}");
        }
    }

    set_table(
        &dir,
        "subscribe",
        "action = \"https://join.example.org/daily\"",
    );
    run(&dir, &["archive", "--all"]).success();
    for (path, html) in pages(&dir) {
        assert!(
            html.contains("action=\"https://join.example.org/daily\"")
                && html.contains("Free, and you can unsubscribe at any time."),
            "{path}: the action and the promise from the settings"
        );
    }

    set_table(&dir, "subscribe", "enabled = false");
    run(&dir, &["archive", "--all"]).success();
    for (path, html) in pages(&dir) {
        assert!(
            // The form's script goes with it; JSON-LD data stays.
            !html.contains("subscribe-form") && !html.contains("<script>"),
            "{path} still has the form"
        );
    }
}

#[test]
fn feedback_can_be_turned_off() {
    let (_tmp, dir) = sample_project();
    set_table(&dir, "feedback", "enabled = false");
    send(&dir, &[]).success();
    let eml =
        std::fs::read(dir.join(format!("outbox/{DATE}/ben.okafor@example.org.eml"))).expect("eml");
    let parsed = mail_parser::MessageParser::default()
        .parse(&eml)
        .expect("parses");
    let text = parsed.body_text(0).expect("text").into_owned();
    let html = parsed.body_html(0).expect("html").into_owned();
    assert!(text.contains("/u/"), "a real copy:\n{text}");
    for part in [&text, &html] {
        assert!(
            !part.contains("useful?") && !part.contains("/feedback/"),
            "no question with [feedback] off:\n{part}"
        );
    }
}

#[test]
fn the_signup_letters_are_dkim_signed_and_verify() {
    use crate::deliver::{dkim_verify, dns_records, with_dkim};
    let server = Server::start(Options::default());
    let (_tmp, dir) = project(&server, "");
    with_dkim(&dir);
    let records = dns_records(&run_env(&dir, &["check", "--date", DATE], &[SECRET]).success());
    assert_eq!(records.len(), 1, "{records:?}");
    let served = serve(&dir);
    let new = "signed.reader@example.org";
    post_form(
        &format!("{}/subscribe", served.base),
        &signup_body(new, ""),
        None,
    );
    wait_for("the confirmation", || !mail_for(&server, new).is_empty());
    confirm(&server, &served, new);
    wait_for("the welcome", || mail_for(&server, new).len() == 2);
    for m in mail_for(&server, new) {
        assert_eq!(
            dkim_verify(&m.data, &records),
            ["pass"],
            "{:?}",
            m.header("Subject")
        );
    }
}

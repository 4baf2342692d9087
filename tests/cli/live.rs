//! `preview --serve`: the live preview driven as an editor uses it — the
//! real binary on a port of its own choosing (it prints the URL), its
//! event stream read with an HTTP client, files edited on disk.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::*;

/// How long to wait for something the preview should do (a bound on a
/// hung child, not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(60);

struct Live {
    child: Child,
    base: String,
    /// The preview's stderr, for failure messages.
    log: PathBuf,
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Live {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut r = agent()
            .get(format!("{}{path}", self.base))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log()));
        let body = r.body_mut().read_to_string().unwrap_or_default();
        (r.status().as_u16(), body)
    }

    fn post(&self, path: &str) -> (u16, String) {
        let mut r = agent()
            .post(format!("{}{path}", self.base))
            .content_type("application/x-www-form-urlencoded")
            .send("List-Unsubscribe=One-Click")
            .unwrap_or_else(|e| panic!("POST {path}: {e}\n{}", self.log()));
        let body = r.body_mut().read_to_string().unwrap_or_default();
        (r.status().as_u16(), body)
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// Lines read from `source` on a thread of their own, so that a reader
/// never blocks the test past [`PATIENCE`].
fn lines(source: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(source).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Starts `preview --serve 127.0.0.1:0 ARGS` in `dir`; the URL is the one
/// it prints.
fn start(dir: &Path, args: &[&str]) -> Live {
    let log = dir.join("preview-stderr.log");
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(["preview", "--serve", "127.0.0.1:0"])
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("DAILYISSUE_UNSUBSCRIBE_SECRET")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn dailyissue");
    let out = lines(child.stdout.take().expect("stdout"));
    let first = out.recv_timeout(PATIENCE).unwrap_or_else(|_| {
        let _ = child.kill();
        panic!(
            "no URL from preview --serve\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .trim_end_matches('/')
        .to_string();
    Live { child, base, log }
}

/// The event stream, as (event, data) pairs.
fn events(live: &Live) -> mpsc::Receiver<(String, String)> {
    let res = agent()
        .get(format!("{}/events", live.base))
        .call()
        .expect("GET /events");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let raw = lines(res.into_body().into_reader());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut event = String::new();
        while let Ok(line) = raw.recv() {
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_string();
            } else if let Some(data) = line.strip_prefix("data: ")
                && tx
                    .send((std::mem::take(&mut event), data.to_string()))
                    .is_err()
            {
                break;
            }
        }
    });
    rx
}

/// Waits for the next event named `name`; its data.
#[track_caller]
fn next(rx: &mpsc::Receiver<(String, String)>, name: &str, live: &Live) -> String {
    loop {
        match rx.recv_timeout(PATIENCE) {
            Ok((event, data)) if event == name => return data,
            Ok(_) => {}
            Err(e) => panic!("no `{name}` event ({e})\n{}", live.log()),
        }
    }
}

/// The slug a record picked for `section`.
fn picked(dir: &Path, date: &str, section: &str) -> String {
    let record = std::fs::read_to_string(dir.join(format!("issues/{date}.toml"))).expect("record");
    record
        .lines()
        .find_map(|l| {
            let (key, value) = l.split_once('=')?;
            (key.trim() == section).then(|| value.trim().trim_matches('"').to_string())
        })
        .unwrap_or_else(|| panic!("no {section} in\n{record}"))
}

/// The text between `start` and the next `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in\n{text}"))
        + start.len();
    let len = text[from..].find(end).expect("end");
    &text[from..from + len]
}

#[test]
fn preview_serve_reloads_on_an_edit_and_shows_every_problem_instead_of_the_email() {
    let (_tmp, dir) = sample_project();
    run(&dir, &["plan", "--date", DATE, "--days", "1"]).success();
    let tool = dir.join(format!("content/tools/{}.md", picked(&dir, DATE, "tool")));
    let live = start(&dir, &["--date", DATE]);

    let (status, page) = live.get("/");
    assert_eq!(status, 200, "{page}");
    for part in [
        "<iframe class=\"email\"",
        "width=\"700\"",
        "width=\"390\"",
        "<h2>Text part</h2>",
        "<h2>Headers</h2>",
        "Raw message",
        "No. 1",
    ] {
        assert!(page.contains(part), "{part}\n{page}");
    }
    assert!(!page.contains("Fresh from the editor"));

    let stream = events(&live);
    let first: u64 = next(&stream, "hello", &live).parse().expect("generation");

    // An edit to the day's tool: a reload, and the new text on the page.
    let mut text = std::fs::read_to_string(&tool).expect("tool");
    text.push_str("\nFresh from the editor: a sentence added just now.\n");
    std::fs::write(&tool, &text).expect("edit");
    let after: u64 = next(&stream, "reload", &live).parse().expect("generation");
    assert!(after > first);
    let (status, page) = live.get("/");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Fresh from the editor"), "{page}");

    // Two broken front matters: both problems, with their places, and no
    // email.
    let term = dir.join("content/terms/prompt.md");
    let good_term = std::fs::read_to_string(&term).expect("term");
    let broken_term = good_term.replacen("title = \"Prompt\"", "title = \"Prompt", 1);
    assert_ne!(broken_term, good_term);
    std::fs::write(&term, broken_term).expect("break");
    let good_tool = text;
    std::fs::write(
        &tool,
        good_tool.replacen("+++\n", "+++\nnot toml at all\n", 1),
    )
    .expect("break");
    let tool_name = format!(
        "content/tools/{}",
        tool.file_name().and_then(|n| n.to_str()).expect("name")
    );
    wait_for("both problems on the page", || {
        let (status, page) = live.get("/");
        status == 422
            && page.contains(&format!("{tool_name}:2:"))
            && page.contains("content/terms/prompt.md:2:")
    });
    next(&stream, "reload", &live);
    let (_, page) = live.get("/");
    assert!(page.matches("<li><code>").count() >= 2, "{page}");
    assert!(!page.contains("<iframe"), "a stale email is shown\n{page}");
    assert!(
        page.contains("src=\"/live.js\""),
        "the problem page must reload too"
    );
    let (status, frame) = live.get(&format!("/email.html?date={DATE}"));
    assert_eq!(status, 422, "{frame}");

    // Fixed: the email is back.
    std::fs::write(&term, good_term).expect("fix");
    std::fs::write(&tool, good_tool).expect("fix");
    wait_for("the email back on the page", || {
        let (status, page) = live.get("/");
        status == 200 && page.contains("<iframe class=\"email\"")
    });

    // Every other input of a render: a template, the settings, the list,
    // the issue record.
    type Edit = fn(&str) -> String;
    let edits: [(&str, Edit, &str); 5] = [
        (
            "templates/email.txt",
            |t| format!("{t}\nA line added to the template.\n"),
            "A line added to the template.",
        ),
        (
            "dailyissue.toml",
            |t| {
                t.replacen(
                    "name = \"Beginners in AI\"",
                    "name = \"Beginners in AI Daily\"",
                    1,
                )
            },
            "Beginners in AI Daily",
        ),
        (
            "subscribers.example.csv",
            |t| format!("{t}zoe.new@example.net,Zoe New,active,test\n"),
            "<option value=\"zoe.new@example.net\">Zoe New</option>",
        ),
        (
            "issues/2027-03-01.toml",
            |t| {
                t.lines()
                    .map(|l| {
                        if l.starts_with("subject = ") {
                            "subject = \"A subject from the record\""
                        } else {
                            l
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
                    + "\n"
            },
            "A subject from the record",
        ),
        // What `send` would refuse is said beside the email.
        (
            "templates/email.txt",
            |t| {
                t.lines()
                    .filter(|l| !l.contains("unsubscribe_url"))
                    .collect::<Vec<_>>()
                    .join("\n")
            },
            "the text part has no unsubscribe link",
        ),
    ];
    for (file, edit, shown) in edits {
        while stream.try_recv().is_ok() {}
        let path = dir.join(file);
        let before = std::fs::read_to_string(&path).expect("read");
        let after = edit(&before);
        assert_ne!(before, after, "{file}");
        std::fs::write(&path, after).expect("edit");
        next(&stream, "reload", &live);
        wait_for(&format!("the edit of {file} on the page"), || {
            let (status, page) = live.get("/");
            status == 200 && page.contains(shown)
        });
    }
    assert!(
        live.log().contains("changed: content/"),
        "changes are logged\n{}",
        live.log()
    );
}

#[test]
fn preview_serve_picks_the_day_and_the_reader_and_its_links_work_without_writing() {
    let (_tmp, dir) = sample_project();
    run(&dir, &["plan", "--date", DATE, "--days", "2"]).success();
    let mut settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    settings.push_str("\n[feedback]\nenabled = true\n");
    std::fs::write(dir.join("dailyissue.toml"), settings).expect("settings");
    // A ledger with one suppression already, to show it is left alone.
    run(&dir, &["suppressions", "add", "old@example.com"]).success();
    let ledger = std::fs::read(dir.join(".dailyissue/state.db")).expect("ledger");
    let live = start(&dir, &["--date", DATE]);

    // The reader picker: each reader's own copy.
    let ben = "/?date=2027-03-01&as=ben.okafor%40example.org";
    let (status, page) = live.get(ben);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("to Ben Okafor &lt;ben.okafor@example.org&gt;"),
        "{page}"
    );
    assert!(page.contains("Good morning, Ben."), "text part\n{page}");
    assert!(
        page.contains("To: &quot;Ben Okafor&quot; &lt;ben.okafor@example.org&gt;"),
        "headers\n{page}"
    );
    assert!(page.contains("<option value=\"ada.park@example.net\">Ada Park</option>"));
    let (_, ada) = live.get("/?date=2027-03-01&as=ada.park%40example.net");
    assert!(ada.contains("Good morning, Ada."), "{ada}");
    assert!(!ada.contains("Good morning, Ben."));

    // The date picker: another day's issue.
    let first = between(&page, "<span class=\"subject\">", "</span>").to_string();
    let (_, next_day) = live.get("/?date=2027-03-02&as=ben.okafor%40example.org");
    assert!(next_day.contains("<strong>No. 2</strong>"), "{next_day}");
    let second = between(&next_day, "<span class=\"subject\">", "</span>");
    assert_ne!(first, second);
    // A day without a record: planned in memory, not written.
    let (status, later) = live.get("/?date=2027-03-09");
    assert_eq!(status, 200, "{later}");
    assert!(later.contains("does not exist yet"), "{later}");
    assert!(
        !dir.join("issues/2027-03-09.toml").exists(),
        "a record was written"
    );
    let (status, bad) = live.get("/?date=2027-02-30");
    assert_eq!(status, 422);
    assert!(bad.contains("date: `2027-02-30` is not a date"), "{bad}");

    // The frame's links lead into the preview.
    let (status, frame) = live.get(&format!("/email.html{}", &ben[1..]));
    assert_eq!(status, 200, "{frame}");
    assert!(frame.contains("Good morning, Ben."));
    let view = "/web/2027-03-01/issues/2027-03-01/";
    assert!(frame.contains(&format!("href=\"{view}\"")), "{frame}");
    assert!(!frame.contains("https://daily.example.com/u/"), "{frame}");
    let (status, web) = live.get(view);
    assert_eq!(status, 200, "{web}");
    assert!(
        web.contains(first.split(',').next().expect("term")),
        "{web}"
    );
    assert!(web.contains("src=\"/live.js\""));
    let (status, _) = live.get("/web/2027-03-01/style.css");
    assert_eq!(status, 200);
    // The archive's signup form posts to the preview, which sends nothing.
    assert!(
        web.contains("action=\"/web/2027-03-01/subscribe\""),
        "{web}"
    );
    assert!(!web.contains("action=\"https://"), "{web}");
    let mut r = agent()
        .post(format!("{}/web/2027-03-01/subscribe", live.base))
        .content_type("application/x-www-form-urlencoded")
        .send("email=new.reader%40example.net")
        .expect("POST");
    let signup = r.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(r.status(), 200, "{signup}");
    assert!(signup.contains("new.reader@example.net"), "{signup}");
    assert!(signup.contains("nothing is sent or written"), "{signup}");

    // The feedback links too.
    let vote = between(&frame, "href=\"/feedback/", "\"").to_string();
    assert!(vote.ends_with("?vote=yes"), "{vote}");
    let (status, asked) = live.get(&format!("/feedback/{vote}"));
    assert_eq!(status, 200, "{asked}");
    assert!(
        asked.contains("whether the issue of Monday, March 1, 2027 was useful"),
        "{asked}"
    );

    // Unsubscribe: what the reader sees, and nothing written.
    let token = between(&frame, "href=\"/unsubscribe/", "\"").to_string();
    let (status, confirm) = live.get(&format!("/unsubscribe/{token}"));
    assert_eq!(status, 200, "{confirm}");
    assert!(
        confirm.contains(
            "The address this email was sent to will get no more emails from Beginners in AI"
        ) && !confirm.contains("ben.okafor"),
        "{confirm}"
    );
    assert!(confirm.contains("Nothing is written"), "{confirm}");
    let (status, done) = live.post(&format!("/unsubscribe/{token}"));
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("You are unsubscribed"), "{done}");
    assert!(done.contains("nothing was written"), "{done}");
    let first_char = if token.starts_with('A') { "B" } else { "A" };
    let (status, _) = live.get(&format!("/unsubscribe/{first_char}{}", &token[1..]));
    assert_eq!(status, 400);

    drop(live);
    assert_eq!(
        std::fs::read(dir.join(".dailyissue/state.db")).expect("ledger"),
        ledger,
        "the ledger changed"
    );
    let list = run(&dir, &["suppressions", "list"]).success().stdout;
    assert!(list.contains("old@example.com"), "{list}");
    assert!(!list.contains("ben.okafor"), "{list}");
}

#[test]
fn preview_serve_refuses_file_options() {
    let (_tmp, dir) = sample_project();
    let out = run(&dir, &["preview", "--serve", "--out", "x.html"]).code(2);
    assert!(out.stderr.contains("--out"), "{}", out.stderr);
}

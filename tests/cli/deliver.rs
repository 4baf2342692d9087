//! Deliverability: DKIM verified by an independent verifier (Python's
//! dkimpy), the unsubscribe endpoint hit with a real HTTP client, and the
//! suppression commands.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use dailyissue::mail::token::{Secrets, token};

use crate::smtp::{Options, Server};
use crate::support::*;

const SECRET: &str = "deliverability-test-secret";
const DATE: &str = "2027-03-01";
const LIST_ID: &str = "beginners-in-ai.daily.example.com";

fn env() -> [(&'static str, &'static str); 1] {
    [("DAILYISSUE_UNSUBSCRIBE_SECRET", SECRET)]
}

fn with_dkim(dir: &Path) {
    let key = repo_root().join("tests/fixtures/dkim/test-rsa.pem");
    let settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    std::fs::write(
        dir.join("dailyissue.toml"),
        format!(
            "{settings}\n[dkim]\ndomain = \"example.com\"\nselector = \"daily\"\nprivate_key_file = \"{}\"\n",
            key.display()
        ),
    )
    .expect("write");
}

/// dkimpy, installed from PyPI when missing: the verifier must be
/// independent of the signing code.
fn dkim_verify(message: &[u8], txt_record: &str) -> String {
    let have = Command::new("python3")
        .args(["-c", "import dkim"])
        .status()
        .expect("python3");
    if !have.success() {
        let pip = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "dkimpy",
            ])
            .status()
            .expect("pip");
        assert!(
            pip.success(),
            "cannot install dkimpy, the independent DKIM verifier"
        );
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("m.eml");
    std::fs::write(&path, message).expect("write eml");
    let script = "import sys, dkim\nmsg = open(sys.argv[1], 'rb').read()\nrec = sys.argv[2].encode()\nprint('verified' if dkim.verify(msg, dnsfunc=lambda name, timeout=5: rec) else 'FAILED')\n";
    let out = Command::new("python3")
        .args(["-c", script, path.to_str().expect("utf-8 path"), txt_record])
        .output()
        .expect("python3");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

#[test]
fn the_sample_issue_is_dkim_signed_and_verifies_independently() {
    let (_tmp, dir) = sample_project();
    with_dkim(&dir);
    let check = run_env(&dir, &["check", "--date", DATE], &env()).success();
    let record = check
        .stdout
        .lines()
        .find(|l| l.contains("._domainkey."))
        .expect("check prints the DNS record");
    assert!(
        record
            .trim()
            .starts_with("daily._domainkey.example.com IN TXT \"v=DKIM1; k=rsa; p="),
        "{record}"
    );
    let txt = record
        .split_once("TXT \"")
        .expect("txt")
        .1
        .trim_end_matches('"');

    run_env(
        &dir,
        &[
            "preview", "--date", DATE, "--format", "eml", "--out", "m.eml",
        ],
        &env(),
    )
    .success();
    let eml = std::fs::read(dir.join("m.eml")).expect("eml");
    let text = String::from_utf8_lossy(&eml);
    let sig = text
        .split("DKIM-Signature:")
        .nth(1)
        .expect("signed")
        .split("\r\n\r\n")
        .next()
        .expect("header");
    let sig: String = sig.split_whitespace().collect();
    let h = sig
        .split("h=")
        .nth(1)
        .expect("h=")
        .split(';')
        .next()
        .expect("list")
        .to_ascii_lowercase();
    for header in [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ] {
        assert!(
            h.split(':').any(|x| x == header),
            "{header} not signed: h={h}"
        );
    }
    assert!(sig.contains("c=relaxed/relaxed"), "{sig}");
    assert_eq!(dkim_verify(&eml, txt), "verified");

    let tampered = text.replacen("Hallucination", "Halucination", 3);
    assert_ne!(tampered, text);
    assert_eq!(
        dkim_verify(tampered.as_bytes(), txt),
        "FAILED",
        "a changed body fails"
    );
}

#[test]
fn check_fails_on_an_unreadable_dkim_key() {
    let (_tmp, dir) = sample_project();
    let settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    std::fs::write(
        dir.join("dailyissue.toml"),
        format!("{settings}\n[dkim]\ndomain = \"example.com\"\nselector = \"daily\"\nprivate_key_file = \"missing.pem\"\n"),
    )
    .expect("write");
    let out = run_env(&dir, &["check", "--date", DATE], &env()).code(2);
    assert!(
        out.stderr
            .contains("missing.pem: cannot read the DKIM private key"),
        "{}",
        out.stderr
    );
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Served {
    let port = free_port();
    let child = spawn(
        dir,
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
        &env(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let served = Served { child, base };
    wait_for("serve to answer /healthz", || {
        agent()
            .get(format!("{}/healthz", served.base))
            .call()
            .is_ok_and(|r| r.status() == 200)
    });
    served
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn post(url: &str) -> (u16, String) {
    let mut r = agent()
        .post(url)
        .content_type("application/x-www-form-urlencoded")
        .send("List-Unsubscribe=One-Click")
        .expect("POST");
    let body = r.body_mut().read_to_string().unwrap_or_default();
    (r.status().as_u16(), body)
}

fn get(url: &str) -> (u16, String) {
    let mut r = agent().get(url).call().expect("GET");
    let body = r.body_mut().read_to_string().unwrap_or_default();
    (r.status().as_u16(), body)
}

fn suppressed(dir: &Path) -> Vec<String> {
    run(dir, &["suppressions", "list"])
        .success()
        .stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .collect()
}

fn secrets() -> Secrets {
    Secrets::new(SECRET.as_bytes(), None)
}

#[test]
fn one_click_unsubscribe_suppresses_exactly_that_reader_and_send_skips_them() {
    let (_tmp, dir) = sample_project();
    // The link as it appears in the sample issue.
    run_env(
        &dir,
        &[
            "preview",
            "--date",
            DATE,
            "--as",
            "ben.okafor@example.org",
            "--format",
            "eml",
            "--out",
            "m.eml",
        ],
        &env(),
    )
    .success();
    let eml = std::fs::read_to_string(dir.join("m.eml")).expect("eml");
    let link = eml
        .split("List-Unsubscribe: <")
        .nth(1)
        .and_then(|s| s.split('>').next())
        .expect("https link")
        .to_string();
    let served = serve(&dir);
    let local = link.replace("https://daily.example.com", &served.base);

    let (status, page) = get(&local);
    assert_eq!(status, 200);
    assert!(
        page.contains("<button") && page.contains("ben.okafor@example.org"),
        "{page}"
    );
    assert!(suppressed(&dir).is_empty(), "GET writes nothing");

    let (status, page) = post(&local);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You are unsubscribed"));
    assert_eq!(suppressed(&dir), ["ben.okafor@example.org"]);

    let out = run(&dir, &["send", "--date", DATE]).success();
    assert!(
        out.stdout.contains("sent 8") && out.stdout.contains("suppressed 1"),
        "{}",
        out.stdout
    );
    assert!(
        !dir.join(format!("outbox/{DATE}/ben.okafor@example.org.eml"))
            .exists()
    );
}

#[test]
fn forged_tokens_are_refused_and_write_nothing() {
    let (_tmp, dir) = sample_project();
    let served = serve(&dir);
    let real = token(&secrets(), LIST_ID, "ada.park@example.net");
    let (addr, mac) = real.split_once('.').expect("two parts");
    let other = token(&secrets(), LIST_ID, "ben.okafor@example.org");
    let swapped = format!("{}.{mac}", other.split_once('.').expect("two parts").0);
    let wrong_secret = token(
        &Secrets::new(b"guess", None),
        LIST_ID,
        "ada.park@example.net",
    );
    for forged in [
        swapped,
        wrong_secret,
        format!("{addr}.AAAA"),
        "garbage".to_string(),
    ] {
        let (status, page) = post(&format!("{}/u/{forged}", served.base));
        assert_eq!(status, 400, "{forged}");
        assert!(
            page.contains("This link does not work") && !page.contains("example"),
            "neutral page: {page}"
        );
        assert_eq!(get(&format!("{}/u/{forged}", served.base)).0, 400);
    }
    assert!(suppressed(&dir).is_empty());
}

#[test]
fn a_hundred_concurrent_unsubscribes_during_a_send_are_all_recorded() {
    let server = Server::start(Options {
        tls: false,
        auth: None,
    });
    let (_tmp, dir) = sample_project();
    let mut csv = String::from("email,name\n");
    let addrs: Vec<String> = (0..600)
        .map(|i| format!("reader{i:04}@example.net"))
        .collect();
    for a in &addrs {
        csv.push_str(&format!("{a},Reader\n"));
    }
    std::fs::write(dir.join("subscribers.example.csv"), csv).expect("list");
    let settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    std::fs::write(
        dir.join("dailyissue.toml"),
        format!("{settings}\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nconcurrency = 4\n", server.port()),
    )
    .expect("write");
    server.set_data_delay(Duration::from_millis(5));
    let served = serve(&dir);
    let mut sender = spawn(&dir, &["send", "--date", DATE], &env());
    wait_for("the send to start", || server.received().len() >= 20);
    let base = served.base.clone();
    let threads: Vec<_> = addrs[500..600]
        .iter()
        .map(|a| {
            let url = format!("{base}/u/{}", token(&secrets(), LIST_ID, a));
            std::thread::spawn(move || post(&url).0)
        })
        .collect();
    let statuses: Vec<u16> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(
        sender.wait().expect("send").code().is_some(),
        "send finished"
    );
    let mut got = suppressed(&dir);
    got.sort();
    assert_eq!(got, addrs[500..600].to_vec(), "every unsubscribe recorded");
}

#[test]
fn unsubscribe_and_suppressions_commands() {
    let (_tmp, dir) = sample_project();
    let t = token(&secrets(), LIST_ID, "Chloe.Martin@example.net");
    let out = run_env(&dir, &["unsubscribe", &t], &env()).success();
    assert_eq!(
        out.stdout.trim(),
        "chloe.martin@example.net is unsubscribed"
    );
    let bad = run_env(&dir, &["unsubscribe", &format!("{t}x")], &env()).code(2);
    assert!(bad.stderr.contains("not valid"), "{}", bad.stderr);
    run(&dir, &["unsubscribe", "Dev.Raman@example.org"]).success();
    run(
        &dir,
        &[
            "suppressions",
            "add",
            "x@example.org",
            "y@example.org",
            "--reason",
            "complained",
        ],
    )
    .success();
    let list = run(&dir, &["suppressions", "list"]).success().stdout;
    assert!(list.contains("x@example.org\tcomplained\t"), "{list}");
    assert_eq!(suppressed(&dir).len(), 4);
    let removed = run(
        &dir,
        &[
            "suppressions",
            "remove",
            "y@example.org",
            "nobody@example.org",
        ],
    )
    .success();
    assert_eq!(removed.stdout.trim(), "1 removed, 1 were not suppressed");
    let status = run(&dir, &["status", "--date", DATE, "--json"]).success();
    assert!(
        status.stdout.contains("\"suppressed\":3"),
        "{}",
        status.stdout
    );
}

#[test]
fn sending_over_smtp_without_the_secret_refuses() {
    let (_tmp, dir) = sample_project();
    let settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    std::fs::write(
        dir.join("dailyissue.toml"),
        format!("{settings}\n[smtp]\nhost = \"127.0.0.1\"\nport = 1\ntls = \"none\"\n"),
    )
    .expect("write");
    let out = run(&dir, &["send", "--date", DATE]).code(2);
    assert!(
        out.stderr
            .contains("DAILYISSUE_UNSUBSCRIBE_SECRET is not set"),
        "{}",
        out.stderr
    );
}

//! Deliverability: DKIM signatures verified by mail-auth's verifier (a code
//! path apart from the signer's, fed the DNS records `check` prints; no
//! network, no Python — scripts/dkim-verify runs dkimpy as an outside
//! check), the unsubscribe endpoint hit with a real HTTP client, and the
//! suppression commands.

use std::path::Path;
use std::process::Child;
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

pub fn with_dkim(dir: &Path) {
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

/// Planted DNS answers for mail-auth's verifier: the TXT records `check`
/// printed, so verification needs no network.
struct PlantedTxt(std::sync::Mutex<std::collections::HashMap<Box<str>, mail_auth::Txt>>);

impl mail_auth::ResolverCache<Box<str>, mail_auth::Txt> for PlantedTxt {
    fn get<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0.lock().expect("lock").get(name).cloned()
    }
    fn remove<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0.lock().expect("lock").remove(name)
    }
    fn insert(&self, key: Box<str>, value: mail_auth::Txt, _: std::time::Instant) {
        self.0.lock().expect("lock").insert(key, value);
    }
}

/// Verifies every DKIM signature of `message` with mail-auth's verifier —
/// a code path apart from the signer's — against DNS records given as
/// `NAME IN TXT "VALUE"` lines (what `check` prints). One result per
/// signature: "pass", or the reason it failed.
pub fn dkim_verify(message: &[u8], records: &[String]) -> Vec<String> {
    use mail_auth::common::parse::TxtRecordParser;
    use mail_auth::common::verify::DomainKey;
    let planted = PlantedTxt(Default::default());
    for record in records {
        let (name, value) = record.split_once(" IN TXT \"").expect("a TXT record line");
        let key =
            DomainKey::parse(value.trim_end_matches('"').as_bytes()).expect("a DKIM key record");
        planted
            .0
            .lock()
            .expect("lock")
            .insert(format!("{name}.").into(), key.into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let verifier = mail_auth::MessageAuthenticator::new_cloudflare().expect("resolver");
    let parsed = mail_auth::AuthenticatedMessage::parse(message).expect("a message");
    runtime.block_on(async {
        verifier
            .verify_dkim(mail_auth::Parameters::new(&parsed).with_txt_cache(&planted))
            .await
            .iter()
            .map(|out| match out.result() {
                mail_auth::DkimResult::Pass => "pass".to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    })
}

fn with_dual_dkim(dir: &Path) {
    let fixtures = repo_root().join("tests/fixtures/dkim");
    let settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    std::fs::write(
        dir.join("dailyissue.toml"),
        format!(
            "{settings}\n[[dkim]]\ndomain = \"example.com\"\nselector = \"daily-rsa\"\nprivate_key_file = \"{}\"\n\n[[dkim]]\ndomain = \"example.com\"\nselector = \"daily-ed\"\nalgorithm = \"ed25519-sha256\"\nprivate_key_file = \"{}\"\n",
            fixtures.join("test-rsa.pem").display(),
            fixtures.join("test-ed25519.key").display()
        ),
    )
    .expect("write");
}

/// The `._domainkey.` lines `check` prints.
pub fn dns_records(check: &Run) -> Vec<String> {
    check
        .stdout
        .lines()
        .filter(|l| l.contains("._domainkey."))
        .map(|l| l.trim().to_string())
        .collect()
}

/// The h= tag of each DKIM-Signature header, lower-cased, unfolded.
fn signed_header_lists(eml: &str) -> Vec<Vec<String>> {
    let head = eml.split("\r\n\r\n").next().expect("head");
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("dkim-signature:"))
        .map(|sig| {
            let flat: String = sig.split_whitespace().collect();
            flat.split(";h=")
                .nth(1)
                .and_then(|r| r.split(';').next())
                .expect("h=")
                .to_ascii_lowercase()
                .split(':')
                .map(str::to_string)
                .collect()
        })
        .collect()
}

#[test]
fn the_sample_issue_is_dkim_signed_and_verifies_independently() {
    let (_tmp, dir) = sample_project();
    with_dkim(&dir);
    let check = run_env(&dir, &["check", "--date", DATE], &env()).success();
    let records = dns_records(&check);
    assert_eq!(records.len(), 1, "{}", check.stdout);
    assert!(
        records[0].starts_with("daily._domainkey.example.com IN TXT \"v=DKIM1; k=rsa; p="),
        "{records:?}"
    );
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
    let h = &signed_header_lists(&text)[0];
    for header in [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "mime-version",
        "content-type",
        "reply-to",
    ] {
        assert!(
            h.iter().any(|x| x == header),
            "{header} not signed: h={h:?}"
        );
    }
    assert!(text.contains("c=relaxed/relaxed"), "{text}");
    assert_eq!(dkim_verify(&eml, &records), ["pass"]);

    let tampered = text.replacen("Hallucination", "Halucination", 3);
    assert_ne!(tampered, text);
    assert_ne!(
        dkim_verify(tampered.as_bytes(), &records),
        ["pass"],
        "a changed body fails"
    );
}

#[test]
fn two_keys_sign_every_message_and_tampering_with_any_signed_header_fails() {
    let (_tmp, dir) = sample_project();
    with_dual_dkim(&dir);
    let check = run_env(&dir, &["check", "--date", DATE], &env()).success();
    let records = dns_records(&check);
    assert_eq!(records.len(), 2, "both DNS records: {}", check.stdout);
    assert!(
        records[0].contains("k=rsa") && records[1].contains("k=ed25519"),
        "{records:?}"
    );
    run_env(
        &dir,
        &[
            "preview", "--date", DATE, "--format", "eml", "--out", "m.eml",
        ],
        &env(),
    )
    .success();
    let eml = String::from_utf8(std::fs::read(dir.join("m.eml")).expect("eml")).expect("utf-8");
    let lists = signed_header_lists(&eml);
    assert_eq!(lists.len(), 2, "two DKIM-Signature headers");
    for h in &lists {
        for once in [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
        ] {
            assert_eq!(
                h.iter().filter(|x| *x == once).count(),
                2,
                "{once} over-signed: h={h:?}"
            );
        }
    }
    assert_eq!(dkim_verify(eml.as_bytes(), &records), ["pass", "pass"]);

    let (head, body) = eml.split_once("\r\n\r\n").expect("head and body");
    // A header added in transit (a second From, List-Unsubscribe) or a
    // changed Content-Type breaks both signatures; so does the body.
    let added_from = format!("{head}\r\nFrom: Mallory <m@evil.example>\r\n\r\n{body}");
    let added_unsub = format!("{head}\r\nList-Unsubscribe: <https://evil.example/x>\r\n\r\n{body}");
    let changed_type = eml.replacen(
        "Content-Type: multipart/alternative;",
        "Content-Type: multipart/mixed;",
        1,
    );
    let changed_body = eml.replacen("Hallucination", "Halucination", 1);
    for (what, bad) in [
        ("a second From", added_from),
        ("a second List-Unsubscribe", added_unsub),
        ("a changed Content-Type", changed_type),
        ("a changed body", changed_body),
    ] {
        assert_ne!(bad, eml, "{what}: the message changed");
        let results = dkim_verify(bad.as_bytes(), &records);
        assert!(
            results.iter().all(|r| r != "pass"),
            "{what} must fail every signature: {results:?}"
        );
    }
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
        page.contains("<button") && !page.contains("ben.okafor"),
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
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (_tmp, dir) = sample_project();
    let served = serve(&dir);
    let real = token(&secrets(), LIST_ID, &"ada.park@example.net".into());
    let mut flipped = URL_SAFE_NO_PAD.decode(&real).expect("base64url");
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    let legacy =
        dailyissue::mail::token::legacy_token(&secrets(), LIST_ID, &"ada.park@example.net".into());
    let (addr, mac) = legacy.split_once('.').expect("two parts");
    let other = dailyissue::mail::token::legacy_token(
        &secrets(),
        LIST_ID,
        &"ben.okafor@example.org".into(),
    );
    let swapped = format!("{}.{mac}", other.split_once('.').expect("two parts").0);
    let wrong_secret = token(
        &Secrets::new(b"guess", None),
        LIST_ID,
        &"ada.park@example.net".into(),
    );
    for forged in [
        URL_SAFE_NO_PAD.encode(&flipped),
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
            let url = format!(
                "{base}/u/{}",
                token(&secrets(), LIST_ID, &a.as_str().into())
            );
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
    let t = token(&secrets(), LIST_ID, &"Chloe.Martin@example.net".into());
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
    assert_eq!(removed.stdout.trim(), "1 removed, 1 was not suppressed");
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

#[test]
fn a_listen_port_in_use_is_temporary_not_bad_input() {
    let (_tmp, dir) = sample_project();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let out = run_env(
        &dir,
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
        &env(),
    )
    .code(75);
    assert!(
        out.stderr
            .contains(&format!("cannot listen on 127.0.0.1:{port}"))
            && out.stderr.contains("--listen"),
        "{}",
        out.stderr
    );
}

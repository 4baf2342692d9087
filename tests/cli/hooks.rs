//! `serve`'s provider webhooks through the real binary: each provider's
//! documented payload shape (tests/fixtures/hooks/) signed with the test
//! keys there, posted to `/hooks/...` over HTTP; forged and unsigned
//! requests refused with nothing recorded; the same events twice recorded
//! once; bodies past the limit refused. No network: the SNS signing
//! certificate is put in serve's certificate cache beside the ledger, as
//! if fetched from the URL the notifications name.

use std::path::{Path, PathBuf};
use std::process::Child;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::*;

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ses-bounces";
const CERT_URL: &str =
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-dailyissue-test.pem";
const POSTMARK_AUTH: &str = "hooks:postmark-test-password";
const MAILGUN_KEY: &str = "key-mailgun-test-0123456789";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo_root().join("tests/fixtures/hooks").join(name)).expect("fixture")
}

fn text_fixture(name: &str) -> String {
    String::from_utf8(fixture(name)).expect("utf-8 fixture")
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

/// The sample project, its issue of DATE sent (as files) to ten readers,
/// the SES topic accepted, the test certificate in the cache, and `serve`
/// running with the webhook secrets set.
fn served() -> (tempfile::TempDir, PathBuf, Served) {
    let (tmp, dir) = sample_project();
    write_list(&dir, 10);
    run(&dir, &["send", "--date", DATE]).success();
    let mut settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    settings.push_str(&format!("\n[bounces]\nses_topics = [\"{TOPIC}\"]\n"));
    std::fs::write(dir.join("dailyissue.toml"), settings).expect("write");
    let cache = dir.join(".dailyissue/sns-certs");
    std::fs::create_dir_all(&cache).expect("mkdir");
    let name: String = Sha256::digest(CERT_URL.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(
        cache.join(format!("{name}.pem")),
        fixture("sns-signing-cert.pem"),
    )
    .expect("seed the cache");
    let sendgrid_key = text_fixture("sendgrid-public-key.b64");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let child = spawn(
        &dir,
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
        &[
            SECRET,
            ("DAILYISSUE_POSTMARK_AUTH", POSTMARK_AUTH),
            ("DAILYISSUE_MAILGUN_SIGNING_KEY", MAILGUN_KEY),
            ("DAILYISSUE_SENDGRID_PUBLIC_KEY", sendgrid_key.trim()),
        ],
    );
    let served = Served {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    wait_for("serve to answer /healthz", || {
        agent()
            .get(format!("{}/healthz", served.base))
            .call()
            .is_ok_and(|r| r.status() == 200)
    });
    (tmp, dir, served)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// POSTs `body` with `headers`; (status, answer).
fn post(s: &Served, hook: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    let mut req = agent()
        .post(format!("{}/hooks/{hook}", s.base))
        .content_type("application/json");
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let mut r = req.send(body).expect("POST");
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (r.status().as_u16(), text)
}

/// SNS's string to sign for a notification, written from AWS's
/// documentation independently of the code under test.
fn sns_notification(message: &str, id: &str) -> Vec<u8> {
    let mut e = json!({
        "Type": "Notification",
        "MessageId": id,
        "TopicArn": TOPIC,
        "Message": message,
        "Timestamp": "2027-03-01T08:15:43.512Z",
        "SignatureVersion": "2",
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
    });
    let mut text = String::new();
    for key in ["Message", "MessageId", "Timestamp", "TopicArn", "Type"] {
        text.push_str(&format!("{key}\n{}\n", e[key].as_str().expect("field")));
    }
    let pem = fixture("sns-signing-key.pem");
    let key = PrivateKeyDer::from_pem_slice(&pem).expect("pem");
    let pair = RsaKeyPair::from_pkcs8(key.secret_der()).expect("rsa key");
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        text.as_bytes(),
        &mut sig,
    )
    .expect("sign");
    e["Signature"] = STANDARD.encode(&sig).into();
    serde_json::to_vec(&e).expect("json")
}

fn basic(credentials: &str) -> Vec<(&'static str, String)> {
    vec![(
        "Authorization",
        format!("Basic {}", STANDARD.encode(credentials)),
    )]
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A Mailgun webhook body: `event_data` under a signature of
/// (`timestamp`, `token`) with `key`.
fn mailgun(event_data: &Value, key: &str, timestamp: i64, token: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(format!("{timestamp}{token}").as_bytes());
    let signature: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    serde_json::to_vec(&json!({
        "signature": {"timestamp": timestamp.to_string(), "token": token, "signature": signature},
        "event-data": event_data,
    }))
    .expect("json")
}

/// SendGrid's signature headers over `timestamp` + `body`.
fn sendgrid_headers(timestamp: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    let pem = fixture("sendgrid-signing-key.pem");
    let key = PrivateKeyDer::from_pem_slice(&pem).expect("pem");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, key.secret_der())
        .expect("ec key");
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(body);
    let sig = pair
        .sign(&aws_lc_rs::rand::SystemRandom::new(), &signed)
        .expect("sign");
    vec![
        (
            "X-Twilio-Email-Event-Webhook-Signature",
            STANDARD.encode(sig.as_ref()),
        ),
        (
            "X-Twilio-Email-Event-Webhook-Timestamp",
            timestamp.to_string(),
        ),
    ]
}

fn events(dir: &Path) -> Vec<Value> {
    json(&run(dir, &["bounces", "list", "--json"]).success())["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn suppressed(dir: &Path) -> Vec<(String, String)> {
    let list = json(&run(dir, &["suppressions", "list", "--json"]).success());
    let mut out: Vec<(String, String)> = list["suppressions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["address"].as_str().unwrap_or_default().to_string(),
                s["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn forged_and_unsigned_webhooks_are_refused_and_record_nothing() {
    let (_tmp, dir, s) = served();

    // SES: the signed fixture changed after signing, without its
    // signature, from a topic not configured.
    let ses = text_fixture("ses-bounce-v1.json");
    let changed = ses.replace("Permanent", "Transient");
    assert_eq!(post(&s, "ses", &[], changed.as_bytes()).0, 403);
    let mut unsigned: Value = serde_json::from_str(&ses).expect("json");
    unsigned
        .as_object_mut()
        .expect("object")
        .remove("Signature");
    assert_eq!(post(&s, "ses", &[], unsigned.to_string().as_bytes()).0, 401);
    let other_topic = ses.replace("ses-bounces", "someone-elses");
    assert_eq!(post(&s, "ses", &[], other_topic.as_bytes()).0, 403);
    let elsewhere = ses.replace(
        "https://sns.us-east-1.amazonaws.com/",
        "https://sns.us-east-1.amazonaws.com.evil.example/",
    );
    assert_eq!(post(&s, "ses", &[], elsewhere.as_bytes()).0, 403);

    // Postmark: no credentials, wrong ones.
    let pm = fixture("postmark-bounce.json");
    assert_eq!(post(&s, "postmark", &[], &pm).0, 401);
    assert_eq!(post(&s, "postmark", &basic("hooks:guess"), &pm).0, 403);

    // Mailgun: no signature, another key, an old signature.
    let failed: Value = serde_json::from_slice(&fixture("mailgun-failed.json")).expect("json");
    let unsigned = serde_json::to_vec(&json!({ "event-data": failed })).expect("json");
    assert_eq!(post(&s, "mailgun", &[], &unsigned).0, 401);
    let wrong = mailgun(&failed, "key-not-ours", now(), "tok-a");
    assert_eq!(post(&s, "mailgun", &[], &wrong).0, 403);
    let stale = mailgun(&failed, MAILGUN_KEY, now() - 2 * 24 * 3600, "tok-b");
    assert_eq!(post(&s, "mailgun", &[], &stale).0, 403);

    // SendGrid: no signature, a payload changed after signing.
    let sg = fixture("sendgrid-events.json");
    assert_eq!(post(&s, "sendgrid", &[], &sg).0, 401);
    let headers = sendgrid_headers("1803900000", &sg);
    let mut changed = sg.clone();
    changed.extend_from_slice(b"\n");
    assert_eq!(post(&s, "sendgrid", &headers, &changed).0, 403);

    assert!(events(&dir).is_empty(), "nothing recorded");
    assert!(suppressed(&dir).is_empty(), "nobody suppressed");
}

#[test]
fn signed_webhooks_from_each_provider_are_recorded_once_with_their_evidence() {
    let (_tmp, dir, s) = served();

    // Amazon SES through SNS: a bounce signed with SignatureVersion 1 (the
    // fixture), a complaint signed here with version 2.
    let ses_bounce = fixture("ses-bounce-v1.json");
    let (status, answer) = post(&s, "ses", &[], &ses_bounce);
    assert_eq!(
        (status, answer.as_str()),
        (
            200,
            "1 recorded, 0 already recorded, 0 about no delivery of ours, 0 ignored\n"
        )
    );
    let ses_complaint = sns_notification(
        &text_fixture("ses-complaint.json"),
        "7d3c44b1-9b8e-5c3a-a1f2-3e4d5c6b7a89",
    );
    assert_eq!(post(&s, "ses", &[], &ses_complaint).0, 200);

    // Postmark: a hard bounce and a spam complaint, with basic auth.
    let auth = basic(POSTMARK_AUTH);
    assert_eq!(
        post(&s, "postmark", &auth, &fixture("postmark-bounce.json")).0,
        200
    );
    let pm_complaint = fixture("postmark-spam-complaint.json");
    assert_eq!(post(&s, "postmark", &auth, &pm_complaint).0, 200);

    // Mailgun: a permanent failure and a complaint.
    let failed: Value = serde_json::from_slice(&fixture("mailgun-failed.json")).expect("json");
    let complained: Value =
        serde_json::from_slice(&fixture("mailgun-complained.json")).expect("json");
    let t = now();
    let mg_failed = mailgun(&failed, MAILGUN_KEY, t, "token-failed-0001");
    assert_eq!(post(&s, "mailgun", &[], &mg_failed).0, 200);
    let mg_complained = mailgun(&complained, MAILGUN_KEY, t, "token-complained-0002");
    assert_eq!(post(&s, "mailgun", &[], &mg_complained).0, 200);
    // Its signature does not cover the event: reused for another event,
    // it is a replay.
    let replay = mailgun(&complained, MAILGUN_KEY, t, "token-failed-0001");
    assert_eq!(post(&s, "mailgun", &[], &replay).0, 403);

    // SendGrid: one signed batch (a delivery, a bounce, a spam report, a
    // deferral, a block, an open).
    let sg = fixture("sendgrid-events.json");
    let sg_headers = sendgrid_headers("1803900012", &sg);
    let (status, answer) = post(&s, "sendgrid", &sg_headers, &sg);
    assert_eq!(
        (status, answer.as_str()),
        (
            200,
            "4 recorded, 0 already recorded, 0 about no delivery of ours, 2 ignored\n"
        )
    );

    let recorded = events(&dir);
    assert_eq!(recorded.len(), 10, "{recorded:#?}");
    let by = |address: &str| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = recorded
            .iter()
            .filter(|e| e["address"] == address)
            .map(|e| {
                (
                    e["source"].as_str().unwrap_or_default().to_string(),
                    e["kind"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let one = |source: &str, kind: &str| vec![(source.to_string(), kind.to_string())];
    assert_eq!(by("reader00001@example.net"), one("ses", "hard"));
    assert_eq!(by("reader00002@example.net"), one("ses", "complaint"));
    assert_eq!(by("reader00003@example.net"), one("postmark", "hard"));
    assert_eq!(by("reader00004@example.net"), one("postmark", "complaint"));
    assert_eq!(by("reader00005@example.net"), one("mailgun", "hard"));
    assert_eq!(by("reader00006@example.net"), one("mailgun", "complaint"));
    assert_eq!(by("reader00007@example.net"), one("sendgrid", "hard"));
    assert_eq!(by("reader00008@example.net"), one("sendgrid", "complaint"));
    assert_eq!(
        by("reader00009@example.net"),
        [one("sendgrid", "soft"), one("sendgrid", "soft")].concat()
    );
    let ses_event = recorded
        .iter()
        .find(|e| e["address"] == "reader00001@example.net")
        .expect("ses event");
    assert_eq!(ses_event["status"], "5.1.1");
    assert_eq!(ses_event["report_type"], "ses bounce (Permanent/General)");
    assert_eq!(ses_event["issue_date"], DATE);
    assert!(
        ses_event["diagnostic"]
            .as_str()
            .is_some_and(|d| d.contains("User unknown")),
        "{ses_event}"
    );
    assert!(
        ses_event["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("\"SigningCertURL\"")),
        "the SNS message is the evidence: {ses_event}"
    );
    let mg_event = recorded
        .iter()
        .find(|e| e["address"] == "reader00005@example.net")
        .expect("mailgun event");
    assert_eq!(
        (mg_event["status"].as_str(), mg_event["event_id"].as_str()),
        (Some("5.1.1"), Some("mailgun:G9Bn5sl1TC6nu79C8C0bwg"))
    );

    // Hard bounces and complaints suppress at once; two soft bounces from
    // one issue do not.
    let mut want: Vec<(String, String)> = [1, 3, 5, 7]
        .iter()
        .map(|i| (format!("reader{i:05}@example.net"), "bounced".into()))
        .chain(
            [2, 4, 6, 8]
                .iter()
                .map(|i| (format!("reader{i:05}@example.net"), "complained".into())),
        )
        .collect();
    want.sort();
    assert_eq!(suppressed(&dir), want);

    // Every provider retries: nothing new.
    assert_eq!(
        post(&s, "ses", &[], &ses_bounce).1,
        "0 recorded, 1 already recorded, 0 about no delivery of ours, 0 ignored\n"
    );
    assert_eq!(post(&s, "ses", &[], &ses_complaint).0, 200);
    assert_eq!(post(&s, "postmark", &auth, &pm_complaint).0, 200);
    assert_eq!(
        post(&s, "mailgun", &[], &mg_failed).0,
        200,
        "a retry, same token"
    );
    let (status, answer) = post(&s, "sendgrid", &sg_headers, &sg);
    assert_eq!(
        (status, answer.as_str()),
        (
            200,
            "0 recorded, 4 already recorded, 0 about no delivery of ours, 2 ignored\n"
        )
    );
    assert_eq!(events(&dir).len(), 10, "recorded once");
}

/// POSTs `body` over a plain socket, the body written from another thread
/// (the server may answer and close before it has all been sent, which a
/// client library reports as an error); the answer's status.
fn raw_post(s: &Served, path: &str, headers: &[(&str, String)], body: Vec<u8>) -> u16 {
    use std::io::{Read, Write};
    let addr = s.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut writer = stream.try_clone().expect("clone");
    let sending = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(&body);
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    drop(stream);
    let _ = sending.join();
    let line = String::from_utf8_lossy(&answer);
    line.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {line:?}"))
}

#[test]
fn webhook_bodies_past_the_limit_are_refused_unread() {
    let (_tmp, dir, s) = served();
    let big = vec![b' '; 2 * 1024 * 1024];
    let headers = sendgrid_headers("1803900000", &big);
    assert_eq!(raw_post(&s, "/hooks/sendgrid", &headers, big.clone()), 413);
    assert_eq!(
        raw_post(&s, "/hooks/postmark", &basic(POSTMARK_AUTH), big),
        413
    );
    // Under the limit, the same path answers (here: not a payload).
    assert_eq!(
        raw_post(&s, "/hooks/postmark", &basic(POSTMARK_AUTH), b"[]".to_vec()),
        400
    );
    assert!(events(&dir).is_empty());
}

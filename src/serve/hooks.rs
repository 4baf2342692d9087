//! `POST /hooks/ses`, `/hooks/postmark`, `/hooks/mailgun`,
//! `/hooks/sendgrid`: bounce and complaint events from the provider that
//! relays the newsletter.
//!
//! Each request is first checked to come from its provider
//! (`bounces::providers`: the SNS signature, basic auth, the Mailgun HMAC,
//! the SendGrid ECDSA signature, with the secrets and keys read from the
//! environment at start); a request that does not check out is answered
//! 401 (nothing to check) or 403 (it does not match) and records nothing.
//! A webhook whose secret is not set answers 503, so the provider retries
//! once the operator has set it. Bodies over [`BODY_LIMIT`] are refused
//! (413) unread.
//!
//! A genuine request's events go through `Ledger::record_report`, like
//! bounce mail: matched to their delivery, recorded once per event id and
//! address (a provider's retry changes nothing), the policy applied.
//! Answers: 200 once recorded (or nothing to record); 503 when the ledger
//! cannot take them now, so the provider retries.
//!
//! SES: SNS subscription confirmations for a topic of `[bounces]
//! ses_topics` are confirmed by fetching their `SubscribeURL` (an SNS URL
//! too); the signing certificates come from `certs`.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode, header};

use super::certs::{Certificates, Fetch};
use crate::bounces::Policy;
use crate::bounces::providers::{Event, Refusal, mailgun, postmark, sendgrid, ses};
use crate::bounces::{Kind, Source};
use crate::ledger::{Ledger, Recorded};
use crate::log::mask;
use crate::project::Project;
use crate::project::settings::ReturnPath;

/// The largest webhook body read (an SNS message is at most 256 KB; a
/// SendGrid batch is smaller than this).
pub(super) const BODY_LIMIT: usize = 1024 * 1024;

/// Which webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Provider {
    Ses,
    Postmark,
    Mailgun,
    Sendgrid,
}

impl Provider {
    fn source(self) -> Source {
        match self {
            Provider::Ses => Source::Ses,
            Provider::Postmark => Source::Postmark,
            Provider::Mailgun => Source::Mailgun,
            Provider::Sendgrid => Source::Sendgrid,
        }
    }
}

/// What the webhooks need, set up once at start.
pub(super) struct Hooks {
    ledger: Arc<Mutex<Ledger>>,
    policy: Policy,
    return_path: Option<ReturnPath>,
    ses_topics: Vec<String>,
    certificates: Certificates,
    /// `USER:PASSWORD` for Postmark's basic auth.
    postmark: Secret<String>,
    /// Mailgun's webhook signing key.
    mailgun: Secret<Vec<u8>>,
    /// SendGrid's verification key (DER).
    sendgrid: Secret<Vec<u8>>,
    replays: Mutex<mailgun::Replays>,
}

/// A secret from the environment: set, or why not (the variable's name).
enum Secret<T> {
    Set(T),
    Missing(String),
}

/// How a webhook request ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reply {
    pub status: StatusCode,
    pub text: String,
}

impl Reply {
    fn new(status: StatusCode, text: impl Into<String>) -> Reply {
        Reply {
            status,
            text: text.into(),
        }
    }
}

/// Why a request was not recorded.
enum Stop {
    Refused(Refusal),
    /// Try again later (503): a secret not set, a certificate or the
    /// ledger not reachable now.
    Unavailable(String),
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Stop {
        Stop::Refused(r)
    }
}

impl Hooks {
    /// Reads the secrets their variables name (a value that cannot be a key
    /// is warned about and treated as not set).
    pub(super) fn new(
        project: &Project,
        ledger: Arc<Mutex<Ledger>>,
        fetch: Box<dyn Fetch>,
    ) -> Hooks {
        let b = &project.settings.bounces;
        let read = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let postmark = match read(&b.postmark_auth_env) {
            Some(v) if v.contains(':') => Secret::Set(v),
            Some(_) => {
                tracing::warn!(
                    "{} must be USER:PASSWORD (the basic auth of Postmark's webhook URL); /hooks/postmark answers 503",
                    b.postmark_auth_env
                );
                Secret::Missing(b.postmark_auth_env.clone())
            }
            None => Secret::Missing(b.postmark_auth_env.clone()),
        };
        let mailgun = match read(&b.mailgun_key_env) {
            Some(v) => Secret::Set(v.trim().as_bytes().to_vec()),
            None => Secret::Missing(b.mailgun_key_env.clone()),
        };
        let sendgrid = match read(&b.sendgrid_key_env).map(|v| sendgrid::public_key(&v)) {
            Some(Ok(key)) => Secret::Set(key),
            Some(Err(why)) => {
                tracing::warn!(
                    "{} is {why}; /hooks/sendgrid answers 503",
                    b.sendgrid_key_env
                );
                Secret::Missing(b.sendgrid_key_env.clone())
            }
            None => Secret::Missing(b.sendgrid_key_env.clone()),
        };
        let certs_dir = project
            .ledger_path()
            .parent()
            .map(|d| d.join("sns-certs"))
            .unwrap_or_else(|| project.root.join("sns-certs"));
        Hooks {
            ledger,
            policy: Policy::of(b),
            return_path: b.return_path.clone(),
            ses_topics: b.ses_topics.clone(),
            certificates: Certificates::new(certs_dir, fetch),
            postmark,
            mailgun,
            sendgrid,
            replays: Mutex::new(mailgun::Replays::default()),
        }
    }

    /// Checks, reads and records one webhook request (blocking: it may
    /// fetch a certificate and waits for the ledger).
    pub(super) fn handle(&self, provider: Provider, headers: &HeaderMap, body: &[u8]) -> Reply {
        let name = format!("{provider:?}").to_lowercase();
        let outcome = match provider {
            Provider::Ses => self.ses(body),
            Provider::Postmark => self.postmark(headers, body),
            Provider::Mailgun => self.mailgun(body),
            Provider::Sendgrid => self.sendgrid(headers, body),
        };
        match outcome {
            Ok(text) => Reply::new(StatusCode::OK, text + "\n"),
            Err(Stop::Refused(r)) => {
                tracing::warn!("/hooks/{name}: refused ({}): {}", r.status(), r.reason());
                let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::FORBIDDEN);
                Reply::new(status, format!("refused: {}\n", r.reason()))
            }
            Err(Stop::Unavailable(why)) => {
                tracing::error!("/hooks/{name}: not recorded, for the provider to retry: {why}");
                Reply::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not recorded now; try again later\n",
                )
            }
        }
    }

    fn ses(&self, body: &[u8]) -> Result<String, Stop> {
        let e = ses::envelope(body)?;
        ses::topic_allowed(&e, &self.ses_topics)?;
        let url = ses::certificate_url(&e)?;
        let certificate = self.certificates.get(&url).map_err(Stop::Unavailable)?;
        ses::verify(&e, &certificate)?;
        match e.kind.as_str() {
            "SubscriptionConfirmation" => {
                let Some(url) = e.subscribe_url.as_deref().and_then(ses::sns_url) else {
                    return Err(Refusal::Forged(
                        "SubscribeURL is not an https URL of sns.REGION.amazonaws.com".into(),
                    )
                    .into());
                };
                self.certificates.fetch.get(&url).map_err(|e| {
                    Stop::Unavailable(format!("cannot confirm the subscription: {e}"))
                })?;
                tracing::info!("/hooks/ses: subscribed to {}", e.topic_arn);
                Ok(format!("subscribed to {}", e.topic_arn))
            }
            "UnsubscribeConfirmation" => {
                tracing::warn!(
                    "/hooks/ses: {} no longer sends here (unsubscribed)",
                    e.topic_arn
                );
                Ok("unsubscribed".into())
            }
            _ => {
                let event = ses::event(&e, self.return_path.as_ref(), body)?;
                self.record(Provider::Ses, vec![event])
            }
        }
    }

    fn postmark(&self, headers: &HeaderMap, body: &[u8]) -> Result<String, Stop> {
        let credentials = set(&self.postmark)?;
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        postmark::authorize(auth, credentials)?;
        let event = postmark::event(body)?;
        self.record(Provider::Postmark, vec![event])
    }

    fn mailgun(&self, body: &[u8]) -> Result<String, Stop> {
        let key = set(&self.mailgun)?;
        let now = chrono::Utc::now().timestamp();
        let signed = mailgun::verify(body, key, now)?;
        let id = mailgun::event_id(&signed)?;
        self.replays
            .lock()
            .map_err(|_| Stop::Unavailable("replay cache poisoned".into()))?
            .check(&signed, &id, now)?;
        let event = mailgun::event(&signed, self.return_path.as_ref(), body)?;
        self.record(Provider::Mailgun, vec![event])
    }

    fn sendgrid(&self, headers: &HeaderMap, body: &[u8]) -> Result<String, Stop> {
        let key = set(&self.sendgrid)?;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        sendgrid::verify(
            key,
            header(sendgrid::SIGNATURE_HEADER),
            header(sendgrid::TIMESTAMP_HEADER),
            body,
        )?;
        let events = sendgrid::events(body)?;
        self.record(Provider::Sendgrid, events)
    }

    /// Records the events of a verified request, each in its own
    /// transaction (a batch cut short is retried whole by the provider;
    /// what was recorded is then a duplicate).
    fn record(&self, provider: Provider, events: Vec<Event>) -> Result<String, Stop> {
        let mut ledger = self
            .ledger
            .lock()
            .map_err(|_| Stop::Unavailable("ledger lock poisoned".into()))?;
        let (mut new, mut duplicates, mut unmatched, mut ignored) = (0, 0, 0, 0);
        for event in events {
            let (report, evidence) = match event {
                Event::Report { report, evidence } => (report, evidence),
                Event::Ignored(why) => {
                    tracing::debug!("/hooks/{provider:?}: ignored {why}");
                    ignored += 1;
                    continue;
                }
            };
            let outcomes = ledger
                .record_report(&report, provider.source(), &evidence, self.policy)
                .map_err(|e| Stop::Unavailable(format!("{e:#}")))?;
            for o in outcomes {
                match o {
                    Recorded::New {
                        address,
                        kind,
                        suppressed,
                        ..
                    } => {
                        new += 1;
                        tracing::info!(
                            "/hooks/{}: {} for {}{}",
                            provider.source().as_str(),
                            kind_text(kind),
                            mask(&address),
                            suppressed
                                .map(|r| format!(", suppressed ({r})"))
                                .unwrap_or_default()
                        );
                    }
                    Recorded::Duplicate { .. } => duplicates += 1,
                    Recorded::Unmatched { .. } => unmatched += 1,
                }
            }
        }
        Ok(format!(
            "{new} recorded, {duplicates} already recorded, {unmatched} about no delivery of ours, {ignored} ignored"
        ))
    }
}

fn set<T>(secret: &Secret<T>) -> Result<&T, Stop> {
    match secret {
        Secret::Set(v) => Ok(v),
        Secret::Missing(name) => Err(Stop::Unavailable(format!(
            "{name} is not set, so requests cannot be checked"
        ))),
    }
}

fn kind_text(kind: Kind) -> &'static str {
    match kind {
        Kind::Hard => "hard bounce",
        Kind::Soft => "soft bounce",
        Kind::Unknown => "bounce of unknown kind",
        Kind::Complaint => "complaint",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ses-bounces";
    const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem";

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/hooks")
                .join(name),
        )
        .expect("fixture")
    }

    /// Answers the certificate URL with the test certificate and any other
    /// SNS URL with 200; notes every URL asked for.
    struct Fake(Arc<Mutex<Vec<String>>>);

    impl Fetch for Fake {
        fn get(&self, url: &url::Url) -> Result<Vec<u8>, String> {
            self.0.lock().expect("lock").push(url.to_string());
            if url.as_str() == CERT_URL {
                Ok(fixture("sns-signing-cert.pem"))
            } else {
                Ok(b"<ConfirmSubscriptionResponse/>".to_vec())
            }
        }
    }

    fn hooks(dir: &std::path::Path, asked: Arc<Mutex<Vec<String>>>) -> Hooks {
        let ledger = Ledger::open(&dir.join("state.db"), "daily.example.com").expect("ledger");
        Hooks {
            ledger: Arc::new(Mutex::new(ledger)),
            policy: Policy {
                soft_limit: 3,
                soft_window: 7,
            },
            return_path: None,
            ses_topics: vec![TOPIC.into()],
            certificates: Certificates::new(dir.join("sns-certs"), Box::new(Fake(asked))),
            postmark: Secret::Missing("DAILYISSUE_POSTMARK_AUTH".into()),
            mailgun: Secret::Missing("DAILYISSUE_MAILGUN_SIGNING_KEY".into()),
            sendgrid: Secret::Missing("DAILYISSUE_SENDGRID_PUBLIC_KEY".into()),
            replays: Mutex::new(mailgun::Replays::default()),
        }
    }

    /// A subscription confirmation signed (version 2) with the test key.
    fn confirmation(topic: &str, subscribe: &str, cert_url: &str) -> Vec<u8> {
        let mut e = serde_json::json!({
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37fb687f5d51e6e2425f004aed7b9b7b",
            "TopicArn": topic,
            "Message": format!("You have chosen to subscribe to the topic {topic}.\nTo confirm the subscription, visit the SubscribeURL included in this message."),
            "SubscribeURL": subscribe,
            "Timestamp": "2027-02-28T20:00:00.000Z",
            "SignatureVersion": "2",
            "SigningCertURL": cert_url,
        });
        let envelope: ses::Envelope = serde_json::from_value({
            let mut v = e.clone();
            v["Signature"] = "".into();
            v
        })
        .expect("envelope");
        let text = ses::string_to_sign(&envelope).expect("string to sign");
        let pem = fixture("sns-signing-key.pem");
        let key = PrivateKeyDer::from_pem_slice(&pem).expect("pem");
        let pair = RsaKeyPair::from_pkcs8(key.secret_der()).expect("rsa");
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

    #[test]
    fn a_signed_subscription_confirmation_is_confirmed_and_a_forged_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let asked = Arc::new(Mutex::new(Vec::new()));
        let h = hooks(dir.path(), asked.clone());
        let subscribe = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:ses-bounces&Token=2336412f";
        let body = confirmation(TOPIC, subscribe, CERT_URL);
        let reply = h.handle(Provider::Ses, &HeaderMap::new(), &body);
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(*asked.lock().expect("lock"), [CERT_URL, subscribe]);
        assert_eq!(
            std::fs::read_dir(dir.path().join("sns-certs"))
                .expect("cache")
                .count(),
            1,
            "the certificate is kept"
        );

        // The same again: the certificate comes from memory.
        asked.lock().expect("lock").clear();
        h.handle(Provider::Ses, &HeaderMap::new(), &body);
        assert_eq!(*asked.lock().expect("lock"), [subscribe]);

        // Changed after signing: refused, nothing fetched.
        asked.lock().expect("lock").clear();
        let forged = String::from_utf8(body.clone())
            .expect("utf8")
            .replace("Token=2336412f", "Token=evil");
        let reply = h.handle(Provider::Ses, &HeaderMap::new(), forged.as_bytes());
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
        assert!(asked.lock().expect("lock").is_empty());

        // A topic not configured, a certificate from elsewhere: refused
        // before anything is fetched.
        let other = confirmation(
            "arn:aws:sns:us-east-1:123456789012:other",
            subscribe,
            CERT_URL,
        );
        assert_eq!(
            h.handle(Provider::Ses, &HeaderMap::new(), &other).status,
            StatusCode::FORBIDDEN
        );
        let elsewhere = confirmation(TOPIC, subscribe, "https://evil.example/cert.pem");
        assert_eq!(
            h.handle(Provider::Ses, &HeaderMap::new(), &elsewhere)
                .status,
            StatusCode::FORBIDDEN
        );
        let bad_subscribe = confirmation(TOPIC, "https://evil.example/confirm", CERT_URL);
        assert_eq!(
            h.handle(Provider::Ses, &HeaderMap::new(), &bad_subscribe)
                .status,
            StatusCode::FORBIDDEN
        );
        assert!(asked.lock().expect("lock").is_empty(), "{asked:?}");

        // Unset secrets: 503 for the provider to retry.
        assert_eq!(
            h.handle(Provider::Mailgun, &HeaderMap::new(), b"{}").status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}

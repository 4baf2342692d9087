//! Amazon SES bounce and complaint notifications, delivered by Amazon SNS
//! to `POST /hooks/ses`.
//!
//! An SNS message is JSON; it is genuine when its `Signature` verifies,
//! with the public key of the certificate at `SigningCertURL`, over the
//! "string to sign" SNS builds from its fields (`Message`, `MessageId`,
//! `Subject` when present, `Timestamp`, `TopicArn`, `Type`; for
//! subscription messages `SubscribeURL` and `Token` in place of
//! `Subject`), each as `Name\nvalue\n` in that order.
//! `SignatureVersion` 1 is RSA PKCS #1 v1.5 with SHA-1, 2 with SHA-256.
//! The certificate is only ever taken from an `https` URL whose host is
//! `sns.REGION.amazonaws.com` (the TLS connection to Amazon's host is what
//! makes it Amazon's); and only topics listed in `[bounces] ses_topics`
//! are accepted.
//!
//! The `Message` of a notification is SES's event: `notificationType` (or
//! `eventType`, for configuration-set event publishing) `Bounce` with
//! `bounceType` `Permanent` (hard), `Transient` (soft) or `Undetermined`
//! (unknown) and its `bouncedRecipients` (each with `status` and
//! `diagnosticCode` when SES has them), or `Complaint` with its
//! `complainedRecipients`. Anything else (`Delivery`, `Send`, ...) is
//! ignored. `mail.source` is the envelope sender (a VERP address of ours
//! when `return_path` is set) and `mail.commonHeaders.messageId` the
//! original Message-ID; `feedbackId` names the event.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{AlgorithmIdentifier, CertificateDer, InvalidSignature, alg_id};
use serde::Deserialize;
use serde_json::Value;

use super::{Event, Refusal, tokens};
use crate::bounces::{Finding, Kind, Report};
use crate::project::settings::ReturnPath;

/// An SNS message, as posted (fields SNS does not sign are left out).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    #[serde(rename = "Type")]
    pub kind: String,
    pub message_id: String,
    pub topic_arn: String,
    #[serde(default)]
    pub subject: Option<String>,
    pub message: String,
    pub timestamp: String,
    pub signature_version: String,
    pub signature: String,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    #[serde(default, rename = "SubscribeURL")]
    pub subscribe_url: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
}

/// Reads the SNS message in `body`; refuses one without a signature.
pub fn envelope(body: &[u8]) -> Result<Envelope, Refusal> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| Refusal::Unsigned("not an SNS message (not JSON)".into()))?;
    if !value.get("Signature").is_some_and(Value::is_string) {
        return Err(Refusal::Unsigned(
            "an SNS message without a Signature".into(),
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| Refusal::Forged(format!("an SNS message without the signed fields: {e}")))
}

/// Whether `topics` (from `[bounces] ses_topics`) accepts the message.
pub fn topic_allowed(e: &Envelope, topics: &[String]) -> Result<(), Refusal> {
    if topics.iter().any(|t| t == &e.topic_arn) {
        Ok(())
    } else {
        Err(Refusal::Forged(format!(
            "topic {} is not in [bounces] ses_topics",
            e.topic_arn.escape_debug()
        )))
    }
}

/// `url` when it is an SNS URL: `https`, host `sns.REGION.amazonaws.com`,
/// no user, no other port. Used for the signing certificate (which must
/// also end in `.pem`) and for the subscription URL.
pub fn sns_url(url: &str) -> Option<url::Url> {
    let u = url::Url::parse(url).ok()?;
    let region = u
        .host_str()?
        .strip_prefix("sns.")?
        .strip_suffix(".amazonaws.com")?;
    let ok = u.scheme() == "https"
        && u.username().is_empty()
        && u.password().is_none()
        && u.port().is_none()
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some(u)
}

/// The URL of the message's signing certificate, if it may be fetched.
pub fn certificate_url(e: &Envelope) -> Result<url::Url, Refusal> {
    sns_url(&e.signing_cert_url)
        .filter(|u| u.path().ends_with(".pem"))
        .ok_or_else(|| {
            Refusal::Forged(format!(
                "SigningCertURL {} is not an https URL of sns.REGION.amazonaws.com",
                e.signing_cert_url.escape_debug()
            ))
        })
}

/// The DER of a PEM certificate, checked to be one webpki can read.
pub fn certificate_der(pem: &[u8]) -> Result<Vec<u8>, String> {
    let der =
        CertificateDer::from_pem_slice(pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
    webpki::EndEntityCert::try_from(&der).map_err(|e| format!("not a usable certificate: {e}"))?;
    Ok(der.as_ref().to_vec())
}

/// What SNS signs, by the message's type; `None` for an unknown type or a
/// subscription message without its URL or token.
pub fn string_to_sign(e: &Envelope) -> Option<String> {
    fn line(s: &mut String, name: &str, value: &str) {
        s.push_str(name);
        s.push('\n');
        s.push_str(value);
        s.push('\n');
    }
    let mut s = String::new();
    line(&mut s, "Message", &e.message);
    line(&mut s, "MessageId", &e.message_id);
    match e.kind.as_str() {
        "Notification" => {
            if let Some(subject) = &e.subject {
                line(&mut s, "Subject", subject);
            }
        }
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
            line(&mut s, "SubscribeURL", e.subscribe_url.as_deref()?);
        }
        _ => return None,
    }
    line(&mut s, "Timestamp", &e.timestamp);
    if e.kind != "Notification" {
        line(&mut s, "Token", e.token.as_deref()?);
    }
    line(&mut s, "TopicArn", &e.topic_arn);
    line(&mut s, "Type", &e.kind);
    Some(s)
}

/// RSA PKCS #1 v1.5 over the certificate's key, for webpki.
#[derive(Debug)]
struct RsaPkcs1 {
    verify: &'static aws_lc_rs::signature::RsaParameters,
    id: AlgorithmIdentifier,
}

impl rustls_pki_types::SignatureVerificationAlgorithm for RsaPkcs1 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        use aws_lc_rs::signature::VerificationAlgorithm;
        self.verify
            .verify_sig(public_key, message, signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.id
    }
}

/// sha1WithRSAEncryption (1.2.840.113549.1.1.5), NULL parameters.
const RSA_PKCS1_SHA1: AlgorithmIdentifier = AlgorithmIdentifier::from_slice(&[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00,
]);

static SHA1: RsaPkcs1 = RsaPkcs1 {
    verify: &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
    id: RSA_PKCS1_SHA1,
};
static SHA256: RsaPkcs1 = RsaPkcs1 {
    verify: &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
    id: alg_id::RSA_PKCS1_SHA256,
};

/// Checks the message's signature with the certificate (DER) its
/// `SigningCertURL` names.
pub fn verify(e: &Envelope, certificate: &[u8]) -> Result<(), Refusal> {
    let forged = |why: &str| Refusal::Forged(why.to_string());
    let algorithm = match e.signature_version.as_str() {
        "1" => &SHA1,
        "2" => &SHA256,
        other => {
            return Err(Refusal::Forged(format!(
                "unknown SignatureVersion {}",
                other.escape_debug()
            )));
        }
    };
    let text = string_to_sign(e).ok_or_else(|| forged("an SNS message of an unknown type"))?;
    let signature = STANDARD
        .decode(e.signature.trim())
        .map_err(|_| forged("the Signature is not base64"))?;
    let der = CertificateDer::from(certificate);
    let cert = webpki::EndEntityCert::try_from(&der)
        .map_err(|_| forged("the signing certificate cannot be read"))?;
    cert.verify_signature(algorithm, text.as_bytes(), &signature)
        .map_err(|_| forged("the SNS signature does not match"))
}

/// What an SES notification of `kind` reports: the object holding its
/// recipients, the list's key, the report type, the kind of finding; or
/// why it is ignored.
fn what<'a>(
    message: &'a Value,
    kind: &str,
) -> Result<(&'a Value, &'static str, String, Kind), String> {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    match kind {
        "Bounce" => {
            let bounce = message.get("bounce").unwrap_or(&Value::Null);
            let bounce_type = text(bounce, "bounceType").unwrap_or_default();
            let sub = text(bounce, "bounceSubType").unwrap_or_default();
            let k = match bounce_type.as_str() {
                "Permanent" => Kind::Hard,
                "Transient" => Kind::Soft,
                _ => Kind::Unknown,
            };
            Ok((
                bounce,
                "bouncedRecipients",
                format!("ses bounce ({bounce_type}/{sub})"),
                k,
            ))
        }
        "Complaint" => {
            let complaint = message.get("complaint").unwrap_or(&Value::Null);
            if text(complaint, "complaintSubType").as_deref() == Some("OnAccountSuppressionList") {
                return Err(
                    "an SES complaint notice about an address already suppressed at SES".into(),
                );
            }
            let feedback =
                text(complaint, "complaintFeedbackType").unwrap_or_else(|| "abuse".into());
            Ok((
                complaint,
                "complainedRecipients",
                format!("ses complaint ({feedback})"),
                Kind::Complaint,
            ))
        }
        other => Err(format!("an SES {} notification", other.escape_debug())),
    }
}

/// The original message's Message-ID, from the common headers or the
/// header list SES includes.
fn message_id(mail: &Value) -> Option<String> {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    mail.get("commonHeaders")
        .and_then(|h| text(h, "messageId"))
        .or_else(|| {
            mail.get("headers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|h| text(h, "name").is_some_and(|n| n.eq_ignore_ascii_case("message-id")))
                .and_then(|h| text(h, "value"))
        })
        .and_then(|id| super::message_id_of(&id))
}

/// The SES event in a verified notification's `Message`.
pub fn event(
    e: &Envelope,
    return_path: Option<&ReturnPath>,
    evidence: &[u8],
) -> Result<Event, Refusal> {
    let message: Value = serde_json::from_str(&e.message)
        .map_err(|_| Refusal::Malformed("the SNS Message is not an SES event (not JSON)".into()))?;
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let Some(kind) = text(&message, "notificationType").or_else(|| text(&message, "eventType"))
    else {
        return Err(Refusal::Malformed(
            "the SNS Message has no notificationType or eventType".into(),
        ));
    };
    let mail = message.get("mail").unwrap_or(&Value::Null);
    let (body, list, report_type, finding_kind) = match what(&message, &kind) {
        Ok(what) => what,
        Err(ignored) => return Ok(Event::Ignored(ignored)),
    };
    let findings: Vec<Finding> = body
        .get(list)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some(Finding {
                kind: finding_kind,
                recipient: Some(text(r, "emailAddress")?.trim().to_string()),
                status: text(r, "status").filter(|s| !s.is_empty()),
                diagnostic: text(r, "diagnosticCode").filter(|s| !s.is_empty()),
            })
        })
        .collect();
    if findings.is_empty() {
        return Err(Refusal::Malformed(format!("an SES {kind} without {list}")));
    }
    let message_id = message_id(mail);
    let event_id = match text(body, "feedbackId") {
        Some(id) if !id.is_empty() => format!("ses:{id}"),
        _ => format!("sns:{}", e.message_id),
    };
    let source = text(mail, "source");
    Ok(Event::Report {
        report: Report {
            report_type,
            findings,
            tokens: tokens(return_path, source.as_deref()),
            message_id,
            event_id,
        },
        evidence: evidence.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/hooks")
                .join(name),
        )
        .expect("fixture")
    }

    fn cert() -> Vec<u8> {
        certificate_der(&fixture("sns-signing-cert.pem")).expect("certificate")
    }

    #[test]
    fn only_sns_hosts_over_https_may_give_certificates() {
        for good in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.eu-west-2.amazonaws.com:443/x.pem",
        ] {
            assert!(sns_url(good).is_some(), "{good}");
        }
        for bad in [
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
            "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.evil.example.amazonaws.com/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "https://user@sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://s3.amazonaws.com/x.pem",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(sns_url(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_version_1_notification_signed_by_sns_verifies_and_any_change_breaks_it() {
        let body = fixture("ses-bounce-v1.json");
        let e = envelope(&body).expect("envelope");
        assert_eq!(e.signature_version, "1");
        certificate_url(&e).expect("an SNS certificate URL");
        verify(&e, &cert()).expect("verifies");
        let mut changed = e.clone();
        changed.message = changed.message.replace("Permanent", "Transient");
        assert!(matches!(verify(&changed, &cert()), Err(Refusal::Forged(_))));
        let mut v2 = e.clone();
        v2.signature_version = "2".into();
        assert!(verify(&v2, &cert()).is_err(), "the version picks the hash");
        let mut other = e;
        other.signature_version = "3".into();
        assert!(verify(&other, &cert()).is_err());
    }

    #[test]
    fn the_ses_event_gives_its_recipients_and_clues() {
        let body = fixture("ses-bounce-v1.json");
        let e = envelope(&body).expect("envelope");
        let path = ReturnPath {
            prefix: "bounces+".into(),
            suffix: "@example.com".into(),
        };
        let Event::Report { report, .. } = event(&e, Some(&path), &body).expect("event") else {
            panic!("a report");
        };
        assert_eq!(report.report_type, "ses bounce (Permanent/General)");
        assert_eq!(report.findings.len(), 1);
        assert_eq!(report.findings[0].kind, Kind::Hard);
        assert_eq!(report.findings[0].status.as_deref(), Some("5.1.1"));
        assert!(report.event_id.starts_with("ses:"), "{report:?}");
        let unsigned = br#"{"Type":"Notification","Message":"{}"}"#;
        assert!(matches!(envelope(unsigned), Err(Refusal::Unsigned(_))));
        assert!(matches!(envelope(b"<xml/>"), Err(Refusal::Unsigned(_))));
    }
}

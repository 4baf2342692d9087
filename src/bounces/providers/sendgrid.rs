//! SendGrid's signed event webhook (`POST /hooks/sendgrid`).
//!
//! A request is genuine when `X-Twilio-Email-Event-Webhook-Signature`
//! (base64 of an ASN.1 DER ECDSA signature) verifies, with the P-256
//! public key SendGrid shows when signing is turned on (base64 of its DER
//! SubjectPublicKeyInfo, held by the variable `[bounces] sendgrid_key_env`
//! names), over `X-Twilio-Email-Event-Webhook-Timestamp` followed by the
//! body exactly as it arrived. The signature covers the whole payload, so
//! a replay can only repeat events, which are recorded once.
//!
//! The body is a JSON array of events: `bounce` (`type` `bounce` is hard,
//! `blocked` soft), `deferred` (soft), `spamreport` (a complaint),
//! `dropped` (SendGrid's own suppression: `reason` `Bounced Address` or
//! `Invalid` is hard, `Spam Reporting Address` a complaint, others
//! ignored); the rest (`processed`, `delivered`, `open`, `click`, ...) is
//! ignored. `sg_event_id` names each event, `email` the reader, `status`
//! and `reason` (or `response`) give the status and diagnostic, and
//! `smtp-id` the original Message-ID.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::{About, Event, Refusal, report};
use crate::bounces::{Kind, digest};

pub const SIGNATURE_HEADER: &str = "x-twilio-email-event-webhook-signature";
pub const TIMESTAMP_HEADER: &str = "x-twilio-email-event-webhook-timestamp";

/// The DER header of a P-256 SubjectPublicKeyInfo (id-ecPublicKey,
/// prime256v1, an uncompressed point of 65 bytes follows).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The verification key from its base64 form (as SendGrid shows it).
pub fn public_key(b64: &str) -> Result<Vec<u8>, String> {
    let der = STANDARD
        .decode(b64.trim())
        .map_err(|_| "not base64".to_string())?;
    if der.len() != P256_SPKI_PREFIX.len() + 65 || !der.starts_with(&P256_SPKI_PREFIX) {
        return Err("not a P-256 public key (base64 of its DER SubjectPublicKeyInfo)".into());
    }
    Ok(der)
}

/// Checks the signature headers over `body` with `key` (DER).
pub fn verify(
    key: &[u8],
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
) -> Result<(), Refusal> {
    let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
        return Err(Refusal::Unsigned(
            "no X-Twilio-Email-Event-Webhook-Signature and -Timestamp headers".into(),
        ));
    };
    let signature = STANDARD
        .decode(signature.trim())
        .map_err(|_| Refusal::Forged("the signature is not base64".into()))?;
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(body);
    aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1, key)
        .verify(&signed, &signature)
        .map_err(|_| Refusal::Forged("the SendGrid signature does not match".into()))
}

/// The events of a verified payload.
pub fn events(body: &[u8]) -> Result<Vec<Event>, Refusal> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| Refusal::Malformed("not a SendGrid event payload (not JSON)".into()))?;
    let Some(list) = v.as_array() else {
        return Err(Refusal::Malformed(
            "not a SendGrid event payload (not an array)".into(),
        ));
    };
    Ok(list.iter().map(one).collect())
}

fn one(e: &Value) -> Event {
    let text = |key: &str| e.get(key).and_then(Value::as_str).map(str::to_owned);
    let name = text("event").unwrap_or_default();
    let sub = text("type").or_else(|| text("reason")).unwrap_or_default();
    let kind = match (name.as_str(), sub.as_str()) {
        ("bounce", "blocked") => Kind::Soft,
        ("bounce", _) => Kind::Hard,
        ("deferred", _) => Kind::Soft,
        ("spamreport", _) => Kind::Complaint,
        ("dropped", "Bounced Address" | "Invalid") => Kind::Hard,
        ("dropped", "Spam Reporting Address") => Kind::Complaint,
        (other, _) => {
            return Event::Ignored(format!("a SendGrid {} event", other.escape_debug()));
        }
    };
    let Some(email) = text("email") else {
        return Event::Ignored(format!("a SendGrid {name} event without email"));
    };
    let evidence = serde_json::to_vec(e).unwrap_or_default();
    let event_id = match text("sg_event_id") {
        Some(id) if !id.is_empty() => format!("sendgrid:{id}"),
        _ => format!("sendgrid:sha256:{}", digest(&evidence)),
    };
    let diagnostic = text("reason")
        .filter(|r| !r.trim().is_empty())
        .or_else(|| text("response"));
    let report_type = if sub.is_empty() {
        format!("sendgrid {name}")
    } else {
        format!("sendgrid {name} ({sub})")
    };
    Event::Report {
        report: report(
            report_type,
            event_id,
            About {
                kind,
                recipient: Some(email.as_str()),
                status: text("status"),
                diagnostic,
            },
            text("smtp-id").as_deref(),
            Vec::new(),
        ),
        evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/hooks")
                .join(name),
        )
        .expect("fixture")
    }

    #[test]
    fn signed_payloads_verify_and_changed_ones_do_not() {
        let key = public_key(&String::from_utf8_lossy(&fixture(
            "sendgrid-public-key.b64",
        )))
        .expect("key");
        let pem = fixture("sendgrid-signing-key.pem");
        let private = PrivateKeyDer::from_pem_slice(&pem).expect("pem");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, private.secret_der())
            .expect("pair");
        let body = fixture("sendgrid-events.json");
        let ts = "1803900000";
        let mut signed = ts.as_bytes().to_vec();
        signed.extend_from_slice(&body);
        let sig = pair
            .sign(&aws_lc_rs::rand::SystemRandom::new(), &signed)
            .expect("sign");
        let sig = STANDARD.encode(sig.as_ref());
        assert_eq!(verify(&key, Some(&sig), Some(ts), &body), Ok(()));
        assert!(matches!(
            verify(&key, Some(&sig), Some("1803900001"), &body),
            Err(Refusal::Forged(_))
        ));
        let mut changed = body.clone();
        changed.push(b' ');
        assert!(verify(&key, Some(&sig), Some(ts), &changed).is_err());
        assert!(matches!(
            verify(&key, None, Some(ts), &body),
            Err(Refusal::Unsigned(_))
        ));
        assert!(public_key("AAAA").is_err());

        let events = events(&body).expect("events");
        let kinds: Vec<Option<Kind>> = events
            .iter()
            .map(|e| match e {
                Event::Report { report, .. } => Some(report.findings[0].kind),
                Event::Ignored(_) => None,
            })
            .collect();
        assert_eq!(
            kinds,
            [
                None,
                Some(Kind::Hard),
                Some(Kind::Complaint),
                Some(Kind::Soft),
                Some(Kind::Soft),
                None
            ]
        );
    }
}

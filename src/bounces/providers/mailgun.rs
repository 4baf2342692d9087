//! Mailgun's webhooks (`POST /hooks/mailgun`, the JSON webhooks).
//!
//! The body is `{"signature": {"timestamp", "token", "signature"},
//! "event-data": {...}}`; it is genuine when `signature` is the hex
//! HMAC-SHA256, keyed with the webhook signing key, of `timestamp`
//! followed by `token`. That signature does not cover `event-data`, so, as
//! Mailgun advises, a signature older than [`MAX_AGE`] seconds (or from
//! the future, past [`MAX_SKEW`]) is refused, and so is a token seen before
//! with another event ([`Replays`]); the same event again (Mailgun
//! retrying) is welcome, and recorded once.
//!
//! Events: `failed` with `severity` `permanent` is a hard bounce,
//! `temporary` a soft one; `complained` is a complaint; the rest
//! (`delivered`, `opened`, `accepted`, ...) is ignored. `event-data.id`
//! names the event, `recipient` the reader, `delivery-status` gives the
//! status (`enhanced-code`, else `code`) and the diagnostic (`message`,
//! else `description`), `envelope.sender` the envelope sender (our VERP
//! address when `return_path` is set) and `message.headers.message-id` the
//! original Message-ID.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{About, Event, Refusal, report, tokens};
use crate::bounces::Kind;
use crate::project::settings::ReturnPath;

/// How old a signature may be, in seconds.
pub const MAX_AGE: i64 = 60 * 60;
/// How far in the future a signature's timestamp may be (clock skew).
pub const MAX_SKEW: i64 = 5 * 60;

/// A verified request: its event data and the token that signed it.
#[derive(Debug, Clone)]
pub struct Signed {
    pub timestamp: i64,
    pub token: String,
    pub event_data: Value,
}

/// Checks the signature of `body` with the signing `key`, at time `now`
/// (Unix seconds).
pub fn verify(body: &[u8], key: &[u8], now: i64) -> Result<Signed, Refusal> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| Refusal::Unsigned("not a Mailgun webhook (not JSON)".into()))?;
    let sig = v
        .get("signature")
        .ok_or_else(|| Refusal::Unsigned("a Mailgun webhook without a signature".into()))?;
    let field = |k: &str| sig.get(k).and_then(Value::as_str).unwrap_or_default();
    let (timestamp, token, signature) = (field("timestamp"), field("token"), field("signature"));
    if timestamp.is_empty() || token.is_empty() || signature.is_empty() {
        return Err(Refusal::Unsigned(
            "a Mailgun signature without timestamp, token or signature".into(),
        ));
    }
    let given = hex(signature).ok_or_else(|| Refusal::Forged("the signature is not hex".into()))?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map_err(|_| Refusal::Forged("unusable signing key".into()))?;
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    mac.verify_slice(&given)
        .map_err(|_| Refusal::Forged("the Mailgun signature does not match".into()))?;
    let at: i64 = timestamp
        .parse()
        .map_err(|_| Refusal::Forged("the signature's timestamp is not a number".into()))?;
    if at < now - MAX_AGE || at > now + MAX_SKEW {
        return Err(Refusal::Forged(format!(
            "the signature's timestamp is {}s from now, outside the window (-{MAX_AGE}s, +{MAX_SKEW}s): a replay or a wrong clock",
            at - now
        )));
    }
    let event_data = v
        .get("event-data")
        .cloned()
        .ok_or_else(|| Refusal::Malformed("a Mailgun webhook without event-data".into()))?;
    Ok(Signed {
        timestamp: at,
        token: token.to_string(),
        event_data,
    })
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The tokens of the last [`MAX_AGE`] seconds, with the event each signed:
/// a token may sign only its own event.
#[derive(Debug, Default)]
pub struct Replays {
    seen: HashMap<String, (i64, String)>,
}

impl Replays {
    /// Notes `signed` as used for `event_id`; refuses a token already used
    /// for another event. Forgets tokens too old to be accepted anyway.
    pub fn check(&mut self, signed: &Signed, event_id: &str, now: i64) -> Result<(), Refusal> {
        self.seen.retain(|_, (at, _)| *at >= now - MAX_AGE);
        match self.seen.get(&signed.token) {
            Some((_, seen)) if seen != event_id => Err(Refusal::Forged(
                "a Mailgun token already used for another event (a replay)".into(),
            )),
            Some(_) => Ok(()),
            None => {
                self.seen.insert(
                    signed.token.clone(),
                    (signed.timestamp, event_id.to_string()),
                );
                Ok(())
            }
        }
    }
}

/// The id of the event (`mailgun:ID`), to check replays before recording.
pub fn event_id(signed: &Signed) -> Result<String, Refusal> {
    match signed.event_data.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => Ok(format!("mailgun:{id}")),
        _ => Err(Refusal::Malformed("a Mailgun event without id".into())),
    }
}

/// The event of a verified webhook.
pub fn event(
    signed: &Signed,
    return_path: Option<&ReturnPath>,
    evidence: &[u8],
) -> Result<Event, Refusal> {
    let d = &signed.event_data;
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let name = text(d, "event").unwrap_or_default();
    let severity = text(d, "severity").unwrap_or_default();
    let kind = match (name.as_str(), severity.as_str()) {
        ("failed", "permanent") => Kind::Hard,
        ("failed", "temporary") => Kind::Soft,
        ("failed", _) => Kind::Unknown,
        ("complained", _) => Kind::Complaint,
        ("", _) => return Err(Refusal::Malformed("a Mailgun event without event".into())),
        (other, _) => {
            return Ok(Event::Ignored(format!(
                "a Mailgun {} event",
                other.escape_debug()
            )));
        }
    };
    let id = event_id(signed)?;
    let Some(recipient) = text(d, "recipient") else {
        return Err(Refusal::Malformed(
            "a Mailgun event without recipient".into(),
        ));
    };
    let status_block = d.get("delivery-status").unwrap_or(&Value::Null);
    let status = text(status_block, "enhanced-code")
        .filter(|s| !s.is_empty())
        .or_else(|| match status_block.get("code") {
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        });
    let diagnostic = text(status_block, "message")
        .filter(|s| !s.trim().is_empty())
        .or_else(|| text(status_block, "description"));
    let sender = d.get("envelope").and_then(|e| text(e, "sender"));
    let message_id = d
        .get("message")
        .and_then(|m| m.get("headers"))
        .and_then(|h| text(h, "message-id"));
    let report_type = if severity.is_empty() {
        format!("mailgun {name}")
    } else {
        format!("mailgun {name} ({severity})")
    };
    Ok(Event::Report {
        report: report(
            report_type,
            id,
            About {
                kind,
                recipient: Some(recipient.as_str()),
                status,
                diagnostic,
            },
            message_id.as_deref(),
            tokens(return_path, sender.as_deref()),
        ),
        evidence: evidence.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed_body(key: &[u8], timestamp: i64, token: &str, event: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("key");
        mac.update(format!("{timestamp}{token}").as_bytes());
        let sig: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!(
            r#"{{"signature":{{"timestamp":"{timestamp}","token":"{token}","signature":"{sig}"}},"event-data":{{"event":"{event}","severity":"permanent","id":"ev-{token}","recipient":"a@example.org"}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn the_signature_the_window_and_replays() {
        let now = 1_900_000_000;
        let body = signed_body(b"key-1", now - 10, "tok1", "failed");
        let signed = verify(&body, b"key-1", now).expect("verifies");
        assert!(matches!(
            verify(&body, b"key-2", now),
            Err(Refusal::Forged(_))
        ));
        let old = signed_body(b"key-1", now - MAX_AGE - 1, "tok2", "failed");
        assert!(matches!(
            verify(&old, b"key-1", now),
            Err(Refusal::Forged(_))
        ));
        let future = signed_body(b"key-1", now + MAX_SKEW + 1, "tok3", "failed");
        assert!(verify(&future, b"key-1", now).is_err());
        let unsigned = br#"{"event-data":{"event":"failed"}}"#;
        assert!(matches!(
            verify(unsigned, b"key-1", now),
            Err(Refusal::Unsigned(_))
        ));

        let mut replays = Replays::default();
        let id = event_id(&signed).expect("id");
        assert_eq!(replays.check(&signed, &id, now), Ok(()));
        assert_eq!(replays.check(&signed, &id, now), Ok(()), "a retry");
        assert!(replays.check(&signed, "mailgun:other", now).is_err());

        let Ok(Event::Report { report, .. }) = event(&signed, None, &body) else {
            panic!("a report");
        };
        assert_eq!(report.findings[0].kind, Kind::Hard);
        let delivered = signed_body(b"key-1", now, "tok4", "delivered");
        let signed = verify(&delivered, b"key-1", now).expect("verifies");
        assert!(matches!(
            event(&signed, None, &delivered),
            Ok(Event::Ignored(_))
        ));
    }
}

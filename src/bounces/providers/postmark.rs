//! Postmark's bounce and spam complaint webhooks (`POST /hooks/postmark`).
//!
//! Postmark signs nothing; what it offers is basic auth in the webhook URL
//! (`https://USER:PASSWORD@news.example.com/hooks/postmark`), so the
//! request must carry `Authorization: Basic` with exactly the
//! `USER:PASSWORD` held by the variable `[bounces] postmark_auth_env`
//! names (compared in constant time).
//!
//! Payloads: `RecordType` `Bounce` with a `Type` — `HardBounce` and
//! `BadEmailAddress` are hard; `Transient`, `SoftBounce`, `DnsError`,
//! `InboxFull`, `Blocked` and `SpamNotification` soft; `Unknown` of unknown
//! kind; the rest (`AutoResponder`, `AddressChange`, `DMARCPolicy`, ...)
//! ignored — or `RecordType` `SpamComplaint`: a complaint. Other record
//! types (`Delivery`, `Open`, `Click`, `SubscriptionChange`) are ignored.
//! `ID` names the event, `Email` the recipient, `Details` (else
//! `Description`) is the diagnostic.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::{About, Event, Refusal, report, same_secret};
use crate::bounces::Kind;

/// Checks the `Authorization` header against `credentials`
/// (`USER:PASSWORD`).
pub fn authorize(header: Option<&str>, credentials: &str) -> Result<(), Refusal> {
    let Some(header) = header else {
        return Err(Refusal::Unsigned("no Authorization header".into()));
    };
    let given = header
        .trim()
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| STANDARD.decode(b64.trim()).ok())
        .ok_or_else(|| Refusal::Unsigned("no basic auth credentials".into()))?;
    if same_secret(&given, credentials.as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::Forged("wrong basic auth credentials".into()))
    }
}

/// The event in a Postmark webhook payload.
pub fn event(body: &[u8]) -> Result<Event, Refusal> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| Refusal::Malformed("not a Postmark webhook payload (not JSON)".into()))?;
    let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let record = text("RecordType").unwrap_or_default();
    let bounce_type = text("Type").unwrap_or_default();
    let kind = match (record.as_str(), bounce_type.as_str()) {
        ("SpamComplaint", _) => Kind::Complaint,
        ("Bounce", "HardBounce" | "BadEmailAddress") => Kind::Hard,
        (
            "Bounce",
            "Transient" | "SoftBounce" | "DnsError" | "InboxFull" | "Blocked" | "SpamNotification",
        ) => Kind::Soft,
        ("Bounce", "Unknown") => Kind::Unknown,
        ("Bounce", other) => {
            return Ok(Event::Ignored(format!(
                "a Postmark {} bounce",
                other.escape_debug()
            )));
        }
        ("", _) => {
            return Err(Refusal::Malformed(
                "a Postmark payload without RecordType".into(),
            ));
        }
        (other, _) => {
            return Ok(Event::Ignored(format!(
                "a Postmark {} event",
                other.escape_debug()
            )));
        }
    };
    let id = match v.get("ID") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(Refusal::Malformed("a Postmark event without ID".into())),
    };
    let Some(email) = text("Email") else {
        return Err(Refusal::Malformed("a Postmark event without Email".into()));
    };
    let diagnostic = text("Details")
        .filter(|d| !d.trim().is_empty())
        .or_else(|| text("Description"));
    Ok(Event::Report {
        report: report(
            format!("postmark {record} ({bounce_type})"),
            format!("postmark:{id}"),
            About {
                kind,
                recipient: Some(email.as_str()),
                status: Some(bounce_type.clone()),
                diagnostic,
            },
            None,
            Vec::new(),
        ),
        evidence: body.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_must_match_exactly() {
        let ok = format!("Basic {}", STANDARD.encode("hooks:s3cret"));
        assert_eq!(authorize(Some(&ok), "hooks:s3cret"), Ok(()));
        assert!(matches!(
            authorize(Some(&ok), "hooks:other"),
            Err(Refusal::Forged(_))
        ));
        let short = format!("Basic {}", STANDARD.encode("hooks:s3cre"));
        assert!(authorize(Some(&short), "hooks:s3cret").is_err());
        assert!(matches!(
            authorize(None, "hooks:s3cret"),
            Err(Refusal::Unsigned(_))
        ));
        assert!(matches!(
            authorize(Some("Bearer hooks:s3cret"), "hooks:s3cret"),
            Err(Refusal::Unsigned(_))
        ));
    }

    #[test]
    fn bounce_types_map_to_kinds() {
        let kind = |record: &str, t: &str| {
            let body = format!(
                r#"{{"RecordType":"{record}","Type":"{t}","ID":7,"Email":"a@example.org"}}"#
            );
            match event(body.as_bytes()) {
                Ok(Event::Report { report, .. }) => Some(report.findings[0].kind),
                _ => None,
            }
        };
        assert_eq!(kind("Bounce", "HardBounce"), Some(Kind::Hard));
        assert_eq!(kind("Bounce", "SoftBounce"), Some(Kind::Soft));
        assert_eq!(kind("Bounce", "Unknown"), Some(Kind::Unknown));
        assert_eq!(
            kind("SpamComplaint", "SpamComplaint"),
            Some(Kind::Complaint)
        );
        assert_eq!(kind("Bounce", "AutoResponder"), None);
        assert_eq!(kind("Delivery", ""), None);
    }
}

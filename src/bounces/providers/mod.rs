//! Provider webhooks: each module checks that a request really comes from
//! its provider and reads the payload's bounce and complaint events into
//! [`Report`]s, the same the bounce mail gives, so both go through one
//! policy and one evidence store (`Ledger::record_report`).
//!
//! - `ses`: Amazon SES notifications delivered by Amazon SNS (the SNS
//!   message signature, versions 1 and 2, against the signing
//!   certificate; subscription confirmations);
//! - `postmark`: basic auth, all Postmark offers;
//! - `mailgun`: HMAC-SHA256 of timestamp and token, with the webhook
//!   signing key; a token used twice is refused (`Replays`);
//! - `sendgrid`: the signed event webhook (ECDSA P-256 over timestamp and
//!   payload).
//!
//! Pure, like the rest of `bounces`: keys, certificates and the clock are
//! given by the caller (`serve::hooks`), which fetches and caches the SNS
//! certificates and records what these return.

pub mod mailgun;
pub mod postmark;
pub mod sendgrid;
pub mod ses;

use super::{Finding, Kind, Report};
use crate::mail::verp;
use crate::project::settings::ReturnPath;

/// Why a webhook request is refused: nothing is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No credentials or signature at all (401).
    Unsigned(String),
    /// Credentials or a signature that do not check out, or from a sender
    /// not configured (403).
    Forged(String),
    /// Signed, but not a payload this provider sends (400).
    Malformed(String),
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Unsigned(_) => 401,
            Refusal::Forged(_) => 403,
            Refusal::Malformed(_) => 400,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Refusal::Unsigned(r) | Refusal::Forged(r) | Refusal::Malformed(r) => r,
        }
    }
}

/// One event of a verified payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A bounce or complaint, to be matched and recorded; `evidence` is the
    /// payload (or, in a batch, this event's part of it).
    Report { report: Report, evidence: Vec<u8> },
    /// Nothing to record (a delivery, an open, an auto-reply): why.
    Ignored(String),
}

/// What the provider says about one recipient.
pub(crate) struct About<'a> {
    pub kind: Kind,
    pub recipient: Option<&'a str>,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
}

/// A report of one event about one recipient.
pub(crate) fn report(
    report_type: String,
    event_id: String,
    about: About,
    message_id: Option<&str>,
    tokens: Vec<String>,
) -> Report {
    Report {
        report_type,
        findings: vec![Finding {
            kind: about.kind,
            recipient: about.recipient.map(|r| r.trim().to_string()),
            status: about.status.filter(|s| !s.trim().is_empty()),
            diagnostic: about.diagnostic.filter(|s| !s.trim().is_empty()),
        }],
        tokens,
        message_id: message_id.and_then(message_id_of),
        event_id,
    }
}

/// A Message-ID in its stored form, `<id>`.
fn message_id_of(id: &str) -> Option<String> {
    let bare = id.trim().trim_matches(['<', '>']).trim();
    (!bare.is_empty() && bare.contains('@')).then(|| format!("<{bare}>"))
}

/// The VERP tokens of ours among `senders` (envelope senders a provider
/// reports).
pub(crate) fn tokens<'a>(
    return_path: Option<&ReturnPath>,
    senders: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let Some(path) = return_path else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for sender in senders {
        if let Some(t) = verp::token_in(path, sender)
            && !out.contains(&t)
        {
            out.push(t);
        }
    }
    out
}

/// Compares secrets in constant time.
pub(crate) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

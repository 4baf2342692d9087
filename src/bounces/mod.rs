//! BOUNCES — takes what arrives after the relay's 250 (bounce and
//! complaint mail, provider webhooks) and gives [`Report`]s: what kind of
//! event, about which recipient, with its evidence, and the clues that find
//! the delivery it is about. Pure: no disk, no network, no ledger; the
//! ledger matches a report to its delivery and records it
//! (`Ledger::record_report`), the commands and `serve` bring the bytes.
//!
//! - `message`: one mail message classified — a DSN (RFC 3464), an ARF
//!   complaint (RFC 5965), an auto-reply (ignored), a VERP bounce without a
//!   report, or none of these (left alone);
//! - `fields`: the header-like field blocks inside those reports;
//! - `providers`: Amazon SES (through SNS), Postmark, Mailgun and SendGrid
//!   webhooks: signatures verified, payloads read;
//! - `policy`: what suppresses (hard bounces and complaints at once, soft
//!   bounces in a row), the per-issue rates and the guard on them.

mod fields;
pub mod message;
pub mod policy;
pub mod providers;

pub use policy::{Guard, IssueFeedback, Policy, Rates};

/// The largest evidence kept per event (the raw message or payload); the
/// rest is cut, and its full size kept.
pub const EVIDENCE_LIMIT: usize = 64 * 1024;

/// What an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Permanent: a 5.x.x failure, a provider's hard bounce. Suppresses.
    Hard,
    /// Temporary: delayed, 4.x.x. Suppresses after `soft_limit` in a row.
    Soft,
    /// A bounce that says nothing of its kind (a VERP bounce without a
    /// report); counted as soft.
    Unknown,
    /// A spam complaint (ARF `abuse`, a provider's complaint). Suppresses.
    Complaint,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Hard, Kind::Soft, Kind::Unknown, Kind::Complaint];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Hard => "hard",
            Kind::Soft => "soft",
            Kind::Unknown => "unknown",
            Kind::Complaint => "complaint",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether it counts as a soft bounce for the policy and the rates.
    pub fn is_soft(self) -> bool {
        matches!(self, Kind::Soft | Kind::Unknown)
    }
}

/// One recipient a report is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    /// The address as the report gives it (`Final-Recipient`, a webhook's
    /// `email`), when it gives one.
    pub recipient: Option<String>,
    /// The enhanced status code (`5.1.1`) or the provider's bounce type.
    pub status: Option<String>,
    /// What the remote server or provider said.
    pub diagnostic: Option<String>,
}

/// What one report says, before it is matched to a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `delivery-status`, `feedback-report (abuse)`, `ses bounce
    /// (Permanent/General)`, `no report (VERP)`, ...
    pub report_type: String,
    pub findings: Vec<Finding>,
    /// VERP tokens found where the envelope sender shows (the strongest
    /// clue: it names one delivery and cannot be forged).
    pub tokens: Vec<String>,
    /// The original message's Message-ID, when the report quotes it.
    pub message_id: Option<String>,
    /// Names the report so that the same one twice is recorded once: the
    /// provider's event id, or the report mail's own Message-ID (or a
    /// digest of its bytes).
    pub event_id: String,
}

/// Where a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Stdin,
    Maildir,
    Mbox,
    Ses,
    Postmark,
    Mailgun,
    Sendgrid,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Stdin => "stdin",
            Source::Maildir => "maildir",
            Source::Mbox => "mbox",
            Source::Ses => "ses",
            Source::Postmark => "postmark",
            Source::Mailgun => "mailgun",
            Source::Sendgrid => "sendgrid",
        }
    }
}

/// Lower-case hex of SHA-256: names a report mail without a Message-ID.
pub(crate) fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

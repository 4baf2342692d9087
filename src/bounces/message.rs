//! One mail message from the bounce mailbox, classified.
//!
//! In this order (the first that applies decides):
//! 1. a DSN (RFC 3464): any `message/delivery-status` (or RFC 6533
//!    `message/global-delivery-status`) part. Per recipient: `Action:
//!    failed` with a 5.x.x status is a hard bounce; `delayed`, or a 4.x.x
//!    status, is soft; a failure without a usable status is of unknown
//!    kind; `delivered`, `relayed` and `expanded` are not bounces (a DSN
//!    of only those is ignored). Exim, Postfix, Gmail, Microsoft 365 and
//!    Amazon SES all send this shape;
//! 2. an ARF report (RFC 5965): a `message/feedback-report` part;
//!    `Feedback-Type: abuse` is a complaint, other types are ignored;
//! 3. a bounce without a report that names its recipients in
//!    `X-Failed-Recipients` (Exim's plain-text bounces): unknown kind;
//! 4. an auto-reply (`Auto-Submitted` other than `no`, `X-Autoreply`,
//!    `Precedence: auto_reply`, an out-of-office or vacation subject, a
//!    read receipt): ignored — never counted as a bounce;
//! 5. anything else that carries a VERP token of ours where the envelope
//!    sender shows: a bounce of unknown kind (soft);
//! 6. the rest (a person's mail, a malformed message): not recognised, to
//!    be left alone.
//!
//! Parsing is mail-parser's, which never panics and does its best with
//! broken MIME; nothing here indexes or unwraps what it returns.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use super::fields::{self, Fields};
use super::{Finding, Kind, Report, digest};
use crate::mail::verp;
use crate::project::settings::ReturnPath;

/// What a message is, for the bounce processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A bounce or a complaint, to be matched to its delivery and recorded.
    Report(Report),
    /// Needs nothing doing (an auto-reply, a delivery notice, a feedback
    /// report that is not a complaint): handled, never recorded.
    Ignored(String),
    /// Not a bounce, a complaint or an auto-reply: left alone.
    Unrecognised(String),
}

/// Headers where the envelope recipient of the bounce (our VERP address)
/// shows once the bounce is delivered.
const ENVELOPE_HEADERS: [&str; 6] = [
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "x-envelope-to",
    "to",
    "cc",
];

/// Classifies one message; `return_path` is the VERP template, if any.
pub fn classify(raw: &[u8], return_path: Option<&ReturnPath>) -> Verdict {
    let Some(message) = MessageParser::new().parse(raw) else {
        return Verdict::Unrecognised("not a mail message: no header found".into());
    };
    let original = original(&message);
    let mut clues = Clues {
        return_path,
        tokens: Vec::new(),
    };
    for (name, value) in message.headers_raw() {
        if ENVELOPE_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            clues.look(value);
        }
    }
    for value in &original.senders {
        clues.look(value);
    }
    let report = Report {
        report_type: String::new(),
        findings: Vec::new(),
        tokens: Vec::new(),
        message_id: original
            .message_id
            .clone()
            .or_else(|| first_id(message.in_reply_to())),
        event_id: match message.message_id() {
            Some(id) => format!("mail:<{id}>"),
            None => format!("mail:sha256:{}", digest(raw)),
        },
    };
    let verdict = judge(&message, &original, &mut clues, report);
    if let Verdict::Report(mut report) = verdict {
        report.tokens = clues.tokens;
        return Verdict::Report(report);
    }
    verdict
}

/// The rules of the module doc, in order.
fn judge(message: &Message, original: &Original, clues: &mut Clues, mut report: Report) -> Verdict {
    if let Some(body) = part_body(message, &["delivery-status", "global-delivery-status"]) {
        return delivery_status(&body, clues, report);
    }
    if let Some(body) = part_body(message, &["feedback-report"]) {
        return feedback_report(&body, original, clues, report);
    }
    if let Some(failed) = message.header_raw("X-Failed-Recipients") {
        report.report_type = "no report (X-Failed-Recipients)".into();
        report.findings = fields::addresses(failed)
            .map(|a| finding(Kind::Unknown, Some(a.to_string()), None, None))
            .collect();
        if !report.findings.is_empty() {
            return Verdict::Report(report);
        }
    }
    if let Some(why) = auto_reply(message) {
        return Verdict::Ignored(format!("an auto-reply ({why})"));
    }
    if !clues.tokens.is_empty() {
        report.report_type = "no report (VERP)".into();
        report.findings = vec![finding(Kind::Unknown, None, None, None)];
        return Verdict::Report(report);
    }
    Verdict::Unrecognised("neither a bounce, a complaint nor an auto-reply".into())
}

/// The first Message-ID of an `In-Reply-To` or `References` value.
fn first_id(value: &mail_parser::HeaderValue) -> Option<String> {
    let id = match value {
        mail_parser::HeaderValue::Text(t) => Some(t.as_ref()),
        mail_parser::HeaderValue::TextList(l) => l.first().map(|t| t.as_ref()),
        _ => None,
    }?;
    Some(format!("<{}>", id.trim_matches(['<', '>'])))
}

/// VERP tokens found so far.
struct Clues<'a> {
    return_path: Option<&'a ReturnPath>,
    tokens: Vec<String>,
}

impl Clues<'_> {
    /// Looks for our envelope senders among the addresses in `text`.
    fn look(&mut self, text: &str) {
        let Some(path) = self.return_path else {
            return;
        };
        for word in fields::addresses(text) {
            if let Some(token) = verp::token_in(path, word)
                && !self.tokens.contains(&token)
            {
                self.tokens.push(token);
            }
        }
    }
}

fn finding(
    kind: Kind,
    recipient: Option<String>,
    status: Option<String>,
    diagnostic: Option<String>,
) -> Finding {
    Finding {
        kind,
        recipient,
        status,
        diagnostic,
    }
}

/// The body of the first `message/SUBTYPE` part of one of `subtypes`.
fn part_body(message: &Message, subtypes: &[&str]) -> Option<Vec<u8>> {
    message.parts.iter().find_map(|part| {
        let ct = part.content_type()?;
        let wanted = ct.ctype().eq_ignore_ascii_case("message")
            && ct
                .subtype()
                .is_some_and(|s| subtypes.iter().any(|w| s.eq_ignore_ascii_case(w)));
        if !wanted {
            return None;
        }
        match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => Some(b.to_vec()),
            PartType::Text(t) | PartType::Html(t) => Some(t.as_bytes().to_vec()),
            _ => None,
        }
    })
}

/// A DSN: one finding per recipient block that reports a failure or delay.
fn delivery_status(body: &[u8], clues: &mut Clues, mut report: Report) -> Verdict {
    let blocks = fields::blocks(body);
    let mut recipients = 0;
    for block in &blocks {
        // Postfix names the original envelope sender (our VERP address).
        for name in ["x-postfix-sender", "original-envelope-id"] {
            for value in block.all(name) {
                clues.look(value);
            }
        }
        if block.get("final-recipient").is_none() && block.get("original-recipient").is_none() {
            continue;
        }
        recipients += 1;
        if let Some(f) = recipient(block) {
            report.findings.push(f);
        }
    }
    report.report_type = "delivery-status".into();
    if !report.findings.is_empty() {
        return Verdict::Report(report);
    }
    if recipients > 0 {
        return Verdict::Ignored(
            "a delivery status notification that reports no failure or delay".into(),
        );
    }
    if clues.tokens.is_empty() {
        return Verdict::Unrecognised("a delivery status report that names no recipient".into());
    }
    report
        .findings
        .push(finding(Kind::Unknown, None, None, None));
    Verdict::Report(report)
}

/// One recipient block of a DSN: what it reports, if it is a failure or a
/// delay.
fn recipient(block: &Fields) -> Option<Finding> {
    let action = block.get("action").map(str::to_ascii_lowercase);
    let status = block.get("status").and_then(status_code);
    let class = status.as_deref().and_then(|s| s.chars().next());
    let kind = match (action.as_deref(), class) {
        (Some("delivered" | "relayed" | "expanded"), _) => return None,
        (Some("delayed"), _) | (_, Some('4')) => Kind::Soft,
        (Some("failed") | None, Some('5')) => Kind::Hard,
        (Some("failed"), _) => Kind::Unknown,
        (None, _) => return None,
        (Some(_), _) => Kind::Unknown,
    };
    let address = block
        .address("final-recipient")
        .or_else(|| block.address("original-recipient"));
    let diagnostic = block.get("diagnostic-code").map(|d| {
        // `smtp; 550 ...`: the type before the semicolon says little.
        match d.split_once(';') {
            Some((kind, rest)) if !kind.contains(' ') => rest.trim().to_string(),
            _ => d.to_string(),
        }
    });
    Some(finding(kind, address, status, diagnostic))
}

/// An enhanced status code (`5.1.1`, `4.4.7`, `5.1.10`) at the start of
/// `text`.
fn status_code(text: &str) -> Option<String> {
    let code = text.split_whitespace().next()?;
    let parts: Vec<&str> = code.split('.').collect();
    let ok = parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit()));
    ok.then(|| code.to_string())
}

/// An ARF report: a complaint when its type is `abuse`.
fn feedback_report(
    body: &[u8],
    original: &Original,
    clues: &mut Clues,
    mut report: Report,
) -> Verdict {
    let block = fields::blocks(body).into_iter().next().unwrap_or_default();
    for value in block.all("original-mail-from") {
        clues.look(value);
    }
    let feedback_type = block
        .get("feedback-type")
        .unwrap_or("unknown")
        .to_ascii_lowercase();
    if feedback_type != "abuse" {
        return Verdict::Ignored(format!(
            "a feedback report of type `{feedback_type}`, not a complaint"
        ));
    }
    let recipient = block
        .address("original-rcpt-to")
        .or_else(|| original.to.clone());
    report.report_type = "feedback-report (abuse)".into();
    let who = block
        .get("user-agent")
        .map(|ua| format!("reported by {ua}"));
    report
        .findings
        .push(finding(Kind::Complaint, recipient, None, who));
    Verdict::Report(report)
}

/// Why `message` is an auto-reply, if it is one.
fn auto_reply(message: &Message) -> Option<String> {
    let header = |name: &str| message.header_raw(name).map(fields::unfold);
    if let Some(v) = header("Auto-Submitted")
        && !v.is_empty()
        && !v.eq_ignore_ascii_case("no")
    {
        return Some(format!("Auto-Submitted: {v}"));
    }
    for name in ["X-Autoreply", "X-Autorespond", "X-Autoresponder"] {
        if header(name).is_some() {
            return Some(format!("{name} header"));
        }
    }
    for name in ["Precedence", "X-Precedence"] {
        if header(name).is_some_and(|v| v.eq_ignore_ascii_case("auto_reply")) {
            return Some(format!("{name}: auto_reply"));
        }
    }
    if message
        .content_type()
        .and_then(|ct| ct.attribute("report-type"))
        .is_some_and(|t| t.eq_ignore_ascii_case("disposition-notification"))
    {
        return Some("a read receipt".into());
    }
    let subject = message.subject().unwrap_or_default().to_lowercase();
    const SUBJECTS: [&str; 10] = [
        "auto:",
        "automatic reply",
        "auto reply",
        "autoreply",
        "auto-reply",
        "out of office",
        "out of the office",
        "vacation",
        "away from my desk",
        "abwesenheitsnotiz",
    ];
    SUBJECTS
        .iter()
        .find(|s| subject.trim_start().starts_with(*s))
        .map(|_| format!("subject \"{}\"", fields::unfold(&subject)))
}

/// What a report quotes of the original message: from a `message/rfc822`
/// part (or `message/global`) or a `text/rfc822-headers` part.
#[derive(Debug, Default)]
struct Original {
    message_id: Option<String>,
    /// `Return-Path` and `Sender`: where our envelope sender may show.
    senders: Vec<String>,
    /// The first address in `To`.
    to: Option<String>,
}

fn original(message: &Message) -> Original {
    for part in &message.parts {
        let headers;
        let quoted: &Message = match &part.body {
            PartType::Message(m) => m,
            PartType::Text(t) if part.is_content_type("text", "rfc822-headers") => {
                match MessageParser::new().parse_headers(t.as_bytes()) {
                    Some(m) => {
                        headers = m;
                        &headers
                    }
                    None => continue,
                }
            }
            _ => continue,
        };
        let raw = |name: &str| quoted.header_raw(name).map(fields::unfold);
        return Original {
            message_id: quoted.message_id().map(|id| format!("<{id}>")),
            senders: ["Return-Path", "Sender"]
                .iter()
                .filter_map(|n| raw(n))
                .collect(),
            to: raw("To").and_then(|to: String| fields::addresses(&to).next().map(str::to_string)),
        };
    }
    Original::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../tests/fixtures/bounces/", $name))
        };
    }

    fn report(raw: &[u8]) -> Report {
        match classify(raw, None) {
            Verdict::Report(r) => r,
            other => panic!("{other:?}"),
        }
    }

    /// (kind, recipient, status) of the only finding.
    fn one(r: &Report) -> (Kind, Option<&str>, Option<&str>) {
        assert_eq!(r.findings.len(), 1, "{r:?}");
        let f = &r.findings[0];
        (f.kind, f.recipient.as_deref(), f.status.as_deref())
    }

    #[test]
    fn dsns_of_each_mta_are_classified() {
        for (raw, kind, who, status, id) in [
            (
                &fixture!("postfix-hard.eml")[..],
                Kind::Hard,
                "reader00001@example.net",
                "5.1.1",
                "6974fca8f5efffd21515a83f",
            ),
            (
                fixture!("postfix-delayed.eml"),
                Kind::Soft,
                "reader00002@example.net",
                "4.4.1",
                "07fd5c008d42b8549f264db4",
            ),
            (
                fixture!("exim-hard.eml"),
                Kind::Hard,
                "reader00003@example.net",
                "5.0.0",
                "550d522e179e4d55b71b4361",
            ),
            (
                fixture!("gmail-hard.eml"),
                Kind::Hard,
                "reader00004@example.net",
                "5.1.1",
                "66579e280f687420aa01b55c",
            ),
            (
                fixture!("microsoft365-hard.eml"),
                Kind::Hard,
                "reader00005@example.net",
                "5.1.10",
                "50ae1cbc7ac67af78c26b073",
            ),
            (
                fixture!("ses-hard.eml"),
                Kind::Hard,
                "reader00006@example.net",
                "5.1.1",
                "c8bb22241417c4b70f67a1a0",
            ),
        ] {
            let r = report(raw);
            assert_eq!(one(&r), (kind, Some(who), Some(status)), "{r:?}");
            assert_eq!(r.report_type, "delivery-status");
            assert_eq!(
                r.message_id,
                Some(format!("<20270301.{id}@example.com>")),
                "{who}"
            );
            assert!(r.event_id.starts_with("mail:<"), "{}", r.event_id);
        }
        let r = report(fixture!("microsoft365-hard.eml"));
        assert_eq!(
            r.findings[0].diagnostic.as_deref(),
            Some(
                "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
            )
        );
        let r = report(fixture!("postfix-delayed.eml"));
        assert!(
            r.findings[0]
                .diagnostic
                .as_deref()
                .is_some_and(|d| d.starts_with("connect to mx.example.net"))
        );
    }

    #[test]
    fn an_arf_abuse_report_is_a_complaint() {
        let r = report(fixture!("arf-abuse.eml"));
        assert_eq!(
            one(&r),
            (Kind::Complaint, Some("redacted@example-isp.net"), None)
        );
        assert_eq!(r.report_type, "feedback-report (abuse)");
        assert_eq!(
            r.message_id.as_deref(),
            Some("<20270301.c90dc4f6c1a5a558d3f35382@example.com>")
        );
        assert_eq!(
            r.findings[0].diagnostic.as_deref(),
            Some("reported by ExampleISP-FBL/2.1")
        );
        let not_spam = String::from_utf8_lossy(fixture!("arf-abuse.eml"))
            .replace("Feedback-Type: abuse", "Feedback-Type: not-spam");
        assert!(matches!(
            classify(not_spam.as_bytes(), None),
            Verdict::Ignored(_)
        ));
    }

    #[test]
    fn auto_replies_are_ignored_and_other_mail_left_alone() {
        let Verdict::Ignored(why) = classify(fixture!("vacation.eml"), None) else {
            panic!("vacation")
        };
        assert!(why.starts_with("an auto-reply (Auto-Submitted"), "{why}");
        let plain =
            b"From: a@x.org\nTo: daily@example.com\nSubject: Automatic reply: today\n\nAway.\n";
        assert!(matches!(classify(plain, None), Verdict::Ignored(_)));
        for raw in [
            &fixture!("human-reply.eml")[..],
            fixture!("malformed.eml"),
            b"",
            b"\0\0\0",
            b"no colon here\n\nbody",
        ] {
            assert!(
                matches!(classify(raw, None), Verdict::Unrecognised(_)),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn a_verp_token_without_a_report_is_a_bounce_of_unknown_kind() {
        let path = ReturnPath {
            prefix: "bounces+".into(),
            suffix: "@example.com".into(),
        };
        let token = "abcdefghij234567klmn";
        let raw = String::from_utf8_lossy(fixture!("qmail-verp.eml")).replace("{{TOKEN}}", token);
        let Verdict::Report(r) = classify(raw.as_bytes(), Some(&path)) else {
            panic!("qmail")
        };
        assert_eq!(one(&r), (Kind::Unknown, None, None));
        assert_eq!(
            (r.tokens.as_slice(), r.report_type.as_str()),
            (&[token.to_string()][..], "no report (VERP)")
        );
        // Without VERP settings the same mail is nobody's.
        assert!(matches!(
            classify(raw.as_bytes(), None),
            Verdict::Unrecognised(_)
        ));
        // An auto-reply to the VERP address is still only an auto-reply.
        let vacation = String::from_utf8_lossy(fixture!("vacation.eml")).replace(
            "Delivered-To: bounces@example.com",
            &format!("Delivered-To: bounces+{token}@example.com"),
        );
        assert!(matches!(
            classify(vacation.as_bytes(), Some(&path)),
            Verdict::Ignored(_)
        ));
        // Postfix names our envelope sender in the DSN itself.
        let dsn = String::from_utf8_lossy(fixture!("postfix-hard.eml")).replace(
            "X-Postfix-Sender: rfc822; daily@example.com",
            &format!("X-Postfix-Sender: rfc822; bounces+{token}@example.com"),
        );
        let Verdict::Report(r) = classify(dsn.as_bytes(), Some(&path)) else {
            panic!("dsn")
        };
        assert_eq!(r.tokens, [token]);
    }

    #[test]
    fn a_dsn_without_failures_is_ignored_and_status_codes_are_checked() {
        let delivered = String::from_utf8_lossy(fixture!("postfix-hard.eml"))
            .replace("Action: failed", "Action: delivered")
            .replace("Status: 5.1.1", "Status: 2.0.0");
        assert!(matches!(
            classify(delivered.as_bytes(), None),
            Verdict::Ignored(_)
        ));
        assert_eq!(status_code("5.1.10 (x)").as_deref(), Some("5.1.10"));
        for bad in ["", "5.1", "3.1.1", "5.1.1111", "5.a.1", "550"] {
            assert_eq!(status_code(bad), None, "{bad}");
        }
    }
}

//! MIME assembly with lettre: one reader's copy of the issue as a complete
//! RFC 5322 message.
//!
//! multipart/alternative with the text part first, then HTML, both
//! quoted-printable (encoded by the render stage, passed to lettre
//! pre-encoded so no body is encoded per reader). Headers: From, Reply-To, To with the reader's
//! name, Subject, Date, a Message-ID derived from (issue date, address),
//! List-Id, List-Unsubscribe (https and mailto), List-Unsubscribe-Post
//! (RFC 8058), Auto-Submitted, Precedence, and Feedback-ID when set. Header
//! values from data go through lettre's encoders and `clean_line`, so no
//! value can start a header of its own.

use std::time::SystemTime;

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

use chrono::NaiveDate;

use crate::project::subscribers::AddressKey;

/// The Message-ID of the issue of `date` for `key` (a lower-cased address):
/// the same on every run, so a resend after a crash carries the same ID.
pub fn message_id(date: chrono::NaiveDate, key: &AddressKey, domain: &str) -> String {
    let digest = Sha256::digest(format!("{date}\n{key}").as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("<{}.{hex}@{domain}>", date.format("%Y%m%d"))
}

/// The issue date a Message-ID made by [`message_id`] carries (so a
/// report quoting it leads to its delivery); `None` for any other id.
pub fn message_id_date(id: &str) -> Option<chrono::NaiveDate> {
    let local = id.trim().strip_prefix('<')?.split_once('@')?.0;
    let (date, hex) = local.split_once('.')?;
    if date.len() != 8 || hex.len() != 24 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    chrono::NaiveDate::parse_from_str(date, "%Y%m%d").ok()
}

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

/// What every copy of an issue shares: built once per issue.
#[derive(Debug, Clone)]
pub struct Issue {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub subject: String,
    /// The Date header of every message of this run.
    pub date: SystemTime,
    /// The issue's day: with the address, it makes the Message-ID.
    pub issue_date: NaiveDate,
    /// The domain of Message-IDs (the From address's).
    pub domain: String,
    /// The List-Id header value, `"Name" <list.id>`.
    pub list_id: String,
    /// The address of the mailto unsubscribe link, if any.
    pub unsubscribe_mailto: Option<String>,
    pub feedback_id: Option<String>,
}

impl Issue {
    /// `name` is the newsletter's name, `list_id` the bare `list.id`.
    pub fn list_id_header(name: &str, list_id: &str) -> String {
        list_id_header(name, list_id)
    }
}

/// One reader's copy: the parts that differ per reader, both bodies
/// already quoted-printable encoded.
#[derive(Debug)]
pub struct Copy {
    pub to: Mailbox,
    /// The reader's identity, for the Message-ID.
    pub key: AddressKey,
    /// The token of the reader's unsubscribe links (https and mailto).
    pub token: String,
    pub unsubscribe_url: String,
    pub text_qp: Vec<u8>,
    pub html_qp: Vec<u8>,
}

/// Why a copy could not be assembled (lettre refused a header).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the message for {to}: {reason}")]
pub struct BuildError {
    pub to: String,
    pub reason: String,
}

/// The reader's copy of the issue as a complete RFC 5322 message (DKIM
/// signatures go in front of it afterwards, see `dkim`).
pub fn build(issue: &Issue, copy: Copy) -> Result<Message, BuildError> {
    let id = message_id(issue.issue_date, &copy.key, &issue.domain);
    // A boundary cannot occur in quoted-printable content, where "=" is
    // always followed by two hex digits or a line break.
    let boundary = format!("=_{}", &id[1..id.find('@').unwrap_or(id.len() - 1)]);
    let mut unsubscribe = format!("<{}>", copy.unsubscribe_url);
    if let Some(mailto) = &issue.unsubscribe_mailto {
        unsubscribe.push_str(&format!(
            ", <mailto:{mailto}?subject=unsubscribe%20{}>",
            copy.token
        ));
    }
    let to = copy.to.to_string();
    let mut builder = Message::builder()
        .from(issue.from.clone())
        .to(copy.to)
        .subject(issue.subject.clone())
        .date(issue.date)
        .message_id(Some(id))
        .raw_header(header("List-Id", issue.list_id.clone()))
        .raw_header(header("List-Unsubscribe", unsubscribe))
        .raw_header(header(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".into(),
        ))
        .raw_header(header("Auto-Submitted", "auto-generated".into()))
        .raw_header(header("Precedence", "bulk".into()));
    if let Some(reply_to) = &issue.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    if let Some(feedback) = &issue.feedback_id {
        builder = builder.raw_header(header("Feedback-ID", feedback.clone()));
    }
    let part = |content_type: ContentType, body: Vec<u8>| {
        SinglePart::builder()
            .header(content_type)
            .header(ContentTransferEncoding::QuotedPrintable)
            .body(Body::dangerous_pre_encoded(
                body,
                ContentTransferEncoding::QuotedPrintable,
            ))
    };
    builder
        .multipart(
            MultiPart::alternative()
                .boundary(boundary)
                .singlepart(part(ContentType::TEXT_PLAIN, copy.text_qp))
                .singlepart(part(ContentType::TEXT_HTML, copy.html_qp)),
        )
        .map_err(|e| BuildError {
            to,
            reason: e.to_string(),
        })
}

/// A message `serve` sends one at a time: a signup's confirmation
/// (transactional: no list headers) or welcome (a list message, with the
/// list headers and the reader's unsubscribe link).
#[derive(Debug)]
pub struct Letter {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub to: Mailbox,
    pub subject: String,
    pub date: SystemTime,
    pub message_id: String,
    pub text: String,
    pub html: String,
    pub list: Option<ListHeaders>,
}

/// The list headers of a letter that belongs to the list.
#[derive(Debug)]
pub struct ListHeaders {
    /// The List-Id header value, `"Name" <list.id>`.
    pub list_id: String,
    pub unsubscribe_url: String,
    /// The mailto address and the token for its subject, if any.
    pub mailto: Option<(String, String)>,
}

/// A new Message-ID for a one-off letter (`kind` names it, e.g. `confirm`):
/// random, so it says nothing about the reader.
pub fn letter_id(kind: &str, domain: &str) -> String {
    let mut random = [0u8; 12];
    // The system's random source failing is not something to go on from.
    if aws_lc_rs::rand::fill(&mut random).is_err() {
        unreachable!("the system random source failed");
    }
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("<{kind}.{hex}@{domain}>")
}

/// A letter as a complete RFC 5322 message: multipart/alternative with
/// text then HTML, encoded by lettre. Its header values come from the
/// settings and the reader's checked address and name (lettre encodes
/// them), so none can start a header of its own.
pub fn letter(letter: Letter) -> Result<Vec<u8>, BuildError> {
    let to = letter.to.to_string();
    let mut builder = Message::builder()
        .from(letter.from)
        .to(letter.to)
        .subject(letter.subject)
        .date(letter.date)
        .message_id(Some(letter.message_id))
        .raw_header(header("Auto-Submitted", "auto-generated".into()));
    if let Some(reply_to) = letter.reply_to {
        builder = builder.reply_to(reply_to);
    }
    if let Some(list) = letter.list {
        let mut unsubscribe = format!("<{}>", list.unsubscribe_url);
        if let Some((mailto, token)) = &list.mailto {
            unsubscribe.push_str(&format!(
                ", <mailto:{mailto}?subject=unsubscribe%20{token}>"
            ));
        }
        builder = builder
            .raw_header(header("List-Id", list.list_id))
            .raw_header(header("List-Unsubscribe", unsubscribe))
            .raw_header(header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".into(),
            ))
            .raw_header(header("Precedence", "bulk".into()));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(letter.text, letter.html))
        .map(|m| m.formatted())
        .map_err(|e| BuildError {
            to,
            reason: e.to_string(),
        })
}

/// `"Name" <list.id>` with the name reduced to safe ASCII phrase characters.
fn list_id_header(name: &str, id: &str) -> String {
    let phrase: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == ' ' || *c == '-')
        .collect();
    let phrase = phrase.split_whitespace().collect::<Vec<_>>().join(" ");
    if phrase.is_empty() {
        format!("<{id}>")
    } else {
        format!("\"{phrase}\" <{id}>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_stable_and_do_not_reveal_the_address() {
        let d: chrono::NaiveDate = "2027-03-01".parse().expect("date");
        let a = message_id(d, &"ada@example.org".into(), "example.com");
        assert_eq!(a, message_id(d, &"ada@example.org".into(), "example.com"));
        assert_ne!(a, message_id(d, &"bob@example.org".into(), "example.com"));
        assert!(a.starts_with("<20270301.") && a.ends_with("@example.com>") && !a.contains("ada"));
        assert_eq!(
            message_id_date(&a),
            Some(d),
            "a report quoting it finds its issue"
        );
        for other in [
            "<20270301.abc@example.com>",
            "<x@y>",
            "20270301",
            "<20271301.aaaaaaaaaaaaaaaaaaaaaaaa@x>",
        ] {
            assert_eq!(message_id_date(other), None, "{other}");
        }
    }

    #[test]
    fn list_id_phrase_is_safe() {
        assert_eq!(
            list_id_header("Beginners in AI", "daily.example.com"),
            "\"Beginners in AI\" <daily.example.com>"
        );
        assert_eq!(list_id_header("\"\r\n", "x.y"), "<x.y>");
    }
}

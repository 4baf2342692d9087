//! MIME assembly with lettre: one reader's copy of the issue as a complete
//! RFC 5322 message.
//!
//! multipart/alternative with the text part first, then HTML, both
//! quoted-printable (prepared by `email`, passed to lettre pre-encoded so no
//! body is encoded per reader). Headers: From, Reply-To, To with the reader's
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

use crate::problem::Problem;
use crate::project::subscribers::Subscriber;
use crate::render::email::Email;

/// The Message-ID of the issue of `date` for `key` (a lower-cased address):
/// the same on every run, so a resend after a crash carries the same ID.
pub fn message_id(date: chrono::NaiveDate, key: &str, domain: &str) -> String {
    let digest = Sha256::digest(format!("{date}\n{key}").as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("<{}.{hex}@{domain}>", date.format("%Y%m%d"))
}

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

/// The reader's copy of the issue as a lettre message.
pub fn build(email: &Email, reader: &Subscriber) -> Result<Message, Problem> {
    let settings = email.settings();
    // One HMAC per message: the token feeds both bodies and both headers.
    let token = email.token(reader);
    let url = email.unsubscribe_url_for(&token);
    let (text, html) = email.encoded_bodies(reader, &url)?;
    let id = message_id(email.date, &reader.key, email.domain());
    // A boundary cannot occur in quoted-printable content, where "=" is
    // always followed by two hex digits or a line break.
    let boundary = format!("=_{}", &id[1..id.find('@').unwrap_or(id.len() - 1)]);
    let mut unsubscribe = format!("<{url}>");
    if let Some(mailto) = &settings.unsubscribe.mailto {
        unsubscribe.push_str(&format!(
            ", <mailto:{mailto}?subject=unsubscribe%20{token}>"
        ));
    }
    let name = (!reader.name.is_empty()).then(|| reader.name.clone());
    let sent_at: SystemTime = email.sent_at.into();
    let mut builder = Message::builder()
        .from(settings.from.clone())
        .to(Mailbox::new(name, reader.email.clone()))
        .subject(email.subject.clone())
        .date(sent_at)
        .message_id(Some(id))
        .raw_header(header(
            "List-Id",
            list_id(&settings.name, &settings.list_id),
        ))
        .raw_header(header("List-Unsubscribe", unsubscribe))
        .raw_header(header(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".into(),
        ))
        .raw_header(header("Auto-Submitted", "auto-generated".into()))
        .raw_header(header("Precedence", "bulk".into()));
    if let Some(reply_to) = &settings.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    if let Some(feedback) = &settings.feedback_id {
        builder = builder.raw_header(header(
            "Feedback-ID",
            crate::project::subscribers::clean_line(feedback),
        ));
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
    let mut message = builder
        .multipart(
            MultiPart::alternative()
                .boundary(boundary)
                .singlepart(part(ContentType::TEXT_PLAIN, text))
                .singlepart(part(ContentType::TEXT_HTML, html)),
        )
        .map_err(|e| {
            Problem::new(
                reader.email.to_string(),
                None,
                format!("cannot build the message: {e}"),
            )
        })?;
    // Signed last, after every header is set.
    if let Some(dkim) = email.dkim() {
        message.sign(dkim);
    }
    Ok(message)
}

/// `"Name" <list.id>` with the name reduced to safe ASCII phrase characters.
fn list_id(name: &str, id: &str) -> String {
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

/// Quoted-printable (RFC 2045) for text: `\n` becomes a CRLF hard break,
/// lines are soft-broken before 76 characters, `=`, non-ASCII bytes and
/// trailing whitespace are escaped, and a `.` at the start of a line is
/// escaped too so no line can end the SMTP DATA.
pub fn qp_encode(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut col = current_column(out);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        if b == b'\n' {
            out.extend_from_slice(b"\r\n");
            col = 0;
            i += 1;
            continue;
        }
        // At the end of a piece, `end_line` adds a soft break after it, so
        // trailing whitespace there is safe as is.
        let at_line_end = matches!(bytes.get(i + 1), Some(b'\n') | Some(b'\r'));
        let literal = match b {
            b' ' | b'\t' => !at_line_end,
            b'.' => col != 0,
            b'=' => false,
            33..=126 => true,
            _ => false,
        };
        let width = if literal { 1 } else { 3 };
        if col + width > 75 {
            out.extend_from_slice(b"=\r\n");
            col = 0;
        }
        if literal {
            out.push(b);
        } else if b == b'.' {
            out.extend_from_slice(b"=2E");
        } else {
            out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        col += width;
        i += 1;
    }
}

/// Ends the current encoded line with a soft break unless it already ended,
/// so the next piece starts at column 0.
pub fn end_line(out: &mut Vec<u8>) {
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"=\r\n");
    }
}

fn current_column(out: &[u8]) -> usize {
    out.iter().rev().take_while(|&&b| b != b'\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qp(s: &str) -> String {
        let mut out = Vec::new();
        qp_encode(s, &mut out);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn encodes_quoted_printable() {
        assert_eq!(
            qp("a=b é\n.dot \nend "),
            "a=3Db =C3=A9\r\n=2Edot=20\r\nend "
        );
        let long = "x".repeat(200);
        let encoded = qp(&long);
        assert!(encoded.split("\r\n").all(|l| l.len() <= 76), "{encoded}");
        assert_eq!(encoded.replace("=\r\n", ""), long);
    }

    #[test]
    fn message_ids_are_stable_and_do_not_reveal_the_address() {
        let d: chrono::NaiveDate = "2027-03-01".parse().expect("date");
        let a = message_id(d, "ada@example.org", "example.com");
        assert_eq!(a, message_id(d, "ada@example.org", "example.com"));
        assert_ne!(a, message_id(d, "bob@example.org", "example.com"));
        assert!(a.starts_with("<20270301.") && a.ends_with("@example.com>") && !a.contains("ada"));
    }

    #[test]
    fn list_id_phrase_is_safe() {
        assert_eq!(
            list_id("Beginners in AI", "daily.example.com"),
            "\"Beginners in AI\" <daily.example.com>"
        );
        assert_eq!(list_id("\"\r\n", "x.y"), "<x.y>");
    }
}

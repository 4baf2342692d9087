//! One SMTP transaction, in steps that place a failure.
//!
//! The envelope first: when the server pipelines (RFC 2920, see
//! `pipelining`), MAIL, every RCPT and DATA go in one write and their
//! replies are read in order; otherwise (no PIPELINING, or implicit TLS,
//! where lettre owns the socket) one command at a time, each with the
//! command timeout. Then the message, whose final reply gets twice as long
//! (servers scan the message then). A negative reply is a `Reply`
//! (`reply`), sorted into transient (4xx) or permanent (5xx). A broken or silent connection
//! before the whole message was handed over cannot have delivered it
//! (`Dropped`); after that, only the reply could have told (`Unknown`).
//! [`Ended`] also says whether the session can carry the next message.
//!
//! On our own sockets the message is dot-stuffed here and written with
//! its final dot in one piece; the socket's flush count says whether all
//! of it left the process. (lettre's own writer stuffs byte by byte, a
//! fifth of a send's CPU; it remains for implicit TLS, where lettre owns
//! the socket.)

use std::sync::atomic::{AtomicBool, Ordering};

use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};

use super::pipelining::{self, Batch};
use super::reply::{Reply, Stopped, classify, humantime_secs, reply_text};
use super::smtp::Session;
use super::{SendError, Smtp};

/// How a transaction ended: its result, and whether its session can
/// carry another message (after RSET, when it was refused).
pub(super) struct Ended {
    pub(super) result: Result<String, SendError>,
    pub(super) reusable: bool,
}

/// One SMTP transaction: the envelope (pipelined or step by step), then
/// the message, so that a failure can be placed: before the final dot
/// nothing can have been delivered; after it, only the reply can tell.
pub(super) async fn transact(
    session: &mut Session,
    smtp: &Smtp,
    envelope: &Envelope,
    bytes: &[u8],
    reused: bool,
) -> Ended {
    if let Err(Stopped { error, reusable }) = open(session, smtp, envelope, bytes, reused).await {
        return Ended {
            result: Err(error),
            reusable,
        };
    }
    let result = message(session, smtp, bytes).await;
    let reusable = match &result {
        Ok(_) => true,
        Err(e) => e.keeps_session(),
    };
    Ended { result, reusable }
}

/// MAIL, RCPT… and DATA, up to the server's go-ahead for the message.
async fn open(
    session: &mut Session,
    smtp: &Smtp,
    envelope: &Envelope,
    bytes: &[u8],
    reused: bool,
) -> Result<(), Stopped> {
    let conn = &mut session.conn;
    let params = mail_parameters(conn, smtp, envelope, bytes).map_err(Stopped::at_step)?;
    let mail = Mail::new(envelope.from().cloned(), params);
    let rcpts = envelope.to().iter().map(|to| Rcpt::new(to.clone(), vec![]));
    if session.pipelining {
        return pipelining::open(conn, smtp, Batch::new(mail, rcpts), reused).await;
    }
    let step = |first: bool| {
        move |what: &str, e: &dyn std::fmt::Display| SendError::Dropped {
            reason: format!("{what} {}: {e}", smtp.endpoint()),
            stale: first && reused,
        }
    };
    command(conn, smtp, mail, step(true))
        .await
        .map_err(Stopped::at_step)?;
    for rcpt in rcpts {
        command(conn, smtp, rcpt, step(false))
            .await
            .map_err(Stopped::at_step)?;
    }
    command(conn, smtp, Data, step(false))
        .await
        .map_err(Stopped::at_step)
}

/// The message and its final dot, after the server's 354.
async fn message(session: &mut Session, smtp: &Smtp, bytes: &[u8]) -> Result<String, SendError> {
    let conn = &mut session.conn;
    // Whether the whole message, final dot included, was handed over
    // when a failure struck: after that, only the reply could have told.
    let (result, complete) = match (&session.flushes, std::str::from_utf8(bytes)) {
        (Some(flushes), Ok(text)) => {
            let before = flushes.count();
            let result =
                tokio::time::timeout(smtp.data_timeout(), conn.command(Stuffed(text))).await;
            (result, flushes.count() > before)
        }
        _ => {
            // lettre writes the body, then asks the iterator for more: that
            // is the moment the whole body has been handed to the socket.
            // It then writes the final dot and reads the reply (a lost dot
            // counts as unknown, erring on the side of not losing the
            // reader).
            let sent = AtomicBool::new(false);
            let parts = BodyParts {
                body: Some(bytes),
                sent: &sent,
            };
            let result = tokio::time::timeout(smtp.data_timeout(), conn.message_iter(parts)).await;
            (result, sent.load(Ordering::SeqCst))
        }
    };
    let broke = |what: &str, e: &dyn std::fmt::Display| SendError::Dropped {
        reason: format!("{what} {}: {e}", smtp.endpoint()),
        stale: false,
    };
    match result {
        Ok(Ok(response)) => Ok(reply_text(&response)),
        Ok(Err(e)) if e.is_transient() || e.is_permanent() => Err(classify(&e)),
        Ok(Err(e)) if complete => Err(SendError::Unknown(format!(
            "the connection to {} broke after the whole message was sent, before the reply: {e}",
            smtp.endpoint()
        ))),
        Ok(Err(e)) => Err(broke("the connection broke while sending to", &e)),
        Err(_) if complete => Err(SendError::Unknown(format!(
            "no reply from {} within {} after the whole message was sent",
            smtp.endpoint(),
            humantime_secs(smtp.data_timeout())
        ))),
        Err(_) => Err(broke(
            "timed out writing the message to",
            &humantime_secs(smtp.data_timeout()),
        )),
    }
}

/// MAIL FROM's parameters: SMTPUTF8 for an address that needs it (refused
/// here, as a 553, when the server lacks it) and 8BITMIME for a body that
/// is not ASCII.
fn mail_parameters(
    conn: &AsyncSmtpConnection,
    smtp: &Smtp,
    envelope: &Envelope,
    bytes: &[u8],
) -> Result<Vec<MailParameter>, SendError> {
    let mut params = Vec::new();
    if envelope
        .to()
        .iter()
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii())
        || envelope
            .from()
            .is_some_and(|a| !AsRef::<str>::as_ref(a).is_ascii())
    {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(SendError::Permanent(Reply {
                code: 553,
                text: format!(
                    "(from dailyissue) {} does not support SMTPUTF8, which this address needs",
                    smtp.endpoint()
                ),
            }));
        }
        params.push(MailParameter::SmtpUtfEight);
    }
    if !bytes.is_ascii() {
        params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(params)
}

/// A message as it goes on the wire after DATA (RFC 5321 §4.5.2): a dot
/// that starts a line is doubled, and the final dot follows, so one write
/// carries it all. (Written as lettre's own writer does: the final
/// `CRLF . CRLF` after the message's own last line break.)
struct Stuffed<'a>(&'a str);

impl std::fmt::Display for Stuffed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0;
        let mut from = 0;
        // Dots are found with memchr (a `char` pattern); few start a line.
        for (at, _) in text.match_indices('.') {
            if at == 0 || text[..at].ends_with("\r\n") {
                f.write_str(&text[from..=at])?;
                f.write_str(".")?;
                from = at + 1;
            }
        }
        f.write_str(&text[from..])?;
        f.write_str("\r\n.\r\n")
    }
}

/// The message body as lettre's `message_iter` consumes it, noting when
/// lettre has written all of it.
struct BodyParts<'a> {
    body: Option<&'a [u8]>,
    sent: &'a AtomicBool,
}

impl<'a> Iterator for BodyParts<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let part = self.body.take();
        if part.is_none() {
            self.sent.store(true, Ordering::SeqCst);
        }
        part
    }
}

/// Sends one command with the command timeout; a negative reply is sorted
/// by [`classify`], anything else (a broken or silent connection) is a drop.
async fn command<C: std::fmt::Display>(
    conn: &mut AsyncSmtpConnection,
    smtp: &Smtp,
    cmd: C,
    dropped: impl Fn(&str, &dyn std::fmt::Display) -> SendError,
) -> Result<(), SendError> {
    match tokio::time::timeout(smtp.timeout, conn.command(cmd)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.is_transient() || e.is_permanent() => Err(classify(&e)),
        Ok(Err(e)) => Err(dropped("the connection broke at", &e)),
        Err(_) => Err(dropped(
            "no reply in time from",
            &humantime_secs(smtp.timeout),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_dot_stuffed_as_lettre_does_it() {
        // (what lettre's ClientCodec writes, then its final CRLF . CRLF)
        for (text, wire) in [
            ("", "\r\n.\r\n"),
            (".", "..\r\n.\r\n"),
            ("a\r\n.b\r\n", "a\r\n..b\r\n\r\n.\r\n"),
            (
                ".start\r\n..two\r\nmid.dle\r\n.\r\n",
                "..start\r\n...two\r\nmid.dle\r\n..\r\n\r\n.\r\n",
            ),
            ("no dots\r\n", "no dots\r\n\r\n.\r\n"),
            ("\r\n.\r\n.", "\r\n..\r\n..\r\n.\r\n"),
            ("bare\n.lf\r\n", "bare\n.lf\r\n\r\n.\r\n"),
        ] {
            assert_eq!(Stuffed(text).to_string(), wire, "{text:?}");
        }
    }

    #[test]
    fn the_body_counts_as_sent_once_lettre_asks_for_more() {
        let flag = AtomicBool::new(false);
        let mut parts = BodyParts {
            body: Some(b"x"),
            sent: &flag,
        };
        assert_eq!(parts.next(), Some(&b"x"[..]));
        assert!(!flag.load(Ordering::SeqCst), "not yet: it is being written");
        assert_eq!(parts.next(), None);
        assert!(flag.load(Ordering::SeqCst));
    }
}

//! What an SMTP server answered and what it means for the sender: a
//! [`Reply`], its sorting into transient or permanent (`classify`), and a
//! transaction that [`Stopped`] before its message was sent. Shared by the
//! step-by-step dialogue (`transaction`) and the pipelined one
//! (`pipelining`).

use std::time::Duration;

use super::SendError;

/// An SMTP reply: its code and its text (every line, joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

impl Reply {
    /// A 421: the server closes the connection after it.
    pub fn closes(&self) -> bool {
        self.code == 421
    }

    /// 550/551/553 with an enhanced status code 5.1.x (RFC 3463): the
    /// mailbox does not exist, so the address bounces for good.
    pub fn unknown_mailbox(&self) -> bool {
        matches!(self.code, 550 | 551 | 553) && enhanced_is_mailbox(&self.text)
    }
}

/// A transaction that stopped before the message was sent.
pub(super) struct Stopped {
    pub(super) error: SendError,
    /// Every reply was read (or the refusal was ours): RSET may follow.
    pub(super) reusable: bool,
}

impl Stopped {
    /// Stopped at a reply of the step-by-step dialogue: the session is
    /// in step unless the connection broke or the server closes it.
    pub(super) fn at_step(error: SendError) -> Stopped {
        Stopped {
            reusable: error.keeps_session(),
            error,
        }
    }
}

pub(super) fn humantime_secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

pub(super) fn reply_text(response: &lettre::transport::smtp::response::Response) -> String {
    format!(
        "{} {}",
        response.code(),
        response.message().collect::<Vec<_>>().join(" ")
    )
}

/// Sorts a negative SMTP reply into what the sender does next.
pub(super) fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    use std::error::Error as _;
    let reply = Reply {
        code: e
            .status()
            .and_then(|c| c.to_string().parse().ok())
            .unwrap_or(if e.is_transient() { 400 } else { 500 }),
        // lettre keeps the reply's text as the error's source.
        text: e.source().map_or_else(|| e.to_string(), |s| s.to_string()),
    };
    if e.is_transient() {
        SendError::Transient(reply)
    } else {
        SendError::Permanent(reply)
    }
}

/// Whether an SMTP reply carries an enhanced status code 5.1.x (bad
/// destination mailbox address, RFC 3463).
pub fn enhanced_is_mailbox(reply: &str) -> bool {
    reply
        .split(|c: char| c.is_whitespace() || c == ':' || c == ',')
        .any(|w| w.starts_with("5.1.") && w[4..].chars().all(|c| c.is_ascii_digit()) && w.len() > 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_say_whether_the_mailbox_is_unknown_and_the_session_ends() {
        let reply = |code, text: &str| Reply {
            code,
            text: text.into(),
        };
        assert!(reply(550, "5.1.1 no such user").unknown_mailbox());
        assert!(!reply(550, "5.7.1 rejected as spam").unknown_mailbox());
        assert!(!reply(554, "5.1.1 odd but not a mailbox code").unknown_mailbox());
        assert!(reply(421, "4.7.0 slow down").closes());
        assert!(SendError::Transient(reply(451, "later")).keeps_session());
        assert!(!SendError::Transient(reply(421, "bye")).keeps_session());
        assert!(SendError::Permanent(reply(550, "no")).keeps_session());
        assert_eq!(
            reply(451, "4.7.1 try later").to_string(),
            "451 4.7.1 try later"
        );
    }

    #[test]
    fn recognises_unknown_mailbox_codes() {
        assert!(enhanced_is_mailbox(
            "permanent error (550): 5.1.1 no such user"
        ));
        assert!(enhanced_is_mailbox("550 5.1.10 Recipient address rejected"));
        assert!(!enhanced_is_mailbox("550 5.7.1 message rejected as spam"));
        assert!(!enhanced_is_mailbox("550 mailbox unavailable"));
    }
}

//! Where messages go: the one seam every send passes through.
//!
//! [`Sink`] is chosen once per run: SMTP (one TCP_NODELAY connection per
//! worker, driven through lettre's `AsyncSmtpConnection`, see STACK.md for
//! why not lettre's pool), a folder of `.eml` files, or a dry run that
//! delivers nowhere (optionally writing `.eml` files). A [`Connection`] is
//! one worker's handle on the sink. Errors are classified for the caller,
//! which decides about retries and the ledger.
//!
//! This file holds the seam itself: the sinks, a worker's connection, the
//! file sink and its file names, and the errors the caller acts on. SMTP
//! lives apart: `smtp` resolves the settings and opens a session (TLS,
//! whether the server pipelines, authentication), `transaction` runs one
//! message through it and places a failure before or after the final dot,
//! `pipelining` sends its envelope in one write when the server allows it
//! (RFC 2920) and reads the replies in order; `reply` is what both make of
//! a server's answer.

mod counted;
mod pipelining;
mod reply;
#[cfg(test)]
mod script;
mod smtp;
mod transaction;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lettre::address::Envelope;

pub use reply::Reply;
pub use smtp::{Session, Smtp};

/// Why one delivery attempt did not end with the server's 250.
///
/// The variants say what the ledger must believe: only [`SendError::Unknown`]
/// may have delivered the message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// A 4xx reply: not delivered, try again later. A 421 also closes the
    /// connection (the server is throttling or going away).
    #[error("{0}")]
    Transient(Reply),
    /// A 5xx reply.
    #[error("{0}")]
    Permanent(Reply),
    /// The connection broke (or stalled) before the whole message was sent:
    /// the server cannot have accepted it. `stale` when it broke at the very
    /// first command on a connection that had carried earlier messages (an
    /// idle connection the server had closed): worth one immediate retry.
    #[error("{reason}")]
    Dropped { reason: String, stale: bool },
    /// The whole message was sent but no reply came (the connection dropped
    /// or the reply timed out): the server may have accepted it.
    #[error("{0}")]
    Unknown(String),
    /// No connection could be opened.
    #[error("{0}")]
    Connect(ConnectError),
    /// The file sink could not write the message.
    #[error("cannot write {}: {reason}", .path.display())]
    File { path: PathBuf, reason: String },
}

impl SendError {
    /// A refusal after which the SMTP session is still usable (after RSET):
    /// any reply but a 421, which closes the connection.
    fn keeps_session(&self) -> bool {
        match self {
            SendError::Permanent(_) => true,
            SendError::Transient(r) => !r.closes(),
            _ => false,
        }
    }
}

/// Why a connection could not be opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// Refused, timed out, no greeting, TLS or authentication failed.
    #[error("{0}")]
    Unreachable(String),
    /// A 4xx reply to the greeting, EHLO or AUTH (typically 421: too many
    /// connections, or slow down): the server is up and asks for patience.
    #[error("{0}")]
    Throttled(String),
}

/// Where this run's messages go.
#[derive(Debug, Clone)]
pub enum Sink {
    Smtp(Arc<Smtp>),
    /// Writes each message to `DIR/DATE/ADDRESS.eml`.
    Files(PathBuf),
    /// Delivers nowhere; with a folder, writes `.eml` files there.
    DryRun(Option<PathBuf>),
}

impl Sink {
    pub fn describe(&self) -> String {
        match self {
            Sink::Smtp(s) => format!("smtp {}", s.endpoint()),
            Sink::Files(dir) => format!("files in {}", dir.display()),
            Sink::DryRun(Some(dir)) => format!("dry run, .eml files in {}", dir.display()),
            Sink::DryRun(None) => "dry run".into(),
        }
    }

    pub fn connection(&self) -> Connection {
        Connection {
            sink: self.clone(),
            smtp: None,
            carried: 0,
        }
    }

    /// The folder `.eml` files go to, if any.
    pub fn folder(&self) -> Option<&Path> {
        match self {
            Sink::Files(dir) | Sink::DryRun(Some(dir)) => Some(dir),
            Sink::Smtp(_) | Sink::DryRun(None) => None,
        }
    }
}

/// One worker's handle: for SMTP, a connection opened on demand and
/// dropped after anything that may have left it in an unknown state.
pub struct Connection {
    sink: Sink,
    smtp: Option<Session>,
    /// Messages the current SMTP connection has carried.
    carried: u64,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

/// A file name for an address: safe on every filesystem we care about, and
/// one-to-one, so two addresses never share a file (`%` escapes `/`, `\\`,
/// `%`, control characters and a leading `.`).
pub fn file_name(address: &str) -> String {
    let mut name = String::with_capacity(address.len() + 4);
    for (i, c) in address.chars().enumerate() {
        if c == '/' || c == '\\' || c == '%' || c.is_control() || (i == 0 && c == '.') {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                name.push_str(&format!("%{b:02X}"));
            }
        } else {
            name.push(c);
        }
    }
    name.push_str(".eml");
    name
}

impl Connection {
    /// Makes sure an SMTP connection is open (nothing to do for other sinks).
    pub async fn ensure(&mut self) -> Result<(), ConnectError> {
        if let (Sink::Smtp(smtp), None) = (&self.sink, &self.smtp) {
            self.smtp = Some(smtp.connect().await?);
            self.carried = 0;
        }
        Ok(())
    }

    /// Delivers one message; returns the server's reply (or a description).
    pub async fn deliver(
        &mut self,
        envelope: &Envelope,
        date: &str,
        address: &str,
        bytes: &[u8],
    ) -> Result<String, SendError> {
        match &self.sink {
            Sink::Smtp(smtp) => {
                let smtp = smtp.clone();
                self.ensure().await.map_err(SendError::Connect)?;
                let Some(session) = self.smtp.as_mut() else {
                    return Err(SendError::Connect(ConnectError::Unreachable(
                        "no connection".into(),
                    )));
                };
                let reused = self.carried > 0;
                let transaction::Ended { result, reusable } =
                    transaction::transact(session, &smtp, envelope, bytes, reused).await;
                if !reusable {
                    self.smtp = None;
                    return result;
                }
                self.carried += 1;
                // Refused, but every reply was read: reset the session and
                // keep the connection (unless RSET fails).
                if result.is_err() && !smtp.reset(&mut session.conn).await {
                    self.smtp = None;
                }
                result
            }
            Sink::Files(dir) | Sink::DryRun(Some(dir)) => {
                let path = dir.join(date).join(file_name(address));
                crate::atomic::write(&path, bytes).map_err(|e| SendError::File {
                    path: path.clone(),
                    reason: format!("{:#}", e.root_cause()),
                })?;
                Ok(format!("written to {}", path.display()))
            }
            Sink::DryRun(None) => Ok("dry run".into()),
        }
    }

    /// Closes an SMTP connection politely.
    pub async fn close(&mut self) {
        if let (Some(session), Sink::Smtp(smtp)) = (self.smtp.take(), &self.sink) {
            smtp.quit(session).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_never_shared() {
        assert_eq!(file_name("a/b@x.org"), "a%2Fb@x.org.eml");
        assert_eq!(file_name("a_b@x.org"), "a_b@x.org.eml");
        assert_eq!(file_name(".hidden@x.org"), "%2Ehidden@x.org.eml");
        assert_eq!(file_name("50%@x.org"), "50%25@x.org.eml");
        assert_ne!(file_name("a%2Fb@x.org"), file_name("a/b@x.org"));
    }
}

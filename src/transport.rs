//! Where messages go: the one seam every send passes through.
//!
//! [`Sink`] is chosen once per run: SMTP (one TCP_NODELAY connection per
//! worker, driven through lettre's `AsyncSmtpConnection`, see STACK.md for
//! why not lettre's pool), a folder of `.eml` files, or a dry run that
//! delivers nowhere (optionally writing `.eml` files). A [`Connection`] is
//! one worker's handle on the sink. Errors are classified for the caller,
//! which decides about retries and the ledger.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::settings::{SmtpSettings, Tls};

/// Why one delivery attempt failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// A 4xx reply: try again later.
    #[error("{0}")]
    Transient(String),
    /// A 5xx reply. `unknown_mailbox` for 550/551/553 with enhanced status 5.1.x.
    #[error("{reply}")]
    Permanent {
        reply: String,
        unknown_mailbox: bool,
    },
    /// The connection failed or dropped: reconnect and try again.
    #[error("{0}")]
    Connection(String),
}

impl SendError {
    pub fn reply(&self) -> String {
        self.to_string()
    }
}

/// SMTP settings resolved for a run: the password read from the environment,
/// TLS parameters built once.
#[derive(Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    tls: Tls,
    tls_parameters: Option<TlsParameters>,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the credentials.
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// A configuration problem found before connecting (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Smtp {
    pub fn new(settings: &SmtpSettings, root: &Path) -> Result<Smtp, ConfigError> {
        let credentials = match (&settings.username, &settings.password_env) {
            (Some(user), Some(env)) => {
                let password = std::env::var(env).ok().filter(|p| !p.is_empty()).ok_or_else(|| {
                    ConfigError(format!(
                        "[smtp] password_env names {env}, but that environment variable is not set; export it before sending"
                    ))
                })?;
                Some(Credentials::new(user.clone(), password))
            }
            _ => None,
        };
        let tls_parameters = match settings.tls {
            Tls::None => None,
            Tls::Starttls | Tls::Implicit => {
                let mut builder = TlsParameters::builder(settings.host.clone());
                if let Some(ca) = &settings.ca_file {
                    let path = root.join(ca);
                    let pem = std::fs::read(&path).map_err(|e| {
                        ConfigError(format!("[smtp] ca_file {}: {e}", path.display()))
                    })?;
                    let cert = Certificate::from_pem(&pem).map_err(|e| {
                        ConfigError(format!(
                            "[smtp] ca_file {} is not a PEM certificate: {e}",
                            path.display()
                        ))
                    })?;
                    builder = builder.add_root_certificate(cert);
                }
                Some(
                    builder
                        .build()
                        .map_err(|e| ConfigError(format!("[smtp] TLS setup failed: {e}")))?,
                )
            }
        };
        let hello = match &settings.helo {
            Some(name) => ClientId::Domain(name.clone()),
            None => ClientId::default(),
        };
        Ok(Smtp {
            host: settings.host.clone(),
            port: settings.port,
            tls: settings.tls,
            tls_parameters,
            credentials,
            hello,
            timeout: settings.timeout,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Opens, secures and authenticates one connection.
    pub async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            SendError::Connection(format!("{what} {}: {e}", self.endpoint()))
        };
        let mut conn = match self.tls {
            // Implicit TLS: lettre opens the socket itself, so it cannot get
            // TCP_NODELAY; see the README's note on `tls = "tls"`.
            Tls::Implicit => tokio::time::timeout(
                self.timeout,
                AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(self.timeout),
                    &self.hello,
                    self.tls_parameters.clone(),
                    None,
                ),
            )
            .await
            .map_err(|e| fail("timed out connecting to", &e))?
            .map_err(|e| fail("cannot connect to", &e))?,
            Tls::Starttls | Tls::None => {
                let stream = tokio::time::timeout(
                    self.timeout,
                    tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
                )
                .await
                .map_err(|e| fail("timed out connecting to", &e))?
                .map_err(|e| fail("cannot connect to", &e))?;
                // lettre writes the body and the final "." separately; without
                // NODELAY, Nagle plus delayed ACKs cost ~40 ms per message.
                stream
                    .set_nodelay(true)
                    .map_err(|e| fail("cannot configure socket for", &e))?;
                let mut conn = tokio::time::timeout(
                    self.timeout,
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello),
                )
                .await
                .map_err(|e| fail("timed out greeting", &e))?
                .map_err(|e| fail("no SMTP greeting from", &e))?;
                if let (Tls::Starttls, Some(params)) = (self.tls, &self.tls_parameters) {
                    conn.starttls(params.clone(), &self.hello)
                        .await
                        .map_err(|e| fail("STARTTLS failed with", &e))?;
                }
                conn
            }
        };
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| {
                    // Authentication failures will not fix themselves by retrying
                    // this message, but may after a fix: treat as connection-level.
                    SendError::Connection(format!(
                        "authentication at {} failed: {e}",
                        self.endpoint()
                    ))
                })?;
        }
        Ok(conn)
    }
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
        }
    }
}

/// One worker's handle: for SMTP, a connection opened on first use and
/// dropped after any error.
pub struct Connection {
    sink: Sink,
    smtp: Option<AsyncSmtpConnection>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

/// A file name for an address: safe on every filesystem we care about.
pub fn file_name(address: &str) -> String {
    let mut name: String = address
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if name.starts_with('.') {
        name.replace_range(0..1, "_");
    }
    format!("{name}.eml")
}

impl Connection {
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
                let timeout = smtp.timeout;
                if self.smtp.is_none() {
                    self.smtp = Some(smtp.connect().await?);
                }
                let Some(conn) = self.smtp.as_mut() else {
                    return Err(SendError::Connection("no connection".into()));
                };
                let result = tokio::time::timeout(timeout * 2, conn.send(envelope, bytes)).await;
                match result {
                    Ok(Ok(response)) => {
                        let reply = format!(
                            "{} {}",
                            response.code(),
                            response.message().collect::<Vec<_>>().join(" ")
                        );
                        Ok(reply)
                    }
                    Ok(Err(e)) => {
                        // lettre closes the connection after any error reply.
                        self.smtp = None;
                        Err(classify(&e))
                    }
                    Err(_) => {
                        self.smtp = None;
                        Err(SendError::Connection(format!(
                            "timed out sending to {}",
                            smtp.endpoint()
                        )))
                    }
                }
            }
            Sink::Files(dir) | Sink::DryRun(Some(dir)) => {
                let path = dir.join(date).join(file_name(address));
                crate::atomic::write(&path, bytes)
                    .map_err(|e| SendError::Connection(format!("{e:#}")))?;
                Ok(format!("written to {}", path.display()))
            }
            Sink::DryRun(None) => Ok("dry run".into()),
        }
    }

    /// Closes an SMTP connection politely.
    pub async fn close(&mut self) {
        if let Some(mut conn) = self.smtp.take() {
            let _ = conn.quit().await;
        }
    }
}

/// Sorts a lettre error into what the sender does next.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let text = e.to_string();
    if e.is_transient() {
        return SendError::Transient(text);
    }
    if e.is_permanent() {
        let code = e.status().map(|c| c.to_string()).unwrap_or_default();
        let unknown_mailbox =
            matches!(code.as_str(), "550" | "551" | "553") && enhanced_is_mailbox(&text);
        return SendError::Permanent {
            reply: text,
            unknown_mailbox,
        };
    }
    SendError::Connection(text)
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
    fn recognises_unknown_mailbox_codes() {
        assert!(enhanced_is_mailbox(
            "permanent error (550): 5.1.1 no such user"
        ));
        assert!(enhanced_is_mailbox("550 5.1.10 Recipient address rejected"));
        assert!(!enhanced_is_mailbox("550 5.7.1 message rejected as spam"));
        assert!(!enhanced_is_mailbox("550 mailbox unavailable"));
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name("a/b@x.org"), "a_b@x.org.eml");
        assert_eq!(file_name(".hidden@x.org"), "_hidden@x.org.eml");
    }
}

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
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

use crate::project::settings::{SmtpSettings, Tls};

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

    /// `STARTTLS, authenticated` and the like, for `-v`.
    fn describe_session(&self) -> String {
        let tls = match self.tls {
            Tls::Implicit => "TLS",
            Tls::Starttls => "STARTTLS",
            Tls::None => "plain",
        };
        match &self.credentials {
            Some(_) => format!("{tls}, authenticated"),
            None => tls.to_string(),
        }
    }

    /// How long to wait for the reply to the message's final dot: servers
    /// scan the message then, so it gets twice the command timeout.
    fn data_timeout(&self) -> Duration {
        self.timeout * 2
    }

    /// Opens, secures and authenticates one connection.
    pub async fn connect(&self) -> Result<AsyncSmtpConnection, ConnectError> {
        let started = std::time::Instant::now();
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
            .map_err(|e| self.unreachable("timed out connecting to", &e))?
            .map_err(|e| self.refused("cannot connect to", &e))?,
            Tls::Starttls | Tls::None => self.greet().await?,
        };
        if let Some(credentials) = &self.credentials {
            self.authenticate(&mut conn, credentials).await?;
        }
        let how = self.describe_session();
        let took = started.elapsed();
        tracing::debug!(
            "SMTP connection opened to {} ({how}) in {took:.0?}",
            self.endpoint()
        );
        Ok(conn)
    }

    /// Our own TCP connection (with TCP_NODELAY), the server's greeting,
    /// and STARTTLS when it is configured.
    async fn greet(&self) -> Result<AsyncSmtpConnection, ConnectError> {
        let stream = tokio::time::timeout(
            self.timeout,
            tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|e| self.unreachable("timed out connecting to", &e))?
        .map_err(|e| self.unreachable("cannot connect to", &e))?;
        // lettre writes the body and the final "." separately; without
        // NODELAY, Nagle plus delayed ACKs cost ~40 ms per message.
        stream
            .set_nodelay(true)
            .map_err(|e| self.unreachable("cannot configure socket for", &e))?;
        let mut conn = tokio::time::timeout(
            self.timeout,
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello),
        )
        .await
        .map_err(|e| self.unreachable("no SMTP greeting in time from", &e))?
        .map_err(|e| self.refused("no SMTP greeting from", &e))?;
        if let (Tls::Starttls, Some(params)) = (self.tls, &self.tls_parameters) {
            tokio::time::timeout(self.timeout, conn.starttls(params.clone(), &self.hello))
                .await
                .map_err(|e| self.unreachable("STARTTLS timed out with", &e))?
                .map_err(|e| self.refused("STARTTLS failed with", &e))?;
        }
        Ok(conn)
    }

    async fn authenticate(
        &self,
        conn: &mut AsyncSmtpConnection,
        credentials: &Credentials,
    ) -> Result<(), ConnectError> {
        tokio::time::timeout(
            self.timeout,
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials),
        )
        .await
        .map_err(|e| self.unreachable("authentication timed out at", &e))?
        .map_err(|e| {
            // A wrong password will not fix itself by retrying: the run
            // stops once every connection has failed (a 4xx still waits).
            if e.is_transient() {
                ConnectError::Throttled(format!(
                    "authentication at {} deferred: {e}",
                    self.endpoint()
                ))
            } else {
                ConnectError::Unreachable(format!(
                    "authentication at {} failed: {e}",
                    self.endpoint()
                ))
            }
        })?;
        Ok(())
    }

    /// No SMTP service here (or none in time): refused, timed out, TLS failed.
    fn unreachable(&self, what: &str, e: &dyn std::fmt::Display) -> ConnectError {
        ConnectError::Unreachable(format!("{what} {}: {e}", self.endpoint()))
    }

    /// A negative reply while connecting. A 4xx to the greeting or EHLO is
    /// the server asking us to wait (421 too many connections); anything
    /// else means no service here.
    fn refused(&self, what: &str, e: &lettre::transport::smtp::Error) -> ConnectError {
        if e.is_transient() {
            ConnectError::Throttled(format!("{} answered {e}", self.endpoint()))
        } else {
            self.unreachable(what, e)
        }
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
    smtp: Option<AsyncSmtpConnection>,
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
                let Some(conn) = self.smtp.as_mut() else {
                    return Err(SendError::Connect(ConnectError::Unreachable(
                        "no connection".into(),
                    )));
                };
                let reused = self.carried > 0;
                let result = transact(conn, &smtp, envelope, bytes, reused).await;
                match &result {
                    Ok(_) => self.carried += 1,
                    // The transaction was refused but the session is intact:
                    // reset it and keep the connection (unless RSET fails).
                    Err(e) if e.keeps_session() => {
                        self.carried += 1;
                        let reset = tokio::time::timeout(smtp.timeout, conn.command(Rset)).await;
                        if !matches!(reset, Ok(Ok(_))) {
                            self.smtp = None;
                        }
                    }
                    Err(_) => self.smtp = None,
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
        if let (Some(mut conn), Sink::Smtp(smtp)) = (self.smtp.take(), &self.sink) {
            let _ = tokio::time::timeout(smtp.timeout, conn.quit()).await;
        }
    }
}

/// One SMTP transaction, step by step (MAIL, RCPT, DATA, the message), so
/// that a failure can be placed: before the final dot nothing can have been
/// delivered; after it, only the reply can tell.
async fn transact(
    conn: &mut AsyncSmtpConnection,
    smtp: &Smtp,
    envelope: &Envelope,
    bytes: &[u8],
    reused: bool,
) -> Result<String, SendError> {
    let params = mail_parameters(conn, smtp, envelope, bytes)?;
    let step = |first: bool| {
        move |what: &str, e: &dyn std::fmt::Display| SendError::Dropped {
            reason: format!("{what} {}: {e}", smtp.endpoint()),
            stale: first && reused,
        }
    };
    command(
        conn,
        smtp,
        Mail::new(envelope.from().cloned(), params),
        step(true),
    )
    .await?;
    for to in envelope.to() {
        command(conn, smtp, Rcpt::new(to.clone(), vec![]), step(false)).await?;
    }
    command(conn, smtp, Data, step(false)).await?;

    // lettre writes the body, then asks the iterator for more: that is the
    // moment the whole body has been handed to the socket. It then writes
    // the final dot and reads the reply. A failure after the flag is set is
    // an unknown outcome (counting a lost dot as unknown errs on the side
    // of not losing the reader).
    let sent = AtomicBool::new(false);
    let parts = BodyParts {
        body: Some(bytes),
        sent: &sent,
    };
    let result = tokio::time::timeout(smtp.data_timeout(), conn.message_iter(parts)).await;
    let complete = sent.load(Ordering::SeqCst);
    match result {
        Ok(Ok(response)) => Ok(reply_text(&response)),
        Ok(Err(e)) if e.is_transient() || e.is_permanent() => Err(classify(&e)),
        Ok(Err(e)) if complete => Err(SendError::Unknown(format!(
            "the connection to {} broke after the whole message was sent, before the reply: {e}",
            smtp.endpoint()
        ))),
        Ok(Err(e)) => Err(step(false)("the connection broke while sending to", &e)),
        Err(_) if complete => Err(SendError::Unknown(format!(
            "no reply from {} within {} after the whole message was sent",
            smtp.endpoint(),
            humantime_secs(smtp.data_timeout())
        ))),
        Err(_) => Err(step(false)(
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

fn humantime_secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

fn reply_text(response: &lettre::transport::smtp::response::Response) -> String {
    format!(
        "{} {}",
        response.code(),
        response.message().collect::<Vec<_>>().join(" ")
    )
}

/// Sorts a negative SMTP reply into what the sender does next.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
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

    #[test]
    fn file_names_are_safe_and_never_shared() {
        assert_eq!(file_name("a/b@x.org"), "a%2Fb@x.org.eml");
        assert_eq!(file_name("a_b@x.org"), "a_b@x.org.eml");
        assert_eq!(file_name(".hidden@x.org"), "%2Ehidden@x.org.eml");
        assert_eq!(file_name("50%@x.org"), "50%25@x.org.eml");
        assert_ne!(file_name("a%2Fb@x.org"), file_name("a/b@x.org"));
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

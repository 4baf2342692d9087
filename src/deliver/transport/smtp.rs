//! SMTP settings resolved for a run, and one session opened with them.
//!
//! [`Smtp`] is built once per run: the password read from the environment
//! (the settings only name the variable), the CA file read and the TLS
//! parameters built, so a configuration problem stops the run before
//! anything is sent (exit 2). [`Smtp::connect`] opens one session: our own
//! TCP_NODELAY socket that counts its flushes (or lettre's for implicit
//! TLS), the greeting, STARTTLS, whether the server pipelines (RFC 2920),
//! authentication. Its failures are sorted for the pipeline: a 4xx means
//! the server is up and asks for patience (`Throttled`), anything else
//! that there is no service here (`Unreachable`).
//!
//! lettre keeps only the EHLO keywords it knows, and PIPELINING is not one
//! of them, so on our own socket the session asks EHLO once more, itself,
//! after STARTTLS and before AUTH. (Watching the first EHLO reply go by
//! in the socket wrapper would be free, but under STARTTLS the reply that
//! counts is encrypted below TLS; a second EHLO after AUTH would, on some
//! servers, undo the login.) One round trip per connection, not per
//! message.

use std::path::Path;
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Ehlo, Rset};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;

use super::ConnectError;
use super::counted::{Counted, Flushes};
use crate::project::settings::{SmtpSettings, Tls};

/// One open SMTP session: lettre's connection and, when the socket is our
/// own, the count of its flushes (see `counted`) and whether the server
/// takes pipelined commands.
pub struct Session {
    pub(super) conn: AsyncSmtpConnection,
    pub(super) flushes: Option<Flushes>,
    /// The server advertised PIPELINING (asked only on our own socket).
    pub(super) pipelining: bool,
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
    /// The command timeout (the reply to the final dot gets twice as long).
    pub(super) timeout: Duration,
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

    /// `STARTTLS, authenticated, pipelining` and the like, for `-v`.
    fn describe_session(&self, session: &Session) -> String {
        let mut how = match self.tls {
            Tls::Implicit => "TLS",
            Tls::Starttls => "STARTTLS",
            Tls::None => "plain",
        }
        .to_string();
        if self.credentials.is_some() {
            how.push_str(", authenticated");
        }
        if session.pipelining {
            how.push_str(", pipelining");
        }
        how
    }

    /// How long to wait for the reply to the message's final dot: servers
    /// scan the message then, so it gets twice the command timeout.
    pub(super) fn data_timeout(&self) -> Duration {
        self.timeout * 2
    }

    /// Opens, secures and authenticates one connection.
    pub async fn connect(&self) -> Result<Session, ConnectError> {
        let started = std::time::Instant::now();
        let mut session = match self.tls {
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
            .map(|conn| Session {
                conn,
                flushes: None,
                pipelining: false,
            })
            .map_err(|e| self.refused("cannot connect to", &e))?,
            Tls::Starttls | Tls::None => self.greet().await?,
        };
        if let Some(credentials) = &self.credentials {
            self.authenticate(&mut session.conn, credentials).await?;
        }
        let how = self.describe_session(&session);
        let took = started.elapsed();
        tracing::debug!(
            "SMTP connection opened to {} ({how}) in {took:.0?}",
            self.endpoint()
        );
        Ok(session)
    }

    /// Our own TCP connection (with TCP_NODELAY), the server's greeting,
    /// STARTTLS when it is configured, and whether the server pipelines.
    async fn greet(&self) -> Result<Session, ConnectError> {
        let stream = tokio::time::timeout(
            self.timeout,
            tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|e| self.unreachable("timed out connecting to", &e))?
        .map_err(|e| self.unreachable("cannot connect to", &e))?;
        // Each command is its own write; without NODELAY, Nagle plus
        // delayed ACKs cost ~40 ms per message.
        stream
            .set_nodelay(true)
            .map_err(|e| self.unreachable("cannot configure socket for", &e))?;
        let (stream, flushes) = Counted::new(stream);
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
        let pipelining = self.pipelining(&mut conn).await?;
        Ok(Session {
            conn,
            flushes: Some(flushes),
            pipelining,
        })
    }

    /// Asks EHLO again, for the keyword lettre drops (see the module doc).
    async fn pipelining(&self, conn: &mut AsyncSmtpConnection) -> Result<bool, ConnectError> {
        let reply = tokio::time::timeout(self.timeout, conn.command(Ehlo::new(self.hello.clone())))
            .await
            .map_err(|e| self.unreachable("no EHLO reply in time from", &e))?
            .map_err(|e| self.refused("EHLO refused by", &e))?;
        Ok(advertises_pipelining(&reply))
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

    /// Resets the session after a refused transaction (RSET); false when
    /// the session did not survive it.
    pub(super) async fn reset(&self, conn: &mut AsyncSmtpConnection) -> bool {
        let reset = tokio::time::timeout(self.timeout, conn.command(Rset)).await;
        matches!(reset, Ok(Ok(_)))
    }

    /// Ends a session politely (QUIT), waiting at most the command timeout.
    pub async fn quit(&self, mut session: Session) {
        let _ = tokio::time::timeout(self.timeout, session.conn.quit()).await;
    }

    /// Settings for a plain server on `127.0.0.1:port`, for the transport's
    /// tests (which script the server themselves).
    #[cfg(test)]
    pub(super) fn plain(port: u16, timeout: Duration) -> Smtp {
        Smtp {
            host: "127.0.0.1".into(),
            port,
            tls: Tls::None,
            tls_parameters: None,
            credentials: None,
            hello: ClientId::Domain("test.example".into()),
            timeout,
        }
    }
}

/// Whether an EHLO reply lists PIPELINING (RFC 2920): a keyword line of
/// its own, after the greeting line, in any case.
fn advertises_pipelining(ehlo: &Response) -> bool {
    ehlo.message().skip(1).any(|line| {
        line.split_whitespace()
            .next()
            .is_some_and(|keyword| keyword.eq_ignore_ascii_case("PIPELINING"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::transport::smtp::response::{Category, Code, Detail, Severity};

    fn ehlo(lines: &[&str]) -> Response {
        let ok = Code::new(
            Severity::PositiveCompletion,
            Category::MailSystem,
            Detail::Zero,
        );
        Response::new(ok, lines.iter().map(|l| l.to_string()).collect())
    }

    #[test]
    fn pipelining_is_a_keyword_after_the_greeting_line() {
        assert!(advertises_pipelining(&ehlo(&[
            "mx.example.com",
            "SIZE 10240000",
            "PIPELINING",
            "8BITMIME"
        ])));
        assert!(advertises_pipelining(&ehlo(&["mx", "pipelining"])));
        assert!(!advertises_pipelining(&ehlo(&[
            "mx", "8BITMIME", "STARTTLS"
        ])));
        assert!(
            !advertises_pipelining(&ehlo(&["PIPELINING"])),
            "the first line names the server"
        );
        assert!(!advertises_pipelining(&ehlo(&["mx", "X-PIPELINING-ISH"])));
    }
}

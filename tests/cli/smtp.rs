//! An in-process SMTP server for tests, built on `mailin-embedded`.
//!
//! `Server::start` binds `127.0.0.1:0`, runs the (never-returning) mailin
//! server on its own thread and records every message it accepts. Tests can
//! inject MAIL and RCPT faults, slow down the answer to DATA, offer STARTTLS with a
//! self-signed certificate for `localhost` made at start time, and require
//! AUTH PLAIN/LOGIN. Dropping a `Server` leaves its thread and port alive
//! until the test process exits.
//!
//! Limits of mailin (0.6) worth knowing when writing a client test:
//! - AUTH is only offered and accepted after STARTTLS, so `auth` without
//!   `tls` means no client can log in (MAIL is then refused with 503).
//! - A rejected RCPT leaves the transaction open; DATA with no accepted
//!   recipient gets 503. A fault code of 421 also closes the connection.
//! - After a rejected MAIL, RCPT and DATA get 503 (bad sequence).
//! - Commands are read one line at a time from a buffered stream and
//!   answered in turn, so pipelined commands (RFC 2920) are served right,
//!   though PIPELINING is not advertised (tests/cli/proxy.rs can add it).
//! - MAIL/RCPT parameters other than `BODY=` (SIZE, SMTPUTF8, ...) and the
//!   null reverse path `<>` are syntax errors (500).

// Not every test uses every helper.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mailin_embedded::{AuthMechanism, Handler, Response, SslConfig, response};

/// Sessions the server can hold at once (one thread each, never reclaimed
/// while a client keeps its connection open): well above any client pool.
const THREADS: u32 = 128;

/// What the server offers.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Offer STARTTLS with a self-signed certificate for `localhost` (and
    /// `127.0.0.1`); see [`Server::cert_pem_path`].
    pub tls: bool,
    /// Require AUTH PLAIN or LOGIN with this username and password
    /// (only possible after STARTTLS, so set `tls` too).
    pub auth: Option<(String, String)>,
}

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope sender (MAIL FROM), without angle brackets.
    pub from: String,
    /// The accepted envelope recipients (RCPT TO), in order.
    pub to: Vec<String>,
    /// The message as sent after DATA, dot-unstuffing undone, CRLF endings.
    pub data: Vec<u8>,
    /// Whether the session had switched to TLS (STARTTLS) before MAIL.
    pub tls: bool,
}

impl Received {
    /// The first header called `name` (any case), unfolded and trimmed;
    /// encoded words are left as they are.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = String::from_utf8_lossy(&self.data);
        let mut found: Option<String> = None;
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                break; // end of the header section
            }
            if line.starts_with([' ', '\t']) {
                if let Some(value) = found.as_mut() {
                    value.push_str(line);
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((key, value)) = line.split_once(':')
                && key.trim().eq_ignore_ascii_case(name)
            {
                found = Some(value.to_string());
            }
        }
        found.map(|value| value.trim().to_string())
    }
}

/// A running test server.
pub struct Server {
    port: u16,
    shared: Arc<Shared>,
    cert_pem: Option<PathBuf>,
    /// Holds the certificate and key files.
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server on `127.0.0.1` with a free port. Connections can be
    /// made as soon as this returns (the socket is already listening).
    pub fn start(opts: Options) -> Server {
        // mailin-embedded pulls in rustls with aws-lc-rs while lettre asks for
        // ring: with both compiled in, rustls needs a process-wide choice.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind SMTP test server");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared {
            tls: opts.tls,
            auth: opts.auth.clone(),
            state: Mutex::new(State::default()),
        });

        let mut server = mailin_embedded::Server::new(Session::new(Arc::clone(&shared)));
        server
            .with_name("localhost")
            .with_num_threads(THREADS)
            .with_tcp_listener(listener);

        let (dir, cert_pem) = if opts.tls {
            let dir = tempfile::tempdir().expect("tempdir for certificate");
            let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
            let certified =
                rcgen::generate_simple_self_signed(names).expect("self-signed certificate");
            let cert_path = dir.path().join("cert.pem");
            let key_path = dir.path().join("key.pem");
            std::fs::write(&cert_path, certified.cert.pem()).expect("write cert.pem");
            std::fs::write(&key_path, certified.signing_key.serialize_pem())
                .expect("write key.pem");
            server
                .with_ssl(SslConfig::SelfSigned {
                    cert_path: cert_path.display().to_string(),
                    key_path: key_path.display().to_string(),
                })
                .expect("TLS setup of the SMTP test server");
            (Some(dir), Some(cert_path))
        } else {
            (None, None)
        };
        if opts.auth.is_some() {
            server
                .with_auth(AuthMechanism::Plain)
                .with_auth(AuthMechanism::Login);
        }

        std::thread::Builder::new()
            .name(format!("smtp-test-{port}"))
            .spawn(move || {
                if let Err(err) = server.serve() {
                    eprintln!("SMTP test server on port {port} stopped: {err}");
                }
            })
            .expect("spawn SMTP test server");

        Server {
            port,
            shared,
            cert_pem,
            _dir: dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM file of the self-signed certificate, when `tls` was asked for.
    /// Trust it as a root to verify the server as `localhost`.
    pub fn cert_pem_path(&self) -> Option<PathBuf> {
        self.cert_pem.clone()
    }

    /// Messages accepted so far (recorded at the end of DATA, before the
    /// delay of [`Server::set_data_delay`] and the 250), in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().received.clone()
    }

    /// Answers RCPT TO `address` (any case) with `code message` for the next
    /// `times` attempts (`u32::MAX`: always), then accepts it again.
    pub fn fail_rcpt(&self, address: &str, code: u16, message: &str, times: u32) {
        self.shared.lock().faults.insert(
            address.to_lowercase(),
            Fault {
                code,
                message: message.to_string(),
                remaining: times,
            },
        );
    }

    /// Answers the next `times` MAIL FROM commands, whoever sends them,
    /// with `code message`.
    pub fn fail_mail(&self, code: u16, message: &str, times: u32) {
        self.shared.lock().mail_fault = Some(Fault {
            code,
            message: message.to_string(),
            remaining: times,
        });
    }

    /// MAIL FROM commands refused so far by [`Server::fail_mail`].
    pub fn mail_refusals(&self) -> u32 {
        self.shared.lock().mail_refusals
    }

    /// How many times RCPT TO `address` (any case) was sent, faulted or not.
    pub fn rcpt_attempts(&self, address: &str) -> u32 {
        let state = self.shared.lock();
        state
            .rcpt_attempts
            .get(&address.to_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// Successful AUTH commands so far.
    pub fn auth_successes(&self) -> usize {
        self.shared.lock().auth_successes
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// Sleeps this long after a message's final `.` before answering 250,
    /// so a test can stop the client while it waits. The message already
    /// counts in [`Server::received`] during the sleep.
    pub fn set_data_delay(&self, delay: Duration) {
        self.shared.lock().data_delay = delay;
    }
}

struct Fault {
    code: u16,
    message: String,
    remaining: u32,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    faults: HashMap<String, Fault>,
    mail_fault: Option<Fault>,
    mail_refusals: u32,
    rcpt_attempts: HashMap<String, u32>,
    auth_successes: usize,
    connections: usize,
    data_delay: Duration,
}

struct Shared {
    tls: bool,
    auth: Option<(String, String)>,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The mailin handler. mailin-embedded clones it once per accepted
/// connection, so a clone is a new session (and counts as a connection).
struct Session {
    shared: Arc<Shared>,
    /// HELO/EHLO seen on this connection: a second one follows STARTTLS.
    hellos: u32,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Session {
    fn new(shared: Arc<Shared>) -> Session {
        Session {
            shared,
            hellos: 0,
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        }
    }

    fn check_login(&self, user: &str, password: &str) -> Response {
        match &self.shared.auth {
            Some((u, p)) if u == user && p == password => {
                self.shared.lock().auth_successes += 1;
                response::AUTH_OK
            }
            _ => response::INVALID_CREDENTIALS,
        }
    }
}

impl Clone for Session {
    fn clone(&self) -> Session {
        self.shared.lock().connections += 1;
        Session::new(Arc::clone(&self.shared))
    }
}

impl Handler for Session {
    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        self.hellos += 1;
        response::OK
    }

    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        let mut state = self.shared.lock();
        let refusal = match state.mail_fault.as_mut() {
            Some(fault) if fault.remaining > 0 => {
                if fault.remaining != u32::MAX {
                    fault.remaining -= 1;
                }
                Response::custom(fault.code, fault.message.clone())
            }
            _ => return response::OK,
        };
        state.mail_refusals += 1;
        refusal
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let key = to.to_lowercase();
        let mut state = self.shared.lock();
        *state.rcpt_attempts.entry(key.clone()).or_default() += 1;
        if let Some(fault) = state.faults.get_mut(&key)
            && fault.remaining > 0
        {
            if fault.remaining != u32::MAX {
                fault.remaining -= 1;
            }
            return Response::custom(fault.code, fault.message.clone());
        }
        response::OK
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_string();
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let message = Received {
            from: std::mem::take(&mut self.from),
            to: std::mem::take(&mut self.to),
            data: std::mem::take(&mut self.data),
            // Clients say EHLO once more after STARTTLS, and only then.
            tls: self.shared.tls && self.hellos >= 2,
        };
        let delay = {
            let mut state = self.shared.lock();
            state.received.push(message);
            state.data_delay
        };
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        response::OK
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        self.check_login(user, password)
    }

    fn auth_login(&mut self, user: &str, password: &str) -> Response {
        self.check_login(user, password)
    }
}

#[test]
fn smtp_harness_accepts_and_injects_faults() {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{Message, SmtpTransport, Transport};
    use std::time::Instant;

    let message = |to: &str| {
        Message::builder()
            .from("news@example.com".parse().expect("from"))
            .to(to.parse().expect("to"))
            .subject(
                "Hello there, this subject is long enough that it may well be folded by lettre",
            )
            .body("Body line\r\n.leading dot\r\n".to_string())
            .expect("message")
    };
    let code = |err: &lettre::transport::smtp::Error| err.status().map(u16::from);

    // Plain server: one delivery, a transient fault that clears, a hard one.
    let plain = Server::start(Options::default());
    plain.fail_rcpt("Later@example.com", 451, "4.7.1 try later", 1);
    plain.fail_rcpt("gone@example.com", 550, "5.1.1 no such user", u32::MAX);
    plain.set_data_delay(Duration::from_millis(200));
    let client = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(plain.port())
        .build();

    let started = Instant::now();
    client.send(&message("ok@example.com")).expect("send ok");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "data delay"
    );
    plain.set_data_delay(Duration::ZERO);

    let err = client
        .send(&message("later@example.com"))
        .expect_err("451 first");
    assert_eq!(code(&err), Some(451), "{err}");
    assert!(err.is_transient());
    client.send(&message("later@example.com")).expect("then ok");

    let err = client.send(&message("gone@example.com")).expect_err("550");
    assert_eq!(code(&err), Some(550), "{err}");
    assert!(err.is_permanent());

    let got = plain.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].from, "news@example.com");
    assert_eq!(got[0].to, ["ok@example.com"]);
    assert_eq!(got[1].to, ["later@example.com"]);
    assert!(!got[0].tls);
    assert_eq!(
        got[0].header("subject").as_deref(),
        Some("Hello there, this subject is long enough that it may well be folded by lettre")
    );
    let body = String::from_utf8_lossy(&got[0].data);
    // Dot-stuffing is undone; lettre adds a CRLF of its own before the final dot.
    assert!(
        body.ends_with("\r\n\r\nBody line\r\n.leading dot\r\n\r\n"),
        "{body:?}"
    );
    assert_eq!(plain.rcpt_attempts("later@example.com"), 2);
    assert_eq!(plain.rcpt_attempts("GONE@example.com"), 1);
    assert!(plain.connections() >= 1);

    // STARTTLS + AUTH, trusting only the server's self-signed certificate.
    let secure = Server::start(Options {
        tls: true,
        auth: Some(("user".into(), "secret".into())),
    });
    let pem = std::fs::read(secure.cert_pem_path().expect("cert")).expect("read cert");
    let tls = TlsParameters::builder("localhost".into())
        .add_root_certificate(Certificate::from_pem(&pem).expect("pem"))
        .build()
        .expect("tls parameters");
    let login = |password: &str| {
        SmtpTransport::builder_dangerous("127.0.0.1")
            .port(secure.port())
            .tls(Tls::Required(tls.clone()))
            .credentials(Credentials::new("user".into(), password.into()))
            .build()
    };
    let err = login("wrong")
        .send(&message("ok@example.com"))
        .expect_err("bad password");
    assert_eq!(code(&err), Some(535), "{err}");
    login("secret")
        .send(&message("ok@example.com"))
        .expect("send over TLS");
    assert_eq!(secure.auth_successes(), 1);
    let got = secure.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].tls);

    // Header unfolding and lookup on a hand-made message.
    let folded = Received {
        from: String::new(),
        to: Vec::new(),
        data: b"X-A: one\r\nSubject: a\r\n\tb\r\nsubject: second\r\n\r\nX-B: body\r\n".to_vec(),
        tls: false,
    };
    assert_eq!(folded.header("SUBJECT").as_deref(), Some("a\tb"));
    assert_eq!(folded.header("x-b"), None);
}

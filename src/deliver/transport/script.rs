//! A scripted SMTP server on loopback, for the transport's tests: real
//! sockets, and a test that says what each command is answered.
//!
//! It greets, answers EHLO itself (listing PIPELINING when asked to) and
//! QUIT, and hands every other command to the test's `answer`, which may
//! reply, hang up or fall silent (`None`: the usual positive reply).
//! After a 354 to DATA it reads the message up to its final dot, then asks
//! `answer(".")`. A pipelining server holds its replies to MAIL and RCPT
//! until the next other command arrives, as a server answering a whole
//! pipelined group does: a client waiting for each reply in turn would
//! wait in vain. Connections are served one after the other; every line
//! heard is kept, a message as one `<message: N lines>` entry, and each
//! new connection as `<connect>`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};

/// How the server answers one command.
pub(super) enum Answer {
    Reply(&'static str),
    /// Close the connection without a reply (held replies are lost too).
    Hangup,
    /// Never answer again on this connection (held replies still go out);
    /// keep reading until the client goes.
    Silence,
}

type Answerer = Box<dyn FnMut(&str) -> Option<Answer> + Send>;

/// A running scripted server.
pub(super) struct Script {
    port: u16,
    heard: Arc<Mutex<Vec<String>>>,
}

impl Script {
    /// Listens on a free port of 127.0.0.1.
    pub(super) fn start(
        pipelining: bool,
        answer: impl FnMut(&str) -> Option<Answer> + Send + 'static,
    ) -> Script {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the scripted server");
        let port = listener.local_addr().expect("its address").port();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let log = heard.clone();
        let mut answer: Answerer = Box::new(answer);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                note(&log, "<connect>");
                serve(stream, pipelining, &mut answer, &log);
            }
        });
        Script { port, heard }
    }

    pub(super) fn port(&self) -> u16 {
        self.port
    }

    /// Every line heard so far (see the module doc).
    pub(super) fn heard(&self) -> Vec<String> {
        self.heard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn note(log: &Mutex<Vec<String>>, line: &str) {
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(line.to_string());
}

/// One connection, until either side closes it.
fn serve(stream: TcpStream, pipelining: bool, answer: &mut Answerer, log: &Mutex<Vec<String>>) {
    let Ok(read) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read);
    let mut out = stream;
    let mut held = String::new();
    let mut silent = false;
    if out.write_all(b"220 script ESMTP\r\n").is_err() {
        return;
    }
    loop {
        let Some(command) = line(&mut reader) else {
            return;
        };
        note(log, &command);
        if silent {
            continue;
        }
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" if pipelining => "250-script\r\n250-PIPELINING\r\n250 8BITMIME",
            "EHLO" => "250-script\r\n250 8BITMIME",
            "QUIT" => "221 bye",
            _ => match answer(&command).unwrap_or_else(|| Answer::Reply(usual(&verb))) {
                Answer::Reply(reply) => reply,
                Answer::Hangup => return,
                Answer::Silence => {
                    silent = true;
                    let _ = out.write_all(held.as_bytes());
                    continue;
                }
            },
        };
        held.push_str(reply);
        held.push_str("\r\n");
        if pipelining && matches!(verb.as_str(), "MAIL" | "RCPT") {
            continue;
        }
        if out.write_all(held.as_bytes()).is_err() {
            return;
        }
        held.clear();
        if verb == "QUIT" {
            return;
        }
        if verb == "DATA" && reply.starts_with("354") {
            let mut lines = 0;
            loop {
                match line(&mut reader).as_deref() {
                    None => return,
                    Some(".") => break,
                    Some(_) => lines += 1,
                }
            }
            note(log, &format!("<message: {lines} lines>"));
            let reply = match answer(".").unwrap_or(Answer::Reply("250 2.0.0 queued")) {
                Answer::Reply(reply) => reply,
                Answer::Hangup => return,
                Answer::Silence => {
                    silent = true;
                    continue;
                }
            };
            if out.write_all(format!("{reply}\r\n").as_bytes()).is_err() {
                return;
            }
        }
    }
}

/// The usual positive reply to a command.
fn usual(verb: &str) -> &'static str {
    match verb {
        "DATA" => "354 go ahead",
        "MAIL" | "RCPT" | "RSET" | "NOOP" => "250 2.0.0 ok",
        _ => "500 5.5.2 what?",
    }
}

/// One line without its line break; `None` at the end of the stream.
fn line(reader: &mut impl BufRead) -> Option<String> {
    let mut buf = Vec::new();
    match reader.read_until(b'\n', &mut buf) {
        Ok(0) | Err(_) => None,
        Ok(_) => {
            let text = String::from_utf8_lossy(&buf);
            Some(text.trim_end_matches(['\r', '\n']).to_string())
        }
    }
}

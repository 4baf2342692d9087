//! A fault-injecting TCP proxy in front of the in-process SMTP server
//! (tests/cli/smtp.rs), for the faults a real relay shows and mailin cannot
//! fake by itself: a connection that drops at a recipient, after the
//! envelope, or halfway through the message; a message the server accepted
//! whose reply never arrives (the connection drops, or the reply stalls
//! past the client's timeout); a relay that falls silent; 421 throttling
//! at the greeting or mid-session; and a server that restarts.
//!
//! It can also make the server look like one that pipelines (RFC 2920):
//! `pipeline(true)` adds PIPELINING to its EHLO replies. mailin reads one
//! line at a time from a buffered stream and answers each in turn, so it
//! takes pipelined commands as they come; the proxy counts the commands
//! that arrive before the reply to the one before them (`Fired::pipelined`),
//! so a test can tell which path the client took.
//!
//! The proxy reads the plain SMTP dialogue as it passes (it stops reading
//! after STARTTLS and just relays bytes). Every command it forwards adds
//! the reply it owes to a queue, in order (the answer to DATA says whether
//! a message follows; the answer to the final dot is where a fault after
//! DATA strikes), and every reply from the server settles the oldest; so
//! replies are read right whether the client waits for each or pipelines.
//!
//! Faults are chosen per transaction when the client names the recipient:
//! by address (`set_fault`, for a number of transactions), or at random
//! (`set_random`, a chance per transaction, deterministic seed).

// Not every test uses every helper.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// What goes wrong in one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The connection drops when the client names the recipient (RCPT TO),
    /// before the server sees it: nothing can have been delivered.
    DropAtRcpt,
    /// `421 4.7.0` to RCPT TO (after the replies owed before it), and the
    /// connection closes: throttling.
    Throttle,
    /// The whole envelope reaches the server (MAIL, RCPT, DATA); the
    /// connection drops as DATA is passed on, and no reply owed from then
    /// on is passed back: nothing can have been delivered.
    DropAfterBatch,
    /// The connection drops halfway through the message: the server never
    /// sees its final dot, so it delivers nothing.
    DropMidBody,
    /// The server accepts the message; the connection drops instead of
    /// passing on its 250.
    DropAfterData,
    /// The server accepts the message; its 250 is held this long (longer
    /// than the client waits), then the connection drops.
    StallAfterData(Duration),
    /// The relay falls silent when the client names the recipient: no
    /// command goes on, no reply comes back, the connection stays open
    /// until the client gives up.
    Silence,
}

/// How often each fault fired, and what the proxy saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fired {
    pub drop_at_rcpt: u64,
    pub throttle: u64,
    pub drop_after_batch: u64,
    pub drop_mid_body: u64,
    pub drop_after_data: u64,
    pub stall_after_data: u64,
    pub silence: u64,
    pub greeting_421: u64,
    pub connections: u64,
    /// MAIL, RCPT or DATA commands that arrived while an earlier command's
    /// reply was still owed: the client pipelines.
    pub pipelined: u64,
}

#[derive(Default)]
struct Rules {
    /// Address (lower case) → fault and how many more transactions it hits.
    by_address: HashMap<String, (Fault, u32)>,
    /// Chance per transaction, in 1/1000, of each fault.
    random: Vec<(Fault, u32)>,
    rng: u64,
    /// New connections to greet with 421 (u32::MAX: all).
    greet_421: u32,
    fired: Fired,
}

impl Rules {
    fn next_random(&mut self) -> u32 {
        // xorshift64*: enough for spreading faults, reproducible by seed.
        let mut x = self.rng.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as u32 % 1000
    }

    fn fault_for(&mut self, address: &str) -> Option<Fault> {
        if let Some((fault, left)) = self.by_address.get_mut(address)
            && *left > 0
        {
            if *left != u32::MAX {
                *left -= 1;
            }
            return Some(*fault);
        }
        let roll = self.next_random();
        let mut acc = 0;
        for (fault, per_mille) in self.random.clone() {
            acc += per_mille;
            if roll < acc {
                return Some(fault);
            }
        }
        None
    }
}

struct Shared {
    target: u16,
    rules: Mutex<Rules>,
    /// Streams of open connections, so a restart can cut them.
    open: Mutex<Vec<TcpStream>>,
    /// Whether the proxy refuses connections (listener closed) right now.
    down: AtomicBool,
    /// Bumped on every restart: connections of an older generation are cut.
    generation: AtomicU64,
    /// Add PIPELINING to the server's EHLO replies.
    pipelining: AtomicBool,
}

impl Shared {
    fn rules(&self) -> MutexGuard<'_, Rules> {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running proxy: connect to [`Proxy::port`] instead of the server.
pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and relays to `target`.
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Shared {
            target,
            rules: Mutex::new(Rules {
                rng: 0x9E37_79B9_7F4A_7C15,
                ..Rules::default()
            }),
            open: Mutex::new(Vec::new()),
            down: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            pipelining: AtomicBool::new(false),
        });
        let accept = shared.clone();
        std::thread::Builder::new()
            .name(format!("smtp-proxy-{port}"))
            .spawn(move || accept_loop(listener, port, accept))
            .expect("spawn proxy");
        Proxy { port, shared }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server's EHLO replies list PIPELINING (RFC 2920) from
    /// now on: clients that pipeline then do.
    pub fn pipeline(&self, on: bool) {
        self.shared.pipelining.store(on, Ordering::SeqCst);
    }

    /// The next `times` transactions to `address` (any case) meet `fault`
    /// (`u32::MAX`: all of them; 0 clears it).
    pub fn set_fault(&self, address: &str, fault: Fault, times: u32) {
        self.shared
            .rules()
            .by_address
            .insert(address.to_lowercase(), (fault, times));
    }

    /// Every transaction meets `fault` with this chance in 1000 (added to
    /// any random faults already set; `clear_random` removes them).
    pub fn set_random(&self, fault: Fault, per_mille: u32) {
        self.shared.rules().random.push((fault, per_mille));
    }

    pub fn clear_random(&self) {
        self.shared.rules().random.clear();
    }

    pub fn seed(&self, seed: u64) {
        self.shared.rules().rng = seed;
    }

    /// Greets the next `n` connections with `421` and closes them.
    pub fn greet_421(&self, n: u32) {
        self.shared.rules().greet_421 = n;
    }

    /// Removes every fault.
    pub fn heal(&self) {
        let mut rules = self.shared.rules();
        rules.by_address.clear();
        rules.random.clear();
        rules.greet_421 = 0;
    }

    pub fn fired(&self) -> Fired {
        self.shared.rules().fired.clone()
    }

    /// A restart: every open connection is cut and new ones are refused
    /// (the port is closed) for `downtime`, then it listens again.
    pub fn restart(&self, downtime: Duration) {
        self.shared.down.store(true, Ordering::SeqCst);
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        for s in self
            .shared
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            let _ = s.shutdown(Shutdown::Both);
        }
        let shared = self.shared.clone();
        std::thread::spawn(move || {
            std::thread::sleep(downtime);
            shared.down.store(false, Ordering::SeqCst);
        });
    }
}

fn accept_loop(listener: TcpListener, port: u16, shared: Arc<Shared>) {
    let mut listener = Some(listener);
    loop {
        if shared.down.load(Ordering::SeqCst) {
            // Closing the listener makes connects fail with "refused".
            listener = None;
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => listener.insert(l),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            },
        };
        let _ = l.set_nonblocking(true);
        match l.accept() {
            Ok((client, _)) => {
                let _ = client.set_nonblocking(false);
                let shared = shared.clone();
                std::thread::spawn(move || handle(client, shared));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Where the dialogue of one connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Commands,
    /// The server answered DATA with 354: the message is passing.
    Body,
    /// After STARTTLS: bytes are relayed unread.
    Opaque,
}

/// A reply the server owes, and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owed {
    Greeting,
    Ehlo,
    /// The answer to DATA: a 354 means the message follows.
    Data,
    /// The answer to the final dot, and the transaction's fault.
    EndOfData(Option<Fault>),
    Other,
}

struct Conn {
    client: TcpStream,
    server: TcpStream,
    shared: Arc<Shared>,
    state: Mutex<ConnState>,
}

struct ConnState {
    mode: Mode,
    /// The fault of the current transaction (chosen at RCPT).
    fault: Option<Fault>,
    /// Replies the server owes, oldest first.
    owed: VecDeque<Owed>,
    /// Throttled: the client's bytes go nowhere, and once the replies owed
    /// are passed on, a 421 follows and the connection closes.
    throttled: bool,
    /// Silent: nothing passes either way any more.
    silent: bool,
    dead: bool,
}

impl Conn {
    fn state(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn kill(&self) {
        self.state().dead = true;
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }

    /// Sends the throttling 421 and closes the connection.
    fn throttle(&self) {
        let mut client = &self.client;
        let _ = client.write_all(b"421 4.7.0 slow down, too many messages\r\n");
        self.kill();
    }
}

fn handle(mut client: TcpStream, shared: Arc<Shared>) {
    {
        let mut rules = shared.rules();
        rules.fired.connections += 1;
        if rules.greet_421 > 0 {
            if rules.greet_421 != u32::MAX {
                rules.greet_421 -= 1;
            }
            rules.fired.greeting_421 += 1;
            drop(rules);
            let _ = client.write_all(b"421 4.7.0 too many connections, try again later\r\n");
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", shared.target)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    {
        let mut open = shared.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
            open.push(c);
            open.push(s);
        }
    }
    let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let conn = Arc::new(Conn {
        client: c,
        server: s,
        shared,
        state: Mutex::new(ConnState {
            mode: Mode::Commands,
            fault: None,
            owed: VecDeque::from([Owed::Greeting]),
            throttled: false,
            silent: false,
            dead: false,
        }),
    });
    let replies = conn.clone();
    std::thread::spawn(move || server_to_client(&replies));
    client_to_server(&conn);
}

/// What becomes of one client command.
enum Pass {
    Forward,
    /// Not forwarded; the client's bytes are swallowed from now on.
    Swallow,
    /// The connection is gone.
    Gone,
}

/// Relays the client's bytes, reading commands and watching for the end of
/// the message body.
fn client_to_server(conn: &Conn) {
    let mut client = &conn.client;
    let mut server = &conn.server;
    let mut buf = [0u8; 16 * 1024];
    let mut line: Vec<u8> = Vec::new();
    // The last bytes of the body seen so far, to find "\r\n.\r\n" across reads.
    let mut tail: Vec<u8> = Vec::new();
    let mut swallow = false;
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() && !swallow {
            let mode = conn.state().mode;
            match mode {
                Mode::Opaque => {
                    if server.write_all(rest).is_err() {
                        return conn.kill();
                    }
                    rest = &[];
                }
                Mode::Body => {
                    let mut window = std::mem::take(&mut tail);
                    let offset = window.len();
                    window.extend_from_slice(rest);
                    let end = find(&window, b"\r\n.\r\n").map(|at| at + 5 - offset);
                    let mut st = conn.state();
                    if st.fault == Some(Fault::DropMidBody) {
                        drop(st);
                        conn.shared.rules().fired.drop_mid_body += 1;
                        let half = end.unwrap_or(rest.len()) / 2;
                        let _ = server.write_all(&rest[..half]);
                        return conn.kill();
                    }
                    match end {
                        Some(end) => {
                            let fault = st.fault.take();
                            st.owed.push_back(Owed::EndOfData(fault));
                            st.mode = Mode::Commands;
                            drop(st);
                            if server.write_all(&rest[..end]).is_err() {
                                return conn.kill();
                            }
                            rest = &rest[end..];
                        }
                        None => {
                            drop(st);
                            let keep = window.len().min(4);
                            tail = window[window.len() - keep..].to_vec();
                            if server.write_all(rest).is_err() {
                                return conn.kill();
                            }
                            rest = &[];
                        }
                    }
                }
                Mode::Commands => {
                    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                        line.extend_from_slice(rest);
                        rest = &[];
                        continue;
                    };
                    line.extend_from_slice(&rest[..=nl]);
                    rest = &rest[nl + 1..];
                    let command = std::mem::take(&mut line);
                    match command_passes(conn, &command) {
                        Pass::Forward => {
                            if server.write_all(&command).is_err() {
                                return conn.kill();
                            }
                        }
                        Pass::Swallow => swallow = true,
                        Pass::Gone => return,
                    }
                }
            }
        }
    }
    conn.kill();
}

/// Looks at one client command before it is forwarded: notes the reply it
/// will be owed, and applies the transaction's fault.
fn command_passes(conn: &Conn, command: &[u8]) -> Pass {
    let text = String::from_utf8_lossy(command).to_ascii_uppercase();
    let mut st = conn.state();
    let verb = text.split([' ', ':', '\r']).next().unwrap_or("");
    if matches!(verb, "MAIL" | "RCPT" | "DATA") && !st.owed.is_empty() {
        conn.shared.rules().fired.pipelined += 1;
    }
    let owed = match verb {
        "EHLO" | "HELO" => Owed::Ehlo,
        "DATA" => Owed::Data,
        _ => Owed::Other,
    };
    match verb {
        "MAIL" | "RSET" => st.fault = None,
        "STARTTLS" => st.mode = Mode::Opaque,
        "DATA" if st.fault == Some(Fault::DropAfterBatch) => {
            // Nothing owed from now on is passed back.
            st.silent = true;
            drop(st);
            conn.shared.rules().fired.drop_after_batch += 1;
            let mut server = &conn.server;
            let _ = server.write_all(command);
            conn.kill();
            return Pass::Gone;
        }
        "RCPT" => {
            let raw = String::from_utf8_lossy(command);
            let address = raw
                .split_once('<')
                .and_then(|(_, r)| r.split_once('>'))
                .map(|(a, _)| a.to_lowercase())
                .unwrap_or_default();
            let fault = conn.shared.rules().fault_for(&address);
            match fault {
                Some(Fault::DropAtRcpt) => {
                    conn.shared.rules().fired.drop_at_rcpt += 1;
                    drop(st);
                    conn.kill();
                    return Pass::Gone;
                }
                Some(Fault::Throttle) => {
                    conn.shared.rules().fired.throttle += 1;
                    if st.owed.is_empty() {
                        drop(st);
                        conn.throttle();
                        return Pass::Gone;
                    }
                    // Pipelined: the 421 follows the replies owed before it.
                    st.throttled = true;
                    return Pass::Swallow;
                }
                Some(Fault::Silence) => {
                    conn.shared.rules().fired.silence += 1;
                    st.silent = true;
                    return Pass::Swallow;
                }
                other => st.fault = other.or(st.fault),
            }
        }
        _ => {}
    }
    st.owed.push_back(owed);
    Pass::Forward
}

/// Relays the server's replies, each settling the oldest reply owed:
/// PIPELINING added to EHLO when asked, the mode set by DATA's answer,
/// the transaction's fault applied to the answer to the final dot.
fn server_to_client(conn: &Conn) {
    let mut server = &conn.server;
    let mut client = &conn.client;
    let generation = conn.shared.generation.load(Ordering::SeqCst);
    let mut buf = [0u8; 8 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if conn.shared.generation.load(Ordering::SeqCst) != generation {
            break;
        }
        if conn.state().mode == Mode::Opaque {
            if client.write_all(&pending).is_err() || client.write_all(&buf[..n]).is_err() {
                break;
            }
            pending.clear();
            continue;
        }
        pending.extend_from_slice(&buf[..n]);
        // Complete replies: lines up to one whose 4th byte is a space.
        while let Some(end) = reply_end(&pending) {
            let mut reply: Vec<u8> = pending.drain(..end).collect();
            let (fault, then_throttle) = {
                let mut st = conn.state();
                if st.silent {
                    continue;
                }
                let mut fault = None;
                match st.owed.pop_front().unwrap_or(Owed::Other) {
                    Owed::Data if reply.starts_with(b"354") => st.mode = Mode::Body,
                    Owed::Ehlo if conn.shared.pipelining.load(Ordering::SeqCst) => {
                        reply = with_pipelining(&reply);
                    }
                    Owed::EndOfData(f) => fault = f,
                    _ => {}
                }
                (fault, st.throttled && st.owed.is_empty())
            };
            match fault {
                Some(Fault::DropAfterData) => {
                    conn.shared.rules().fired.drop_after_data += 1;
                    return conn.kill();
                }
                Some(Fault::StallAfterData(d)) => {
                    conn.shared.rules().fired.stall_after_data += 1;
                    std::thread::sleep(d);
                    return conn.kill();
                }
                _ => {}
            }
            if client.write_all(&reply).is_err() {
                return conn.kill();
            }
            if then_throttle {
                return conn.throttle();
            }
        }
    }
    conn.kill();
}

/// An EHLO reply with PIPELINING listed after its first line.
fn with_pipelining(reply: &[u8]) -> Vec<u8> {
    let Some(nl) = reply.iter().position(|&b| b == b'\n') else {
        return reply.to_vec();
    };
    let mut out = reply[..=nl].to_vec();
    if nl + 1 == reply.len() {
        // A one-line reply: it becomes the first of two.
        if out.len() > 3 {
            out[3] = b'-';
        }
        out.extend_from_slice(b"250 PIPELINING\r\n");
    } else {
        out.extend_from_slice(b"250-PIPELINING\r\n");
        out.extend_from_slice(&reply[nl + 1..]);
    }
    out
}

/// The end (exclusive) of the first complete reply in `bytes`, if any.
fn reply_end(bytes: &[u8]) -> Option<usize> {
    let mut start = 0;
    while let Some(nl) = bytes[start..].iter().position(|&b| b == b'\n') {
        let line = &bytes[start..start + nl + 1];
        start += nl + 1;
        if line.len() < 4 || line[3] != b'-' {
            return Some(start);
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn replies_are_split_where_they_end() {
    assert_eq!(reply_end(b"250-a\r\n250 b\r\n220"), Some(14));
    assert_eq!(reply_end(b"250-a\r\n25"), None);
    assert_eq!(reply_end(b"354 go\r\n"), Some(8));
}

#[test]
fn pipelining_is_listed_after_the_first_line_of_ehlo() {
    assert_eq!(
        with_pipelining(b"250-mx hello\r\n250 8BITMIME\r\n"),
        b"250-mx hello\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
    );
    assert_eq!(
        with_pipelining(b"250 mx\r\n"),
        b"250-mx\r\n250 PIPELINING\r\n"
    );
}

//! A fault-injecting TCP proxy in front of the in-process SMTP server
//! (tests/cli/smtp.rs), for the faults a real relay shows and mailin cannot
//! fake by itself: a connection that drops at a recipient, a message the
//! server accepted whose reply never arrives (the connection drops, or the
//! reply stalls past the client's timeout), 421 throttling at the greeting
//! or mid-session, and a server that restarts.
//!
//! The proxy reads the plain SMTP dialogue as it passes (it stops reading
//! after STARTTLS and just relays bytes). lettre does not pipeline, so every
//! client command is followed by exactly one server reply; the client side
//! sets what the next reply means (the answer to DATA, the answer to the
//! final dot) *before* forwarding the command, so the server side can never
//! see a reply before it knows what to do with it.
//!
//! Faults are chosen per transaction when the client names the recipient:
//! by address (`set_fault`, for a number of transactions), or at random
//! (`set_random`, a chance per transaction, deterministic seed).

// Not every test uses every helper.
#![allow(dead_code)]

use std::collections::HashMap;
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
    /// `421 4.7.0` to RCPT TO, and the connection closes: throttling.
    Throttle,
    /// The server accepts the message; the connection drops instead of
    /// passing on its 250.
    DropAfterData,
    /// The server accepts the message; its 250 is held this long (longer
    /// than the client waits), then the connection drops.
    StallAfterData(Duration),
}

/// How often each fault fired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fired {
    pub drop_at_rcpt: u64,
    pub throttle: u64,
    pub drop_after_data: u64,
    pub stall_after_data: u64,
    pub greeting_421: u64,
    pub connections: u64,
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
    /// DATA was sent; the next reply says whether a body follows.
    DataAsked,
    Body,
    /// After STARTTLS: bytes are relayed unread.
    Opaque,
}

struct Conn {
    client: TcpStream,
    server: TcpStream,
    shared: Arc<Shared>,
    state: Mutex<ConnState>,
}

struct ConnState {
    mode: Mode,
    /// The fault of the current transaction, applied at its final reply.
    fault: Option<Fault>,
    /// What to do with the next reply (the answer to the final dot).
    at_next_reply: Option<Fault>,
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
            at_next_reply: None,
            dead: false,
        }),
    });
    let replies = conn.clone();
    std::thread::spawn(move || server_to_client(&replies));
    client_to_server(&conn);
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
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
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
                    match find(&window, b"\r\n.\r\n") {
                        Some(at) => {
                            let end = at + 5 - offset;
                            {
                                let mut st = conn.state();
                                st.at_next_reply = st.fault.take();
                                st.mode = Mode::Commands;
                            }
                            if server.write_all(&rest[..end]).is_err() {
                                return conn.kill();
                            }
                            rest = &rest[end..];
                        }
                        None => {
                            let keep = window.len().min(4);
                            tail = window[window.len() - keep..].to_vec();
                            if server.write_all(rest).is_err() {
                                return conn.kill();
                            }
                            rest = &[];
                        }
                    }
                }
                Mode::Commands | Mode::DataAsked => {
                    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                        line.extend_from_slice(rest);
                        rest = &[];
                        continue;
                    };
                    line.extend_from_slice(&rest[..=nl]);
                    rest = &rest[nl + 1..];
                    let command = std::mem::take(&mut line);
                    if !command_passes(conn, &command) {
                        return;
                    }
                    if server.write_all(&command).is_err() {
                        return conn.kill();
                    }
                }
            }
        }
    }
    conn.kill();
}

/// Looks at one client command before it is forwarded; false when the
/// connection was cut (or answered) in its place.
fn command_passes(conn: &Conn, command: &[u8]) -> bool {
    let text = String::from_utf8_lossy(command).to_ascii_uppercase();
    let mut st = conn.state();
    if text.starts_with("MAIL FROM:") || text.starts_with("RSET") {
        st.fault = None;
    } else if text.starts_with("DATA") {
        st.mode = Mode::DataAsked;
    } else if text.starts_with("STARTTLS") {
        st.mode = Mode::Opaque;
    } else if text.starts_with("RCPT TO:") {
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
                return false;
            }
            Some(Fault::Throttle) => {
                conn.shared.rules().fired.throttle += 1;
                drop(st);
                let mut client = &conn.client;
                let _ = client.write_all(b"421 4.7.0 slow down, too many messages\r\n");
                conn.kill();
                return false;
            }
            other => st.fault = other.or(st.fault),
        }
    }
    true
}

/// Relays the server's replies, applying the transaction's fault to the
/// answer to the final dot.
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
            let reply: Vec<u8> = pending.drain(..end).collect();
            let action = {
                let mut st = conn.state();
                if st.mode == Mode::DataAsked {
                    st.mode = if reply.starts_with(b"354") {
                        Mode::Body
                    } else {
                        Mode::Commands
                    };
                }
                st.at_next_reply.take()
            };
            match action {
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
        }
    }
    conn.kill();
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

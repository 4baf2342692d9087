//! SMTP PIPELINING (RFC 2920): MAIL FROM, every RCPT TO and DATA in one
//! write, then their replies read in order.
//!
//! Half the round trips of the step-by-step dialogue (on a relay 30 ms
//! away, 30 ms a message; it is what Postfix's own client does), and one
//! wakeup of the server instead of three. Used on our own socket when the
//! server advertised PIPELINING (`smtp` asks); the message then follows as
//! in the step-by-step path (`transaction`).
//!
//! Every reply is read, in order, whatever the earlier ones said, so that
//! the session stays in step; [`judge`] then decides:
//! - every reply positive: the message follows;
//! - a refusal: the first negative reply is the transaction's outcome (so
//!   a 550 5.1.1 to RCPT still bounces although DATA then gets 503), and
//!   the session is kept (RSET follows);
//! - DATA answered 354 although MAIL or every RCPT was refused: the data
//!   is ended with a lone dot, as RFC 2920 §3.1 says, which delivers to
//!   nobody; the session is kept. Had some recipient been accepted
//!   (several RCPTs), that dot would deliver an empty message: the
//!   connection is closed instead, which aborts the transaction;
//! - a 421: the server is closing; so do we;
//! - a connection that breaks, or a reply that does not come in time,
//!   before DATA's reply: nothing was delivered, the message was never
//!   sent (`Dropped`; `stale` when it was the very first reply on a
//!   reused connection, as in the step-by-step path). After a refusal the
//!   refusal stands and the connection is closed: its replies are out of
//!   step.
//!
//! Nothing here can deliver a message, so nothing here is `Unknown`.

use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::response::Response;

use super::reply::{Stopped, classify, humantime_secs};
use super::{SendError, Smtp};

/// MAIL, RCPT… and DATA, written as one piece.
pub(super) struct Batch {
    mail: Mail,
    rcpts: Vec<Rcpt>,
}

impl Batch {
    pub(super) fn new(mail: Mail, rcpts: impl Iterator<Item = Rcpt>) -> Batch {
        Batch {
            mail,
            rcpts: rcpts.collect(),
        }
    }

    /// How many replies the batch asks for.
    fn replies(&self) -> usize {
        self.rcpts.len() + 2
    }
}

impl std::fmt::Display for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.mail.fmt(f)?;
        for rcpt in &self.rcpts {
            rcpt.fmt(f)?;
        }
        Data.fmt(f)
    }
}

/// One reply to a command of the batch, as it was heard.
#[derive(Debug, Clone)]
enum Heard {
    /// A positive reply (250, or 354 to DATA).
    Yes,
    /// A negative reply, sorted (`Transient` or `Permanent`).
    No(SendError),
    /// No reply: the connection broke or the reply did not come in time.
    Lost(String),
}

impl Heard {
    fn of(
        read: Result<Result<Response, lettre::transport::smtp::Error>, tokio::time::error::Elapsed>,
        smtp: &Smtp,
    ) -> Heard {
        match read {
            Ok(Ok(_)) => Heard::Yes,
            Ok(Err(e)) if e.is_transient() || e.is_permanent() => Heard::No(classify(&e)),
            Ok(Err(e)) => Heard::Lost(format!("the connection broke at {}: {e}", smtp.endpoint())),
            Err(_) => Heard::Lost(format!(
                "no reply in time from {}: {}",
                smtp.endpoint(),
                humantime_secs(smtp.timeout)
            )),
        }
    }

    /// Whether more replies can follow this one (not after a lost
    /// connection, nor after a 421: the server is hanging up).
    fn more_follow(&self) -> bool {
        match self {
            Heard::Yes => true,
            Heard::No(e) => e.keeps_session(),
            Heard::Lost(_) => false,
        }
    }
}

/// What the replies to a batch say.
#[derive(Debug)]
enum Verdict {
    /// Every command was accepted: send the message.
    Send,
    /// The transaction stops with `error`; the session goes on as `then` says.
    Stop { error: SendError, then: Then },
}

/// How the session goes on after a stopped batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Every reply was read: RSET, and the connection carries on.
    Reset,
    /// DATA was answered 354 with no recipient accepted: end the data
    /// with a lone dot (delivered to nobody), read its reply, then RSET.
    EndData,
    /// The connection cannot carry on (it broke, the server closes it, or
    /// the data cannot be ended without delivering): close it.
    Close,
}

/// Writes the batch, reads its replies in order and, when DATA was
/// answered 354 for nobody, ends the data. `Ok` when the message may follow.
pub(super) async fn open(
    conn: &mut AsyncSmtpConnection,
    smtp: &Smtp,
    batch: Batch,
    reused: bool,
) -> Result<(), Stopped> {
    let expected = batch.replies();
    let mut heard = Vec::with_capacity(expected);
    // One write carries the batch; lettre then reads the first reply.
    let first = tokio::time::timeout(smtp.timeout, conn.command(&batch)).await;
    heard.push(Heard::of(first, smtp));
    while heard.len() < expected && heard.last().is_some_and(Heard::more_follow) {
        let next = tokio::time::timeout(smtp.timeout, conn.read_response()).await;
        heard.push(Heard::of(next, smtp));
    }
    match judge(&heard, batch.rcpts.len(), reused) {
        Verdict::Send => Ok(()),
        Verdict::Stop { error, then } => {
            let reusable = match then {
                Then::Reset => true,
                Then::Close => false,
                Then::EndData => end_data(conn, smtp).await,
            };
            Err(Stopped { error, reusable })
        }
    }
}

/// Ends a DATA no recipient was accepted for with a lone dot; whether the
/// server answered (so the session is in step again).
async fn end_data(conn: &mut AsyncSmtpConnection, smtp: &Smtp) -> bool {
    let ended = tokio::time::timeout(smtp.data_timeout(), conn.command(".\r\n")).await;
    match ended {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => (e.is_transient() || e.is_permanent()) && classify(&e).keeps_session(),
        Err(_) => false,
    }
}

/// Judges the replies heard so far to a batch of MAIL, `rcpts` RCPTs and
/// DATA, in order (see the module doc). `heard` ends early only at a
/// lost connection or a 421.
fn judge(heard: &[Heard], rcpts: usize, reused: bool) -> Verdict {
    let data = rcpts + 1;
    let mut refusal: Option<SendError> = None;
    let mut accepted = false;
    for (at, reply) in heard.iter().enumerate() {
        match reply {
            Heard::Lost(reason) => {
                let error = refusal.unwrap_or_else(|| SendError::Dropped {
                    reason: reason.clone(),
                    stale: at == 0 && reused,
                });
                return Verdict::Stop {
                    error,
                    then: Then::Close,
                };
            }
            Heard::No(e) => {
                let closes = !e.keeps_session();
                let error = refusal.get_or_insert_with(|| e.clone());
                if closes {
                    return Verdict::Stop {
                        error: error.clone(),
                        then: Then::Close,
                    };
                }
            }
            Heard::Yes if at == data => {
                return match refusal {
                    None => Verdict::Send,
                    Some(error) => Verdict::Stop {
                        error,
                        then: if accepted { Then::Close } else { Then::EndData },
                    },
                };
            }
            Heard::Yes => accepted |= at > 0,
        }
    }
    match refusal {
        Some(error) => Verdict::Stop {
            error,
            then: if heard.len() == data + 1 {
                Then::Reset
            } else {
                Then::Close
            },
        },
        // Fewer replies than commands, none of them negative or lost:
        // cannot happen with `open`'s reading, but never send then.
        None => Verdict::Stop {
            error: SendError::Dropped {
                reason: "the replies to the pipelined commands ended early".into(),
                stale: false,
            },
            then: Then::Close,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::transport::Reply;

    fn no(code: u16, text: &str) -> Heard {
        let reply = Reply {
            code,
            text: text.into(),
        };
        Heard::No(if code < 500 {
            SendError::Transient(reply)
        } else {
            SendError::Permanent(reply)
        })
    }

    fn lost() -> Heard {
        Heard::Lost("the connection broke".into())
    }

    /// A verdict as `(reply, or "dropped"/"stale"/"send"; then)`.
    type Seen = (String, Option<Then>);

    fn verdict(heard: &[Heard], rcpts: usize, reused: bool) -> Seen {
        match judge(heard, rcpts, reused) {
            Verdict::Send => ("send".into(), None),
            Verdict::Stop { error, then } => {
                let what = match error {
                    SendError::Transient(r) | SendError::Permanent(r) => r.to_string(),
                    SendError::Dropped { stale: true, .. } => "stale".into(),
                    SendError::Dropped { stale: false, .. } => "dropped".into(),
                    other => panic!("a batch never ends {other:?}"),
                };
                (what, Some(then))
            }
        }
    }

    #[test]
    fn replies_to_a_batch_are_judged_in_order() {
        use Heard::Yes;
        use Then::*;
        let s = |t: &str| t.to_string();
        let cases: Vec<(&str, Vec<Heard>, usize, Seen)> = vec![
            ("all accepted", vec![Yes, Yes, Yes], 1, (s("send"), None)),
            (
                "all accepted, two recipients",
                vec![Yes, Yes, Yes, Yes],
                2,
                (s("send"), None),
            ),
            (
                "MAIL refused: the rest answer 503, the session goes on",
                vec![
                    no(550, "5.7.1 sender refused"),
                    no(503, "bad sequence"),
                    no(503, "bad sequence"),
                ],
                1,
                (s("550 5.7.1 sender refused"), Some(Reset)),
            ),
            (
                "MAIL deferred",
                vec![no(451, "4.3.0 later"), no(503, "x"), no(503, "x")],
                1,
                (s("451 4.3.0 later"), Some(Reset)),
            ),
            (
                "unknown mailbox: RCPT's reply is the outcome, not DATA's",
                vec![
                    Yes,
                    no(550, "5.1.1 no such user"),
                    no(554, "no valid recipients"),
                ],
                1,
                (s("550 5.1.1 no such user"), Some(Reset)),
            ),
            (
                "one of two recipients refused: the message fails as a whole",
                vec![Yes, Yes, no(452, "4.5.3 too many"), no(554, "x")],
                2,
                (s("452 4.5.3 too many"), Some(Reset)),
            ),
            (
                "DATA refused after all was accepted",
                vec![Yes, Yes, no(451, "4.3.0 busy")],
                1,
                (s("451 4.3.0 busy"), Some(Reset)),
            ),
            (
                "354 with no valid recipient: a lone dot ends it",
                vec![Yes, no(550, "5.1.1 no such user"), Yes],
                1,
                (s("550 5.1.1 no such user"), Some(EndData)),
            ),
            (
                "354 after a refused MAIL and refused RCPTs: a lone dot",
                vec![no(550, "5.7.1 no"), no(503, "x"), Yes],
                1,
                (s("550 5.7.1 no"), Some(EndData)),
            ),
            (
                "354 with one of two recipients accepted: close, never a dot",
                vec![Yes, Yes, no(550, "5.1.1 gone"), Yes],
                2,
                (s("550 5.1.1 gone"), Some(Close)),
            ),
            (
                "354 after a refused MAIL but an accepted RCPT: close",
                vec![no(550, "5.7.1 no"), Yes, Yes],
                1,
                (s("550 5.7.1 no"), Some(Close)),
            ),
            (
                "421 to MAIL: the server hangs up",
                vec![no(421, "4.7.0 bye")],
                1,
                (s("421 4.7.0 bye"), Some(Close)),
            ),
            (
                "421 to RCPT: the server hangs up",
                vec![Yes, no(421, "4.7.0 slow down")],
                1,
                (s("421 4.7.0 slow down"), Some(Close)),
            ),
            (
                "a refusal, then 421: the refusal stands",
                vec![no(550, "5.7.1 no"), no(421, "4.7.0 bye")],
                1,
                (s("550 5.7.1 no"), Some(Close)),
            ),
            (
                "lost at MAIL's reply, fresh connection",
                vec![lost()],
                1,
                (s("dropped"), Some(Close)),
            ),
            (
                "lost at RCPT's reply",
                vec![Yes, lost()],
                1,
                (s("dropped"), Some(Close)),
            ),
            (
                "lost at DATA's reply: the message was never sent",
                vec![Yes, Yes, lost()],
                1,
                (s("dropped"), Some(Close)),
            ),
            (
                "a refusal, then the connection broke: refused, closed",
                vec![Yes, no(550, "5.1.1 no such user"), lost()],
                1,
                (s("550 5.1.1 no such user"), Some(Close)),
            ),
        ];
        for (name, heard, rcpts, want) in cases {
            assert_eq!(verdict(&heard, rcpts, false), want, "{name}");
        }
    }

    #[test]
    fn only_the_first_reply_on_a_reused_connection_is_stale() {
        assert_eq!(verdict(&[lost()], 1, true).0, "stale");
        assert_eq!(verdict(&[lost()], 1, false).0, "dropped");
        assert_eq!(verdict(&[Heard::Yes, lost()], 1, true).0, "dropped");
    }

    #[test]
    fn a_batch_is_every_command_in_order_in_one_piece() {
        let from: lettre::Address = "news@example.com".parse().expect("from");
        let to: Vec<lettre::Address> = vec![
            "a@example.net".parse().expect("to"),
            "b@example.net".parse().expect("to"),
        ];
        let batch = Batch::new(
            Mail::new(Some(from), vec![]),
            to.into_iter().map(|a| Rcpt::new(a, vec![])),
        );
        assert_eq!(batch.replies(), 4);
        assert_eq!(
            batch.to_string(),
            "MAIL FROM:<news@example.com>\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
        );
    }
}

/// Whole sessions against a scripted server (`script`): what the client
/// writes, what it concludes, and whether the connection goes on. Each
/// scenario runs against a server that pipelines and one that does not:
/// the outcome must be the same, only the dialogue differs.
#[cfg(test)]
mod sessions {
    use std::sync::Arc;
    use std::time::Duration;

    use lettre::address::Envelope;

    use super::super::script::{Answer, Script};
    use super::super::{Connection, Reply, SendError, Sink, Smtp};

    const MESSAGE: &[u8] = b"Subject: hi\r\n\r\nhello\r\n";

    fn envelope(to: &str) -> Envelope {
        Envelope::new(
            Some("news@example.com".parse().expect("from")),
            vec![to.parse().expect("to")],
        )
        .expect("envelope")
    }

    /// A connection to the script, with this command timeout.
    fn connect(script: &Script, timeout: Duration) -> Connection {
        Sink::Smtp(Arc::new(Smtp::plain(script.port(), timeout))).connection()
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    async fn deliver(conn: &mut Connection, to: &str) -> Result<String, SendError> {
        conn.deliver(&envelope(to), "2027-03-01", to, MESSAGE).await
    }

    /// The commands heard, EHLOs left out (every connection says it twice).
    fn dialogue(script: &Script) -> Vec<String> {
        script
            .heard()
            .into_iter()
            .filter(|l| !l.starts_with("EHLO"))
            .map(|l| match l.split_once(':') {
                Some((verb, _)) if verb.starts_with("MAIL") || verb.starts_with("RCPT") => {
                    verb.to_string()
                }
                _ => l,
            })
            .collect()
    }

    fn refused(result: &Result<String, SendError>) -> Option<&Reply> {
        match result {
            Err(SendError::Transient(r) | SendError::Permanent(r)) => Some(r),
            _ => None,
        }
    }

    /// A command's prefix, how many times to answer it, and how.
    type Rule = (&'static str, u32, fn() -> Answer);

    /// Answers the first `times` commands starting with each prefix, in
    /// the first transaction only (it ends at its final dot or RSET): the
    /// step-by-step client never sends what follows a refusal, and those
    /// rules must not hit the next message instead.
    fn first<const N: usize>(
        rules: [Rule; N],
    ) -> impl FnMut(&str) -> Option<Answer> + Send + 'static {
        let mut left: Vec<u32> = rules.iter().map(|r| r.1).collect();
        let mut over = false;
        move |command: &str| {
            if over {
                return None;
            }
            over = command == "." || command == "RSET";
            for (i, (prefix, _, answer)) in rules.iter().enumerate() {
                if command.starts_with(prefix) && left[i] > 0 {
                    left[i] -= 1;
                    return Some(answer());
                }
            }
            None
        }
    }

    const SECOND: Duration = Duration::from_secs(5);

    #[test]
    fn the_envelope_goes_in_one_write_when_the_server_pipelines() {
        for pipelining in [false, true] {
            let script = Script::start(pipelining, |_| None);
            let mut conn = connect(&script, SECOND);
            block_on(async {
                // The pipelining script holds its replies to MAIL and RCPT
                // until DATA arrives: a client waiting for them would time out.
                assert!(deliver(&mut conn, "a@example.net").await.is_ok());
                assert_eq!(
                    conn.smtp.as_ref().map(|s| s.pipelining),
                    Some(pipelining),
                    "learnt from the second EHLO"
                );
                assert!(deliver(&mut conn, "b@example.net").await.is_ok());
            });
            assert_eq!(
                dialogue(&script),
                [
                    "<connect>",
                    "MAIL FROM",
                    "RCPT TO",
                    "DATA",
                    "<message: 4 lines>",
                    "MAIL FROM",
                    "RCPT TO",
                    "DATA",
                    "<message: 4 lines>"
                ],
                "pipelining: {pipelining}"
            );
            let ehlos = script
                .heard()
                .iter()
                .filter(|l| l.starts_with("EHLO"))
                .count();
            assert_eq!(ehlos, 2, "lettre's EHLO, then ours");
        }
    }

    #[test]
    fn a_refused_sender_is_read_to_the_end_then_reset_on_the_same_connection() {
        for pipelining in [false, true] {
            let script = Script::start(
                pipelining,
                first([
                    ("MAIL", 1, || Answer::Reply("550 5.7.1 sender refused")),
                    ("RCPT", 1, || Answer::Reply("503 5.5.1 sender first")),
                    ("DATA", 1, || Answer::Reply("503 5.5.1 no recipients")),
                ]),
            );
            let mut conn = connect(&script, SECOND);
            block_on(async {
                let result = deliver(&mut conn, "a@example.net").await;
                assert!(
                    matches!(&result, Err(SendError::Permanent(r)) if r.text.contains("sender refused")),
                    "MAIL's reply is the outcome: {result:?}"
                );
                assert!(deliver(&mut conn, "b@example.net").await.is_ok());
            });
            let want: &[&str] = if pipelining {
                &["<connect>", "MAIL FROM", "RCPT TO", "DATA", "RSET"]
            } else {
                &["<connect>", "MAIL FROM", "RSET"]
            };
            let heard = dialogue(&script);
            assert_eq!(&heard[..want.len()], want, "pipelining: {pipelining}");
            assert_eq!(
                heard[want.len()..],
                ["MAIL FROM", "RCPT TO", "DATA", "<message: 4 lines>"],
                "the next message on the same connection"
            );
        }
    }

    #[test]
    fn an_unknown_mailbox_bounces_although_data_then_gets_503() {
        for pipelining in [false, true] {
            let script = Script::start(
                pipelining,
                first([
                    ("RCPT", 1, || Answer::Reply("550 5.1.1 no such user")),
                    ("DATA", 1, || Answer::Reply("503 5.5.1 no valid recipients")),
                ]),
            );
            let mut conn = connect(&script, SECOND);
            block_on(async {
                let result = deliver(&mut conn, "gone@example.net").await;
                assert!(
                    refused(&result).is_some_and(Reply::unknown_mailbox),
                    "{result:?}"
                );
                assert!(deliver(&mut conn, "b@example.net").await.is_ok());
            });
            let heard = dialogue(&script);
            assert_eq!(
                heard.iter().filter(|l| *l == "<connect>").count(),
                1,
                "the session was kept: {heard:?}"
            );
            assert!(heard.contains(&"RSET".to_string()), "{heard:?}");
        }
    }

    #[test]
    fn a_354_for_nobody_is_ended_with_a_lone_dot_and_delivers_nothing() {
        let script = Script::start(
            true,
            first([
                ("RCPT", 1, || Answer::Reply("550 5.1.1 no such user")),
                ("DATA", 1, || Answer::Reply("354 go ahead anyway")),
                (".", 1, || Answer::Reply("554 5.5.1 no valid recipients")),
            ]),
        );
        let mut conn = connect(&script, SECOND);
        block_on(async {
            let result = deliver(&mut conn, "gone@example.net").await;
            assert!(
                refused(&result).is_some_and(Reply::unknown_mailbox),
                "RCPT's reply is the outcome: {result:?}"
            );
            assert!(deliver(&mut conn, "b@example.net").await.is_ok());
        });
        assert_eq!(
            dialogue(&script),
            [
                "<connect>",
                "MAIL FROM",
                "RCPT TO",
                "DATA",
                "<message: 0 lines>",
                "RSET",
                "MAIL FROM",
                "RCPT TO",
                "DATA",
                "<message: 4 lines>"
            ]
        );
    }

    #[test]
    fn a_connection_lost_before_the_go_ahead_is_dropped_never_unknown() {
        for pipelining in [false, true] {
            let script = Script::start(pipelining, first([("DATA", 1, || Answer::Hangup)]));
            let mut conn = connect(&script, SECOND);
            block_on(async {
                let result = deliver(&mut conn, "a@example.net").await;
                assert!(
                    matches!(result, Err(SendError::Dropped { stale: false, .. })),
                    "{result:?}"
                );
                assert!(conn.smtp.is_none(), "the connection is closed");
                assert!(deliver(&mut conn, "a@example.net").await.is_ok());
            });
            let heard = dialogue(&script);
            assert_eq!(heard.iter().filter(|l| *l == "<connect>").count(), 2);
            assert!(!heard.contains(&"RSET".to_string()), "{heard:?}");
        }
    }

    #[test]
    fn a_batch_lost_on_a_reused_connection_is_stale() {
        // (Step by step, MAIL's reply came: a loss at DATA is never stale.)
        let script = Script::start(true, |command: &str| {
            command.starts_with("RCPT TO:<b").then_some(Answer::Hangup)
        });
        let mut conn = connect(&script, SECOND);
        block_on(async {
            assert!(deliver(&mut conn, "a@example.net").await.is_ok());
            let result = deliver(&mut conn, "b@example.net").await;
            assert!(
                matches!(result, Err(SendError::Dropped { stale: true, .. })),
                "{result:?}"
            );
        });
    }

    #[test]
    fn a_silent_server_is_a_drop_after_the_timeout() {
        for pipelining in [false, true] {
            let script = Script::start(pipelining, first([("MAIL", 1, || Answer::Silence)]));
            let mut conn = connect(&script, Duration::from_millis(200));
            block_on(async {
                let result = deliver(&mut conn, "a@example.net").await;
                assert!(
                    matches!(&result, Err(SendError::Dropped { reason, stale: false }) if reason.contains("no reply in time")),
                    "{result:?}"
                );
                assert!(conn.smtp.is_none());
            });
        }
    }

    #[test]
    fn a_refusal_whose_later_replies_never_come_stands_and_closes_the_connection() {
        for pipelining in [false, true] {
            let script = Script::start(
                pipelining,
                first([
                    ("RCPT", 1, || Answer::Reply("550 5.1.1 no such user")),
                    ("DATA", 1, || Answer::Silence),
                ]),
            );
            let mut conn = connect(&script, Duration::from_millis(200));
            block_on(async {
                let result = deliver(&mut conn, "gone@example.net").await;
                assert!(
                    refused(&result).is_some_and(Reply::unknown_mailbox),
                    "{result:?}"
                );
                // Step by step, DATA is never sent: the session goes on.
                assert_eq!(conn.smtp.is_some(), !pipelining, "{:?}", dialogue(&script));
            });
            assert!(
                !dialogue(&script).contains(&"RSET".to_string()) || !pipelining,
                "an out-of-step session is never reset"
            );
        }
    }

    #[test]
    fn a_421_in_the_batch_closes_the_connection() {
        for pipelining in [false, true] {
            let script = Script::start(
                pipelining,
                first([("RCPT", 1, || Answer::Reply("421 4.7.0 slow down"))]),
            );
            let mut conn = connect(&script, SECOND);
            block_on(async {
                let result = deliver(&mut conn, "a@example.net").await;
                assert!(refused(&result).is_some_and(Reply::closes), "{result:?}");
                assert!(conn.smtp.is_none());
                assert!(deliver(&mut conn, "a@example.net").await.is_ok());
            });
            let heard = dialogue(&script);
            assert_eq!(heard.iter().filter(|l| *l == "<connect>").count(), 2);
            assert!(!heard.contains(&"RSET".to_string()), "{heard:?}");
        }
    }

    #[test]
    fn a_reply_lost_after_the_message_is_unknown() {
        for pipelining in [false, true] {
            let script = Script::start(pipelining, first([(".", 1, || Answer::Hangup)]));
            let mut conn = connect(&script, SECOND);
            block_on(async {
                let result = deliver(&mut conn, "a@example.net").await;
                assert!(matches!(result, Err(SendError::Unknown(_))), "{result:?}");
            });
        }
    }
}

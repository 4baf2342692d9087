//! One message's attempts: the reader's copy is built once, then handed
//! to the worker's connection until it is settled.
//!
//! Only here are faults sorted into what the ledger records (see the
//! pipeline's module doc): a reply settles the message (`sent`, `failed`,
//! `bounced`, or after `retries` 4xx replies with exponential backoff,
//! `deferred`); a connection lost before the whole message was sent costs
//! this message (`deferred`) and, if it was a stale idle connection, first
//! earns one immediate retry; no reply after the whole message makes it
//! `unknown`, and enough of those in a row stop the run. A worker that
//! cannot open a connection backs off and, after `retries` more failures
//! in a row, retires.

use std::sync::atomic::Ordering;
use std::time::Duration;

use lettre::address::Envelope;

use super::Shared;
use super::feed::Job;
use super::stop::Stop;
use crate::deliver::transport::{ConnectError, Connection, Reply, SendError};
use crate::ledger::{DeliveryStatus, Outcome};
use crate::project::subscribers::Subscriber;

/// The longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How a worker goes on after a message.
pub(super) enum Flow {
    Continue,
    /// This worker cannot connect any more; the run goes on with the others.
    Retire(Stop),
    /// The whole run stops.
    Halt(Stop),
}

impl Shared {
    /// Delivers one message, retrying as the module doc says: a 4xx after
    /// a backoff, a stale connection at once, a failed connect after a
    /// backoff until the worker retires.
    pub(super) async fn deliver(
        &self,
        conn: &mut Connection,
        connect_failures: &mut u32,
        job: &Job,
    ) -> Settled {
        let reader = &job.reader;
        let (bytes, envelope) = match self.compose(job) {
            Ok(composed) => composed,
            Err(reply) => return Settled::done(reader, DeliveryStatus::Failed, reply),
        };
        let mut spent = Spent::default();
        loop {
            if self.stop.stopped() {
                let reply = self.stop.not_attempted_reason();
                return Settled::unattempted(reader, reply, Flow::Continue);
            }
            match self.connect(conn, connect_failures).await {
                Link::Ready => {}
                Link::Retry => continue,
                Link::Lost(e) => {
                    let reply = format!("not attempted: {e}");
                    return Settled::unattempted(reader, reply, Flow::Retire(Stop::from(e)));
                }
            }
            self.rate.wait().await;
            let result = conn
                .deliver(&envelope, &self.date_text, &reader.key, &bytes)
                .await;
            match self.judge(result, reader, &mut spent) {
                Next::Done(settled) => return settled,
                Next::Backoff(attempt) => self.backoff(attempt).await,
                Next::Again => {}
            }
        }
    }

    /// The reader's copy and its envelope (the sender: the job's VERP
    /// address, else `envelope_from`). A failure here is this reader's
    /// alone (`failed`), never the run's.
    fn compose(&self, job: &Job) -> Result<(Vec<u8>, Envelope), String> {
        let reader = &job.reader;
        let bytes = self
            .email
            .message(reader)
            .map_err(|e| format!("cannot build the message: {e}"))?;
        let sender = match (&self.verp, &job.return_path) {
            (Some(verp), Some(token)) => verp
                .sender(token)
                .map_err(|e| format!("bad return path: {e}"))?,
            _ => self.envelope_from.clone(),
        };
        let envelope = Envelope::new(Some(sender), vec![reader.email.clone()])
            .map_err(|e| format!("bad envelope: {e}"))?;
        Ok((bytes, envelope))
    }

    /// Makes sure the worker has a connection; after a failure it backs
    /// off, and after `retries + 1` failures in a row it gives up.
    async fn connect(&self, conn: &mut Connection, failures: &mut u32) -> Link {
        let Err(e) = conn.ensure().await else {
            *failures = 0;
            return Link::Ready;
        };
        *failures += 1;
        tracing::debug!(
            "cannot connect (failure {} of at most {}): {e}",
            *failures,
            self.retries + 1
        );
        if *failures > self.retries {
            return Link::Lost(e);
        }
        self.backoff(*failures - 1).await;
        Link::Retry
    }

    /// Waits `retry_base × 2^attempt`, at most [`MAX_BACKOFF`].
    async fn backoff(&self, attempt: u32) {
        let delay = self
            .retry_base
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(MAX_BACKOFF);
        tokio::time::sleep(delay).await;
    }

    /// Sorts one attempt's result into what to record, or another try.
    fn judge(
        &self,
        result: Result<String, SendError>,
        reader: &Subscriber,
        spent: &mut Spent,
    ) -> Next {
        // Only an answer from the relay ends a run of unanswered messages;
        // a dropped connection says nothing either way.
        if !matches!(
            result,
            Err(SendError::Unknown(_) | SendError::Dropped { .. })
        ) {
            self.unanswered.store(0, Ordering::Relaxed);
        }
        let done = |status, reply| Next::Done(Settled::done(reader, status, reply));
        match result {
            Ok(reply) => done(DeliveryStatus::Sent, reply),
            Err(SendError::Permanent(reply)) => {
                let status = if reply.unknown_mailbox() {
                    DeliveryStatus::Bounced
                } else {
                    DeliveryStatus::Failed
                };
                done(status, reply.to_string())
            }
            Err(SendError::Transient(reply)) => self.transient(&reply, reader, spent),
            // An idle connection the server had closed: nothing was
            // sent on it, so one immediate retry on a fresh one.
            Err(SendError::Dropped {
                stale: true,
                reason,
            }) if !spent.stale => {
                tracing::debug!("an idle connection was closed ({reason}); retrying on a new one");
                spent.stale = true;
                Next::Again
            }
            Err(SendError::Dropped { reason, .. }) => done(DeliveryStatus::Deferred, reason),
            Err(SendError::Unknown(reason)) => Next::Done(self.unanswered(reader, reason)),
            // `ensure` just succeeded; treat a failure here like a drop.
            Err(SendError::Connect(e)) => done(DeliveryStatus::Deferred, e.to_string()),
            Err(e @ SendError::File { .. }) => {
                let e = e.to_string();
                let flow = Flow::Halt(Stop::File(e.clone()));
                Next::Done(Settled::unattempted(reader, e, flow))
            }
        }
    }

    /// A 4xx: the same message again after a backoff, until `retries` are
    /// spent; then it is `deferred`.
    fn transient(&self, reply: &Reply, reader: &Subscriber, spent: &mut Spent) -> Next {
        let reply = reply.to_string();
        if spent.transient >= self.retries {
            return Next::Done(Settled::done(reader, DeliveryStatus::Deferred, reply));
        }
        tracing::debug!(
            "{} deferred ({}); retry {} of {}",
            crate::log::mask(&reader.key),
            crate::log::mask_in(&reply, &reader.key),
            spent.transient + 1,
            self.retries
        );
        let attempt = spent.transient;
        spent.transient += 1;
        Next::Backoff(attempt)
    }

    /// No reply after the whole message was sent: `unknown`. Enough of
    /// those in a row, across workers, stop the run: a relay that swallows
    /// mail without answering would only make duplicates.
    fn unanswered(&self, reader: &Subscriber, reason: String) -> Settled {
        let count = self.unanswered.fetch_add(1, Ordering::Relaxed) + 1;
        let flow = if count >= self.unanswered_limit {
            Flow::Halt(Stop::Unanswered {
                count,
                last: reason.clone(),
            })
        } else {
            Flow::Continue
        };
        Settled {
            outcome: outcome(reader, DeliveryStatus::Unknown, reason),
            flow,
            attempted: true,
        }
    }
}

/// What became of one message, and how its worker goes on.
pub(super) struct Settled {
    pub(super) outcome: Outcome,
    pub(super) flow: Flow,
    /// False when the message never reached the sink (the run stopped, no
    /// connection could be opened, the outbox failed): it stays due.
    pub(super) attempted: bool,
}

impl Settled {
    /// An attempt that ended with `status`; the worker goes on.
    fn done(reader: &Subscriber, status: DeliveryStatus, reply: String) -> Settled {
        Settled {
            outcome: outcome(reader, status, reply),
            flow: Flow::Continue,
            attempted: true,
        }
    }

    /// A message that never reached the sink: `deferred`, due again.
    fn unattempted(reader: &Subscriber, reply: String, flow: Flow) -> Settled {
        Settled {
            outcome: outcome(reader, DeliveryStatus::Deferred, reply),
            flow,
            attempted: false,
        }
    }
}

fn outcome(reader: &Subscriber, status: DeliveryStatus, reply: String) -> Outcome {
    Outcome {
        address: reader.key.clone(),
        status,
        reply: Some(reply),
    }
}

/// What the worker does after one attempt at a message.
enum Next {
    /// The message is settled.
    Done(Settled),
    /// A 4xx: wait `retry_base × 2^n`, then try the same message again.
    Backoff(u32),
    /// A stale connection: try again at once on a new one.
    Again,
}

/// Whether the worker has a connection to send on.
enum Link {
    Ready,
    /// Opening one failed; the worker has backed off and tries again.
    Retry,
    /// Opening one failed `retries + 1` times in a row: the worker retires.
    Lost(ConnectError),
}

/// The retries one message has used up.
#[derive(Default)]
struct Spent {
    /// 4xx replies so far.
    transient: u32,
    /// Whether the one immediate retry after a stale connection is used.
    stale: bool,
}

//! Why and how a run stops before every recipient was attempted.
//!
//! [`Stop`] is the reason the summary names (and whether a later run may
//! simply succeed); [`Stopper`] is the switch the dispatcher and every
//! worker watch. Stopping never abandons a message on the wire: workers
//! finish the one they are sending, record it, then take no more.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;

use crate::deliver::transport::ConnectError;

/// Why a run stopped before every recipient was attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// No worker could open a connection, `retries` times in a row each.
    Unreachable(String),
    /// Every worker was told to wait (4xx at the greeting, EHLO or AUTH).
    Throttled(String),
    /// Several messages in a row got no reply after they were sent.
    Unanswered { count: u32, last: String },
    /// The outbox folder could not be written.
    File(String),
    /// Ctrl-C or SIGTERM: the messages on the wire were finished first.
    Interrupted,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Unreachable(e) => write!(f, "the SMTP server could not be reached ({e})"),
            Stop::Throttled(e) => write!(
                f,
                "the SMTP server kept asking us to slow down, on every connection ({e})"
            ),
            Stop::Unanswered { count, last } => write!(
                f,
                "{count} messages in a row got no reply after they were sent ({last}); stopped rather than risk duplicates"
            ),
            Stop::File(e) => write!(f, "the outbox cannot be written ({e})"),
            Stop::Interrupted => write!(f, "interrupted (Ctrl-C or SIGTERM)"),
        }
    }
}

impl Stop {
    /// Whether a later run may simply succeed (exit 75) or someone must
    /// fix something first (exit 1).
    pub fn temporary(&self) -> bool {
        !matches!(self, Stop::File(_))
    }
}

/// A worker that cannot connect any more retires for the reason it could not.
impl From<ConnectError> for Stop {
    fn from(e: ConnectError) -> Stop {
        match e {
            ConnectError::Throttled(r) => Stop::Throttled(r),
            ConnectError::Unreachable(r) => Stop::Unreachable(r),
        }
    }
}

/// Whether the run is stopping, and why: shared by the dispatcher, the
/// workers and the signal handler.
pub(super) struct Stopper {
    /// Why the run stopped (set once: the first reason wins).
    reason: Mutex<Option<Stop>>,
    /// Flips to true when the run stops: the dispatcher and workers watch it.
    flag: watch::Sender<bool>,
    /// Workers that have not retired.
    alive: AtomicUsize,
}

impl Stopper {
    pub(super) fn new(workers: usize) -> Stopper {
        let (flag, _) = watch::channel(false);
        Stopper {
            reason: Mutex::new(None),
            flag,
            alive: AtomicUsize::new(workers),
        }
    }

    pub(super) fn stopped(&self) -> bool {
        *self.flag.borrow()
    }

    /// A receiver to wait on with `wait_for(|s| *s)`.
    pub(super) fn subscribe(&self) -> watch::Receiver<bool> {
        self.flag.subscribe()
    }

    /// Stops the run (the first reason wins).
    pub(super) fn halt(&self, reason: Option<Stop>) {
        if let Ok(mut stop) = self.reason.lock()
            && stop.is_none()
        {
            *stop = reason;
        }
        self.flag.send_replace(true);
    }

    /// A worker gives up; the last one to do so stops the run.
    pub(super) fn retire(&self, reason: Stop) {
        if self.alive.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.halt(Some(reason));
        }
    }

    /// Why the run stopped, for the summary; `None` if it did not (or
    /// stopped on an error reported apart).
    pub(super) fn reason(&self) -> anyhow::Result<Option<Stop>> {
        Ok(self
            .reason
            .lock()
            .map_err(|_| anyhow::anyhow!("stop poisoned"))?
            .clone())
    }

    /// The reply recorded for a message the stop kept from being sent.
    pub(super) fn not_attempted_reason(&self) -> String {
        match self.reason.lock().ok().and_then(|s| s.clone()) {
            Some(stop) => format!("not attempted: {stop}"),
            None => "not attempted: the run stopped".into(),
        }
    }
}

/// The first Ctrl-C or SIGTERM stops the run gently: no new message is
/// started, the ones on the wire finish and are recorded. A second one
/// quits at once (the next run settles what was in flight).
pub(super) async fn stop_on_signal(stopper: &Stopper) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut signalled = async || match &mut term {
        Some(term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        },
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    signalled().await;
    tracing::warn!("stopping: finishing the messages on the wire (a second Ctrl-C quits at once)");
    stopper.halt(Some(Stop::Interrupted));
    signalled().await;
    std::process::exit(130);
}

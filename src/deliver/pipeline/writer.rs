//! The ledger's writer thread: every write of a run goes through it.
//!
//! SQLite connections are not shared across threads, so the ledger lives
//! on one thread of its own. It commits whatever has queued up in one
//! transaction (group commit), so the per-message cost stays small even
//! with many workers, and each caller waits until its writes are
//! committed: that wait is what the crash-safety argument of the pipeline
//! rests on. The first failed commit ends the thread; every later write
//! then fails with "the ledger writer stopped".

use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use tokio::sync::oneshot;

use crate::ledger::{Ledger, Write};

/// The most commands folded into one transaction.
const GROUP: usize = 1024;

/// How long the first command of a group waits for others to join it,
/// unless every worker has already written. Every worker waits for its
/// commit before it transmits again, so this adds at most this much to a
/// message's turn; in exchange a busy run commits about once a millisecond
/// instead of once per message (measured with 20 workers against
/// smtp-sink: a tenth less CPU per message; see BENCHMARKS.md).
const GATHER: Duration = Duration::from_millis(1);

/// One group of ledger writes and who waits for their commit.
struct Command {
    writes: Vec<Write>,
    ack: oneshot::Sender<anyhow::Result<()>>,
}

/// The handle workers and the dispatcher write through.
pub(super) struct Writer {
    /// std's `Sender` is `Sync`: workers share it without a lock.
    tx: mpsc::Sender<Command>,
}

/// The writer thread; its result is the first failed commit, if any.
pub(super) type Thread = std::thread::JoinHandle<anyhow::Result<()>>;

impl Writer {
    /// Starts the ledger's thread for the issue of `date`; `today` is the
    /// newsletter's current day (`daily_cap` accounting); `workers` is how
    /// many writers a group may wait for. The thread ends once every
    /// [`Writer`] is gone.
    pub(super) fn spawn(
        mut ledger: Ledger,
        date: NaiveDate,
        today: NaiveDate,
        workers: usize,
    ) -> (Writer, Thread) {
        let (tx, rx) = mpsc::channel::<Command>();
        let handle = std::thread::spawn(move || -> anyhow::Result<()> {
            while let Ok(first) = rx.recv() {
                let until = Instant::now() + GATHER;
                let mut commands = vec![first];
                // Whatever is queued joins; then wait for more only while
                // some worker has not written yet.
                while commands.len() < GROUP {
                    match rx.try_recv() {
                        Ok(c) => commands.push(c),
                        Err(_) if commands.len() >= workers => break,
                        Err(_) => {
                            match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                                Ok(c) => commands.push(c),
                                Err(_) => break,
                            }
                        }
                    }
                }
                commit(&mut ledger, date, today, commands)?;
            }
            Ok(())
        });
        (Writer { tx }, handle)
    }

    /// Sends writes to the ledger thread and waits for their commit.
    pub(super) async fn write(&self, writes: Vec<Write>) -> anyhow::Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Command { writes, ack })
            .map_err(|_| anyhow::anyhow!("the ledger writer stopped"))?;
        done.await
            .map_err(|_| anyhow::anyhow!("the ledger writer stopped"))?
    }
}

/// Applies a group of commands in one transaction and tells every waiter
/// how it went.
fn commit(
    ledger: &mut Ledger,
    date: NaiveDate,
    today: NaiveDate,
    mut commands: Vec<Command>,
) -> anyhow::Result<()> {
    let writes: Vec<Write> = commands
        .iter_mut()
        .flat_map(|c| std::mem::take(&mut c.writes))
        .collect();
    let result = ledger.apply(date, today, &writes);
    let err = result.as_ref().err().map(|e| format!("{e:#}"));
    for c in commands {
        let _ = c.ack.send(match &err {
            None => Ok(()),
            Some(e) => Err(anyhow::anyhow!("{e}")),
        });
    }
    if let Some(e) = err {
        anyhow::bail!("{e}");
    }
    Ok(())
}

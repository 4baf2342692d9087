//! The workers: each takes messages from the queue, one at a time, over a
//! connection of its own.
//!
//! The order of a worker's steps is the crash-safety argument of the
//! pipeline (see its module doc): a message is marked `transmitting`
//! (committed) before its attempts start, and its outcome is committed
//! before the worker takes up the next one. When the next message is
//! already waiting, recording this outcome and marking the next one is a
//! single commit, so the mark costs nothing extra.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::Shared;
use super::attempt::{Flow, Settled};
use super::feed::{Job, Queue};
use crate::ledger::Outcome;

/// How long a worker runs before it lets the scheduler move the others.
const YIELD_AFTER: Duration = Duration::from_micros(500);

/// Starts `concurrency` workers on the queue.
pub(super) fn spawn_workers(
    shared: &Arc<Shared>,
    queue: &Queue,
    concurrency: usize,
) -> JoinSet<anyhow::Result<()>> {
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let shared = shared.clone();
        let queue = queue.clone();
        workers.spawn(async move { shared.worker(queue).await });
    }
    workers
}

/// Waits for every worker; the error of one that failed, if any did.
pub(super) async fn join_workers(
    mut workers: JoinSet<anyhow::Result<()>>,
) -> Option<anyhow::Error> {
    let mut worker_error = None;
    while let Some(result) = workers.join_next().await {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => worker_error = Some(e),
            Err(e) => worker_error = Some(anyhow::anyhow!("a send worker failed: {e}")),
        }
    }
    worker_error
}

impl Shared {
    /// One worker, until the queue is empty and closed, the run stops, or
    /// it retires. A ledger error ends it (and, reported, the run).
    async fn worker(&self, queue: Queue) -> anyhow::Result<()> {
        let mut conn = self.sink.connection();
        let mut connect_failures = 0;
        let mut next = self.take(&queue).await;
        // Whether `next` is already marked `transmitting`.
        let mut begun = false;
        let mut busy_since = Instant::now();
        while let Some(job) = next.take() {
            if !begun {
                self.write(self.begin(&job).into_iter().collect()).await?;
            }
            let Settled {
                outcome,
                flow,
                attempted,
            } = self.deliver(&mut conn, &mut connect_failures, &job).await;
            tracing::trace!(
                "{} {}: {}",
                crate::log::mask(&job.reader.key),
                outcome.status.as_str(),
                crate::log::mask_in(outcome.reply.as_deref().unwrap_or(""), &job.reader.key)
            );
            self.count(&outcome, &job, attempted);
            let go_on = self.follow(flow);
            // Recording this outcome and marking the next message as being
            // sent is one commit, when the next message is already waiting.
            next = if go_on {
                self.try_take(&queue).await
            } else {
                None
            };
            begun = next.is_some();
            let mut writes = vec![self.record(outcome, &job.message_id)];
            writes.extend(next.as_ref().and_then(|n| self.begin(n)));
            self.write(writes).await?;
            self.progress.tick();
            // Rendering and signing run without a pause, and every await
            // here may complete at once (a dry run, a fast ledger): yield
            // now and then, or the other workers, woken into this thread's
            // LIFO slot, never run elsewhere and one core does all the work
            // (measured: RSA-signed dry run 1,150 -> 2,300 msg/s).
            if busy_since.elapsed() >= YIELD_AFTER {
                tokio::task::yield_now().await;
                busy_since = Instant::now();
            }
            if go_on && next.is_none() {
                next = self.take(&queue).await;
                begun = false;
            }
        }
        conn.close().await;
        Ok(())
    }

    /// The next message, unless the run is stopping.
    async fn take(&self, queue: &Queue) -> Option<Job> {
        if self.stop.stopped() {
            return None;
        }
        let mut rx = queue.lock().await;
        let mut stopped = self.stop.subscribe();
        tokio::select! {
            job = rx.recv() => job,
            _ = stopped.wait_for(|s| *s) => None,
        }
    }

    /// The next message if one is waiting right now.
    async fn try_take(&self, queue: &Queue) -> Option<Job> {
        if self.stop.stopped() {
            return None;
        }
        queue.lock().await.try_recv().ok()
    }

    /// Acts on how a message says the worker goes on; whether it does.
    fn follow(&self, flow: Flow) -> bool {
        match flow {
            Flow::Continue => true,
            Flow::Retire(reason) => {
                self.stop.retire(reason);
                false
            }
            Flow::Halt(reason) => {
                self.stop.halt(Some(reason));
                false
            }
        }
    }

    fn count(&self, outcome: &Outcome, job: &Job, attempted: bool) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.add(outcome, job.uncertain, attempted);
        }
    }
}

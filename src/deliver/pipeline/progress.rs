//! What a run shows while it sends: a progress bar when stderr is a
//! terminal, otherwise a log line after the first message (the run has
//! started) and then every five seconds (cron mail and journald get a few
//! lines, not one per message), timestamped like every log line there.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a progress line is logged without a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Shared by every worker; each settled message ticks it once.
#[derive(Clone)]
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    done: Arc<AtomicU64>,
    started: Instant,
    last_log: Arc<Mutex<Instant>>,
}

impl Progress {
    /// `total` is the readers expected (the feed's length is only known at
    /// its end); `terminal` chooses the bar over log lines.
    pub(super) fn new(total: u64, terminal: bool) -> Progress {
        let bar = terminal.then(|| crate::log::progress_bar(total));
        Progress {
            bar,
            total,
            done: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
            last_log: Arc::new(Mutex::new(Instant::now())),
        }
    }

    pub(super) fn tick(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.bar {
            Some(bar) => bar.inc(1),
            None => {
                let Ok(mut last) = self.last_log.lock() else {
                    return;
                };
                if done == 1 || last.elapsed() >= LOG_EVERY {
                    *last = Instant::now();
                    let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
                    tracing::info!(
                        "progress: {}/{} ({})",
                        crate::log::thousands(done),
                        crate::log::thousands(self.total),
                        crate::log::rate(rate)
                    );
                }
            }
        }
    }

    /// Clears the bar so the summary starts on a clean line.
    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

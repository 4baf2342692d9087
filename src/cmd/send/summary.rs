//! What a `send` run did: the [`Summary`] `run` prints as text or JSON,
//! its exit code (0, 75 when someone is left for a later run, 1 when a
//! rerun will not help by itself), and how the selection's tally and the
//! pipeline's counts fill it in.

use crate::deliver::pipeline::Counts;
use crate::deliver::transport::Sink;
use crate::deliver::{Allowance, Tally};
use crate::project::subscribers::List;

use super::SendOptions;

/// What a run did; printed as text or JSON.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    pub date: String,
    pub issue: u32,
    pub transport: String,
    pub dry_run: bool,
    pub test: bool,
    /// Active subscribers on the list.
    pub active: u64,
    pub already_sent: u64,
    pub suppressed: u64,
    /// Rows of the list skipped for a problem of their own (each listed
    /// with `path:line`).
    pub invalid_rows: u64,
    /// Failed (5xx) in an earlier run and not retried.
    pub failed_earlier: u64,
    /// Two attempts ended without an answer: never resent automatically
    /// (the reader most likely has it; see the README's guarantees).
    pub unknown_twice: u64,
    /// Rows an interrupted earlier run left behind, settled at the start.
    pub recovered: u64,
    pub attempted: u64,
    pub sent: u64,
    pub deferred: u64,
    /// Why the last deferred message was deferred (a reply or a broken connection).
    pub deferred_because: Option<String>,
    /// Sent, but no reply came: resent once on a later run.
    pub unknown: u64,
    pub failed: u64,
    pub bounced: u64,
    /// Held back by `--limit`.
    pub left_by_limit: u64,
    /// Held back by `daily_cap`.
    pub left_by_cap: u64,
    /// Not attempted because the run stopped early (see `stopped`).
    pub not_attempted: u64,
    /// Why the run stopped before everyone due was attempted.
    pub stopped: Option<String>,
    pub elapsed_seconds: f64,
    pub messages_per_second: f64,
    /// Why nothing was sent, when nothing was.
    pub skipped: Option<String>,
    /// `zone` (send_time in the newsletter's zone) or `local` (a run of
    /// local mornings: see `issues`).
    pub delivery: &'static str,
    /// A run of local mornings: one summary per issue date sent, oldest
    /// first (the counts above are their sums).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub issues: Vec<Summary>,
    /// A run of local mornings: readers whose morning has not come (or
    /// who have their current issue already).
    pub waiting: u64,
    /// A run of local mornings: readers more than `max_lateness` past
    /// their morning, without their issue.
    pub late_skipped: u64,
    /// A run of local mornings: whose morning comes next, and when.
    pub next: Option<String>,
    #[serde(skip)]
    stopped_for_good: bool,
}

impl crate::cmd::Report for Summary {
    /// 0 when everything due went out (or nothing was due), 75 when some
    /// recipients are left for a later run, 1 when the run stopped on
    /// something a rerun will not fix by itself (the outbox cannot be
    /// written).
    /// A dry run delivers nothing and leaves nothing for later: it never
    /// asks for a rerun.
    fn exit_code(&self) -> u8 {
        if self.dry_run {
            0
        } else if self.stopped_for_good {
            1
        } else if self.left() > 0 {
            crate::problem::EXIT_TEMPFAIL
        } else {
            0
        }
    }

    fn text(&self) -> String {
        if self.delivery == "local" {
            return self.local_text();
        }
        if let Some(reason) = &self.skipped {
            return format!(
                "issue {} of {}: nothing sent: {reason}\n",
                self.issue, self.date
            );
        }
        let mut out = format!("{}\n", self.headline());
        if self.dry_run {
            out.push_str(&format!("  would send {}\n", self.sent));
        } else {
            out.push_str(&format!(
                "  sent {}, deferred {}, unknown {}, failed {}, bounced {}\n",
                self.sent, self.deferred, self.unknown, self.failed, self.bounced
            ));
        }
        out.push_str(&format!(
            "  skipped: already sent {}, suppressed {}, invalid rows {}, failed earlier {}{}\n",
            self.already_sent,
            self.suppressed,
            self.invalid_rows,
            self.failed_earlier,
            if self.unknown_twice > 0 {
                format!(", unanswered twice {}", self.unknown_twice)
            } else {
                String::new()
            }
        ));
        if let (true, Some(why)) = (self.deferred > 0, &self.deferred_because) {
            out.push_str(&format!("  deferred because: {why}\n"));
        }
        if self.recovered > 0 {
            out.push_str(&format!(
                "  settled {} of an interrupted earlier run\n",
                crate::cmd::count(self.recovered, "row", "rows")
            ));
        }
        if let Some(why) = &self.stopped {
            out.push_str(&format!(
                "  stopped early: {why}; not attempted {}\n",
                self.not_attempted
            ));
        }
        let left = if self.dry_run {
            "a real run would leave for the next one"
        } else {
            "left for the next run"
        };
        if self.left_by_cap > 0 {
            out.push_str(&format!("  {left} by daily_cap: {}\n", self.left_by_cap));
        }
        if self.left_by_limit > 0 {
            out.push_str(&format!("  {left} by --limit: {}\n", self.left_by_limit));
        }
        out.push_str(&format!(
            "  {:.1} s, {}\n",
            self.elapsed_seconds,
            crate::log::rate(self.messages_per_second)
        ));
        match crate::cmd::Report::exit_code(self) {
            0 => {}
            1 => {
                out.push_str("  fix the problem above, then run `dailyissue send` again (exit 1)\n")
            }
            _ => out.push_str(
                "  some recipients are left: run `dailyissue send` again later (exit 75)\n",
            ),
        }
        out
    }
}

impl Summary {
    /// A run of local mornings, before any part of it.
    pub(super) fn local(opts: &SendOptions, sink: &Sink, list: &List) -> Summary {
        Summary {
            date: opts.date.to_string(),
            transport: sink.describe(),
            dry_run: opts.dry_run,
            invalid_rows: list.problems.len() as u64,
            active: list.active as u64,
            delivery: "local",
            ..Summary::default()
        }
    }

    /// Adds one part (one issue date) of a run of local mornings.
    pub(super) fn absorb(&mut self, part: Summary) {
        self.date.clone_from(&part.date);
        self.issue = part.issue;
        self.already_sent += part.already_sent;
        self.failed_earlier += part.failed_earlier;
        self.unknown_twice += part.unknown_twice;
        self.attempted += part.attempted;
        self.sent += part.sent;
        self.deferred += part.deferred;
        if part.deferred_because.is_some() {
            self.deferred_because.clone_from(&part.deferred_because);
        }
        self.unknown += part.unknown;
        self.failed += part.failed;
        self.bounced += part.bounced;
        self.left_by_limit += part.left_by_limit;
        self.left_by_cap += part.left_by_cap;
        self.not_attempted += part.not_attempted;
        if part.stopped.is_some() {
            self.stopped.clone_from(&part.stopped);
        }
        self.stopped_for_good |= part.stopped_for_good;
        self.issues.push(part);
    }

    /// The text of a run of local mornings: each part, then who is next.
    fn local_text(&self) -> String {
        let mut out = String::new();
        if let Some(reason) = &self.skipped {
            out.push_str(&format!("local mornings: nothing sent: {reason}\n"));
            return out;
        }
        for part in &self.issues {
            out.push_str(&crate::cmd::Report::text(part));
        }
        out.push_str(&format!(
            "local mornings: sent {} in {} issue{}; waiting for their morning {}, late-skipped {}\n",
            self.sent,
            self.issues.len(),
            if self.issues.len() == 1 { "" } else { "s" },
            self.waiting,
            self.late_skipped
        ));
        if let Some(next) = &self.next {
            out.push_str(&format!("{next}\n"));
        }
        out
    }

    /// `issue 1 of 2027-03-01 via …`: what this run sends and where; the
    /// summary's first line, and logged before the run starts.
    pub fn headline(&self) -> String {
        format!(
            "issue {} of {} via {}{}{}",
            self.issue,
            self.date,
            self.transport,
            if self.dry_run {
                " (dry run: nothing delivered, no ledger written)"
            } else {
                ""
            },
            if self.test { " (test copies)" } else { "" },
        )
    }

    /// A run of `opts` for issue number `issue` through `sink`, before
    /// anything is counted.
    pub(super) fn begin(opts: &SendOptions, issue: u32, sink: &Sink, list: &List) -> Summary {
        Summary {
            date: opts.date.to_string(),
            issue,
            transport: sink.describe(),
            dry_run: opts.dry_run,
            test: !opts.to.is_empty(),
            invalid_rows: list.problems.len() as u64,
            delivery: "zone",
            ..Summary::default()
        }
    }

    /// Recipients a later run will attempt.
    pub fn left(&self) -> u64 {
        self.deferred + self.unknown + self.left_by_limit + self.left_by_cap + self.not_attempted
    }

    /// Records how long the run took, and its rate.
    pub(super) fn timed(&mut self, elapsed: std::time::Duration) {
        self.elapsed_seconds = elapsed.as_secs_f64();
        self.messages_per_second = self.sent as f64 / self.elapsed_seconds.max(1e-9);
    }

    /// Puts the selection's tally and the pipeline's counts into the
    /// summary.
    pub(super) fn account(
        &mut self,
        tally: &Tally,
        allowance: Allowance,
        counts: Option<Counts>,
        opts: &SendOptions,
    ) {
        if opts.to.is_empty() {
            self.active = tally.active;
        }
        self.already_sent = tally.already_sent;
        self.suppressed = tally.suppressed;
        self.failed_earlier = tally.failed_earlier;
        self.unknown_twice = tally.unanswered_twice;
        (self.left_by_limit, self.left_by_cap) = allowance.left(tally.due);
        let fed = tally.due.min(allowance.max()) - tally.not_fed;
        let counts = counts.unwrap_or_default();
        if let Some(stop) = &counts.stop {
            self.stopped = Some(stop.to_string());
            self.stopped_for_good = !stop.temporary();
        }
        self.not_attempted = counts.not_attempted + tally.not_fed;
        self.attempted = fed.saturating_sub(counts.not_attempted);
        self.sent = counts.sent;
        self.deferred = counts.deferred;
        self.deferred_because = counts.last_deferral;
        self.unknown = counts.unknown;
        self.unknown_twice += counts.unknown_final;
        self.failed = counts.failed;
        self.bounced = counts.bounced;
        // Those of earlier runs were told before this one started.
        if counts.unknown_final > 0 {
            tracing::warn!(
                "{} got no answer twice in this run and {} not resent (see `dailyissue status`; `--retry-unknown` sends one more copy)",
                crate::cmd::count(counts.unknown_final, "reader", "readers"),
                if counts.unknown_final == 1 {
                    "is"
                } else {
                    "are"
                },
            );
        }
    }
}

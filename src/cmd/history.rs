//! `history`: one row per issue that went out, newest first, as an
//! operator looks at them every morning (Listmonk's campaign list is the
//! model): number, date, subject, list size, the outcomes of its
//! deliveries, what came back later (bounces, complaints), the readers'
//! feedback votes, and the unsubscribes that came after it. Read-only.
//!
//! "Unsubscribes after it" are readers who got the issue and unsubscribed
//! after it reached them and before the next issue went out: the issue
//! they most likely reacted to (a token does not say which issue its link
//! came from). `status` counts them the same way ([`Ledger::issue_feedback`]).
//!
//! [`Ledger::issue_feedback`]: crate::ledger::Ledger::issue_feedback

use crate::problem::Failure;
use crate::project::Project;
use crate::render::context;

#[derive(Debug, serde::Serialize)]
pub struct History {
    /// Newest first.
    pub issues: Vec<Row>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// From the issue record; `None` when the record is gone.
    pub number: Option<u32>,
    pub date: chrono::NaiveDate,
    /// The record's subject, or the settings' `subject` template rendered
    /// for it; `None` when neither can be had.
    pub subject: Option<String>,
    /// Readers the issue was addressed to (one ledger row each: active and
    /// not suppressed when it went out).
    pub list_size: u64,
    pub sent: u64,
    pub deferred: u64,
    /// Sent, but no reply came: may have been delivered.
    pub unknown: u64,
    pub failed: u64,
    /// Refused by the relay during `send` as an unknown mailbox.
    pub bounced: u64,
    /// Hard bounces reported later (bounce mail, provider webhooks).
    pub bounced_later: u64,
    /// Readers who reported it as spam (feedback loops, webhooks).
    pub complaints: u64,
    /// The readers' one-click votes on it (was it useful?).
    pub votes: crate::ledger::Votes,
    /// Still being sent (a run in progress, or one that was interrupted).
    pub sending: u64,
    /// Readers who got it and unsubscribed after it reached them, before
    /// the next issue went out.
    pub unsubscribes: u64,
    /// When it started going out (RFC 3339, UTC).
    pub started_at: String,
    /// `delivery = "local"` only: readers whose morning of it has not come
    /// yet, and readers more than `max_lateness` past it without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_skipped: Option<u64>,
}

impl crate::cmd::Report for History {
    fn text(&self) -> String {
        if self.issues.is_empty() {
            return "no issue has gone out yet (`dailyissue send` sends today's)\n".into();
        }
        let head = [
            "NO.",
            "DATE",
            "SUBJECT",
            "LIST",
            "SENT",
            "DEFERRED",
            "UNKNOWN",
            "FAILED",
            "BOUNCED",
            "COMPLAINTS",
            "VOTES",
            "UNSUBS",
        ];
        let local = self.issues.iter().any(|r| r.waiting.is_some());
        let mut head: Vec<&str> = head.to_vec();
        if local {
            head.extend(["WAITING", "LATE"]);
        }
        let mut rows: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
        let n = crate::log::thousands;
        for r in &self.issues {
            rows.push(vec![
                r.number.map_or("-".into(), |n| n.to_string()),
                r.date.to_string(),
                r.subject.as_deref().map_or("-".into(), |s| shorten(s, 40)),
                n(r.list_size),
                n(r.sent),
                n(r.deferred),
                n(r.unknown),
                n(r.failed),
                n(r.bounced + r.bounced_later),
                n(r.complaints),
                format!("+{}/-{}", n(r.votes.yes), n(r.votes.no)),
                n(r.unsubscribes),
            ]);
            if local {
                let row = rows.last_mut().expect("just pushed");
                row.push(r.waiting.map_or("-".into(), n));
                row.push(r.late_skipped.map_or("-".into(), n));
            }
        }
        let widths: Vec<usize> = (0..head.len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for row in rows {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, cell)| {
                    // Text to the left, counts to the right.
                    if c < 3 {
                        format!("{cell:<width$}", width = widths[c])
                    } else {
                        format!("{cell:>width$}", width = widths[c])
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        let sending: u64 = self.issues.iter().map(|r| r.sending).sum();
        if sending > 0 {
            out.push_str(&format!(
                "{} still `sending`: a run in progress, or one that was interrupted (the next `send` settles them)\n",
                crate::cmd::count(sending, "row is", "rows are")
            ));
        }
        out
    }
}

/// `text` cut to `max` characters, with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// Every issue with deliveries in the ledger (the `last` most recent),
/// newest first.
pub fn history(
    project: &Project,
    last: Option<u32>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<History, Failure> {
    let Some(ledger) = crate::ledger::read(project)? else {
        return Ok(History { issues: Vec::new() });
    };
    let totals = ledger.issue_totals()?;
    let votes = ledger.votes_by_issue()?;
    let issues = project.issues().map_err(Failure::input)?;
    // The pool only for records without a subject of their own; a pool
    // that does not load costs those subjects, not the history.
    let mut pool = None;
    let mut rows = Vec::new();
    for totals in totals {
        let feedback = ledger.issue_feedback(totals.date)?;
        let stored = issues.get(totals.date);
        let subject = stored.and_then(|s| match &s.record.subject {
            Some(subject) => Some(crate::project::subscribers::clean_line(subject)),
            None => {
                let pool = pool.get_or_insert_with(|| project.pool().ok()).as_ref()?;
                let ctx = context::headline_context(
                    &project.settings,
                    pool,
                    &s.record.picks,
                    s.record.number,
                    s.record.date,
                );
                context::headline("subject", &project.settings.subject, &ctx, s.record.date).ok()
            }
        });
        rows.push(Row {
            number: stored.map(|s| s.record.number),
            date: totals.date,
            subject,
            list_size: totals.rows,
            sent: totals.sent,
            deferred: totals.deferred,
            unknown: totals.unknown,
            failed: totals.failed,
            bounced: totals.bounced,
            bounced_later: feedback.hard,
            complaints: feedback.complaints,
            votes: votes.get(&totals.date).copied().unwrap_or_default(),
            sending: totals.sending,
            unsubscribes: feedback.unsubscribes,
            started_at: totals.started_at,
            waiting: None,
            late_skipped: None,
        });
    }
    rows.reverse();
    if let Some(n) = last {
        rows.truncate(n as usize);
    }
    // Local mornings: where each issue stands across the readers' zones.
    for row in &mut rows {
        if let Some(m) = crate::cmd::mornings::mornings(project, row.date, now)? {
            row.waiting = Some(m.waiting);
            row.late_skipped = Some(m.late_skipped);
        }
    }
    Ok(History { issues: rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_subjects_are_shortened() {
        assert_eq!(shorten("Token", 40), "Token");
        assert_eq!(shorten("abcdef", 4), "abc…");
    }
}

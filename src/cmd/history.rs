//! `history`: one row per issue that went out, newest first, as an
//! operator looks at them every morning (Listmonk's campaign list is the
//! model): number, date, subject, list size, the outcomes of its
//! deliveries, and the unsubscribes that came after it. Read-only.
//!
//! "Unsubscribes after it" are the readers who unsubscribed from the time
//! the issue started going out until the next one did: the issue they
//! most likely reacted to (a token does not say which issue its link came
//! from).

use crate::ledger::IssueTotals;
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
    pub bounced: u64,
    /// Still being sent (a run in progress, or one that was interrupted).
    pub sending: u64,
    /// Readers who unsubscribed after it went out and before the next
    /// issue did.
    pub unsubscribes: u64,
    /// When it started going out (RFC 3339, UTC).
    pub started_at: String,
}

impl crate::cmd::Report for History {
    fn text(&self) -> String {
        if self.issues.is_empty() {
            return "no issue has gone out yet (`dailyissue send` sends today's)\n".into();
        }
        let head = [
            "NO.", "DATE", "SUBJECT", "LIST", "SENT", "DEFERRED", "UNKNOWN", "FAILED", "BOUNCED",
            "UNSUBS",
        ];
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
                n(r.bounced),
                n(r.unsubscribes),
            ]);
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
pub fn history(project: &Project, last: Option<u32>) -> Result<History, Failure> {
    let Some(ledger) = crate::ledger::read(project)? else {
        return Ok(History { issues: Vec::new() });
    };
    let totals = ledger.issue_totals()?;
    let unsubscribes = unsubscribes_after(&totals, &ledger.unsubscribe_times()?);
    let issues = project.issues().map_err(Failure::input)?;
    // The pool only for records without a subject of their own; a pool
    // that does not load costs those subjects, not the history.
    let mut pool = None;
    let mut rows = Vec::new();
    for (totals, unsubscribes) in totals.into_iter().zip(unsubscribes) {
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
            sending: totals.sending,
            unsubscribes,
            started_at: totals.started_at,
        });
    }
    rows.reverse();
    if let Some(n) = last {
        rows.truncate(n as usize);
    }
    Ok(History { issues: rows })
}

/// For each issue (in the order given), the unsubscribes from when it
/// started going out until the next issue to start did. `times` is
/// sorted; RFC 3339 UTC times with milliseconds sort as text.
fn unsubscribes_after(issues: &[IssueTotals], times: &[String]) -> Vec<u64> {
    let mut starts: Vec<&str> = issues.iter().map(|i| i.started_at.as_str()).collect();
    starts.sort_unstable();
    issues
        .iter()
        .map(|issue| {
            let from = issue.started_at.as_str();
            let until = starts.iter().find(|s| **s > from);
            times
                .iter()
                .filter(|t| t.as_str() >= from && until.is_none_or(|u| t.as_str() < *u))
                .count() as u64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(date: &str, started_at: &str) -> IssueTotals {
        IssueTotals {
            date: date.parse().expect("date"),
            started_at: started_at.into(),
            ..IssueTotals::default()
        }
    }

    #[test]
    fn unsubscribes_count_towards_the_issue_before_them() {
        let issues = [
            issue("2027-03-01", "2027-03-01T11:00:00.000Z"),
            issue("2027-03-02", "2027-03-02T11:00:00.000Z"),
            issue("2027-03-03", "2027-03-03T11:00:00.000Z"),
        ];
        let times = [
            "2027-02-28T09:00:00.000Z", // before any issue: none's
            "2027-03-01T11:00:00.000Z",
            "2027-03-01T18:30:00.000Z",
            "2027-03-02T10:59:59.999Z",
            "2027-03-03T12:00:00.000Z",
        ]
        .map(String::from);
        assert_eq!(unsubscribes_after(&issues, &times), [3, 0, 1]);
    }

    #[test]
    fn long_subjects_are_shortened() {
        assert_eq!(shorten("Token", 40), "Token");
        assert_eq!(shorten("abcdef", 4), "abc…");
    }
}

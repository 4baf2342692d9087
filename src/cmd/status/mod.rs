//! `status`: what the ledger holds for one issue — counts per status, test
//! copies, suppressions, what came back later (hard and soft bounces,
//! complaints, unsubscribes) with the bounce and complaint rates, every
//! failed, bounced or deferred address with its last SMTP reply, and the
//! readers' votes on it — and the list's growth over the last days up to
//! today (`growth`). Read-only.

mod growth;

pub use growth::Growth;

use chrono::{DateTime, NaiveDate, Utc};

use crate::bounces::{IssueFeedback, Rates};
use crate::ledger::{DeliveryStatus, MAX_UNCERTAIN, Undelivered as Row, Votes};
use crate::problem::Failure;
use crate::project::Project;

/// What `status` reports on.
#[derive(Debug, Clone, Copy)]
pub struct StatusOptions {
    /// The issue.
    pub date: NaiveDate,
    /// The clock: the growth figures run up to its day.
    pub now: DateTime<Utc>,
    /// How many days of growth, ending today.
    pub days: u32,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    pub date: String,
    pub sending: u64,
    pub sent: u64,
    /// Sent, but no reply came: may have been delivered.
    pub unknown: u64,
    pub deferred: u64,
    pub failed: u64,
    pub bounced: u64,
    pub test_copies: u64,
    pub suppressed: u64,
    /// Every failed, bounced, deferred or unknown address, with its last
    /// reply. (`problems` in a JSON document always means bad input, so
    /// not that name.)
    pub addresses: Vec<Row>,
    /// What came back later: bounces, complaints, unsubscribes.
    pub feedback: IssueFeedback,
    pub rates: Rates,
    /// The readers' answers to "Was today's issue useful?" on this issue.
    pub votes: Votes,
    /// Signups now: confirmed, and waiting for their confirmation.
    pub signups_confirmed: u64,
    pub signups_pending: u64,
    /// The list's growth, day by day up to today.
    pub growth: Growth,
    /// `delivery = "local"`: the issue across the readers' zones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mornings: Option<crate::cmd::mornings::Mornings>,
}

impl crate::cmd::Report for Report {
    fn text(&self) -> String {
        let mut out = format!(
            "issue of {}: sent {}, unknown {}, deferred {}, failed {}, bounced {}, sending {}\n",
            self.date,
            self.sent,
            self.unknown,
            self.deferred,
            self.failed,
            self.bounced,
            self.sending
        );
        out.push_str(&format!(
            "test copies {}, suppressed addresses {}\n",
            self.test_copies, self.suppressed
        ));
        let f = &self.feedback;
        out.push_str(&format!(
            "came back: hard bounces {} (at send {}, later {}), soft bounces {}, complaints {}, unsubscribes {}; bounce rate {:.2}%, complaint rate {:.2}%\n",
            f.hard + f.bounced_at_send,
            f.bounced_at_send,
            f.hard,
            f.soft,
            f.complaints,
            f.unsubscribes,
            self.rates.bounce_rate * 100.0,
            self.rates.complaint_rate * 100.0
        ));
        for p in &self.addresses {
            out.push_str(&format!(
                "{:<9} {} (attempts {}): {}\n",
                p.status.as_str(),
                p.address,
                p.attempts,
                p.reply
            ));
        }
        let unanswered: Vec<&Row> = self
            .addresses
            .iter()
            .filter(|p| p.status == DeliveryStatus::Unknown)
            .collect();
        if !unanswered.is_empty() {
            let twice = unanswered
                .iter()
                .filter(|p| p.uncertain >= MAX_UNCERTAIN)
                .count();
            out.push_str(&format!(
                "`unknown`: the whole message was sent but no reply came, so the reader may have it; the next `send` resends it once ({} of {} already got their one resend and are not sent again)\n",
                twice,
                unanswered.len()
            ));
        }
        if self.sending > 0 {
            out.push_str("rows still `sending` belong to a run in progress, or one that was interrupted: the next `send` settles them\n");
        }
        out.push_str(&format!(
            "useful? yes {}, no {}\nsignups now: {} confirmed, {} pending\n",
            self.votes.yes, self.votes.no, self.signups_confirmed, self.signups_pending
        ));
        out.push_str(&self.growth.text());
        if let (Some(m), Ok(date)) = (&self.mornings, self.date.parse()) {
            out.push_str(&m.text(date));
        }
        out
    }
}

pub fn status(project: &Project, opts: StatusOptions) -> Result<Report, Failure> {
    let date = opts.date;
    let mut report = Report {
        date: date.to_string(),
        growth: Growth::empty(&project.settings, opts.now, opts.days),
        mornings: crate::cmd::mornings::mornings(project, date, opts.now)?,
        feedback: IssueFeedback {
            date: date.to_string(),
            ..IssueFeedback::default()
        },
        ..Report::default()
    };
    let Some(ledger) = crate::ledger::read(project)? else {
        return Ok(report);
    };
    report.votes = ledger.votes(date)?;
    (report.signups_confirmed, report.signups_pending) = ledger.signup_counts()?;
    report.growth.count(&ledger, &project.settings, opts.now)?;
    let counts = ledger.counts(date)?;
    let get = |s: DeliveryStatus| counts.get(&s).copied().unwrap_or(0);
    report.sending = get(DeliveryStatus::Sending);
    report.sent = get(DeliveryStatus::Sent);
    report.unknown = get(DeliveryStatus::Unknown);
    report.deferred = get(DeliveryStatus::Deferred);
    report.failed = get(DeliveryStatus::Failed);
    report.bounced = get(DeliveryStatus::Bounced);
    report.test_copies = ledger.test_sends(date)?;
    report.suppressed = ledger.suppressed_count()?;
    report.addresses = ledger.failures(date)?;
    report.feedback = ledger.issue_feedback(date)?;
    report.rates = Rates::of(&report.feedback);
    Ok(report)
}

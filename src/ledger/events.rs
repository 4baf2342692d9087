//! Bounces and complaints that arrive after the relay's 250: each report
//! matched to the delivery it is about, recorded with its evidence, and the
//! policy applied — all in one transaction, so a report is either recorded
//! with its consequence or not at all.
//!
//! A report finds its delivery by, in turn: a VERP token (`return_paths`,
//! written when the delivery was claimed; it names one delivery and cannot
//! be forged), the original Message-ID (which carries the issue date) with
//! the recipient, or the recipient alone (the latest issue it was sent,
//! among the last 30). A report that matches no delivery of ours (an
//! address never sent to, backscatter) records nothing.
//!
//! Each event is named by its report (`event_id`, e.g. the provider's
//! event id or the bounce mail's Message-ID) and address: the same event
//! twice is recorded once. The evidence is kept up to
//! [`EVIDENCE_LIMIT`] bytes, with its full size.
//!
//! The per-issue counts behind `status`'s rates, the guard of `check` and
//! `send`, and `history` are read here too ([`Ledger::issue_feedback`]).

use chrono::NaiveDate;
use rusqlite::{OptionalExtension, Transaction, params};

use super::open::explain;
use super::{Ledger, now};
use crate::bounces::policy::{self, IssueFeedback, Mailed, Policy};
use crate::bounces::{EVIDENCE_LIMIT, Finding, Kind, Report, Source};
use crate::project::subscribers::AddressKey;

/// Issues back in time a report naming only its recipient may be about.
const RECENT_ISSUES: u32 = 30;

/// What became of one finding of a report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Recorded {
    /// Recorded as event `id`; `suppressed` is the suppression reason it
    /// wrote (`bounced`, `complained`), if it wrote one.
    New {
        id: i64,
        address: String,
        issue_date: String,
        kind: Kind,
        suppressed: Option<String>,
    },
    /// Recorded before (the same report again): nothing changed.
    Duplicate {
        address: String,
        issue_date: String,
        kind: Kind,
    },
    /// About no delivery of ours: nothing recorded.
    Unmatched {
        recipient: Option<String>,
        kind: Kind,
    },
}

/// One recorded bounce or complaint, with its evidence.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub id: i64,
    pub received_at: String,
    pub issue_date: String,
    pub address: String,
    pub kind: Kind,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    pub report_type: String,
    pub source: String,
    pub event_id: String,
    /// The raw message or payload (as text; invalid UTF-8 replaced), cut
    /// at the evidence limit.
    pub evidence: String,
    /// Its size before it was cut.
    pub evidence_size: u64,
    /// The suppression this event wrote, if any.
    pub suppressed: Option<String>,
    /// When `suppressions remove` undid it.
    pub cleared_at: Option<String>,
}

/// A delivery: (issue date, address) as the ledger stores them.
type Delivery = (String, String);

impl Ledger {
    /// Matches each finding of `report` to its delivery and records it, in
    /// one transaction; applies the policy (see `bounces::policy`).
    pub fn record_report(
        &mut self,
        report: &Report,
        source: Source,
        evidence: &[u8],
        policy: Policy,
    ) -> anyhow::Result<Vec<Recorded>> {
        let path = self.path.clone();
        let mut record = || -> rusqlite::Result<Vec<Recorded>> {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut out = Vec::new();
            for finding in &report.findings {
                out.push(record_finding(
                    &tx, report, finding, source, evidence, policy,
                )?);
            }
            tx.commit()?;
            Ok(out)
        };
        record().map_err(|e| explain(e, &path).context("cannot record the report"))
    }

    /// Every event (of one address, if given), newest first.
    pub fn bounce_events(&self, address: Option<&AddressKey>) -> anyhow::Result<Vec<Event>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, received_at, issue_date, address, kind, status, diagnostic, report_type,
                    source, event_id, evidence, evidence_size, suppressed, cleared_at
             FROM bounce_events WHERE ?1 IS NULL OR address = ?1 ORDER BY id DESC",
        )?;
        let rows = stmt.query_map(params![address.map(AddressKey::as_str)], |r| {
            Ok(Event {
                id: r.get(0)?,
                received_at: r.get(1)?,
                issue_date: r.get(2)?,
                address: r.get(3)?,
                kind: Kind::parse(&r.get::<_, String>(4)?).unwrap_or(Kind::Unknown),
                status: r.get(5)?,
                diagnostic: r.get(6)?,
                report_type: r.get(7)?,
                source: r.get(8)?,
                event_id: r.get(9)?,
                evidence: String::from_utf8_lossy(&r.get::<_, Vec<u8>>(10)?).into_owned(),
                evidence_size: r.get::<_, i64>(11)? as u64,
                suppressed: r.get(12)?,
                cleared_at: r.get(13)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// What came back from the issue of `date`: sends, bounces (at send and
    /// later), complaints, unsubscribes. For `status`, `history` and the
    /// guard.
    pub fn issue_feedback(&self, date: NaiveDate) -> anyhow::Result<IssueFeedback> {
        let day = date.to_string();
        let counts = self.counts(date)?;
        let get = |s| counts.get(&s).copied().unwrap_or(0);
        let (hard, soft, complaints) = self.conn.query_row(
            "SELECT count(DISTINCT CASE WHEN kind = 'hard' THEN address END),
                    count(DISTINCT CASE WHEN kind IN ('soft', 'unknown') AND NOT EXISTS (
                        SELECT 1 FROM bounce_events h
                        WHERE h.issue_date = e.issue_date AND h.address = e.address AND h.kind = 'hard')
                      THEN address END),
                    count(DISTINCT CASE WHEN kind = 'complaint' THEN address END)
             FROM bounce_events e WHERE issue_date = ?1",
            params![day],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
        )?;
        // Unsubscribes between this issue's start and the next one's.
        let unsubscribes: i64 = self.conn.query_row(
            "SELECT count(*) FROM suppressions s
             JOIN deliveries d ON d.issue_date = ?1 AND d.address = s.address AND d.status = 'sent'
             WHERE s.reason = 'unsubscribed' AND s.created_at >= d.sent_at
               AND s.created_at <= coalesce(
                   (SELECT min(frozen_at) FROM issues WHERE issue_date > ?1), '9999')",
            params![day],
            |r| r.get(0),
        )?;
        Ok(IssueFeedback {
            date: day,
            sent: get(super::DeliveryStatus::Sent),
            bounced_at_send: get(super::DeliveryStatus::Bounced),
            hard: hard as u64,
            soft: soft as u64,
            complaints: complaints as u64,
            unsubscribes: unsubscribes as u64,
        })
    }

    /// The feedback of the last `n` issues whose delivery began, newest
    /// first: one row per issue for `history` (built beside this branch;
    /// only the tests call it until the two meet).
    #[allow(dead_code)]
    pub fn recent_feedback(&self, n: u32) -> anyhow::Result<Vec<IssueFeedback>> {
        let mut stmt = self
            .conn
            .prepare("SELECT issue_date FROM issues ORDER BY issue_date DESC LIMIT ?1")?;
        let dates = stmt
            .query_map(params![n], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        dates
            .iter()
            .filter_map(|d| d.parse().ok())
            .map(|d| self.issue_feedback(d))
            .collect()
    }

    /// The last issue before `date` whose delivery began (the one whose
    /// rates the guard judges).
    pub fn issue_before(&self, date: NaiveDate) -> anyhow::Result<Option<NaiveDate>> {
        let found: Option<String> = self
            .conn
            .query_row(
                "SELECT issue_date FROM issues WHERE issue_date < ?1 ORDER BY issue_date DESC LIMIT 1",
                params![date.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(found.and_then(|d| d.parse().ok()))
    }
}

/// One finding: matched, recorded (once), and the policy applied.
fn record_finding(
    tx: &Transaction,
    report: &Report,
    finding: &Finding,
    source: Source,
    evidence: &[u8],
    policy: Policy,
) -> rusqlite::Result<Recorded> {
    let kind = finding.kind;
    let Some((issue_date, address)) = find_delivery(tx, report, finding)? else {
        return Ok(Recorded::Unmatched {
            recipient: finding.recipient.clone(),
            kind,
        });
    };
    let kept = &evidence[..evidence.len().min(EVIDENCE_LIMIT)];
    let inserted = tx.execute(
        "INSERT INTO bounce_events (event_id, received_at, issue_date, address, kind, status,
                                    diagnostic, report_type, source, evidence, evidence_size)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (event_id, address) DO NOTHING",
        params![
            report.event_id,
            now(),
            issue_date,
            address,
            kind.as_str(),
            finding.status,
            finding.diagnostic,
            report.report_type,
            source.as_str(),
            kept,
            evidence.len() as i64
        ],
    )?;
    if inserted == 0 {
        return Ok(Recorded::Duplicate {
            address,
            issue_date,
            kind,
        });
    }
    let id = tx.last_insert_rowid();
    let suppressed = apply_policy(tx, id, &issue_date, &address, finding, policy)?;
    Ok(Recorded::New {
        id,
        address,
        issue_date,
        kind,
        suppressed,
    })
}

/// The delivery a finding is about, by the clues in the module doc.
fn find_delivery(
    tx: &Transaction,
    report: &Report,
    finding: &Finding,
) -> rusqlite::Result<Option<Delivery>> {
    for token in &report.tokens {
        let found = tx
            .query_row(
                "SELECT issue_date, address FROM return_paths WHERE token = ?1",
                params![token],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    let recipient = finding.recipient.as_deref().map(AddressKey::new);
    if let Some(id) = &report.message_id
        && let Some(date) = crate::mail::mime::message_id_date(id)
    {
        // The Message-ID names one delivery; the reported recipient may
        // differ (forwarding, a redacted complaint), so it is only tried
        // first, as the quick way (the primary key).
        let date = date.to_string();
        let mut found: Option<String> = None;
        if let Some(a) = &recipient {
            found = tx
                .query_row(
                    "SELECT address FROM deliveries
                     WHERE issue_date = ?1 AND address = ?2 AND message_id = ?3",
                    params![date, a.as_str(), id],
                    |r| r.get(0),
                )
                .optional()?;
        }
        if found.is_none() {
            found = tx
                .query_row(
                    "SELECT address FROM deliveries WHERE issue_date = ?1 AND message_id = ?2",
                    params![date, id],
                    |r| r.get(0),
                )
                .optional()?;
        }
        if let Some(address) = found {
            return Ok(Some((date, address)));
        }
    }
    let Some(address) = recipient else {
        return Ok(None);
    };
    let date: Option<String> = tx
        .query_row(
            "SELECT issue_date FROM deliveries
             WHERE address = ?1 AND status IN ('sent', 'unknown', 'bounced')
               AND issue_date IN (SELECT issue_date FROM issues ORDER BY issue_date DESC LIMIT ?2)
             ORDER BY issue_date DESC LIMIT 1",
            params![address.as_str(), RECENT_ISSUES],
            |r| r.get(0),
        )
        .optional()?;
    Ok(date.map(|d| (d, address.as_str().to_string())))
}

/// Suppresses the address when the policy says so; returns the reason
/// written (`None` when nothing was, or it was suppressed already).
fn apply_policy(
    tx: &Transaction,
    id: i64,
    issue_date: &str,
    address: &str,
    finding: &Finding,
    policy: Policy,
) -> rusqlite::Result<Option<String>> {
    let what = |f: &Finding| {
        let mut s = f.status.clone().unwrap_or_default();
        if let Some(d) = &f.diagnostic {
            s = if s.is_empty() {
                d.clone()
            } else {
                format!("{s} {d}")
            };
        }
        s
    };
    let (reason, note) = match finding.kind {
        Kind::Hard => (
            "bounced",
            format!(
                "hard bounce after the issue of {issue_date}: {} (event {id})",
                what(finding)
            ),
        ),
        Kind::Complaint => (
            "complained",
            format!("complaint about the issue of {issue_date} (event {id})"),
        ),
        Kind::Soft | Kind::Unknown => {
            let streak = soft_streak(tx, issue_date, address, policy)?;
            if !policy::suppresses(policy, &streak) {
                return Ok(None);
            }
            let days: Vec<String> = streak.iter().rev().map(|d| d.to_string()).collect();
            (
                "bounced",
                format!(
                    "soft bounces from {} issues in a row ({}); last: {} (event {id})",
                    streak.len(),
                    days.join(", "),
                    what(finding)
                ),
            )
        }
    };
    let new = tx.execute(
        "INSERT INTO suppressions (address, reason, note, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (address) DO NOTHING",
        params![address, reason, note, now()],
    )?;
    if new == 0 {
        return Ok(None);
    }
    tx.execute(
        "UPDATE bounce_events SET suppressed = ?2 WHERE id = ?1",
        params![id, reason],
    )?;
    Ok(Some(reason.to_string()))
}

/// The soft-bounce streak of `address` that includes `issue_date`, among
/// the newsletter's last `soft_window` issues.
fn soft_streak(
    tx: &Transaction,
    issue_date: &str,
    address: &str,
    policy: Policy,
) -> rusqlite::Result<Vec<NaiveDate>> {
    let mut stmt = tx.prepare_cached(
        "SELECT i.issue_date,
                EXISTS (SELECT 1 FROM deliveries d WHERE d.issue_date = i.issue_date AND d.address = ?1),
                EXISTS (SELECT 1 FROM bounce_events e WHERE e.issue_date = i.issue_date AND e.address = ?1
                        AND e.kind IN ('soft', 'unknown') AND e.cleared_at IS NULL)
         FROM (SELECT issue_date FROM issues ORDER BY issue_date DESC LIMIT ?2) i
         ORDER BY i.issue_date DESC",
    )?;
    let rows = stmt
        .query_map(params![address, policy.soft_window], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let window: Vec<Mailed> = rows
        .into_iter()
        .filter_map(|(date, mailed, soft)| {
            Some(Mailed {
                date: date.parse().ok()?,
                mailed,
                soft,
            })
        })
        .collect();
    Ok(issue_date
        .parse()
        .map(|date| policy::soft_streak(&window, date))
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::{claim, d, ledger, outcome};
    use crate::ledger::{DeliveryStatus, Write};

    const POLICY: Policy = Policy {
        soft_limit: 2,
        soft_window: 5,
    };

    /// Sends the issue of `date` to `addresses` (frozen, claimed, sent),
    /// with VERP tokens `TOKEN-address`.
    fn sent(l: &mut Ledger, date: &str, addresses: &[&str]) {
        let date = d(date);
        l.freeze(date, "hash", false).expect("freeze");
        let tokens = addresses
            .iter()
            .map(|a| (format!("{date}-{a}"), AddressKey::new(a)))
            .collect();
        let mut writes = vec![claim(addresses), Write::ReturnPaths(tokens)];
        writes.extend(
            addresses
                .iter()
                .map(|a| outcome(a, DeliveryStatus::Sent, "250 ok")),
        );
        l.apply(date, date, &writes).expect("send");
    }

    fn report(kind: Kind, event_id: &str) -> Report {
        Report {
            report_type: "delivery-status".into(),
            findings: vec![Finding {
                kind,
                recipient: None,
                status: Some("5.1.1".into()),
                diagnostic: Some("550 no such user".into()),
            }],
            tokens: Vec::new(),
            message_id: None,
            event_id: event_id.into(),
        }
    }

    fn record(l: &mut Ledger, r: &Report) -> Recorded {
        let mut out = l
            .record_report(r, Source::Stdin, b"raw", POLICY)
            .expect("record");
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    fn suppressed(l: &Ledger, a: &str) -> Option<String> {
        l.suppressions()
            .expect("list")
            .into_iter()
            .find(|s| s.address == a)
            .map(|s| s.reason)
    }

    #[test]
    fn reports_find_their_delivery_by_token_message_id_or_recipient() {
        let (_dir, mut l) = ledger();
        sent(&mut l, "2027-03-01", &["ada@x.org", "bo@x.org"]);
        sent(&mut l, "2027-03-02", &["ada@x.org", "bo@x.org"]);
        let mut by_token = report(Kind::Hard, "e1");
        by_token.tokens = vec!["nope".into(), "2027-03-01-ada@x.org".into()];
        by_token.findings[0].recipient = Some("forwarded@elsewhere.org".into());
        let at = |r: Recorded| match r {
            Recorded::New {
                address,
                issue_date,
                ..
            } => (address, issue_date),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            at(record(&mut l, &by_token)),
            ("ada@x.org".into(), "2027-03-01".into()),
            "the token wins over the reported recipient"
        );
        let mut by_id = report(Kind::Soft, "e2");
        by_id.message_id = Some(crate::mail::mime::message_id(
            d("2027-03-01"),
            &"bo@x.org".into(),
            "x",
        ));
        // Claims in these tests use `<address>` as Message-ID: store the real one.
        l.conn
            .execute(
                "UPDATE deliveries SET message_id = ?1 WHERE issue_date = '2027-03-01' AND address = 'bo@x.org'",
                params![by_id.message_id],
            )
            .expect("message id");
        assert_eq!(
            at(record(&mut l, &by_id)),
            ("bo@x.org".into(), "2027-03-01".into()),
            "the Message-ID names the issue, even without a recipient"
        );
        let mut by_recipient = report(Kind::Soft, "e3");
        by_recipient.findings[0].recipient = Some("BO@x.org".into());
        assert_eq!(
            at(record(&mut l, &by_recipient)),
            ("bo@x.org".into(), "2027-03-02".into()),
            "the latest issue the recipient was sent"
        );
        let mut stranger = report(Kind::Hard, "e4");
        stranger.findings[0].recipient = Some("never@x.org".into());
        assert_eq!(
            record(&mut l, &stranger),
            Recorded::Unmatched {
                recipient: Some("never@x.org".into()),
                kind: Kind::Hard
            }
        );
        assert_eq!(suppressed(&l, "never@x.org"), None, "nothing recorded");
        assert_eq!(l.bounce_events(None).expect("events").len(), 3);
    }

    #[test]
    fn the_same_event_twice_is_recorded_once() {
        let (_dir, mut l) = ledger();
        sent(&mut l, "2027-03-01", &["ada@x.org"]);
        let mut r = report(Kind::Complaint, "sendgrid:abc");
        r.tokens = vec!["2027-03-01-ada@x.org".into()];
        assert!(
            matches!(record(&mut l, &r), Recorded::New { suppressed: Some(ref s), .. } if s == "complained")
        );
        assert!(matches!(record(&mut l, &r), Recorded::Duplicate { .. }));
        assert_eq!(l.bounce_events(None).expect("events").len(), 1);
    }

    #[test]
    fn hard_bounces_and_complaints_suppress_at_once_soft_ones_after_a_streak() {
        let (_dir, mut l) = ledger();
        for day in ["2027-03-01", "2027-03-02", "2027-03-03", "2027-03-04"] {
            sent(&mut l, day, &["hard@x.org", "soft@x.org", "gap@x.org"]);
        }
        let on = |day: &str, who: &str, kind, id: &str| {
            let mut r = report(kind, id);
            r.tokens = vec![format!("{day}-{who}")];
            r
        };
        let r = record(&mut l, &on("2027-03-01", "hard@x.org", Kind::Hard, "h"));
        assert!(
            matches!(r, Recorded::New { suppressed: Some(ref s), .. } if s == "bounced"),
            "{r:?}"
        );
        assert!(
            l.suppressions().expect("list")[0]
                .note
                .as_deref()
                .is_some_and(|n| n.contains("5.1.1 550 no such user")),
            "the note says why"
        );
        // soft: 03-01, then 03-03 (03-02 reached the reader): no streak of 2.
        record(&mut l, &on("2027-03-01", "soft@x.org", Kind::Soft, "s1"));
        let r = record(&mut l, &on("2027-03-03", "soft@x.org", Kind::Unknown, "s2"));
        assert!(
            matches!(
                r,
                Recorded::New {
                    suppressed: None,
                    ..
                }
            ),
            "{r:?}"
        );
        assert_eq!(suppressed(&l, "soft@x.org"), None);
        // ...then 03-04 soft too: two in a row.
        let r = record(&mut l, &on("2027-03-04", "soft@x.org", Kind::Soft, "s3"));
        assert!(
            matches!(
                r,
                Recorded::New {
                    suppressed: Some(_),
                    ..
                }
            ),
            "{r:?}"
        );
        assert!(l.suppressions().expect("list").iter().any(|s| {
            s.address == "soft@x.org"
                && s.note
                    .as_deref()
                    .is_some_and(|n| n.contains("2 issues in a row (2027-03-03, 2027-03-04)"))
        }),);
        // A streak may arrive out of order, across an issue not mailed.
        l.conn
            .execute(
                "DELETE FROM deliveries WHERE issue_date = '2027-03-03' AND address = 'gap@x.org'",
                [],
            )
            .expect("not mailed");
        record(&mut l, &on("2027-03-04", "gap@x.org", Kind::Soft, "g1"));
        let r = record(&mut l, &on("2027-03-02", "gap@x.org", Kind::Soft, "g2"));
        assert!(
            matches!(
                r,
                Recorded::New {
                    suppressed: Some(_),
                    ..
                }
            ),
            "{r:?}"
        );
    }

    #[test]
    fn removing_a_suppression_clears_its_events_but_keeps_the_evidence() {
        let (_dir, mut l) = ledger();
        for day in ["2027-03-01", "2027-03-02", "2027-03-03"] {
            sent(&mut l, day, &["ada@x.org"]);
        }
        for (day, id) in [("2027-03-01", "a"), ("2027-03-02", "b")] {
            let mut r = report(Kind::Soft, id);
            r.tokens = vec![format!("{day}-ada@x.org")];
            record(&mut l, &r);
        }
        assert_eq!(suppressed(&l, "ada@x.org").as_deref(), Some("bounced"));
        assert!(l.unsuppress(&"ada@x.org".into()).expect("remove"));
        let events = l.bounce_events(Some(&"ada@x.org".into())).expect("events");
        assert_eq!(events.len(), 2, "kept as evidence");
        assert!(events.iter().all(|e| e.cleared_at.is_some()));
        let mut r = report(Kind::Soft, "c");
        r.tokens = vec!["2027-03-03-ada@x.org".into()];
        record(&mut l, &r);
        assert_eq!(
            suppressed(&l, "ada@x.org"),
            None,
            "the old streak no longer counts"
        );
    }

    #[test]
    fn evidence_is_cut_at_the_limit_with_its_size_kept() {
        let (_dir, mut l) = ledger();
        sent(&mut l, "2027-03-01", &["ada@x.org"]);
        let mut r = report(Kind::Hard, "big");
        r.tokens = vec!["2027-03-01-ada@x.org".into()];
        let raw = vec![b'x'; EVIDENCE_LIMIT + 10];
        l.record_report(&r, Source::Maildir, &raw, POLICY)
            .expect("record");
        let e = &l.bounce_events(None).expect("events")[0];
        assert_eq!(
            (e.evidence.len(), e.evidence_size),
            (EVIDENCE_LIMIT, raw.len() as u64)
        );
        assert_eq!((e.source.as_str(), e.kind), ("maildir", Kind::Hard));
    }

    #[test]
    fn feedback_counts_each_address_once_per_issue() {
        let (_dir, mut l) = ledger();
        sent(
            &mut l,
            "2027-03-01",
            &["a@x.org", "b@x.org", "c@x.org", "d@x.org"],
        );
        l.apply(
            d("2027-03-01"),
            d("2027-03-01"),
            &[
                claim(&["e@x.org"]),
                outcome("e@x.org", DeliveryStatus::Bounced, "550 5.1.1"),
            ],
        )
        .expect("bounced at send");
        for (who, kind, id) in [
            ("a@x.org", Kind::Soft, "1"),
            ("a@x.org", Kind::Hard, "2"),
            ("b@x.org", Kind::Soft, "3"),
            ("b@x.org", Kind::Unknown, "4"),
            ("c@x.org", Kind::Complaint, "5"),
        ] {
            let mut r = report(kind, id);
            r.tokens = vec![format!("2027-03-01-{who}")];
            record(&mut l, &r);
        }
        l.suppress(&"d@x.org".into(), "unsubscribed", None)
            .expect("unsubscribe");
        sent(&mut l, "2027-03-02", &["a@x.org"]);
        let f = l.issue_feedback(d("2027-03-01")).expect("feedback");
        assert_eq!(
            f,
            IssueFeedback {
                date: "2027-03-01".into(),
                sent: 4,
                bounced_at_send: 1,
                hard: 1,
                soft: 1,
                complaints: 1,
                unsubscribes: 1,
            }
        );
        assert_eq!(
            l.issue_feedback(d("2027-03-02"))
                .expect("next")
                .unsubscribes,
            0
        );
        assert_eq!(
            l.issue_before(d("2027-03-02")).expect("before"),
            Some(d("2027-03-01"))
        );
        assert_eq!(l.issue_before(d("2027-03-01")).expect("before"), None);
        let recent = l.recent_feedback(10).expect("recent");
        assert_eq!(
            recent.iter().map(|f| f.date.as_str()).collect::<Vec<_>>(),
            ["2027-03-02", "2027-03-01"]
        );
    }
}

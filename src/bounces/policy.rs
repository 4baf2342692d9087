//! The rules, as pure functions of what the ledger holds.
//!
//! - Suppression: a hard bounce or a complaint suppresses the address at
//!   once; soft bounces (and bounces of unknown kind) suppress it when
//!   `soft_limit` issues *in a row* that were mailed to it soft-bounced,
//!   all among the newsletter's last `soft_window` issues. "In a row"
//!   counts only issues the address was mailed (a paused week does not
//!   break a streak), and an issue that reached the reader without a
//!   bounce does. Old soft bounces outside the window never add up.
//! - Rates, per issue: bounce rate = hard bounces (the relay's 5.1.x
//!   refusals during `send` plus hard bounces reported later) ÷ messages
//!   the relay answered for (accepted, or refused as unknown mailbox);
//!   complaint rate = complaints ÷ messages accepted. Soft bounces are
//!   shown but not in the bounce rate, as providers count it.
//! - The guard on the last issue: over 0.1% complaints or 2% bounces,
//!   `check` and `send` warn loudly; over 0.3% complaints (the rate past
//!   which Gmail and Yahoo start refusing a sender's mail), `send` refuses
//!   without `--force` and `check` fails, so the two agree.

use chrono::NaiveDate;

/// `[bounces]` as the policy needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub soft_limit: u32,
    pub soft_window: u32,
}

impl Policy {
    pub fn of(settings: &crate::project::settings::BounceSettings) -> Policy {
        Policy {
            soft_limit: settings.soft_limit,
            soft_window: settings.soft_window,
        }
    }
}

/// One issue of the window, as one address saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mailed {
    pub date: NaiveDate,
    /// The address was sent this issue.
    pub mailed: bool,
    /// ...and it soft-bounced (a live soft or unknown event).
    pub soft: bool,
}

/// The issues of the soft-bounce streak that includes `date`, if the
/// window (newest first) holds it; empty otherwise. Issues not mailed to
/// the address are skipped; a mailed issue without a soft bounce ends it.
pub fn soft_streak(window: &[Mailed], date: NaiveDate) -> Vec<NaiveDate> {
    let mailed: Vec<&Mailed> = window.iter().filter(|m| m.mailed).collect();
    let Some(at) = mailed.iter().position(|m| m.date == date && m.soft) else {
        return Vec::new();
    };
    let newer = mailed[..at].iter().rev().take_while(|m| m.soft).count();
    let older = mailed[at + 1..].iter().take_while(|m| m.soft).count();
    mailed[at - newer..=at + older]
        .iter()
        .map(|m| m.date)
        .collect()
}

/// Whether `streak` is long enough to suppress.
pub fn suppresses(policy: Policy, streak: &[NaiveDate]) -> bool {
    streak.len() as u64 >= u64::from(policy.soft_limit)
}

/// What came back from one issue (per address, each counted once).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IssueFeedback {
    pub date: String,
    /// Accepted by the relay (`sent` rows).
    pub sent: u64,
    /// Refused by the relay during `send` as an unknown mailbox.
    pub bounced_at_send: u64,
    /// Hard bounces reported later (DSNs, webhooks).
    pub hard: u64,
    /// Soft bounces (and bounces of unknown kind) reported later.
    pub soft: u64,
    pub complaints: u64,
    /// Unsubscribes that came after this issue and before the next one
    /// the reader was sent.
    pub unsubscribes: u64,
}

/// An issue's rates, as fractions (0.003 is 0.3%).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Rates {
    pub bounce_rate: f64,
    pub complaint_rate: f64,
}

impl Rates {
    pub fn of(f: &IssueFeedback) -> Rates {
        let ratio = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
        Rates {
            bounce_rate: ratio(f.hard + f.bounced_at_send, f.sent + f.bounced_at_send),
            complaint_rate: ratio(f.complaints, f.sent),
        }
    }
}

/// Complaint rate over which `check` and `send` warn.
pub const WARN_COMPLAINTS: f64 = 0.001;
/// Bounce rate over which `check` and `send` warn.
pub const WARN_BOUNCES: f64 = 0.02;
/// Complaint rate over which `send` refuses without `--force`.
pub const STOP_COMPLAINTS: f64 = 0.003;

/// What the last issue's rates say about sending the next one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Guard {
    pub warnings: Vec<String>,
    /// Set when `send` must refuse without `--force`: why.
    pub refusal: Option<String>,
}

/// Judges the last issue sent before the one about to go out.
pub fn guard(last: Option<&IssueFeedback>) -> Guard {
    let Some(last) = last else {
        return Guard::default();
    };
    let rates = Rates::of(last);
    let pct = |r: f64| format!("{:.2}%", r * 100.0);
    let mut g = Guard::default();
    if rates.complaint_rate > WARN_COMPLAINTS {
        g.warnings.push(format!(
            "COMPLAINT RATE {} on the issue of {} ({} complaint{} of {} sent), over the {} that mailbox providers tolerate; look at `dailyissue bounces list` and at how readers signed up",
            pct(rates.complaint_rate),
            last.date,
            last.complaints,
            if last.complaints == 1 { "" } else { "s" },
            last.sent,
            pct(WARN_COMPLAINTS)
        ));
    }
    if rates.bounce_rate > WARN_BOUNCES {
        g.warnings.push(format!(
            "BOUNCE RATE {} on the issue of {} ({} hard bounce{} of {}), over {}; the list holds dead addresses (see `dailyissue bounces list`)",
            pct(rates.bounce_rate),
            last.date,
            last.hard + last.bounced_at_send,
            if last.hard + last.bounced_at_send == 1 { "" } else { "s" },
            last.sent + last.bounced_at_send,
            pct(WARN_BOUNCES)
        ));
    }
    if rates.complaint_rate > STOP_COMPLAINTS {
        g.refusal = Some(format!(
            "the issue of {} drew complaints from {} of {} ({}), over the {} past which Gmail and Yahoo block a sender; find the cause before sending again (`dailyissue bounces list`), then pass --force to send anyway",
            last.date,
            last.complaints,
            if last.sent == 1 {
                "1 reader".to_string()
            } else {
                format!("{} readers", last.sent)
            },
            pct(rates.complaint_rate),
            pct(STOP_COMPLAINTS)
        ));
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2027, 3, day).expect("date")
    }

    /// Newest first: (day, mailed, soft).
    fn window(days: &[(u32, bool, bool)]) -> Vec<Mailed> {
        days.iter()
            .map(|&(day, mailed, soft)| Mailed {
                date: d(day),
                mailed,
                soft,
            })
            .collect()
    }

    #[test]
    fn soft_bounces_count_in_a_row_among_mailed_issues() {
        let w = window(&[
            (7, true, true),
            (6, false, false),
            (5, true, true),
            (4, true, true),
            (3, true, false),
            (2, true, true),
        ]);
        assert_eq!(
            soft_streak(&w, d(5)),
            [d(7), d(5), d(4)],
            "day 6 not mailed"
        );
        assert_eq!(soft_streak(&w, d(2)), [d(2)], "day 3 delivered fine");
        assert!(soft_streak(&w, d(3)).is_empty(), "no soft bounce that day");
        assert!(soft_streak(&w, d(1)).is_empty(), "outside the window");
        let policy = Policy {
            soft_limit: 3,
            soft_window: 7,
        };
        assert!(suppresses(policy, &soft_streak(&w, d(4))));
        assert!(!suppresses(policy, &soft_streak(&w, d(2))));
    }

    #[test]
    fn rates_and_the_guard() {
        let mut f = IssueFeedback {
            date: "2027-03-01".into(),
            sent: 1000,
            ..IssueFeedback::default()
        };
        assert_eq!(guard(Some(&f)), Guard::default());
        assert_eq!(guard(None), Guard::default());
        f.complaints = 1;
        assert_eq!(guard(Some(&f)), Guard::default(), "0.1% is not over 0.1%");
        f.complaints = 2;
        let g = guard(Some(&f));
        assert_eq!((g.warnings.len(), g.refusal.is_some()), (1, false));
        assert!(g.warnings[0].contains("0.20%"), "{g:?}");
        f.complaints = 4;
        let g = guard(Some(&f));
        assert!(
            g.refusal.as_deref().is_some_and(|r| r.contains("--force")),
            "{g:?}"
        );
        f.complaints = 0;
        f.hard = 15;
        f.bounced_at_send = 10;
        let rates = Rates::of(&f);
        assert!((rates.bounce_rate - 25.0 / 1010.0).abs() < 1e-12);
        let g = guard(Some(&f));
        assert!(g.warnings[0].starts_with("BOUNCE RATE 2.48%"), "{g:?}");
        assert_eq!(Rates::of(&IssueFeedback::default()), Rates::default());
    }
}

//! Choosing the day's items. Pure: the picks for a date depend only on the
//! pool and the picks of the issues dated before it, both passed in.
//!
//! Rules, in order, per section:
//! 1. an item pinned to the date (`date = ...`) wins; pinned items appear on
//!    their date only and never in the rotation;
//! 2. drafts and items whose `not_before` is later than the date are out;
//! 3. among the rest, the least recently used item is taken, never-used items
//!    first, so no item repeats until every eligible item has been used;
//! 4. ties (never-used items) are broken by a stable hash of (date, slug), so
//!    the order looks shuffled but is the same on every machine and run.
//!
//! When every eligible item has been used, the least recently used one is
//! repeated and the choice says so; a caller that forbids repeats turns that
//! into an error.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::problem::Problem;
use crate::project::content::{Pool, Section};

/// What was picked for one section, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub slug: String,
    pub reason: Reason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Pinned,
    Fresh,
    /// Every eligible item had been used; this one was used last on that date.
    Repeat {
        last_used: NaiveDate,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    #[error(
        "section `{section}` has no item eligible on {date} (all are drafts, pinned to other dates or not_before a later date); add an item to {}",
        .dir.display()
    )]
    Empty {
        section: String,
        date: NaiveDate,
        dir: PathBuf,
    },
    #[error(
        "section `{section}` has used every eligible item by {date} and `repeats = false` forbids repeating one; add items to {}",
        .dir.display()
    )]
    Exhausted {
        section: String,
        date: NaiveDate,
        dir: PathBuf,
    },
}

impl PickError {
    /// The folder the problem is about: where an item should be added.
    pub fn dir(&self) -> &Path {
        match self {
            PickError::Empty { dir, .. } | PickError::Exhausted { dir, .. } => dir,
        }
    }
}

impl From<&PickError> for Problem {
    fn from(e: &PickError) -> Problem {
        Problem::new(e.dir(), None, e.to_string())
    }
}

pub use crate::project::issue::History;

/// Picks one item per section for `date`.
pub fn pick_issue(
    pool: &Pool,
    history: &History,
    date: NaiveDate,
    repeats: bool,
) -> Result<BTreeMap<String, Choice>, Vec<PickError>> {
    let mut picks = BTreeMap::new();
    let mut errors = Vec::new();
    for section in &pool.sections {
        let last_used = last_used(history, &section.name, date);
        match pick_section(section, &last_used, date, repeats) {
            Ok(choice) => {
                picks.insert(section.name.clone(), choice);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(picks)
    } else {
        Err(errors)
    }
}

/// The latest date before `date` on which each slug of `section` was picked.
pub fn last_used(history: &History, section: &str, date: NaiveDate) -> HashMap<String, NaiveDate> {
    let mut last = HashMap::new();
    for (day, picks) in history.range(..date) {
        if let Some(slug) = picks.get(section) {
            last.insert(slug.clone(), *day);
        }
    }
    last
}

/// Whether the item is in the rotation on `date` (not a draft, not pinned,
/// not held back by `not_before`).
pub fn in_rotation(item: &crate::project::content::Item, date: NaiveDate) -> bool {
    !item.draft && item.date.is_none() && item.not_before.is_none_or(|nb| nb <= date)
}

pub fn pick_section(
    section: &Section,
    last_used: &HashMap<String, NaiveDate>,
    date: NaiveDate,
    repeats: bool,
) -> Result<Choice, PickError> {
    if let Some(pinned) = section
        .items
        .iter()
        .find(|i| !i.draft && i.date == Some(date))
    {
        return Ok(Choice {
            slug: pinned.slug.clone(),
            reason: Reason::Pinned,
        });
    }
    let best = section
        .items
        .iter()
        .filter(|i| in_rotation(i, date))
        .min_by_key(|i| (last_used.get(&i.slug).copied(), tie_break(date, &i.slug)));
    let Some(best) = best else {
        return Err(PickError::Empty {
            section: section.name.clone(),
            date,
            dir: section.dir.clone(),
        });
    };
    match last_used.get(&best.slug) {
        None => Ok(Choice {
            slug: best.slug.clone(),
            reason: Reason::Fresh,
        }),
        Some(_) if !repeats => Err(PickError::Exhausted {
            section: section.name.clone(),
            date,
            dir: section.dir.clone(),
        }),
        Some(&last) => Ok(Choice {
            slug: best.slug.clone(),
            reason: Reason::Repeat { last_used: last },
        }),
    }
}

/// A stable pseudo-random rank for (date, slug): the first 8 bytes of
/// SHA-256 over "YYYY-MM-DD/slug". Stable across platforms and releases,
/// unlike `std`'s hasher.
fn tie_break(date: NaiveDate, slug: &str) -> u64 {
    let digest = Sha256::digest(format!("{date}/{slug}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

/// How many future issues the section's unused eligible items cover from
/// `date` on: items never picked before `date` that are in the rotation on
/// `date`, plus pinned items still ahead.
pub fn days_left(section: &Section, history: &History, date: NaiveDate) -> usize {
    let used = last_used(history, &section.name, date);
    section
        .items
        .iter()
        .filter(|i| {
            (in_rotation(i, date) && !used.contains_key(&i.slug))
                || (!i.draft && i.date.is_some_and(|d| d >= date))
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::content::{Item, parse_item};
    use crate::project::settings::SectionSettings;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    fn item(slug: &str, extra: &str) -> Item {
        let section = SectionSettings {
            required: vec!["title".into()],
            ..crate::project::settings::default_sections().remove(0)
        };
        parse_item(
            &format!("+++\ntitle = \"{slug}\"\n{extra}\n+++\nbody\n"),
            &section,
            slug,
            Path::new("x.md"),
        )
        .expect("valid item")
    }

    fn section(items: Vec<Item>) -> Section {
        Section {
            name: "term".into(),
            dir: "content/terms".into(),
            items,
        }
    }

    /// Plans `days` consecutive issues from `start`, feeding each day's picks
    /// into the history of the next, as `plan` does.
    fn plan(pool: &Pool, start: NaiveDate, days: u64) -> History {
        let mut history = History::new();
        for day in start.iter_days().take(days as usize) {
            let picks = pick_issue(pool, &history, day, true).expect("picks");
            history.insert(day, picks.into_iter().map(|(s, c)| (s, c.slug)).collect());
        }
        history
    }

    #[test]
    fn pinned_item_wins_its_day_and_only_its_day() {
        let s = section(vec![
            item("a", ""),
            item("b", ""),
            item("pin", "date = 2027-01-03"),
        ]);
        let pool = Pool { sections: vec![s] };
        let history = plan(&pool, d("2027-01-01"), 10);
        for (day, picks) in &history {
            assert_eq!(picks["term"] == "pin", *day == d("2027-01-03"), "{day}");
        }
    }

    #[test]
    fn skips_drafts_and_items_not_yet_due() {
        let s = section(vec![
            item("a", ""),
            item("draft", "draft = true"),
            item("later", "not_before = 2027-01-05"),
        ]);
        let pool = Pool { sections: vec![s] };
        let history = plan(&pool, d("2027-01-01"), 8);
        for (day, picks) in &history {
            assert_ne!(picks["term"], "draft");
            if *day < d("2027-01-05") {
                assert_eq!(picks["term"], "a", "{day}");
            }
        }
        assert_eq!(history[&d("2027-01-05")]["term"], "later");
    }

    #[test]
    fn least_recently_used_comes_first_once_all_are_used() {
        let s = section(vec![item("a", ""), item("b", ""), item("c", "")]);
        let mut last = HashMap::new();
        last.insert("a".to_string(), d("2027-01-02"));
        last.insert("b".to_string(), d("2027-01-01"));
        last.insert("c".to_string(), d("2027-01-03"));
        let choice = pick_section(&s, &last, d("2027-01-04"), true).expect("pick");
        assert_eq!(
            choice,
            Choice {
                slug: "b".into(),
                reason: Reason::Repeat {
                    last_used: d("2027-01-01")
                }
            }
        );
        let err = pick_section(&s, &last, d("2027-01-04"), false).expect_err("exhausted");
        assert!(matches!(err, PickError::Exhausted { .. }));
    }

    #[test]
    fn empty_section_is_an_error_naming_it() {
        let s = section(vec![item("draft", "draft = true")]);
        let err = pick_section(&s, &HashMap::new(), d("2027-01-01"), true).expect_err("empty");
        assert!(
            err.to_string()
                .starts_with("section `term` has no item eligible on 2027-01-01")
        );
    }

    #[test]
    fn ties_are_broken_by_a_stable_hash() {
        let s = section((0..20).map(|i| item(&format!("t{i}"), "")).collect());
        let first = pick_section(&s, &HashMap::new(), d("2027-01-01"), true).expect("pick");
        let again = pick_section(&s, &HashMap::new(), d("2027-01-01"), true).expect("pick");
        assert_eq!(first, again);
        let picks: BTreeSet<String> = d("2027-01-01")
            .iter_days()
            .take(30)
            .map(|day| {
                pick_section(&s, &HashMap::new(), day, true)
                    .expect("pick")
                    .slug
            })
            .collect();
        assert!(
            picks.len() > 5,
            "the first pick should vary with the date: {picks:?}"
        );
    }

    /// The acceptance case from the issue: 365 days over 7 items per section
    /// with one pin and one draft.
    #[test]
    fn a_year_over_seven_items_never_repeats_within_a_week() {
        let make = |name: &str| {
            let mut items: Vec<Item> = (1..=7).map(|i| item(&format!("{name}{i}"), "")).collect();
            items.push(item(&format!("{name}-pin"), "date = 2027-06-23"));
            items.push(item(&format!("{name}-draft"), "draft = true"));
            Section {
                name: name.into(),
                dir: format!("content/{name}s").into(),
                items,
            }
        };
        let pool = Pool {
            sections: vec![make("term"), make("tool"), make("tip")],
        };
        let history = plan(&pool, d("2027-01-01"), 365);
        assert_eq!(history.len(), 365);
        for name in ["term", "tool", "tip"] {
            let seq: Vec<(&NaiveDate, &String)> =
                history.iter().map(|(day, p)| (day, &p[name])).collect();
            for (day, slug) in &seq {
                assert_ne!(**slug, format!("{name}-draft"));
                assert_eq!(**slug == format!("{name}-pin"), **day == d("2027-06-23"));
            }
            for window in seq.windows(7) {
                let distinct: BTreeSet<&String> = window.iter().map(|(_, s)| *s).collect();
                assert_eq!(distinct.len(), 7, "repeat within a week at {}", window[0].0);
            }
        }
        assert_eq!(
            plan(&pool, d("2027-01-01"), 365),
            history,
            "planning is deterministic"
        );
    }

    #[test]
    fn picks_ignore_issues_dated_after_the_day() {
        let s = section(vec![item("a", ""), item("b", "")]);
        let pool = Pool { sections: vec![s] };
        let mut history = History::new();
        let alone = pick_issue(&pool, &history, d("2027-01-01"), true).expect("pick");
        history.insert(
            d("2027-01-02"),
            [("term".to_string(), alone["term"].slug.clone())].into(),
        );
        let with_future = pick_issue(&pool, &history, d("2027-01-01"), true).expect("pick");
        assert_eq!(alone, with_future);
    }

    #[test]
    fn counts_days_left() {
        let s = section(vec![
            item("a", ""),
            item("b", ""),
            item("pin", "date = 2027-02-01"),
            item("draft", "draft = true"),
        ]);
        let mut history = History::new();
        history.insert(
            d("2027-01-01"),
            [("term".to_string(), "a".to_string())].into(),
        );
        assert_eq!(days_left(&s, &history, d("2027-01-02")), 2);
    }
}

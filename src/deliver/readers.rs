//! The list `send` uses: the CSV's active rows, then the confirmed signups
//! of the ledger that the CSV does not hold, each address once.
//!
//! Memory stays flat in the size of the CSV: the confirmed signups' digests
//! are loaded first (12 bytes each), every CSV row read (whatever its
//! status: an address on the CSV is governed by its row) strikes its
//! address from that set, and once the CSV is through the signups left in
//! the set are streamed from the ledger a page at a time. Suppressions are
//! not this module's business: the selection applies them to every reader
//! alike.

use std::collections::HashSet;

use crate::ledger::{Ledger, SignupReader};
use crate::project::subscribers::{
    AddressKey, KeyDigest, List, ListStatus, Subscriber, parse_address,
};

/// Signups read from the ledger at a time.
const PAGE: usize = 512;

/// The readers of one run: CSV rows first, then unseen confirmed signups.
pub(crate) struct Merged<'a, C: Iterator<Item = Subscriber>> {
    csv: C,
    csv_done: bool,
    /// Confirmed signups not seen on the CSV (so far).
    unseen: HashSet<KeyDigest>,
    ledger: Option<&'a Ledger>,
    page: std::vec::IntoIter<SignupReader>,
    /// The last address of the last page read.
    after: String,
    done: bool,
    columns: usize,
    /// Where a `timezone` column is, to carry a signup's zone.
    timezone_column: Option<usize>,
    /// Readers that came from signups.
    pub from_signups: u64,
    /// Why the stream stopped before its end, if it did.
    pub error: Option<anyhow::Error>,
}

/// The merged list of `list` and the confirmed signups in `ledger` (none
/// without a ledger).
pub(crate) fn merged<'a>(
    list: &'a List,
    ledger: Option<&'a Ledger>,
) -> anyhow::Result<Merged<'a, crate::project::subscribers::Readers<'a>>> {
    let unseen = match ledger {
        Some(l) => l.confirmed_digests()?,
        None => HashSet::new(),
    };
    Ok(Merged {
        csv: list.readers(),
        csv_done: false,
        ledger: ledger.filter(|_| !unseen.is_empty()),
        unseen,
        page: Vec::new().into_iter(),
        after: String::new(),
        done: false,
        columns: list.columns.len(),
        timezone_column: list.columns.iter().position(|c| c == "timezone"),
        from_signups: 0,
        error: None,
    })
}

impl<C: Iterator<Item = Subscriber>> Merged<'_, C> {
    /// The next confirmed signup the CSV did not hold.
    fn next_signup(&mut self) -> Option<Subscriber> {
        loop {
            if let Some(s) = self.page.next() {
                self.after.clone_from(&s.address);
                if !self
                    .unseen
                    .remove(&KeyDigest::of(&AddressKey::new(&s.address)))
                {
                    continue;
                }
                match self.reader(s) {
                    Some(reader) => return Some(reader),
                    None => continue,
                }
            }
            if self.done || self.unseen.is_empty() {
                return None;
            }
            let ledger = self.ledger?;
            match ledger.confirmed_after(&self.after, PAGE) {
                Ok(page) if page.is_empty() => self.done = true,
                Ok(page) => self.page = page.into_iter(),
                Err(e) => {
                    self.error = Some(e.context("cannot read the signups from the ledger"));
                    self.done = true;
                }
            }
        }
    }

    fn reader(&mut self, s: SignupReader) -> Option<Subscriber> {
        let Ok(email) = parse_address(&s.address) else {
            tracing::warn!(
                "skipped: a signup's address is not valid ({})",
                crate::log::mask(&s.address)
            );
            return None;
        };
        let mut reader = Subscriber::ad_hoc(email, &s.name, self.columns);
        // The zone the signup form captured, when it is one (local mornings).
        reader.zone = s.timezone.as_deref().and_then(|z| z.parse().ok());
        if let (Some(i), Some(zone)) = (self.timezone_column, s.timezone) {
            reader.fields[i] = zone;
        }
        self.from_signups += 1;
        Some(reader)
    }
}

/// The reader `address` as `send` would address them when the CSV does
/// not hold them: their confirmed signup in `ledger`, with its name and
/// zone; `None` when there is no confirmed signup.
pub(crate) fn confirmed_signup(
    list: &List,
    ledger: &Ledger,
    address: &AddressKey,
) -> anyhow::Result<Option<Subscriber>> {
    let Some(signup) = ledger.signup(address)? else {
        return Ok(None);
    };
    if signup.status != crate::ledger::SignupStatus::Confirmed {
        return Ok(None);
    }
    let Ok(email) = parse_address(&signup.address) else {
        return Ok(None);
    };
    let mut reader = Subscriber::ad_hoc(email, &signup.name, list.columns.len());
    reader.zone = signup.timezone.as_deref().and_then(|z| z.parse().ok());
    if let (Some(i), Some(zone)) = (
        list.columns.iter().position(|c| c == "timezone"),
        signup.timezone,
    ) {
        reader.fields[i] = zone;
    }
    Ok(Some(reader))
}

impl<C: Iterator<Item = Subscriber>> Iterator for Merged<'_, C> {
    type Item = Subscriber;

    fn next(&mut self) -> Option<Subscriber> {
        while !self.csv_done {
            match self.csv.next() {
                Some(row) => {
                    self.unseen.remove(&KeyDigest::of(&row.key));
                    if row.status == ListStatus::Active {
                        return Some(row);
                    }
                }
                None => self.csv_done = true,
            }
        }
        self.next_signup()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::SignupSource;

    #[test]
    fn csv_rows_then_unseen_signups_each_address_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ledger =
            Ledger::open(&dir.path().join("state.db"), "daily.example.com").expect("ledger");
        let now = chrono::Utc::now();
        for (address, name) in [
            ("Ada@example.org", "Ada"),
            ("new@example.org", "New Reader"),
            ("gone@example.org", ""),
            ("zed@example.org", ""),
        ] {
            ledger
                .add_signup(&address.into(), name, SignupSource::Added, "test", now)
                .expect("add");
        }
        let csv = "email,name,status,timezone\nada@example.org,Ada Park,active,\ngone@example.org,,unsubscribed,\nbo@example.org,Bo,active,\n";
        let list =
            crate::project::subscribers::parse(csv.as_bytes(), "s.csv".as_ref()).expect("list");
        let mut readers = merged(&list, Some(&ledger)).expect("merged");
        let got: Vec<(String, String)> = readers
            .by_ref()
            .map(|r| (r.key.to_string(), r.name.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("ada@example.org".to_string(), "Ada Park".to_string()),
                ("bo@example.org".to_string(), "Bo".to_string()),
                ("new@example.org".to_string(), "New Reader".to_string()),
                ("zed@example.org".to_string(), String::new()),
            ],
            "the CSV row wins; an unsubscribed CSV row keeps its address off the list"
        );
        assert_eq!(readers.from_signups, 2);
        assert!(readers.error.is_none());
        let no_ledger: Vec<_> = merged(&list, None).expect("merged").collect();
        assert_eq!(no_ledger.len(), 2);
    }
}

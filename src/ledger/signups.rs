//! Signups: readers who joined through the archive's form (pending until
//! they confirm through the emailed link), or whom the operator added or
//! imported (confirmed at once), and the log of signup events.
//!
//! A form's request is judged and recorded in one transaction
//! ([`Ledger::request_signup`]): never a confirmation to a suppressed or an
//! already confirmed address, at most `per_address_per_day` confirmation
//! emails to one address in 24 hours and `per_ip_per_hour` asked for from
//! one client in an hour, so every limit holds before any mail is sent,
//! also with several `serve` processes on one ledger. The log counts what
//! `status` shows (requested, confirmed, expired, refused, removed); its
//! keyed hashes of the address and the client are only kept while a limit
//! can count them, then cleared ([`Ledger::expire_signups`]). Pending
//! signups are deleted when their link expires.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use rusqlite::{OptionalExtension, Transaction, params};

use super::open::explain;
use super::{Ledger, stamp};
use crate::project::subscribers::{AddressKey, KeyDigest};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignupStatus {
    Pending,
    Confirmed,
}

/// How a signup came: the form (double opt-in), `subscribers add`, or
/// `subscribers import`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignupSource {
    Form,
    Added,
    Imported,
}

impl SignupSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SignupSource::Form => "form",
            SignupSource::Added => "added",
            SignupSource::Imported => "imported",
        }
    }
}

/// One signup as the ledger keeps it: the consent evidence with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Signup {
    pub address: String,
    pub name: String,
    pub status: SignupStatus,
    pub source: SignupSource,
    /// The archive page the form was on.
    pub page: Option<String>,
    /// How consent was given.
    pub consent: String,
    /// The reader's IANA time zone, as their browser told the form.
    pub timezone: Option<String>,
    pub requested_at: String,
    pub confirmed_at: Option<String>,
    /// When a pending signup's link stops working and the row goes.
    pub expires_at: Option<String>,
}

/// A confirmed signup as `send` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignupReader {
    pub address: String,
    pub name: String,
    pub timezone: Option<String>,
}

/// A form's request, checked by `serve`: the address, what the form said,
/// and keyed hashes of the address and the client for the limits.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub address: &'a AddressKey,
    pub name: &'a str,
    pub page: Option<&'a str>,
    pub timezone: Option<&'a str>,
    pub address_hash: &'a str,
    pub ip_hash: Option<&'a str>,
    pub at: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

/// The abuse limits of `[subscribe]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_address_per_day: u32,
    pub per_ip_per_hour: u32,
}

/// What became of a form's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// Recorded as pending: mail the confirmation.
    Mail,
    /// Refused: the address is suppressed.
    Suppressed,
    /// Nothing to do: the address is already confirmed.
    AlreadyConfirmed,
    /// Refused: the address had its confirmation emails for the day.
    AddressLimit,
    /// Refused: the client asked for its confirmation emails for the hour.
    IpLimit,
}

impl Requested {
    /// The reason logged for a refusal.
    fn refusal(self) -> Option<&'static str> {
        match self {
            Requested::Suppressed => Some("suppressed"),
            Requested::AddressLimit => Some("address limit"),
            Requested::IpLimit => Some("ip limit"),
            Requested::Mail | Requested::AlreadyConfirmed => None,
        }
    }
}

/// What a confirmation link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    /// Confirmed now: send the welcome.
    Now(Signup),
    /// Confirmed before: nothing changes.
    Already,
    /// No signup to confirm (expired and removed, or removed by hand).
    Missing,
    /// The address was suppressed meanwhile: nothing changes.
    Suppressed,
}

/// What `subscribers add` or `import` did to one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    New,
    /// A pending signup, confirmed by the operator.
    Confirmed,
    Already,
}

const COLUMNS: &str = "address, name, status, source, page, consent, timezone, requested_at, confirmed_at, expires_at";

fn signup_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Signup> {
    let status: String = r.get(2)?;
    let source: String = r.get(3)?;
    Ok(Signup {
        address: r.get(0)?,
        name: r.get(1)?,
        status: if status == "confirmed" {
            SignupStatus::Confirmed
        } else {
            SignupStatus::Pending
        },
        source: match source.as_str() {
            "added" => SignupSource::Added,
            "imported" => SignupSource::Imported,
            _ => SignupSource::Form,
        },
        page: r.get(4)?,
        consent: r.get(5)?,
        timezone: r.get(6)?,
        requested_at: r.get(7)?,
        confirmed_at: r.get(8)?,
        expires_at: r.get(9)?,
    })
}

fn find(tx: &Transaction<'_>, address: &str) -> rusqlite::Result<Option<Signup>> {
    tx.query_row(
        &format!("SELECT {COLUMNS} FROM signups WHERE address = ?1"),
        params![address],
        signup_row,
    )
    .optional()
}

fn is_suppressed(tx: &Transaction<'_>, address: &str) -> rusqlite::Result<bool> {
    Ok(tx
        .query_row(
            "SELECT 1 FROM suppressions WHERE address = ?1",
            params![address],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn event(
    tx: &Transaction<'_>,
    at: &str,
    kind: &str,
    reason: Option<&str>,
    hashes: (Option<&str>, Option<&str>),
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO signup_events (at, kind, reason, address_hash, ip_hash) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![at, kind, reason, hashes.0, hashes.1],
    )?;
    Ok(())
}

/// The confirmation emails asked for in the window, by `column` = `hash`.
fn requests_since(
    tx: &Transaction<'_>,
    column: &str,
    hash: &str,
    since: &str,
) -> rusqlite::Result<u32> {
    tx.query_row(
        &format!(
            "SELECT count(*) FROM signup_events WHERE {column} = ?1 AND kind = 'requested' AND at > ?2"
        ),
        params![hash, since],
        |r| r.get(0),
    )
}

/// The limits and the address's state, in the order they refuse.
fn judge(tx: &Transaction<'_>, req: &Request<'_>, limits: Limits) -> rusqlite::Result<Requested> {
    if is_suppressed(tx, req.address)? {
        return Ok(Requested::Suppressed);
    }
    if find(tx, req.address)?.is_some_and(|s| s.status == SignupStatus::Confirmed) {
        return Ok(Requested::AlreadyConfirmed);
    }
    let day_ago = stamp(req.at - Duration::days(1));
    if requests_since(tx, "address_hash", req.address_hash, &day_ago)? >= limits.per_address_per_day
    {
        return Ok(Requested::AddressLimit);
    }
    if let Some(ip) = req.ip_hash {
        let hour_ago = stamp(req.at - Duration::hours(1));
        if requests_since(tx, "ip_hash", ip, &hour_ago)? >= limits.per_ip_per_hour {
            return Ok(Requested::IpLimit);
        }
    }
    Ok(Requested::Mail)
}

/// What the form's consent evidence says.
pub const FORM_CONSENT: &str =
    "double opt-in: the signup form, then the confirmation link mailed to the address";

impl Ledger {
    /// Judges a form's request against the address's state and the limits
    /// and records it, in one transaction: a pending signup and a
    /// `requested` event when the confirmation may be mailed, a `refused`
    /// event when not.
    pub fn request_signup(
        &mut self,
        req: &Request<'_>,
        limits: Limits,
    ) -> anyhow::Result<Requested> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| explain(e, &path))?;
        let verdict = judge(&tx, req, limits)?;
        let at = stamp(req.at);
        let hashes = (Some(req.address_hash), req.ip_hash);
        if verdict == Requested::Mail {
            tx.execute(
                "INSERT INTO signups (address, name, status, source, page, consent, timezone, ip_hash, requested_at, expires_at)
                 VALUES (?1, ?2, 'pending', 'form', ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (address) DO UPDATE SET
                   name = CASE WHEN excluded.name = '' THEN name ELSE excluded.name END,
                   page = excluded.page, timezone = coalesce(excluded.timezone, timezone),
                   ip_hash = excluded.ip_hash, requested_at = excluded.requested_at,
                   expires_at = excluded.expires_at
                 WHERE status = 'pending'",
                params![
                    req.address.as_str(),
                    req.name,
                    req.page,
                    FORM_CONSENT,
                    req.timezone,
                    req.ip_hash,
                    at,
                    stamp(req.expires)
                ],
            )?;
            event(&tx, &at, "requested", None, hashes)?;
        } else if let Some(reason) = verdict.refusal() {
            event(&tx, &at, "refused", Some(reason), hashes)?;
        }
        tx.commit()?;
        Ok(verdict)
    }

    /// Logs a request refused before it named an address (a filled
    /// honeypot, an oversized body, not a form), for the counts.
    pub fn refuse_signup(
        &mut self,
        at: DateTime<Utc>,
        reason: &str,
        ip_hash: Option<&str>,
    ) -> anyhow::Result<()> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| explain(e, &path))?;
        event(&tx, &stamp(at), "refused", Some(reason), (None, ip_hash))?;
        tx.commit()?;
        Ok(())
    }

    /// Confirms the pending signup of `address` (the link's POST).
    /// Confirming twice changes nothing.
    pub fn confirm_signup(
        &mut self,
        address: &AddressKey,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Confirmed> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| explain(e, &path))?;
        let outcome = if is_suppressed(&tx, address)? {
            Confirmed::Suppressed
        } else {
            match find(&tx, address)? {
                None => Confirmed::Missing,
                Some(s) if s.status == SignupStatus::Confirmed => Confirmed::Already,
                Some(mut s) => {
                    let at = stamp(at);
                    tx.execute(
                        "UPDATE signups SET status = 'confirmed', confirmed_at = ?2, expires_at = NULL WHERE address = ?1",
                        params![address.as_str(), at],
                    )?;
                    event(&tx, &at, "confirmed", None, (None, None))?;
                    s.status = SignupStatus::Confirmed;
                    s.confirmed_at = Some(at);
                    s.expires_at = None;
                    Confirmed::Now(s)
                }
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    /// Deletes pending signups whose link has expired (logging each as
    /// `expired` on its day), and clears the keyed hashes of events older
    /// than any limit counts (two days), keeping only what the counts need.
    /// Returns how many signups expired.
    pub fn expire_signups(&mut self, now: DateTime<Utc>) -> anyhow::Result<u64> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| explain(e, &path))?;
        let now_s = stamp(now);
        tx.execute(
            "INSERT INTO signup_events (at, kind) SELECT expires_at, 'expired' FROM signups
             WHERE status = 'pending' AND expires_at < ?1",
            params![now_s],
        )?;
        let expired = tx.execute(
            "DELETE FROM signups WHERE status = 'pending' AND expires_at < ?1",
            params![now_s],
        )?;
        tx.execute(
            "UPDATE signup_events SET address_hash = NULL, ip_hash = NULL
             WHERE at < ?1 AND (address_hash IS NOT NULL OR ip_hash IS NOT NULL)",
            params![stamp(now - Duration::days(2))],
        )?;
        tx.commit()?;
        Ok(expired as u64)
    }

    /// Adds a confirmed signup by the operator's hand (`source` added or
    /// imported), with how consent was given; a pending one is confirmed.
    pub fn add_signup(
        &mut self,
        address: &AddressKey,
        name: &str,
        source: SignupSource,
        consent: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Added> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| explain(e, &path))?;
        let at = stamp(at);
        let outcome = match find(&tx, address)? {
            Some(s) if s.status == SignupStatus::Confirmed => Added::Already,
            existing => {
                tx.execute(
                    "INSERT INTO signups (address, name, status, source, consent, requested_at, confirmed_at)
                     VALUES (?1, ?2, 'confirmed', ?3, ?4, ?5, ?5)
                     ON CONFLICT (address) DO UPDATE SET status = 'confirmed', source = excluded.source,
                       consent = excluded.consent, confirmed_at = excluded.confirmed_at, expires_at = NULL,
                       name = CASE WHEN excluded.name = '' THEN name ELSE excluded.name END",
                    params![address.as_str(), name, source.as_str(), consent, at],
                )?;
                event(&tx, &at, source.as_str(), None, (None, None))?;
                if existing.is_some() {
                    Added::Confirmed
                } else {
                    Added::New
                }
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    /// Removes the signup of `address`, pending or confirmed; false when
    /// there was none.
    pub fn remove_signup(
        &mut self,
        address: &AddressKey,
        at: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| explain(e, &path))?;
        let n = tx.execute(
            "DELETE FROM signups WHERE address = ?1",
            params![address.as_str()],
        )?;
        if n > 0 {
            event(&tx, &stamp(at), "removed", None, (None, None))?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// The signup of `address`, if any.
    pub fn signup(&self, address: &AddressKey) -> anyhow::Result<Option<Signup>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM signups WHERE address = ?1"),
                params![address.as_str()],
                signup_row,
            )
            .optional()?)
    }

    /// Every signup (only the pending ones with `pending_only`), by address.
    pub fn signups(&self, pending_only: bool) -> anyhow::Result<Vec<Signup>> {
        let filter = if pending_only {
            "WHERE status = 'pending'"
        } else {
            ""
        };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM signups {filter} ORDER BY address"
        ))?;
        let rows = stmt.query_map([], signup_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Up to `limit` confirmed signups after `after` in address order: a
    /// page of the list `send` streams (keyset paging, so a million
    /// signups are never held at once).
    pub fn confirmed_after(&self, after: &str, limit: usize) -> anyhow::Result<Vec<SignupReader>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT address, name, timezone FROM signups
             WHERE status = 'confirmed' AND address > ?1 ORDER BY address LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit as i64], |r| {
            Ok(SignupReader {
                address: r.get(0)?,
                name: r.get(1)?,
                timezone: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The confirmed signups, by digest.
    pub fn confirmed_digests(&self) -> anyhow::Result<HashSet<KeyDigest>> {
        let mut stmt = self
            .conn
            .prepare("SELECT address FROM signups WHERE status = 'confirmed'")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = HashSet::new();
        for row in rows {
            out.insert(KeyDigest::of(&AddressKey::new(&row?)));
        }
        Ok(out)
    }

    /// How many signups are (confirmed, pending).
    pub fn signup_counts(&self) -> anyhow::Result<(u64, u64)> {
        Ok(self.conn.query_row(
            "SELECT count(*) FILTER (WHERE status = 'confirmed'), count(*) FILTER (WHERE status = 'pending') FROM signups",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::ledger;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    const LIMITS: Limits = Limits {
        per_address_per_day: 2,
        per_ip_per_hour: 3,
    };

    fn request<'a>(address: &'a AddressKey, ip: &'a str, at: &str) -> Request<'a> {
        Request {
            address,
            name: "Ada",
            page: Some("https://example.com/"),
            timezone: Some("Europe/Berlin"),
            address_hash: address.as_str(),
            ip_hash: Some(ip),
            at: t(at),
            expires: t(at) + Duration::days(7),
        }
    }

    #[test]
    fn a_signup_is_pending_until_confirmed_and_confirming_twice_is_harmless() {
        let (_dir, mut l) = ledger();
        let ada = AddressKey::new("ada@example.org");
        let req = request(&ada, "ip1", "2027-03-01T10:00:00Z");
        assert_eq!(
            l.request_signup(&req, LIMITS).expect("request"),
            Requested::Mail
        );
        assert_eq!(l.signup_counts().expect("counts"), (0, 1));
        assert!(l.confirmed_after("", 10).expect("page").is_empty());
        let Confirmed::Now(s) = l
            .confirm_signup(&ada, t("2027-03-01T10:05:00Z"))
            .expect("confirm")
        else {
            panic!("confirmed now");
        };
        assert_eq!(
            (
                s.name.as_str(),
                s.timezone.as_deref(),
                s.confirmed_at.as_deref()
            ),
            (
                "Ada",
                Some("Europe/Berlin"),
                Some("2027-03-01T10:05:00.000Z")
            )
        );
        assert_eq!(
            l.confirm_signup(&ada, t("2027-03-01T10:06:00Z"))
                .expect("again"),
            Confirmed::Already
        );
        assert_eq!(
            l.request_signup(&request(&ada, "ip1", "2027-03-01T11:00:00Z"), LIMITS)
                .expect("again"),
            Requested::AlreadyConfirmed
        );
        assert_eq!(
            l.confirmed_after("", 10).expect("page")[0].address,
            "ada@example.org"
        );
        assert_eq!(
            l.confirm_signup(&"bo@example.org".into(), t("2027-03-01T10:06:00Z"))
                .expect("none"),
            Confirmed::Missing
        );
    }

    #[test]
    fn limits_count_confirmation_emails_per_address_and_per_client() {
        let (_dir, mut l) = ledger();
        let ada = AddressKey::new("ada@example.org");
        for minute in ["00", "10"] {
            let req = request(&ada, "ip1", &format!("2027-03-01T10:{minute}:00Z"));
            assert_eq!(
                l.request_signup(&req, LIMITS).expect("request"),
                Requested::Mail
            );
        }
        let third = request(&ada, "ip2", "2027-03-01T10:20:00Z");
        assert_eq!(
            l.request_signup(&third, LIMITS).expect("request"),
            Requested::AddressLimit
        );
        // A day later the address may ask again.
        let later = request(&ada, "ip2", "2027-03-02T10:01:00Z");
        assert_eq!(
            l.request_signup(&later, LIMITS).expect("request"),
            Requested::Mail
        );
        // One client, many addresses: three an hour.
        let others: Vec<AddressKey> = (0..4)
            .map(|i| AddressKey::new(&format!("x{i}@example.org")))
            .collect();
        let verdicts: Vec<Requested> = others
            .iter()
            .map(|a| {
                l.request_signup(&request(a, "ip9", "2027-03-01T12:00:00Z"), LIMITS)
                    .expect("request")
            })
            .collect();
        assert_eq!(
            verdicts,
            [
                Requested::Mail,
                Requested::Mail,
                Requested::Mail,
                Requested::IpLimit
            ]
        );
        l.suppress(&"s@example.org".into(), "unsubscribed", None)
            .expect("suppress");
        let s = AddressKey::new("s@example.org");
        assert_eq!(
            l.request_signup(&request(&s, "ip3", "2027-03-01T12:00:00Z"), LIMITS)
                .expect("request"),
            Requested::Suppressed
        );
        assert!(
            l.signup(&s).expect("read").is_none(),
            "nothing kept for a suppressed address"
        );
    }

    #[test]
    fn pending_signups_expire_and_old_hashes_are_cleared() {
        let (_dir, mut l) = ledger();
        let ada = AddressKey::new("ada@example.org");
        l.request_signup(&request(&ada, "ip1", "2027-03-01T10:00:00Z"), LIMITS)
            .expect("request");
        assert_eq!(
            l.expire_signups(t("2027-03-05T00:00:00Z")).expect("expire"),
            0
        );
        assert_eq!(
            l.expire_signups(t("2027-03-09T00:00:00Z")).expect("expire"),
            1
        );
        assert!(l.signup(&ada).expect("read").is_none());
        assert_eq!(
            l.confirm_signup(&ada, t("2027-03-09T00:00:01Z"))
                .expect("late"),
            Confirmed::Missing
        );
        let hashes: i64 = l
            .conn
            .query_row(
                "SELECT count(*) FROM signup_events WHERE address_hash IS NOT NULL OR ip_hash IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(hashes, 0);
    }

    #[test]
    fn the_operator_adds_and_removes_signups() {
        let (_dir, mut l) = ledger();
        let now = t("2027-03-01T10:00:00Z");
        let ada = AddressKey::new("ada@example.org");
        assert_eq!(
            l.add_signup(&ada, "Ada", SignupSource::Added, "by hand", now)
                .expect("add"),
            Added::New
        );
        assert_eq!(
            l.add_signup(&ada, "", SignupSource::Added, "by hand", now)
                .expect("add"),
            Added::Already
        );
        let bo = AddressKey::new("bo@example.org");
        l.request_signup(&request(&bo, "ip", "2027-03-01T09:00:00Z"), LIMITS)
            .expect("request");
        assert_eq!(
            l.add_signup(&bo, "", SignupSource::Imported, "import", now)
                .expect("add"),
            Added::Confirmed
        );
        assert_eq!(
            l.signup(&bo).expect("read").expect("row").name,
            "Ada",
            "the name given is kept"
        );
        assert_eq!(l.signup_counts().expect("counts"), (2, 0));
        assert_eq!(
            l.confirmed_after("ada@example.org", 10)
                .expect("page")
                .len(),
            1
        );
        assert!(l.remove_signup(&ada, now).expect("remove"));
        assert!(!l.remove_signup(&ada, now).expect("again"));
        assert_eq!(l.signups(false).expect("list").len(), 1);
    }
}

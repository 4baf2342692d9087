//! The suppression list: addresses that get nothing, whatever the list
//! says. Added by unsubscribe links (`serve`), by hand (`suppressions
//! add`), by bounces during `send`, which `deliveries` writes in the same
//! transaction as the bounced outcome, and by bounces and complaints that
//! arrive later (`events`). Removing one clears its events.

use std::collections::HashSet;

use rusqlite::params;

use super::open::explain;
use super::{Ledger, now};
use crate::project::subscribers::{AddressKey, KeyDigest};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Suppression {
    pub address: String,
    pub reason: String,
    pub note: Option<String>,
    pub created_at: String,
}

impl Ledger {
    /// The suppressed addresses, by digest.
    pub fn suppressed(&self) -> anyhow::Result<HashSet<KeyDigest>> {
        let mut stmt = self.conn.prepare("SELECT address FROM suppressions")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = HashSet::new();
        for row in rows {
            out.insert(KeyDigest::of(&AddressKey::new(&row?)));
        }
        Ok(out)
    }

    /// How many addresses are suppressed.
    pub fn suppressed_count(&self) -> anyhow::Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM suppressions", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }

    pub fn suppressions(&self) -> anyhow::Result<Vec<Suppression>> {
        let mut stmt = self.conn.prepare(
            "SELECT address, reason, note, created_at FROM suppressions ORDER BY address",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Suppression {
                address: r.get(0)?,
                reason: r.get(1)?,
                note: r.get(2)?,
                created_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Adds a suppression; returns false if the address was already suppressed.
    pub fn suppress(
        &mut self,
        address: &AddressKey,
        reason: &str,
        note: Option<&str>,
    ) -> anyhow::Result<bool> {
        let n = self.conn.execute(
            "INSERT INTO suppressions (address, reason, note, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (address) DO NOTHING",
            params![address.as_str(), reason, note, now()],
        ).map_err(|e| explain(e, &self.path))?;
        Ok(n > 0)
    }

    /// Removes a suppression; returns false if there was none. The
    /// address's bounce and complaint events are cleared in the same
    /// transaction, so a false positive undone does not come back with the
    /// next soft bounce (the events stay, as evidence).
    pub fn unsuppress(&mut self, address: &AddressKey) -> anyhow::Result<bool> {
        let path = self.path.clone();
        let mut remove = || -> rusqlite::Result<usize> {
            let tx = self.conn.transaction()?;
            let n = tx.execute(
                "DELETE FROM suppressions WHERE address = ?1",
                params![address.as_str()],
            )?;
            tx.execute(
                "UPDATE bounce_events SET cleared_at = ?2 WHERE address = ?1 AND cleared_at IS NULL",
                params![address.as_str(), now()],
            )?;
            tx.commit()?;
            Ok(n)
        };
        Ok(remove().map_err(|e| explain(e, &path))? > 0)
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::tests::ledger;

    #[test]
    fn suppressions_add_list_remove() {
        let (_dir, mut l) = ledger();
        assert!(
            l.suppress(&" Ada@Example.org ".into(), "unsubscribed", Some("by hand"))
                .expect("add")
        );
        assert!(
            !l.suppress(&"ada@example.org".into(), "unsubscribed", None)
                .expect("again")
        );
        assert_eq!(
            l.suppressions().expect("list")[0].address,
            "ada@example.org"
        );
        assert!(l.unsuppress(&"ADA@example.org".into()).expect("remove"));
        assert!(l.suppressions().expect("list").is_empty());
    }
}

//! `dailyissue ledger backup`: a consistent copy of a ledger in use.

use std::path::Path;

use anyhow::Context;
use rusqlite::Connection;

use super::Ledger;

impl Ledger {
    /// Copies the ledger into `dest` with SQLite's online backup: a
    /// consistent snapshot, safe while `send` or `serve` write to it. The
    /// copy is written under a temporary name, checked, then renamed.
    pub fn backup(&self, dest: &Path) -> anyhow::Result<()> {
        let dir = dest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".dailyissue-backup.")
            .permissions(crate::atomic::default_permissions())
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        {
            let mut copy = Connection::open(tmp.path())?;
            let backup = rusqlite::backup::Backup::new(&self.conn, &mut copy)?;
            // One step copies every page inside one read transaction: a
            // snapshot, and WAL lets writers go on meanwhile.
            backup.step(-1)?;
            drop(backup);
            let check: String = copy.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
            if check != "ok" {
                anyhow::bail!("the copy failed SQLite's quick_check: {check}");
            }
            copy.pragma_update(None, "journal_mode", "DELETE")?;
        }
        tmp.as_file().sync_all()?;
        tmp.persist(dest)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", dest.display(), e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::tests::{LIST, claim, d, ledger, outcome};
    use crate::ledger::{DeliveryStatus, Ledger};
    use crate::project::subscribers::{AddressKey, KeyDigest};

    #[test]
    fn a_backup_is_a_complete_ledger() {
        let (dir, mut l) = ledger();
        let date = d("2027-03-01");
        l.apply(
            date,
            date,
            &[
                claim(&["a@x.org"]),
                outcome("a@x.org", DeliveryStatus::Sent, "250"),
            ],
        )
        .expect("write");
        let dest = dir.path().join("backup.db");
        l.backup(&dest).expect("backup");
        let copy = Ledger::open_existing_read_only(&dest, LIST)
            .expect("valid")
            .expect("exists");
        assert_eq!(
            copy.statuses(date).expect("rows")[&KeyDigest::of(&AddressKey::new("a@x.org"))].status,
            DeliveryStatus::Sent
        );
    }
}

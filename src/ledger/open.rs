//! Opening the ledger file: created when there is none, refused when it
//! is not this newsletter's.
//!
//! A new ledger is built under a temporary name and renamed into place,
//! so a crash while creating one never leaves an empty file behind. An
//! existing file must be a dailyissue ledger (its header, see `schema`) of
//! the newsletter with this `list_id`; an empty file, another program's
//! database or another newsletter's ledger is refused with what to do
//! about it, never silently replaced. SQLite's permission errors are
//! reworded into what the operator can do about them ([`explain`]).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::Ledger;
use super::schema::{self, APPLICATION_ID, SCHEMA_VERSION};

/// What to do when the ledger cannot be written for lack of permission.
fn permission_denied(path: &Path, detail: &dyn std::fmt::Display) -> anyhow::Error {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    anyhow::anyhow!(
        "cannot write the ledger {}: permission denied ({detail}). The user running dailyissue needs write access to the file and to its folder {} (SQLite keeps -wal and -shm files beside it): e.g. `chown -R $(id -un) {}`",
        path.display(),
        dir.display(),
        dir.display()
    )
}

/// Rewords SQLite's "readonly database" and "unable to open" errors into
/// what the operator can do about them.
pub(super) fn explain(e: rusqlite::Error, path: &Path) -> anyhow::Error {
    use rusqlite::ErrorCode::{CannotOpen, PermissionDenied, ReadOnly};
    if matches!(
        e.sqlite_error_code(),
        Some(ReadOnly | PermissionDenied | CannotOpen)
    ) {
        return permission_denied(path, &e);
    }
    anyhow::Error::new(e).context(format!("ledger {}", path.display()))
}

/// Refuses, before SQLite touches it, a file that cannot be a ledger: an
/// empty file would otherwise be taken for a new, empty database.
fn verify_file(path: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the ledger {}", path.display()))?;
    if !meta.is_file() {
        anyhow::bail!(
            "the ledger {} is not a file; point `ledger` in dailyissue.toml at a file",
            path.display()
        );
    }
    if meta.len() == 0 {
        anyhow::bail!(
            "the ledger {} is empty (0 bytes): it is not a dailyissue ledger, and the delivery history it held is gone. Nothing was sent. Restore it from a backup (`dailyissue ledger backup` makes them), or delete the file to start a new, empty ledger (every reader would then get the current issue again)",
            path.display()
        );
    }
    Ok(())
}

/// Creates a new ledger at `path`: built under a temporary name in the same
/// folder, then moved into place (never over a file another process made
/// meanwhile).
fn create(path: &Path, list_id: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".dailyissue-ledger.")
        .permissions(crate::atomic::default_permissions())
        .tempfile_in(dir)
        .with_context(|| format!("cannot create the ledger in {}", dir.display()))?;
    {
        let mut conn = Connection::open(tmp.path()).map_err(|e| explain(e, path))?;
        schema::install(&mut conn, list_id)?;
    }
    tmp.as_file().sync_all()?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(()),
        // Another process (serve, a second send) created it first: use theirs.
        Err(_) if path.exists() => Ok(()),
        Err(e) => Err(anyhow::anyhow!(
            "cannot create the ledger {}: {}",
            path.display(),
            e.error
        )),
    }
}

impl Ledger {
    /// Opens the ledger at `path` for reading and writing, creating it when
    /// there is no file yet. An existing file must be a dailyissue ledger
    /// of the newsletter with `list_id`; anything else is refused.
    pub fn open(path: &Path, list_id: &str) -> anyhow::Result<Ledger> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the ledger's folder {}", dir.display()))?;
        }
        if !path.exists() {
            create(path, list_id)?;
        }
        // SQLite would quietly fall back to read-only; say it plainly instead.
        if let Err(e) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            && e.kind() == std::io::ErrorKind::PermissionDenied
        {
            return Err(permission_denied(
                path,
                &"the file is read-only for this user",
            ));
        }
        verify_file(path)?;
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|e| explain(e, path))?;
        let mut ledger = Ledger {
            conn,
            path: path.to_path_buf(),
        };
        ledger.setup(list_id, true)?;
        Ok(ledger)
    }

    /// Opens an existing ledger without writing anything (dry runs,
    /// `status`, `archive`); `None` when there is none. It is checked like
    /// [`Ledger::open`] checks it.
    pub fn open_existing_read_only(path: &Path, list_id: &str) -> anyhow::Result<Option<Ledger>> {
        if !path.exists() {
            return Ok(None);
        }
        verify_file(path)?;
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| explain(e, path))?;
        let mut ledger = Ledger {
            conn,
            path: path.to_path_buf(),
        };
        ledger.setup(list_id, false)?;
        Ok(Some(ledger))
    }

    /// Checks whose ledger this is, migrates an older schema (when
    /// writable), and sets the connection up.
    fn setup(&mut self, list_id: &str, writable: bool) -> anyhow::Result<()> {
        let path = self.path.clone();
        self.conn.busy_timeout(Duration::from_secs(60))?;
        let version = self.schema_version()?;
        if writable {
            self.conn
                .pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| explain(e, &path))?;
            // WAL + NORMAL: a commit survives a crash of the process (kill -9);
            // only a power loss can lose the last commits.
            self.conn.pragma_update(None, "synchronous", "NORMAL")?;
            if version < SCHEMA_VERSION {
                schema::migrate(&mut self.conn, version, list_id).map_err(|e| explain(e, &path))?;
            }
        }
        self.check_owner(list_id)
    }

    /// The file's schema version, once its header shows a dailyissue ledger
    /// (or one of schema 1, which had no mark) that this build understands.
    fn schema_version(&self) -> anyhow::Result<i32> {
        let path = &self.path;
        let not_ours = |why: String| {
            anyhow::anyhow!(
                "{} is not a dailyissue ledger ({why}); nothing was changed. Point `ledger` in dailyissue.toml at this newsletter's own ledger, or move the file away to start a new one",
                path.display()
            )
        };
        let header = |conn: &Connection| -> rusqlite::Result<(i32, i32)> {
            Ok((
                conn.pragma_query_value(None, "application_id", |r| r.get(0))?,
                conn.pragma_query_value(None, "user_version", |r| r.get(0))?,
            ))
        };
        let (app, version) = header(&self.conn).map_err(|e| not_ours(e.to_string()))?;
        let legacy = app == 0 && version == 1 && self.has_table("deliveries")?;
        if !(app == APPLICATION_ID || legacy) {
            return Err(not_ours(if version == 0 && app == 0 {
                "an SQLite database without dailyissue's tables".into()
            } else {
                format!("an SQLite database of another program, application_id {app:#x}")
            }));
        }
        if version > SCHEMA_VERSION {
            anyhow::bail!(
                "{}: schema version {version} is newer than this dailyissue understands ({SCHEMA_VERSION}); upgrade dailyissue",
                path.display()
            );
        }
        Ok(version)
    }

    /// Refuses another newsletter's ledger: `meta.list_id` names its owner
    /// (a schema 1 file opened read-only has no `meta` yet).
    fn check_owner(&self, list_id: &str) -> anyhow::Result<()> {
        let owner: Option<String> = if self.has_table("meta")? {
            self.conn
                .query_row("SELECT value FROM meta WHERE key = 'list_id'", [], |r| {
                    r.get(0)
                })
                .optional()?
        } else {
            None
        };
        if let Some(owner) = owner
            && owner != list_id
        {
            anyhow::bail!(
                "{} belongs to another newsletter (list_id `{owner}`; this one's is `{list_id}`); nothing was changed. Point `ledger` in dailyissue.toml at this newsletter's own ledger. If you changed `list_id` (or the `name` it is made from) on purpose, set list_id = \"{owner}\" to keep this ledger: unsubscribe links in mail already sent depend on it too",
                self.path.display()
            );
        }
        Ok(())
    }

    pub(super) fn has_table(&self, name: &str) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                params![name],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::{LIST, ledger};

    #[test]
    fn schema_is_versioned_marked_and_reopens() {
        let (dir, l) = ledger();
        drop(l);
        let l = Ledger::open(&dir.path().join("sub/state.db"), LIST).expect("reopen");
        let v: i32 = l
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("pragma");
        assert_eq!(v, SCHEMA_VERSION);
        let app: i32 = l
            .conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .expect("pragma");
        assert_eq!(app, APPLICATION_ID);
        let mode: String = l
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("pragma");
        assert_eq!(mode, "wal");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with(".dailyissue-ledger.")),
            "no temporary file left: {names:?}"
        );
    }

    #[test]
    fn files_that_are_not_this_newsletters_ledger_are_refused_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").expect("write");
        let err = Ledger::open(&empty, LIST).expect_err("empty");
        assert!(err.to_string().contains("is empty (0 bytes)"), "{err:#}");
        assert_eq!(
            std::fs::metadata(&empty).expect("meta").len(),
            0,
            "left as it was"
        );

        let text = dir.path().join("notes.db");
        std::fs::write(&text, b"hello, this is not a database at all").expect("write");
        let err = Ledger::open(&text, LIST).expect_err("text");
        assert!(
            err.to_string().contains("is not a dailyissue ledger"),
            "{err:#}"
        );

        let other_program = dir.path().join("other.db");
        Connection::open(&other_program)
            .expect("open")
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .expect("create");
        let err = Ledger::open(&other_program, LIST).expect_err("foreign");
        assert!(
            err.to_string().contains("is not a dailyissue ledger"),
            "{err:#}"
        );
        assert!(
            Ledger::open_existing_read_only(&other_program, LIST).is_err(),
            "read-only opens check too"
        );

        let theirs = dir.path().join("theirs.db");
        drop(Ledger::open(&theirs, "other.example.org").expect("create"));
        let err = Ledger::open(&theirs, LIST).expect_err("another newsletter");
        let msg = err.to_string();
        assert!(
            msg.contains("belongs to another newsletter (list_id `other.example.org`"),
            "{msg}"
        );
        assert!(Ledger::open(&theirs, "other.example.org").is_ok());
    }
}

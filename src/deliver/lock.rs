//! One run at a time: a lock file beside the ledger, taken with std's
//! `File::try_lock` and held for the whole run. The OS releases it when the
//! process ends, even after `kill -9`, so a crash never leaves it stuck.

use std::fs::{File, TryLockError};
use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::problem::Failure;

/// The run's lock: a file beside the ledger, locked (by the OS, so a
/// crash releases it) for the whole run. The pid inside is only for the
/// message another run prints; a stale one is harmless.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Takes the lock, or fails with exit 75 naming the holder's pid.
pub fn lock(ledger_path: &Path) -> Result<RunLock, Failure> {
    let path = ledger_path.with_extension("lock");
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| {
            format!(
                "cannot open the lock file {}; the user running dailyissue needs write access to it and to the ledger beside it (e.g. `chown -R $(id -un) {}`)",
                path.display(),
                path.parent().unwrap_or(Path::new(".")).display()
            )
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let pid = holder.trim();
            return Err(Failure::Temporary(crate::problem::Temporary::LockHeld {
                pid: (!pid.is_empty()).then(|| pid.to_string()),
                lock: path.clone(),
            }));
        }
        Err(TryLockError::Error(e)) => {
            return Err(Failure::Other(anyhow::anyhow!(
                "cannot lock {}: {e}",
                path.display()
            )));
        }
    }
    file.set_len(0)?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
    file.sync_all()?;
    Ok(RunLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = dir.path().join("state.db");
        let _held = lock(&ledger).expect("first lock");
        let err = lock(&ledger).expect_err("second lock");
        assert_eq!(err.exit_code(), 75);
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
    }
}

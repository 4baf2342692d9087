//! `ledger backup`: a consistent copy of the ledger (SQLite's online
//! backup), safe while `send` or `serve` run, where a plain `cp` of a live
//! database is not.

use std::path::{Path, PathBuf};

use crate::problem::Failure;
use crate::project::Project;

/// What `ledger backup` wrote.
#[derive(Debug, serde::Serialize)]
pub struct Backup {
    pub ledger: PathBuf,
    pub file: PathBuf,
    pub bytes: u64,
}

impl crate::cmd::Report for Backup {
    fn text(&self) -> String {
        format!(
            "backed up {} to {} ({} KB)\n",
            self.ledger.display(),
            self.file.display(),
            self.bytes.div_ceil(1024)
        )
    }
}

/// Copies the project's ledger to `dest` (replaced if it exists).
pub fn backup(project: &Project, dest: &Path) -> Result<Backup, Failure> {
    let ledger = crate::ledger::read(project)?
        .ok_or_else(|| Failure::Usage(crate::problem::Usage::NoLedger(project.ledger_path())))?;
    ledger.backup(dest)?;
    Ok(Backup {
        ledger: project.ledger_path(),
        file: dest.to_path_buf(),
        bytes: std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0),
    })
}

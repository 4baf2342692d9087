//! The archive's incremental write: a file is written only when its bytes
//! change, and files a previous build wrote that this one no longer
//! produces are removed. What a build wrote is tracked in a manifest in the
//! archive folder, so nothing else in the folder is ever touched (the
//! folder may be shared, or served with other files).

use std::collections::BTreeMap;
use std::path::Path;

use crate::atomic;
use crate::problem::Failure;

use super::ArchiveReport;

/// The manifest: one path a line, relative to the archive folder.
const MANIFEST: &str = ".dailyissue-archive";

/// Writes what changed, removes what a previous build wrote and this one
/// did not, and records the new manifest.
pub(super) fn write(
    out: &Path,
    files: &BTreeMap<String, Vec<u8>>,
    report: &mut ArchiveReport,
) -> Result<(), Failure> {
    std::fs::create_dir_all(out)?;
    for (rel, bytes) in files {
        let path = out.join(rel);
        if std::fs::read(&path).is_ok_and(|old| old == *bytes) {
            report.unchanged += 1;
            continue;
        }
        atomic::write(&path, bytes)?;
        report.written += 1;
    }
    let manifest_path = out.join(MANIFEST);
    let previous = std::fs::read_to_string(&manifest_path).unwrap_or_default();
    for old in previous
        .lines()
        .filter(|l| !l.is_empty() && !files.contains_key(*l))
    {
        let rel = Path::new(old);
        if rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
            && out.join(rel).is_file()
        {
            std::fs::remove_file(out.join(rel))?;
            report.removed += 1;
            // Tidy empty folders left behind (issues/DATE/, page/N/).
            let mut dir = out.join(rel).parent().map(Path::to_path_buf);
            while let Some(d) = dir {
                if d == out || std::fs::remove_dir(&d).is_err() {
                    break;
                }
                dir = d.parent().map(Path::to_path_buf);
            }
        }
    }
    let manifest: String = files.keys().map(|k| format!("{k}\n")).collect();
    if previous != manifest {
        atomic::write(&manifest_path, manifest.as_bytes())?;
    }
    Ok(())
}

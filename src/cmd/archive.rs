//! `archive`: builds the static web archive (the `archive` stage does the
//! work) and reports what it wrote. Serving it afterwards (`--serve`) is
//! `run`'s business.

use std::path::PathBuf;

use crate::archive::ArchiveOptions;
use crate::cmd::plural;
use crate::problem::Failure;
use crate::project::Project;

/// What one build did.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    /// The archive folder.
    pub out: PathBuf,
    /// Issue pages published.
    pub issues: usize,
    /// Pages of single items (sections with `pages = "each"`).
    pub item_pages: usize,
    /// Files written because they are new or changed.
    pub written: usize,
    pub unchanged: usize,
    /// Files an earlier build wrote that are no longer produced.
    pub removed: usize,
}

impl crate::cmd::Report for Report {
    fn text(&self) -> String {
        format!(
            "archive in {}: {} issue{}, {} item page{}; {} file{} written, {} unchanged, {} removed\n",
            self.out.display(),
            self.issues,
            plural(self.issues as u64),
            self.item_pages,
            plural(self.item_pages as u64),
            self.written,
            plural(self.written as u64),
            self.unchanged,
            self.removed
        )
    }
}

pub fn archive(project: &Project, opts: &ArchiveOptions) -> Result<Report, Failure> {
    let built = crate::archive::archive(project, opts)?;
    if let Some(note) = &built.note {
        tracing::warn!("{note}");
    }
    Ok(Report {
        out: built.out,
        issues: built.issues,
        item_pages: built.item_pages,
        written: built.written,
        unchanged: built.unchanged,
        removed: built.removed,
    })
}

//! The project: a newsletter on disk — the folder holding
//! `dailyissue.toml` — and the loaders for everything in it: settings, the
//! content pool, the subscriber list, issue records, templates. Takes a
//! folder; gives typed values or every problem found, each as
//! `path:line: message` with paths relative to the project root. Nothing
//! here renders, picks or sends.

pub mod content;
pub mod issue;
pub mod settings;
pub mod slug;
pub mod subscribers;
pub mod templates;

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};

use crate::problem::{Failure, Problem};
use crate::project::content::Pool;
use crate::project::issue::Issues;
use crate::project::settings::{FILE_NAME, Settings};
use crate::project::subscribers::List;
use crate::project::templates::Templates;

#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub settings: Settings,
}

impl Project {
    /// Finds `dailyissue.toml` in `start` or its nearest parent and loads it.
    pub fn discover(start: &Path) -> Result<Project, Failure> {
        let start = std::path::absolute(start)?;
        let root = start
            .ancestors()
            .find(|dir| dir.join(FILE_NAME).is_file())
            .ok_or_else(|| {
                Failure::Usage(format!(
                    "no {FILE_NAME} in {} or any parent folder; run `dailyissue init` to create a project, or pass -C DIR",
                    start.display()
                ))
            })?
            .to_path_buf();
        Project::open(root)
    }

    pub fn open(root: PathBuf) -> Result<Project, Failure> {
        let settings = Settings::from_file(&root.join(FILE_NAME)).map_err(|problems| {
            Failure::Input(
                problems
                    .into_iter()
                    .map(|mut p| {
                        p.path = PathBuf::from(FILE_NAME);
                        p
                    })
                    .collect(),
            )
        })?;
        Ok(Project { root, settings })
    }

    pub fn path(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    /// Today's date in the newsletter's time zone.
    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.settings.timezone).date_naive()
    }

    pub fn pool(&self) -> Result<Pool, Vec<Problem>> {
        Pool::load(&self.root, &self.settings)
    }

    pub fn issues(&self) -> Result<Issues, Vec<Problem>> {
        Issues::load(&self.root)
    }

    pub fn templates(&self) -> Result<Templates, Vec<Problem>> {
        Templates::load(&self.root)
    }

    pub fn ledger_path(&self) -> PathBuf {
        self.path(&self.settings.ledger)
    }

    pub fn subscribers(&self) -> Result<List, Vec<Problem>> {
        List::from_file(
            &self.settings.subscribers,
            &self.path(&self.settings.subscribers),
        )
    }
}

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

/// Everything a command needs from the project, loaded once.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub pool: Pool,
    pub templates: Templates,
    pub issues: Issues,
    pub list: List,
}

/// The project's files as far as they could be loaded, with every problem
/// found in any of them. `check` reports on the parts that loaded even when
/// others did not; every other command wants them all ([`Parts::complete`]).
#[derive(Debug, Default)]
pub struct Parts {
    pub pool: Option<Pool>,
    pub templates: Option<Templates>,
    pub issues: Option<Issues>,
    /// `None` when not asked for, or when the list could not be read.
    pub list: Option<List>,
    pub problems: Vec<Problem>,
}

impl Parts {
    /// Every part, or every problem (exit 2).
    pub fn complete(self) -> Result<Loaded, Failure> {
        match (self.pool, self.templates, self.issues, self.list) {
            (Some(pool), Some(templates), Some(issues), Some(list)) if self.problems.is_empty() => {
                Ok(Loaded {
                    pool,
                    templates,
                    issues,
                    list,
                })
            }
            _ => Err(Failure::input(self.problems)),
        }
    }

    /// The content without the list (the archive needs no readers).
    pub fn content(self) -> Result<(Pool, Templates, Issues), Failure> {
        match (self.pool, self.templates, self.issues) {
            (Some(pool), Some(templates), Some(issues)) if self.problems.is_empty() => {
                Ok((pool, templates, issues))
            }
            _ => Err(Failure::input(self.problems)),
        }
    }
}

/// Which parts [`Project::parts`] loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum With {
    /// Pool, templates and records.
    Content,
    /// Those and the subscriber list.
    List,
}

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
                Failure::Usage(crate::problem::Usage::NoProject {
                    start: start.clone(),
                })
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

    /// Loads the project's files, collecting every problem of every part.
    pub fn parts(&self, with: With) -> Parts {
        fn keep<T>(r: Result<T, Vec<Problem>>, problems: &mut Vec<Problem>) -> Option<T> {
            r.map_err(|p| problems.extend(p)).ok()
        }
        let mut problems = Vec::new();
        let pool = keep(self.pool(), &mut problems);
        let templates = keep(self.templates(), &mut problems);
        let issues = keep(self.issues(), &mut problems);
        let list = match with {
            With::List => keep(self.subscribers(), &mut problems),
            With::Content => None,
        };
        Parts {
            pool,
            templates,
            issues,
            list,
            problems,
        }
    }

    /// Every part, or every problem.
    pub fn load(&self) -> Result<Loaded, Failure> {
        self.parts(With::List).complete()
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

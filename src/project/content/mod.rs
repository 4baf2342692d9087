//! The content pool: one Markdown file per item, TOML front matter between
//! `+++` lines, slug = file stem.
//!
//! [`parse_item`] (in `item`) is pure and checks one file; [`Pool::load`]
//! reads every section folder, parses every file, then checks what spans
//! files (duplicate slugs, `related` slugs, two items pinned to one date).
//! All problems are collected and returned together. Nothing here knows
//! about dates other than reading them: choosing items is `pick`'s job.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::problem::Problem;
use crate::project::settings::Settings;

mod item;

pub use item::{Item, is_web_url, parse_item};

/// One section's items, sorted by slug.
#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    pub dir: PathBuf,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, Default)]
pub struct Pool {
    pub sections: Vec<Section>,
}

impl Pool {
    /// Loads every section folder under `root`, reporting every problem found.
    pub fn load(root: &Path, settings: &Settings) -> Result<Pool, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut sections = Vec::new();
        // Every file stem, parsed or not, so a broken file does not also
        // make every `related` link to it an error.
        let mut stems = std::collections::HashSet::new();
        for s in &settings.sections {
            let mut items = Vec::new();
            let files = match list_markdown(&root.join(&s.dir)) {
                Ok(files) => files,
                Err(e) => {
                    problems.push(Problem::new(
                        &s.dir,
                        None,
                        format!(
                            "cannot read the folder of section `{}` ({e}); create it or change its `dir` in {}",
                            s.name,
                            crate::project::settings::FILE_NAME
                        ),
                    ));
                    Vec::new()
                }
            };
            for file in files {
                let rel = s.dir.join(&file);
                let text = match std::fs::read_to_string(root.join(&rel)) {
                    Ok(t) => t,
                    Err(e) => {
                        problems.push(Problem::new(&rel, None, format!("cannot read: {e}")));
                        continue;
                    }
                };
                let slug = file.trim_end_matches(".md").to_string();
                stems.insert(slug.clone());
                match parse_item(&text, s, &slug, &rel) {
                    Ok(item) => items.push(item),
                    Err(mut p) => problems.append(&mut p),
                }
            }
            sections.push(Section {
                name: s.name.clone(),
                dir: s.dir.clone(),
                items,
            });
        }
        let pool = Pool { sections };
        problems.extend(pool.cross_check(&stems));
        if problems.is_empty() {
            Ok(pool)
        } else {
            Err(problems)
        }
    }

    /// Problems that span files: duplicate slugs, unknown `related` slugs, and
    /// two items of one section pinned to the same date.
    fn cross_check(&self, stems: &std::collections::HashSet<String>) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut by_slug: HashMap<&str, &Item> = HashMap::new();
        for item in self.items() {
            if let Some(first) = by_slug.get(item.slug.as_str()) {
                problems.push(Problem::at(
                    &item.path,
                    1,
                    format!(
                        "duplicate slug `{}`: {} already uses it; slugs name pages and `related` links, so rename one file",
                        item.slug,
                        first.path.display()
                    ),
                ));
            } else {
                by_slug.insert(&item.slug, item);
            }
        }
        for item in self.items() {
            for r in &item.related {
                if !by_slug.contains_key(r.as_str()) && !stems.contains(r) {
                    problems.push(Problem::at(
                        &item.path,
                        item.related_line,
                        format!(
                            "`related` names `{r}`, but no item has that slug; use the file name without .md of an existing item of any section"
                        ),
                    ));
                }
            }
        }
        for section in &self.sections {
            let mut pinned: BTreeMap<NaiveDate, &Item> = BTreeMap::new();
            for item in &section.items {
                let Some(date) = item.date else { continue };
                if item.draft {
                    continue;
                }
                if let Some(first) = pinned.get(&date) {
                    problems.push(Problem::at(
                        &item.path,
                        item.date_line,
                        format!(
                            "{} is pinned to {date}, and so is {}; a section takes one item a day, so move one `date`",
                            item.slug,
                            first.path.display()
                        ),
                    ));
                } else {
                    pinned.insert(date, item);
                }
            }
        }
        problems
    }

    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.sections.iter().flat_map(|s| s.items.iter())
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Finds an item by section and slug.
    pub fn get(&self, section: &str, slug: &str) -> Option<&Item> {
        self.section(section)?.items.iter().find(|i| i.slug == slug)
    }

    /// Finds an item by slug in any section.
    pub fn find(&self, slug: &str) -> Option<&Item> {
        self.items().find(|i| i.slug == slug)
    }
}

/// `*.md` file names in `dir`, sorted; files starting with `.` or `_` are skipped.
fn list_markdown(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".md")
            && !name.starts_with('.')
            && !name.starts_with('_')
            && entry.file_type()?.is_file()
        {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

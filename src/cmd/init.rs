//! `init`: scaffold a small, complete newsletter project that `check` accepts.
//! Never overwrites: if any file it would write exists, it writes nothing.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::atomic;
use crate::problem::Failure;
use crate::project::templates;

/// The files of a new project, relative to its folder.
const FILES: &[(&str, &str)] = &[
    (
        "dailyissue.toml",
        include_str!("../scaffold/dailyissue.toml"),
    ),
    (
        "subscribers.example.csv",
        include_str!("../scaffold/subscribers.example.csv"),
    ),
    (
        "content/terms/prompt.md",
        include_str!("../scaffold/terms/prompt.md"),
    ),
    (
        "content/terms/token.md",
        include_str!("../scaffold/terms/token.md"),
    ),
    (
        "content/terms/hallucination.md",
        include_str!("../scaffold/terms/hallucination.md"),
    ),
    (
        "content/tools/chatgpt.md",
        include_str!("../scaffold/tools/chatgpt.md"),
    ),
    (
        "content/tools/notebooklm.md",
        include_str!("../scaffold/tools/notebooklm.md"),
    ),
    (
        "content/tools/ollama.md",
        include_str!("../scaffold/tools/ollama.md"),
    ),
    (
        "content/tips/ask-for-sources.md",
        include_str!("../scaffold/tips/ask-for-sources.md"),
    ),
    (
        "content/tips/give-an-example.md",
        include_str!("../scaffold/tips/give-an-example.md"),
    ),
    (
        "content/tips/keep-secrets-out.md",
        include_str!("../scaffold/tips/keep-secrets-out.md"),
    ),
    (".gitignore", "/.dailyissue/\n/outbox/\n/public/\n"),
    ("issues/.gitkeep", ""),
];

/// What `init` wrote.
#[derive(Debug, serde::Serialize)]
pub struct Created {
    pub dir: PathBuf,
    /// Paths relative to `dir`.
    pub files: Vec<PathBuf>,
}

impl crate::cmd::Report for Created {
    fn text(&self) -> String {
        let dir = self.dir.display();
        format!(
            "created {} files in {dir}\nnext: cd {dir} && dailyissue check && dailyissue plan\n",
            self.files.len()
        )
    }
}

/// Writes the project into `dir`.
pub fn init(dir: &Path) -> Result<Created, Failure> {
    let mut files: Vec<(PathBuf, &str)> = FILES
        .iter()
        .map(|(p, text)| (PathBuf::from(p), *text))
        .collect();
    files.extend(
        templates::DEFAULTS
            .iter()
            .map(|(name, text)| (Path::new(templates::DIR).join(name), *text)),
    );
    let existing: Vec<String> = files
        .iter()
        .filter(|(p, _)| dir.join(p).exists())
        .map(|(p, _)| dir.join(p).display().to_string())
        .collect();
    if !existing.is_empty() {
        return Err(Failure::Usage(format!(
            "not overwriting existing files: {}; choose an empty folder",
            existing.join(", ")
        )));
    }
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(&rel);
        atomic::create_new(&path, text.as_bytes())
            .with_context(|| format!("cannot create the project in {}", dir.display()))?;
        written.push(rel);
    }
    Ok(Created {
        dir: dir.to_path_buf(),
        files: written,
    })
}

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

/// The sample's own templates (the repository's `templates/`), written
/// over the built-in defaults: the look of its term, tool and tip in the
/// email, on issue pages and in the archive (glossary, tools page), and its
/// wording in the masthead and on the site.
const SAMPLE_TEMPLATES: &[(&str, &str)] = &[
    ("email.html", include_str!("../../templates/email.html")),
    ("email.txt", include_str!("../../templates/email.txt")),
    (
        "email/term.html",
        include_str!("../../templates/email/term.html"),
    ),
    (
        "email/term.txt",
        include_str!("../../templates/email/term.txt"),
    ),
    (
        "email/tool.html",
        include_str!("../../templates/email/tool.html"),
    ),
    (
        "email/tool.txt",
        include_str!("../../templates/email/tool.txt"),
    ),
    (
        "email/tip.html",
        include_str!("../../templates/email/tip.html"),
    ),
    (
        "email/tip.txt",
        include_str!("../../templates/email/tip.txt"),
    ),
    (
        "web/base.html",
        include_str!("../../templates/web/base.html"),
    ),
    (
        "web/index.html",
        include_str!("../../templates/web/index.html"),
    ),
    (
        "web/issue-content.html",
        include_str!("../../templates/web/issue-content.html"),
    ),
    (
        "web/issue/term.html",
        include_str!("../../templates/web/issue/term.html"),
    ),
    (
        "web/issue/tool.html",
        include_str!("../../templates/web/issue/tool.html"),
    ),
    (
        "web/issue/tip.html",
        include_str!("../../templates/web/issue/tip.html"),
    ),
    (
        "web/term.html",
        include_str!("../../templates/web/term.html"),
    ),
    (
        "web/term-explained.html",
        include_str!("../../templates/web/term-explained.html"),
    ),
    (
        "web/glossary.html",
        include_str!("../../templates/web/glossary.html"),
    ),
    (
        "web/tools.html",
        include_str!("../../templates/web/tools.html"),
    ),
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
    // Every built-in template, so the project shows what it can change,
    // with the sample's own in place of the generic ones.
    let mut project_templates: std::collections::BTreeMap<&str, &str> =
        templates::DEFAULTS.iter().copied().collect();
    project_templates.extend(SAMPLE_TEMPLATES.iter().copied());
    files.extend(
        project_templates
            .into_iter()
            .map(|(name, text)| (Path::new(templates::DIR).join(name), text)),
    );
    let existing: Vec<PathBuf> = files
        .iter()
        .map(|(p, _)| dir.join(p))
        .filter(|p| p.exists())
        .collect();
    if !existing.is_empty() {
        return Err(Failure::Usage(crate::problem::Usage::WouldOverwrite(
            existing,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `init` writes the sample's templates: all of them, so a file added to
    /// the repository's `templates/` must be listed here too.
    #[test]
    fn every_sample_template_is_written() {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("read templates/") {
                let entry = entry.expect("entry");
                let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
                if entry.file_type().expect("type").is_dir() {
                    walk(&entry.path(), &format!("{name}/"), out);
                } else {
                    out.push(name);
                }
            }
        }
        let mut found = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join(templates::DIR),
            "",
            &mut found,
        );
        found.sort();
        let mut listed: Vec<String> = SAMPLE_TEMPLATES
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        listed.sort();
        assert_eq!(found, listed);
    }
}

//! `init`: scaffold a complete newsletter project that `check` accepts: its
//! own settings and list (`src/scaffold/`), and the repository's sample
//! pool and templates, so a new project plans weeks without a repeat and
//! looks like the sample. Never overwrites: if any file it would write
//! exists, it writes nothing.

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
    (".gitignore", "/.dailyissue/\n/outbox/\n/public/\n"),
    ("issues/.gitkeep", ""),
];

/// One item of the repository's own pool (`content/`), written for this
/// newsletter: enough per section to plan more than two weeks without a
/// repeat.
macro_rules! sample {
    ($path:literal) => {
        (
            concat!("content/", $path),
            include_str!(concat!("../../content/", $path)),
        )
    };
}

/// The sample pool: the repository's `content/`, every file (a term, tool
/// or tip relates to others across the pool, so it ships whole).
const SAMPLE_CONTENT: &[(&str, &str)] = &[
    sample!("terms/ai-agent.md"),
    sample!("terms/benchmark.md"),
    sample!("terms/chain-of-thought.md"),
    sample!("terms/closed-weights.md"),
    sample!("terms/context-window.md"),
    sample!("terms/diffusion-model.md"),
    sample!("terms/embedding.md"),
    sample!("terms/fine-tuning.md"),
    sample!("terms/hallucination.md"),
    sample!("terms/inference.md"),
    sample!("terms/large-language-model.md"),
    sample!("terms/machine-learning.md"),
    sample!("terms/mixture-of-experts.md"),
    sample!("terms/multimodal.md"),
    sample!("terms/neural-network.md"),
    sample!("terms/open-weights.md"),
    sample!("terms/overfitting.md"),
    sample!("terms/parameters.md"),
    sample!("terms/prompt-injection.md"),
    sample!("terms/prompt.md"),
    sample!("terms/reasoning-model.md"),
    sample!("terms/retrieval-augmented-generation.md"),
    sample!("terms/system-prompt.md"),
    sample!("terms/temperature.md"),
    sample!("terms/token.md"),
    sample!("terms/training-data.md"),
    sample!("terms/transformer.md"),
    sample!("terms/turing-test.md"),
    sample!("terms/vector-database.md"),
    sample!("tools/chatgpt.md"),
    sample!("tools/claude.md"),
    sample!("tools/cursor.md"),
    sample!("tools/deepl.md"),
    sample!("tools/elevenlabs.md"),
    sample!("tools/gemini.md"),
    sample!("tools/github-copilot.md"),
    sample!("tools/google-colab.md"),
    sample!("tools/hugging-face.md"),
    sample!("tools/lm-studio.md"),
    sample!("tools/microsoft-copilot.md"),
    sample!("tools/midjourney.md"),
    sample!("tools/notebooklm.md"),
    sample!("tools/ollama.md"),
    sample!("tools/perplexity.md"),
    sample!("tools/whisper.md"),
    sample!("tips/ask-for-a-critique-of-your-draft.md"),
    sample!("tips/ask-for-sources-and-check-them.md"),
    sample!("tips/break-big-tasks-into-steps.md"),
    sample!("tips/check-your-memory-and-chat-history-settings.md"),
    sample!("tips/compare-two-tools-on-the-same-task.md"),
    sample!("tips/give-the-model-a-role-and-an-audience.md"),
    sample!("tips/iterate-on-the-answer.md"),
    sample!("tips/let-it-ask-you-questions-first.md"),
    sample!("tips/never-paste-secrets-or-personal-data.md"),
    sample!("tips/paste-the-context-instead-of-assuming.md"),
    sample!("tips/run-a-model-locally-for-privacy.md"),
    sample!("tips/save-good-prompts-as-templates.md"),
    sample!("tips/set-the-length-and-format.md"),
    sample!("tips/show-examples-few-shot.md"),
    sample!("tips/use-custom-instructions.md"),
    sample!("tips/verify-numbers-with-a-calculator.md"),
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
            "created {} in {dir}\nnext: cd {dir} && dailyissue check && dailyissue plan\n",
            crate::cmd::count(self.files.len() as u64, "file", "files")
        )
    }
}

/// Writes the project into `dir`.
pub fn init(dir: &Path) -> Result<Created, Failure> {
    let mut files: Vec<(PathBuf, &str)> = FILES
        .iter()
        .chain(SAMPLE_CONTENT)
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

    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read folder") {
            let entry = entry.expect("entry");
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().expect("type").is_dir() {
                walk(&entry.path(), &format!("{name}/"), out);
            } else {
                out.push(name);
            }
        }
    }

    /// `init` writes the sample's pool: all of it, so an item added to the
    /// repository's `content/` must be listed here too.
    #[test]
    fn every_sample_item_is_written() {
        let mut found = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("content"),
            "content/",
            &mut found,
        );
        found.sort();
        let mut listed: Vec<String> = SAMPLE_CONTENT.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(found, listed);
    }

    /// `init` writes the sample's templates: all of them, so a file added to
    /// the repository's `templates/` must be listed here too.
    #[test]
    fn every_sample_template_is_written() {
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

//! User-input problems and the error type every command returns.
//!
//! A [`Problem`] is one thing wrong with a file the operator wrote, with the
//! path and (when known) the line, displayed as `path:line: message`. Loaders
//! collect every problem they find instead of stopping at the first one, and
//! the command layer prints them all at once and exits 2.
//!
//! [`Failure`] is what commands return: it carries the exit code the process
//! should end with (2 bad input, 75 temporary, 1 anything else).

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one file the operator wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<PathBuf>, line: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    pub fn at(path: &Path, line: usize, message: impl Into<String>) -> Self {
        Self::new(path, Some(line), message)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path.display(), line, self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// Why a command failed, and so which exit code it ends with.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad input: every problem found, reported together. Exit 2.
    #[error("{}", render_problems(.0))]
    Input(Vec<Problem>),
    /// Bad command-line usage that is not a file problem. Exit 2.
    #[error("{0}")]
    Usage(String),
    /// Worth retrying later: a server unreachable, recipients deferred, the lock
    /// held by another run. Exit 75 (EX_TEMPFAIL).
    #[error("{0}")]
    Temporary(String),
    /// Anything else. Exit 1.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// EX_TEMPFAIL from sysexits.h: cron may simply run the command again.
pub const EXIT_TEMPFAIL: u8 = 75;
pub const EXIT_INPUT: u8 = 2;

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Input(_) | Failure::Usage(_) => EXIT_INPUT,
            Failure::Temporary(_) => EXIT_TEMPFAIL,
            Failure::Other(_) => 1,
        }
    }

    /// Bad input, sorted by file and line for reading.
    pub fn input(mut problems: Vec<Problem>) -> Self {
        problems.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        Failure::Input(problems)
    }

    pub fn one(problem: Problem) -> Self {
        Failure::Input(vec![problem])
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Other(e.into())
    }
}

fn render_problems(problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&p.to_string());
    }
    let n = problems.len();
    out.push_str(&format!(
        "\n{n} problem{} found",
        if n == 1 { "" } else { "s" }
    ));
    out
}

/// 1-based line number of byte offset `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Line (1-based, within `text`) of the first `key = ...` assignment, if any.
///
/// Used to point at a front-matter field after the TOML parser has thrown the
/// spans away; a key that only appears inside an inline table is not found and
/// the caller falls back to the block's first line.
pub fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            let rest = l
                .strip_prefix(key)
                .or_else(|| l.strip_prefix(&format!("\"{key}\"")));
            rest.is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_path_line_and_message() {
        let p = Problem::at(Path::new("content/terms/a.md"), 3, "missing field");
        assert_eq!(p.to_string(), "content/terms/a.md:3: missing field");
    }

    #[test]
    fn counts_lines_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }

    #[test]
    fn finds_key_lines() {
        let t = "title = \"x\"\n  related = [\"a\"]\nrelated_more = 1\n";
        assert_eq!(key_line(t, "related"), Some(2));
        assert_eq!(key_line(t, "date"), None);
    }
}

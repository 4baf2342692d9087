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
    /// Bad use of the command line or the environment that is not a file
    /// problem. Exit 2.
    #[error(transparent)]
    Usage(#[from] Usage),
    /// Worth retrying later: a server unreachable, the lock held by another
    /// run, the listening port taken. Exit 75 (EX_TEMPFAIL).
    #[error(transparent)]
    Temporary(#[from] Temporary),
    /// Anything else. Exit 1.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Bad use of a command: an argument, the environment, the project's
/// place on disk. Each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Usage {
    #[error(
        "no dailyissue.toml in {} or any parent folder; run `dailyissue init` to create a project, or pass -C DIR",
        .start.display()
    )]
    NoProject { start: PathBuf },
    #[error("{option} {value}: not a valid email address")]
    NotAnAddress { option: &'static str, value: String },
    #[error("`{0}` is not an email address")]
    NotAnAddressArg(String),
    #[error(
        "{var} is not set: sending real mail needs the unsubscribe secret in that environment variable (any long random string, e.g. from `openssl rand -hex 32`)"
    )]
    SecretForMail { var: String },
    #[error(
        "`{0}` is neither an email address nor an unsubscribe token; pass the address, the token, the link from the email (https://…/u/TOKEN) or the mailto subject (unsubscribe TOKEN)"
    )]
    NeitherAddressNorToken(String),
    #[error(
        "that token is not valid for this list (changed, truncated, or made with another secret)"
    )]
    BadToken,
    #[error(
        "--out {}: the extension says {named}, but --format is {asked}; write to {} instead, or leave --format out",
        .out.display(),
        .instead.display()
    )]
    OutFormat {
        out: PathBuf,
        named: &'static str,
        asked: &'static str,
        instead: PathBuf,
    },
    #[error("there is no command `{0}`; `dailyissue --help` lists them")]
    NoManPage(String),
    #[error("not overwriting existing files: {}; choose an empty folder", list(.0))]
    WouldOverwrite(Vec<PathBuf>),
    #[error("there is no ledger at {} yet: nothing to back up", .0.display())]
    NoLedger(PathBuf),
    #[error(
        "--date {start} --days {days} would plan past 9999-12-31, the last date a record can have; plan fewer days"
    )]
    PlanPastEnd { start: chrono::NaiveDate, days: u32 },
    #[error(
        "the issue of {0} would be numbered past {max}; renumber the records in issues/",
        max = u32::MAX
    )]
    NumberOverflow(chrono::NaiveDate),
    #[error(
        "DAILYISSUE_NOW = {value:?} is not an RFC 3339 time such as 2027-03-01T06:00:00Z ({reason}); unset it to use the clock"
    )]
    Clock { value: String, reason: String },
    #[error(
        "{} holds {}; the web archive is published whole, so build it in a folder of its own, such as public/ (`archive_dir` in dailyissue.toml, or --out DIR)",
        .dir.display(),
        .private.join(", ")
    )]
    ArchiveHoldsPrivate { dir: PathBuf, private: Vec<String> },
    #[error(
        "--outbox {}: {why}; .eml files hold readers' addresses, so give a folder of their own, such as outbox/",
        .outbox.display()
    )]
    OutboxExposed { outbox: PathBuf, why: String },
    #[error(
        "{setting}: {} is a file, not a folder; give a folder for the .eml files",
        .file.display()
    )]
    OutboxIsAFile { setting: String, file: PathBuf },
    #[error(
        "{address} is suppressed ({reason}), so it gets no mail; if the reader asked to come back, run `dailyissue suppressions remove {address}` first"
    )]
    Suppressed { address: String, reason: String },
    #[error(
        "{} is not a maildir (it needs new/ and cur/ folders); give the folder that holds them",
        .0.display()
    )]
    NotAMaildir(PathBuf),
    #[error(
        "`bounces` reads one message from stdin: pipe it in (`dailyissue bounces < message.eml`), or pass --maildir DIR or --mbox FILE"
    )]
    BouncesNeedInput,
    /// A problem with `[smtp]` found before connecting (a CA file, a password
    /// variable): the message says which.
    #[error("{0}")]
    Smtp(String),
}

/// Something a later run may simply get past.
#[derive(Debug, thiserror::Error)]
pub enum Temporary {
    #[error(
        "another dailyissue run (pid {}) holds {}; this run exits without sending",
        .pid.as_deref().unwrap_or("unknown"),
        .lock.display()
    )]
    LockHeld { pid: Option<String>, lock: PathBuf },
    #[error("{} {endpoint} ({reason}); nothing was sent, try again later", if *.throttled { "the SMTP server asks us to wait" } else { "cannot reach the SMTP server" })]
    Smtp {
        endpoint: String,
        throttled: bool,
        reason: String,
    },
    #[error(
        "cannot listen on {addr}: {source}; is another `serve` running? Pick another address with --listen"
    )]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// `bounces`: the report could not be recorded (a locked or unwritable
    /// ledger); the mail server keeps the message and tries again.
    #[error(
        "cannot record bounces now: {reason}; nothing was lost: the message is left for a retry"
    )]
    Ledger { reason: String },
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
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

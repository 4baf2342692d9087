//! The mailboxes `bounces` reads besides stdin.
//!
//! A maildir (`--maildir DIR`): each message in `DIR/new/` is read and
//! classified; one that was handled (a report recorded or judged, an
//! auto-reply) moves to `DIR/cur/` with the `S` (seen) flag, as a mail
//! reader would move it; one that is not a bounce, a complaint or an
//! auto-reply stays in `new/`, untouched. Nothing is ever deleted, and
//! `cur/` is never read, so a person reading the same mailbox loses
//! nothing. A message that cannot be recorded stops the run (exit 75),
//! leaving it and the rest in `new/` for the next run.
//!
//! An mbox (`--mbox FILE`) is only read (mail-parser's mbox reader):
//! every message is processed, and a second run records nothing twice.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::Context as _;

use super::Run;
use crate::bounces::Source;
use crate::problem::{Failure, Usage};

pub(super) fn maildir(run: &mut Run, dir: &Path) -> Result<(), Failure> {
    let new = dir.join("new");
    let cur = dir.join("cur");
    if !new.is_dir() || !cur.is_dir() {
        return Err(Failure::Usage(Usage::NotAMaildir(dir.to_path_buf())));
    }
    let mut names: Vec<String> = std::fs::read_dir(&new)
        .with_context(|| format!("cannot read {}", new.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    for name in names {
        let path = new.join(&name);
        let raw = match std::fs::read(&path) {
            Ok(raw) => raw,
            Err(e) => {
                tracing::warn!("{}: cannot read it ({e}); left as it is", path.display());
                continue;
            }
        };
        if run.one(name.clone(), &raw, Source::Maildir)? {
            let target = cur.join(seen(&name));
            std::fs::rename(&path, &target).with_context(|| {
                format!("cannot move {} to {}", path.display(), target.display())
            })?;
        }
    }
    Ok(())
}

/// The name a handled message gets in `cur/`: its info part with the `S`
/// flag added (flags stay sorted, as the maildir convention asks).
fn seen(name: &str) -> String {
    match name.split_once(":2,") {
        Some((base, flags)) => {
            let mut flags: Vec<char> = flags.chars().filter(|c| *c != 'S').collect();
            flags.push('S');
            flags.sort_unstable();
            flags.dedup();
            format!("{base}:2,{}", flags.into_iter().collect::<String>())
        }
        None => format!("{name}:2,S"),
    }
}

pub(super) fn mbox(run: &mut Run, file: &Path) -> Result<(), Failure> {
    // A missing or unreadable mbox is bad input (exit 2), as a folder that
    // is not a maildir is.
    let f = File::open(file).map_err(|e| {
        Failure::one(crate::problem::Problem::new(
            file,
            None,
            format!("cannot read: {e}"),
        ))
    })?;
    let messages = mail_parser::mailbox::mbox::MessageIterator::new(BufReader::new(f));
    for (i, message) in messages.enumerate() {
        let message = message
            .map_err(|_| anyhow::anyhow!("{}: cannot read message {}", file.display(), i + 1))?;
        run.one(
            format!("message {}", i + 1),
            message.contents(),
            Source::Mbox,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handled_mail_is_flagged_seen() {
        assert_eq!(seen("1614596405.M1P2.host"), "1614596405.M1P2.host:2,S");
        assert_eq!(
            seen("1614596405.M1P2.host:2,FR"),
            "1614596405.M1P2.host:2,FRS"
        );
        assert_eq!(seen("x:2,S"), "x:2,S");
    }
}

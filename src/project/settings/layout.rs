//! The project's layout on disk: which files and folders the settings
//! name, and the rule that none of them may collide.
//!
//! A collision is two named files at one path (`ledger` at its own lock,
//! which taking the lock would truncate), a named file inside a folder that
//! is written or published whole (the ledger inside `archive_dir`, served to
//! anyone), the ledger inside a folder that is read whole (`templates/`),
//! or an output folder that equals, contains or sits inside another folder
//! (`archive_dir = "."` would publish the settings, the list and the
//! ledger). Paths are compared *lexically* after joining them to the
//! project root: `.` is dropped and `..` pops a component, but the
//! filesystem is never consulted, so `Settings::parse` stays pure and a
//! symlink or a case-insensitive filesystem is not seen through.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use toml::Spanned;

use super::raw::Raw;
use super::{FILE_NAME, Problems, SectionSettings};

/// What a named path is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A file: settings, list, ledger (and the files SQLite and the lock
    /// keep beside it), keys.
    File,
    /// A file of the ledger's: must also stay out of folders read whole.
    Ledger,
    /// A folder written or published whole: `outbox`, `archive_dir`.
    Output,
    /// A folder read whole: `templates/`, `issues/`, each section's `dir`.
    Input,
}

/// One path the settings name (or imply).
#[derive(Debug, Clone)]
struct Named {
    /// The setting it comes from, as messages name it: "`ledger`".
    pub key: String,
    /// The path itself, as messages name it: "the ledger's lock file".
    pub label: String,
    pub path: PathBuf,
    pub kind: Kind,
    /// Where the operator wrote it; `None` for defaults and fixed paths.
    pub span: Option<Range<usize>>,
}

impl Named {
    pub fn new(key: &str, path: &Path, kind: Kind, span: Range<usize>) -> Named {
        Named {
            key: key.into(),
            label: key.into(),
            path: path.to_path_buf(),
            kind,
            // Defaults carry the empty span 0..0.
            span: (!span.is_empty()).then_some(span),
        }
    }

    fn fixed(label: &str, path: &str, kind: Kind) -> Named {
        Named {
            key: label.into(),
            label: label.into(),
            path: path.into(),
            kind,
            span: None,
        }
    }
}

/// The ledger's own path and the files kept beside it: its lock (see
/// `lock`: the ledger's path with the extension `lock`) and SQLite's WAL
/// files.
fn ledger_files(ledger: &Path, span: Range<usize>) -> Vec<Named> {
    let beside = |suffix: &str| {
        let mut name = ledger.as_os_str().to_os_string();
        name.push(suffix);
        PathBuf::from(name)
    };
    let own = |label: &str, path: PathBuf| Named {
        label: label.into(),
        ..Named::new("`ledger`", &path, Kind::Ledger, span.clone())
    };
    vec![
        own("`ledger`", ledger.to_path_buf()),
        own("the ledger's lock file", ledger.with_extension("lock")),
        own("the ledger's -wal file", beside("-wal")),
        own("the ledger's -shm file", beside("-shm")),
    ]
}

/// The paths every project has whatever the settings say.
fn fixed() -> Vec<Named> {
    vec![
        Named::fixed(
            &format!("the settings file {FILE_NAME}"),
            FILE_NAME,
            Kind::File,
        ),
        Named::fixed("templates/", super::TEMPLATES_DIR, Kind::Input),
        Named::fixed("issues/", super::ISSUES_DIR, Kind::Input),
    ]
}

/// Reports every collision among the paths the settings name or imply;
/// one blamed only on defaults goes to line 1.
pub(super) fn check(raw: &Raw, sections: &[SectionSettings], problems: &mut Problems) {
    for (span, message) in collisions(&named(raw, sections)) {
        problems.bad(span.unwrap_or(0..0), message);
    }
}

/// Every path the settings name or imply, each with where it was written:
/// the fixed ones, the ledger's files, the list, the output folders, the
/// DKIM keys, the relay's CA file, and each section's folder (the default
/// sections were not written anywhere).
fn named(raw: &Raw, sections: &[SectionSettings]) -> Vec<Named> {
    let mut named = fixed();
    named.extend(ledger_files(raw.ledger.get_ref(), raw.ledger.span()));
    let named_path =
        |key: &str, p: &Spanned<PathBuf>, kind| Named::new(key, p.get_ref(), kind, p.span());
    named.push(named_path("`subscribers`", &raw.subscribers, Kind::File));
    named.push(named_path("`outbox`", &raw.outbox, Kind::Output));
    named.push(named_path("`archive_dir`", &raw.archive_dir, Kind::Output));
    for d in &raw.dkim.0 {
        named.push(named_path(
            "[dkim] private_key_file",
            &d.private_key_file,
            Kind::File,
        ));
    }
    if let Some(ca) = raw.smtp.as_ref().and_then(|s| s.get_ref().ca_file.as_ref()) {
        named.push(named_path("[smtp] ca_file", ca, Kind::File));
    }
    for (section, raw_section) in sections
        .iter()
        .zip(raw.section.iter().map(Some).chain(std::iter::repeat(None)))
    {
        named.push(Named::new(
            &format!("the folder of section `{}`", section.name),
            &section.dir,
            Kind::Input,
            raw_section.map_or(0..0, |s| s.span()),
        ));
    }
    named
}

/// Every collision among `named`, one problem per path to change: its span
/// (or `None` when only defaults are involved) and the message.
fn collisions(named: &[Named]) -> Vec<(Option<Range<usize>>, String)> {
    // Setting to change -> its first entry, and the settings it collides
    // with (each with how the message names it).
    type With = Vec<(String, String)>;
    let mut found: BTreeMap<&str, (usize, With)> = BTreeMap::new();
    let paths: Vec<PathBuf> = named.iter().map(|n| lexical(&n.path)).collect();
    for i in 0..named.len() {
        for j in i + 1..named.len() {
            let (a, b) = (&named[i], &named[j]);
            // A section declared twice is reported as such elsewhere.
            if a.key == b.key && a.kind != Kind::Ledger {
                continue;
            }
            let Some(blamed) = collide(a, &paths[i], b, &paths[j]) else {
                continue;
            };
            let (blamed, other) = if blamed { (i, j) } else { (j, i) };
            let other = &named[other];
            let key = named[blamed].key.as_str();
            let first = named.iter().position(|n| n.key == key).unwrap_or(blamed);
            // The ledger can collide with its own lock: no path to repeat.
            let what = if other.key == key {
                other.label.clone()
            } else {
                format!("{} (\"{}\")", other.label, other.path.display())
            };
            // One mention per other setting (the ledger, not its lock too).
            let entry = found.entry(key).or_insert((first, Vec::new()));
            if other.key == key || !entry.1.iter().any(|(k, _)| *k == other.key) {
                entry.1.push((other.key.clone(), what));
            }
        }
    }
    found
        .into_values()
        .map(|(i, with)| {
            let n = &named[i];
            let with: Vec<String> = with.into_iter().map(|(_, what)| what).collect();
            let lock = with.iter().any(|w| w == "the ledger's lock file");
            let what = match n.kind {
                Kind::Ledger if lock => {
                    "taking the run's lock would empty the ledger and lose all delivery history; name the ledger e.g. \".dailyissue/state.db\""
                }
                Kind::Output => {
                    "this folder is written or published whole, so it must hold nothing else of the project and sit apart from its other folders; give it a folder of its own, such as \"public\" or \"outbox\""
                }
                Kind::Input => "give it a folder of its own",
                Kind::File | Kind::Ledger => {
                    "each file needs a path of its own, outside the folders dailyissue writes, publishes or reads whole"
                }
            };
            (
                n.span.clone(),
                format!(
                    "{} (\"{}\") collides with {}: {what}",
                    n.key,
                    n.path.display(),
                    with.join(", ")
                ),
            )
        })
        .collect()
}

/// Whether `a` and `b` collide and, if so, whether `a` is the one to blame
/// (else `b`): the folder written or published whole, else the one the
/// operator wrote, else the later one.
fn collide(a: &Named, pa: &Path, b: &Named, pb: &Path) -> Option<bool> {
    use Kind::*;
    let inside = |child: &Path, parent: &Path| child.starts_with(parent);
    let written = |n: &Named| n.span.is_some();
    let later = || match (&a.span, &b.span) {
        (Some(x), Some(y)) => x.start >= y.start,
        (Some(_), None) => true,
        _ => false,
    };
    let collides = match (a.kind, b.kind) {
        (File | Ledger, File | Ledger) => pa == pb,
        (File | Ledger, Output) => inside(pa, pb),
        (Output, File | Ledger) => inside(pb, pa),
        (Ledger, Input) => inside(pa, pb),
        (Input, Ledger) => inside(pb, pa),
        (File, Input) | (Input, File) => false,
        (Output, _) | (_, Output) => inside(pa, pb) || inside(pb, pa),
        (Input, Input) => pa == pb,
    };
    if !collides {
        return None;
    }
    Some(match (a.kind == Output, b.kind == Output) {
        (true, false) => written(a) || !written(b),
        (false, true) => written(a) && !written(b),
        _ => later(),
    })
}

/// What of the project's private data a folder about to be published
/// (the web archive) would hold: the settings file, the subscriber list,
/// the ledger and the files beside it, the outbox (personal mail), the DKIM
/// key. Compared lexically after joining everything to `root`; empty when
/// the folder is safe to publish.
pub(crate) fn private_inside(settings: &super::Settings, root: &Path, dir: &Path) -> Vec<String> {
    let dir = lexical(&root.join(dir));
    let mut private = vec![
        (
            format!("the settings file {FILE_NAME}"),
            PathBuf::from(FILE_NAME),
        ),
        ("the subscriber list".into(), settings.subscribers.clone()),
        ("the outbox".into(), settings.outbox.clone()),
    ];
    for n in ledger_files(&settings.ledger, 0..0) {
        private.push((n.label.replace('`', ""), n.path));
    }
    for d in &settings.dkim {
        private.push(("the DKIM private key".into(), d.private_key_file.clone()));
    }
    private
        .into_iter()
        .filter(|(_, path)| lexical(&root.join(path)).starts_with(&dir))
        .map(|(label, path)| format!("{label} ({})", path.display()))
        .collect()
}

/// `path` relative to the project root with `.` dropped and `..` applied,
/// without touching the filesystem. The root itself is the empty path,
/// which every relative path is inside.
pub(crate) fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(entries: &[(&str, &str, Kind, bool)]) -> Vec<Named> {
        let mut out = fixed();
        for (i, (label, path, kind, written)) in entries.iter().enumerate() {
            let span = if *written { i + 1..i + 2 } else { 0..0 };
            if label == &"ledger" {
                out.extend(ledger_files(Path::new(path), span));
            } else {
                out.push(Named::new(
                    &format!("`{label}`"),
                    Path::new(path),
                    *kind,
                    span,
                ));
            }
        }
        out
    }

    fn defaults_with(change: (&str, &str)) -> Vec<String> {
        let mut entries = vec![
            ("subscribers", "subscribers.csv", Kind::File, false),
            ("ledger", ".dailyissue/state.db", Kind::Ledger, false),
            ("outbox", "outbox", Kind::Output, false),
            ("archive_dir", "public", Kind::Output, false),
            ("term", "content/terms", Kind::Input, false),
        ];
        for e in &mut entries {
            if e.0 == change.0 {
                e.1 = change.1;
                e.3 = true;
            }
        }
        collisions(&named(&entries))
            .into_iter()
            .map(|(_, m)| m)
            .collect()
    }

    #[test]
    fn paths_compare_lexically() {
        assert_eq!(lexical(Path::new("./a/../b/./c")), PathBuf::from("b/c"));
        assert_eq!(lexical(Path::new(".")), PathBuf::new());
        assert_eq!(lexical(Path::new("../x")), PathBuf::from("../x"));
        assert!(lexical(Path::new("a/b")).starts_with(lexical(Path::new("."))));
    }

    #[test]
    fn the_default_layout_has_no_collisions() {
        assert_eq!(defaults_with(("", "")), Vec::<String>::new());
    }

    #[test]
    fn colliding_paths_are_named() {
        for (change, expected) in [
            (
                ("ledger", ".dailyissue/state.lock"),
                "`ledger` (\".dailyissue/state.lock\") collides with the ledger's lock file:",
            ),
            (
                ("ledger", "./subscribers.csv"),
                "`ledger` (\"./subscribers.csv\") collides with `subscribers` (\"subscribers.csv\"):",
            ),
            (
                ("subscribers", ".dailyissue/state.db-wal"),
                "`subscribers` (\".dailyissue/state.db-wal\") collides with the ledger's -wal file",
            ),
            (
                ("subscribers", "dailyissue.toml"),
                "`subscribers` (\"dailyissue.toml\") collides with the settings file dailyissue.toml",
            ),
            (
                ("ledger", "public/state.db"),
                "`ledger` (\"public/state.db\") collides with `archive_dir` (\"public\"):",
            ),
            (
                ("ledger", "templates/state.db"),
                "`ledger` (\"templates/state.db\") collides with templates/ (\"templates\")",
            ),
            (
                ("archive_dir", "."),
                "`archive_dir` (\".\") collides with the settings file dailyissue.toml (\"dailyissue.toml\"), templates/ (\"templates\"), issues/ (\"issues\"), `subscribers`",
            ),
            (
                ("archive_dir", "outbox/web"),
                "`archive_dir` (\"outbox/web\") collides with `outbox` (\"outbox\")",
            ),
            (
                ("outbox", "public/mail"),
                "`outbox` (\"public/mail\") collides with `archive_dir` (\"public\")",
            ),
            (
                ("archive_dir", "templates/../content"),
                "`archive_dir` (\"templates/../content\") collides with `term` (\"content/terms\")",
            ),
            (
                ("term", "issues"),
                "`term` (\"issues\") collides with issues/ (\"issues\")",
            ),
        ] {
            let found = defaults_with(change);
            assert_eq!(found.len(), 1, "{change:?}: {found:?}");
            assert!(found[0].starts_with(expected), "{change:?}: {found:?}");
        }
    }
}

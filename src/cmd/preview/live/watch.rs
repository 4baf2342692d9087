//! When the live preview says "reload": file events from `notify`, kept
//! to the files a render reads (the settings, the sections' folders,
//! `templates/`, `issues/`, the subscriber list, DKIM keys) and debounced,
//! so that an editor's save (often a temporary file, a rename and a
//! metadata change) is one reload.
//!
//! Folders are watched with everything below them; single files through
//! their folder, since editors that save by renaming a new file over the
//! old one would leave a watch on the file itself pointing at nothing. A
//! folder that does not exist yet (no `issues/` before the first `plan`)
//! is watched through its nearest existing parent, and picked up once it
//! appears. Our own reads are not changes: notify reports opening and
//! closing a file unwritten as access events, which are ignored.

use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};

use crate::problem::Failure;
use crate::project::Project;
use crate::project::settings::{FILE_NAME, ISSUES_DIR, TEMPLATES_DIR};

/// How long the files must stay quiet before a reload is announced...
const QUIET: Duration = Duration::from_millis(100);
/// ...and the longest a stream of changes may hold one back.
const LONGEST: Duration = Duration::from_millis(400);

/// The files and folders a render reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Inputs {
    root: PathBuf,
    /// Watched with everything below them.
    dirs: Vec<PathBuf>,
    /// Watched through their folder.
    files: Vec<PathBuf>,
}

impl Inputs {
    pub(super) fn of(project: &Project) -> Inputs {
        let root = project.root.clone();
        let settings = &project.settings;
        let mut dirs: Vec<PathBuf> = settings
            .sections
            .iter()
            .map(|s| clean(&root.join(&s.dir)))
            .collect();
        dirs.push(root.join(TEMPLATES_DIR));
        dirs.push(root.join(ISSUES_DIR));
        dirs.sort();
        dirs.dedup();
        let mut files = vec![
            root.join(FILE_NAME),
            clean(&root.join(&settings.subscribers)),
        ];
        files.extend(
            settings
                .dkim
                .iter()
                .map(|d| clean(&root.join(&d.private_key_file))),
        );
        files.sort();
        files.dedup();
        Inputs { root, dirs, files }
    }

    /// Whether a change at `path` may change what a render shows.
    pub(super) fn concerns(&self, path: &Path) -> bool {
        if scratch(path) {
            return false;
        }
        self.files.iter().any(|f| f == path) || self.dirs.iter().any(|d| path.starts_with(d))
    }

    /// What to hand notify: each folder that exists (recursively), and for
    /// files and missing folders the nearest folder that exists (alone).
    fn watches(&self) -> Vec<(PathBuf, RecursiveMode)> {
        let mut out: Vec<(PathBuf, RecursiveMode)> = Vec::new();
        let mut add = |path: PathBuf, mode: RecursiveMode| {
            if !out.iter().any(|(p, m)| *p == path && *m == mode) {
                out.push((path, mode));
            }
        };
        add(self.root.clone(), RecursiveMode::NonRecursive);
        for dir in &self.dirs {
            if dir.is_dir() {
                add(dir.clone(), RecursiveMode::Recursive);
            } else if let Some(parent) = existing_parent(dir) {
                add(parent, RecursiveMode::NonRecursive);
            }
        }
        for file in &self.files {
            if let Some(parent) = existing_parent(file) {
                add(parent, RecursiveMode::NonRecursive);
            }
        }
        out
    }
}

/// `path` without `.` components (`./subscribers.csv` in the settings),
/// so that it compares equal to the paths notify reports.
fn clean(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

fn existing_parent(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .find(|p| p.is_dir())
        .map(Path::to_path_buf)
}

/// An editor's or a tool's scratch file (swap, backup, the temporary file
/// of an atomic save): never read by a render.
fn scratch(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name == "4913"
}

/// Whether an event says a file's content, name or existence changed.
fn changes(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Other => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        EventKind::Any | EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
    }
}

type Received = notify::Result<notify::Event>;

/// The paths of one event that concern a render.
fn relevant(received: Received, inputs: &Inputs) -> Vec<PathBuf> {
    match received {
        Err(e) => {
            tracing::warn!("watching files: {e}");
            Vec::new()
        }
        // The kernel's queue overflowed: anything may have changed.
        Ok(event) if event.need_rescan() => vec![inputs.root.clone()],
        Ok(event) if changes(&event.kind) => event
            .paths
            .into_iter()
            .filter(|p| inputs.concerns(p))
            .collect(),
        Ok(_) => Vec::new(),
    }
}

/// Waits for a change that concerns a render, then gathers the changes
/// that follow until the files are quiet for [`QUIET`] (at most
/// [`LONGEST`]): the paths changed, sorted, or `None` when the watcher is
/// gone.
fn next_batch(rx: &mpsc::Receiver<Received>, inputs: &Inputs) -> Option<Vec<PathBuf>> {
    let mut changed = Vec::new();
    while changed.is_empty() {
        changed.extend(relevant(rx.recv().ok()?, inputs));
    }
    let started = Instant::now();
    while started.elapsed() < LONGEST {
        match rx.recv_timeout(QUIET) {
            Ok(received) => changed.extend(relevant(received, inputs)),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
    changed.sort();
    changed.dedup();
    Some(changed)
}

/// Starts watching `project`'s inputs; `on_change` is called on a thread
/// of its own with the paths of each debounced batch of changes. When the
/// settings change, what is watched follows them (a new section folder, a
/// moved list); folders that appear are picked up the same way.
pub(super) fn start(
    project: &Project,
    on_change: impl Fn(&[PathBuf]) + Send + 'static,
) -> Result<(), Failure> {
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |received: Received| {
        // The receiver only goes away with the process.
        let _ = tx.send(received);
    })
    .map_err(|e| anyhow::anyhow!("cannot watch the project's files: {e}"))?;
    let mut inputs = Inputs::of(project);
    let mut watched = inputs.watches();
    watch_all(&mut watcher, &watched);
    std::thread::Builder::new()
        .name("preview-watch".into())
        .spawn(move || {
            while let Some(changed) = next_batch(&rx, &inputs) {
                on_change(&changed);
                if let Ok(project) = Project::open(inputs.root.clone()) {
                    inputs = Inputs::of(&project);
                }
                let now = inputs.watches();
                if now != watched {
                    for (path, _) in &watched {
                        let _ = watcher.unwatch(path);
                    }
                    watch_all(&mut watcher, &now);
                    watched = now;
                }
            }
        })
        .map_err(anyhow::Error::from)?;
    Ok(())
}

fn watch_all(watcher: &mut impl Watcher, watches: &[(PathBuf, RecursiveMode)]) {
    for (path, mode) in watches {
        if let Err(e) = watcher.watch(path, *mode) {
            tracing::warn!(
                "cannot watch {}: {e}; changes there need a manual reload",
                path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, RemoveKind, RenameMode};

    fn inputs() -> Inputs {
        let root = PathBuf::from("/p");
        Inputs {
            dirs: vec![root.join("content/terms"), root.join("templates")],
            files: vec![root.join("dailyissue.toml"), root.join("list.csv")],
            root,
        }
    }

    fn event(kind: EventKind, path: &str) -> Received {
        Ok(notify::Event::new(kind).add_path(PathBuf::from(path)))
    }

    #[test]
    fn only_the_inputs_of_a_render_concern_it() {
        let i = inputs();
        for yes in [
            "/p/dailyissue.toml",
            "/p/list.csv",
            "/p/content/terms/prompt.md",
            "/p/templates/web/base.html",
            "/p/templates",
        ] {
            assert!(i.concerns(Path::new(yes)), "{yes}");
        }
        for no in [
            "/p/public/index.html",
            "/p/.dailyissue/state.db",
            "/p/other.csv",
            "/p/content/terms/.prompt.md.swp",
            "/p/content/terms/prompt.md~",
            "/p/content/terms/4913",
            "/p/content/tools/chatgpt.md",
        ] {
            assert!(!i.concerns(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn reading_a_file_is_not_a_change() {
        let i = inputs();
        let md = "/p/content/terms/prompt.md";
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)),
            EventKind::Other,
        ] {
            assert!(relevant(event(kind, md), &i).is_empty(), "{kind:?}");
        }
        for kind in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Remove(RemoveKind::File),
        ] {
            assert_eq!(relevant(event(kind, md), &i), [PathBuf::from(md)]);
        }
    }

    #[test]
    fn a_burst_of_changes_is_one_batch_and_reads_are_none() {
        let i = inputs();
        let (tx, rx) = mpsc::channel();
        // What a save through a temporary file looks like, plus our reads.
        let burst = [
            (
                EventKind::Access(AccessKind::Open(AccessMode::Any)),
                "/p/list.csv",
            ),
            (
                EventKind::Create(CreateKind::File),
                "/p/content/terms/.x.tmp",
            ),
            (
                EventKind::Modify(ModifyKind::Name(RenameMode::To)),
                "/p/content/terms/prompt.md",
            ),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                "/p/content/terms/prompt.md",
            ),
            (
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                "/p/dailyissue.toml",
            ),
        ];
        for (kind, path) in burst {
            tx.send(event(kind, path)).expect("send");
        }
        drop(tx);
        assert_eq!(
            next_batch(&rx, &i),
            Some(vec![
                PathBuf::from("/p/content/terms/prompt.md"),
                PathBuf::from("/p/dailyissue.toml"),
            ])
        );
        assert_eq!(next_batch(&rx, &i), None);

        let (tx, rx) = mpsc::channel();
        tx.send(event(
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            "/p/content/terms/prompt.md",
        ))
        .expect("send");
        drop(tx);
        assert_eq!(next_batch(&rx, &i), None, "reads alone are no batch");
    }

    #[test]
    fn missing_folders_are_watched_through_their_parent() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        std::fs::create_dir_all(root.join("content/terms")).expect("mkdir");
        let i = Inputs {
            dirs: vec![root.join("content/terms"), root.join("issues")],
            files: vec![root.join("dailyissue.toml"), root.join("data/list.csv")],
            root: root.clone(),
        };
        assert_eq!(
            i.watches(),
            vec![
                (root.clone(), RecursiveMode::NonRecursive),
                (root.join("content/terms"), RecursiveMode::Recursive),
            ]
        );
        std::fs::create_dir_all(root.join("issues")).expect("mkdir");
        assert!(
            i.watches()
                .contains(&(root.join("issues"), RecursiveMode::Recursive))
        );
    }
}

//! Crash-safe file writes: write a temporary file beside the target, flush it
//! to disk, then rename it over the target, so a reader (or a crash) sees
//! either the old file or the new one, never half of one. Temporary names
//! come from `tempfile`, unique per write, so two writes of one file (even
//! in one process) never share a temporary.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

pub fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create folder {}", dir.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let result = (|| -> std::io::Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(".tmp")
            .permissions(default_permissions())
            .tempfile_in(dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    })();
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// What `File::create` would give: 0666 less the umask. (tempfile's own
/// default, 0600, would hide archive pages from the web server.)
pub fn default_permissions() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o666)
}

/// Like [`write`], but fails if `path` exists; used by `init`, which never
/// overwrites a file.
pub fn create_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if path.exists() {
        anyhow::bail!("{} already exists; not overwriting it", path.display());
    }
    write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/a.toml");
        write(&path, b"one").expect("write");
        write(&path, b"two").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(create_new(&path, b"three").is_err());
    }

    #[test]
    fn files_are_readable_like_any_created_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let written = dir.path().join("page.html");
        write(&written, b"x").expect("write");
        let created = dir.path().join("plain.html");
        std::fs::write(&created, b"x").expect("write");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&written), mode(&created));
    }

    #[test]
    fn concurrent_writes_of_one_file_do_not_collide() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("same.eml");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || write(&path, format!("copy {i}").as_bytes()))
            })
            .collect();
        for t in threads {
            t.join().expect("thread").expect("every write succeeds");
        }
        assert!(
            std::fs::read_to_string(&path)
                .expect("read")
                .starts_with("copy ")
        );
    }

    #[test]
    fn writing_into_a_file_that_is_not_a_folder_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("outbox");
        std::fs::write(&file, b"x").expect("write");
        let err = write(&file.join("2027-03-01/a.eml"), b"m").expect_err("not a folder");
        assert!(format!("{err:#}").contains("outbox"), "{err:#}");
    }
}

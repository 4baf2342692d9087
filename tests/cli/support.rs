//! A small builder around the real binary, and project fixtures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_dailyissue");

/// The result of one run: exit code and both streams as text.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `dailyissue ARGS` in `dir` with a clean environment.
pub fn run(dir: &Path, args: &[&str]) -> Run {
    run_env(dir, args, &[])
}

pub fn run_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run dailyissue");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts `dailyissue ARGS` in `dir` in the background, output discarded.
pub fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn dailyissue")
}

/// Like [`spawn`], with stdout and stderr kept for `wait_with_output`.
pub fn spawn_piped(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn dailyissue")
}

/// Polls `done` until it holds; a bound on liveness (a hung child must not
/// hang the suite), not a timing assertion.
#[track_caller]
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A fresh project made by `dailyissue init` in a temporary folder.
pub fn init_project() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("news");
    run(tmp.path(), &["init", "news"]).success();
    (tmp, dir)
}

/// Copies every file under `from` into `to`, replacing files that exist.
pub fn overlay(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            overlay(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies the repository's sample project (settings, content, templates,
/// subscribers; no issue records) into a temporary folder.
pub fn sample_project() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("sample");
    let root = repo_root();
    for sub in ["content", "templates"] {
        std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
        overlay(&root.join(sub), &dir.join(sub));
    }
    for file in ["dailyissue.toml", "subscribers.example.csv"] {
        std::fs::copy(root.join(file), dir.join(file)).expect("copy");
    }
    (tmp, dir)
}

// Helpers for sending through the in-process SMTP server (tests/cli/smtp.rs).

pub const SECRET: (&str, &str) = ("DAILYISSUE_UNSUBSCRIBE_SECRET", "test-secret-0123456789");
pub const DATE: &str = "2027-03-01";

/// Replaces the sample list with `n` generated readers.
pub fn write_list(dir: &Path, n: usize) -> Vec<String> {
    let mut csv = String::from("email,name,status,signup_source\n");
    let mut all = Vec::new();
    for i in 0..n {
        let addr = format!("reader{i:05}@example.net");
        csv.push_str(&format!("{addr},Reader {i},active,test\n"));
        all.push(addr);
    }
    std::fs::write(dir.join("subscribers.example.csv"), csv).expect("write list");
    all
}

/// Adds an `[smtp]` table for a plain server on 127.0.0.1:`port` with
/// quick test timings; `extra` lines (`key = value`) replace the defaults.
pub fn add_smtp(dir: &Path, port: u16, extra: &str) {
    let defaults = [
        ("host", "\"127.0.0.1\"".to_string()),
        ("port", port.to_string()),
        ("tls", "\"none\"".to_string()),
        ("concurrency", "4".to_string()),
        ("retries", "1".to_string()),
        ("retry_base", "\"10ms\"".to_string()),
        ("timeout", "\"10s\"".to_string()),
    ];
    let overridden = |key: &str| {
        extra
            .lines()
            .any(|l| l.split('=').next().is_some_and(|k| k.trim() == key))
    };
    let mut table = String::from("\n[smtp]\n");
    for (key, value) in defaults {
        if !overridden(key) {
            table.push_str(&format!("{key} = {value}\n"));
        }
    }
    table.push_str(extra);
    table.push('\n');
    let mut settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    settings.push_str(&table);
    std::fs::write(dir.join("dailyissue.toml"), settings).expect("write settings");
}

/// How many copies each address received.
pub fn copies(server: &crate::smtp::Server) -> BTreeMap<String, usize> {
    per_address(server)
        .into_iter()
        .map(|(a, m)| (a, m.len()))
        .collect()
}

/// Parses one JSON document from a command's stdout.
#[track_caller]
pub fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", run.stdout, run.stderr))
}

pub fn send(dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["send", "--date", DATE];
    args.extend_from_slice(extra);
    run_env(dir, &args, &[SECRET])
}

/// Messages received per recipient address.
pub fn per_address(server: &crate::smtp::Server) -> BTreeMap<String, Vec<crate::smtp::Received>> {
    let mut map: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for m in server.received() {
        for to in &m.to {
            map.entry(to.to_lowercase()).or_default().push(m.clone());
        }
    }
    map
}

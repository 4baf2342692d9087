//! Render benchmark: complete MIME messages for generated subscribers, on
//! one core.
//!
//!     cargo bench --bench render [-- N]
//!
//! Prepares the repository's sample issue once (Markdown, templates, CSS
//! inlining), then builds the full RFC 5322 message (headers, unsubscribe
//! token, both quoted-printable bodies) for N generated subscribers (default
//! 100,000) and prints messages per second and the process's peak RSS.

use std::time::Instant;

use dailyissue::cmd::{DayOptions, SecretUse, open_day};
use dailyissue::project::Project;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    for sub in ["content", "templates"] {
        copy_tree(&root.join(sub), &dir.join(sub));
    }
    std::fs::copy(root.join("dailyissue.toml"), dir.join("dailyissue.toml")).expect("copy");
    let mut csv = String::from("email,name,status,signup_source\n");
    for i in 0..n {
        let name = if i % 10 == 0 {
            String::new()
        } else {
            format!("Reader {i}")
        };
        csv.push_str(&format!("reader{i}@example.net,{name},active,bench\n"));
    }
    std::fs::write(dir.join("subscribers.example.csv"), csv).expect("csv");

    let project = Project::discover(dir).expect("project");
    let t = Instant::now();
    let day = open_day(
        &project,
        DayOptions {
            date: "2027-03-01".parse().expect("date"),
            now: "2027-03-01T11:00:00Z".parse().expect("time"),
            secrets: SecretUse::Local,
            write_record: true,
        },
    )
    .expect("edition");
    let (edition, list) = (&day.edition, &day.loaded.list);
    edition.email.prepare_for(list.samples()).expect("shapes");
    let prepare = t.elapsed();

    let t = Instant::now();
    let mut bytes = 0usize;
    for reader in list.active() {
        let msg = edition.email.message(&reader).expect("message");
        bytes += msg.len();
    }
    let elapsed = t.elapsed();
    let rate = n as f64 / elapsed.as_secs_f64();
    println!("subscribers:        {n}");
    println!(
        "load + prepare:     {:.1} ms (CSV parse, pool, templates, 2 shapes rendered and inlined)",
        prepare.as_secs_f64() * 1e3
    );
    println!("build messages:     {:.2} s", elapsed.as_secs_f64());
    println!("messages/second:    {rate:.0} (one core)");
    println!("mean message size:  {} bytes", bytes / n.max(1));
    println!("peak RSS:           {}", peak_rss());
}

/// Copies a folder recursively (templates/ has web/ inside).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

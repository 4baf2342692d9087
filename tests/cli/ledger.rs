//! The ledger as a file an operator can damage, mix up and back up; and the
//! other operator mistakes around a send (outbox, test copies, the clock).

use std::path::Path;
use std::time::Duration;

use crate::smtp::{Options, Server};
use crate::support::*;

fn ledger_path(dir: &Path) -> std::path::PathBuf {
    dir.join(".dailyissue/state.db")
}

fn outbox_count(dir: &Path) -> usize {
    std::fs::read_dir(dir.join(format!("outbox/{DATE}")))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn an_empty_ledger_file_is_refused_and_nothing_is_sent() {
    let (_tmp, dir) = sample_project();
    write_list(&dir, 5);
    std::fs::create_dir_all(dir.join(".dailyissue")).expect("mkdir");
    std::fs::write(ledger_path(&dir), b"").expect("truncate");
    let out = send(&dir, &[]).code(1);
    assert!(out.stderr.contains("is empty (0 bytes)"), "{}", out.stderr);
    assert!(
        out.stderr.contains("backup"),
        "says what to do: {}",
        out.stderr
    );
    assert_eq!(outbox_count(&dir), 0, "nothing sent");
    assert_eq!(
        std::fs::metadata(ledger_path(&dir))
            .expect("still there")
            .len(),
        0,
        "left as it was"
    );
    let status = run(&dir, &["status", "--date", DATE]).code(1);
    assert!(status.stderr.contains("is empty"), "{}", status.stderr);
    let list = run(&dir, &["suppressions", "list"]).code(1);
    assert!(list.stderr.contains("is empty"), "{}", list.stderr);
}

#[test]
fn another_newsletters_ledger_is_refused() {
    let (_tmp, dir) = sample_project();
    write_list(&dir, 3);
    send(&dir, &[]).success();
    let settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    std::fs::write(
        dir.join("dailyissue.toml"),
        format!("list_id = \"other.example.org\"\n{settings}"),
    )
    .expect("write");
    let out = run_env(&dir, &["send", "--date", "2027-03-02"], &[SECRET]).code(1);
    assert!(
        out.stderr.contains("belongs to another newsletter")
            && out
                .stderr
                .contains("list_id = \"beginners-in-ai.daily.example.com\""),
        "{}",
        out.stderr
    );
}

#[test]
fn a_backup_taken_while_a_send_runs_is_a_working_ledger() {
    let server = Server::start(Options::default());
    let (_tmp, dir) = sample_project();
    write_list(&dir, 300);
    add_smtp(&dir, server.port(), "");
    server.set_data_delay(Duration::from_millis(5));
    let mut child = spawn(&dir, &["send", "--date", DATE], &[SECRET]);
    wait_for("deliveries", || server.received().len() >= 50);
    let backup = run(&dir, &["ledger", "backup", "copy.db"]).success();
    assert!(backup.stdout.contains("backed up"), "{}", backup.stdout);
    assert!(child.wait().expect("send").success());

    // The copy is a ledger this newsletter accepts.
    let settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    std::fs::write(
        dir.join("dailyissue.toml"),
        settings.replace("ledger = \".dailyissue/state.db\"", "ledger = \"copy.db\""),
    )
    .expect("write");
    assert!(
        std::fs::read_to_string(dir.join("dailyissue.toml"))
            .expect("settings")
            .contains("ledger = \"copy.db\""),
        "the sample sets `ledger`"
    );
    let st = json(&run(&dir, &["status", "--date", DATE, "--json"]).success());
    let sent = st["sent"].as_u64().expect("sent");
    assert!((50..300).contains(&sent), "a snapshot from mid-run: {st}");
}

#[test]
fn a_read_only_ledger_says_why_and_what_to_do() {
    let (_tmp, dir) = sample_project();
    write_list(&dir, 3);
    run(&dir, &["send", "--date", DATE, "--limit", "1"]).code(75);
    let db = ledger_path(&dir);
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let out = if is_root {
        // Root writes whatever the mode bits say: run as `nobody` instead,
        // with the ledger left owned by root (readable, not writable).
        use std::os::unix::fs::PermissionsExt;
        let mut path = dir.clone();
        while path.pop() && path != Path::new("/tmp") && path != Path::new("/") {
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
        }
        for d in [dir.clone(), dir.join(".dailyissue"), dir.join("outbox")] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        }
        // The lock stays usable: this is about the ledger itself.
        std::fs::set_permissions(
            dir.join(".dailyissue/state.lock"),
            std::fs::Permissions::from_mode(0o666),
        )
        .expect("chmod");
        let status = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
            .args(["send", "--date", DATE])
            .current_dir(&dir)
            .output()
            .expect("setpriv");
        Run {
            code: status.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&status.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&status.stderr).into_owned(),
        }
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        run(&dir, &["send", "--date", DATE])
    };
    let out = out.code(1);
    assert!(
        out.stderr.contains("permission denied") && out.stderr.contains(&db.display().to_string()),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("write access"),
        "says what to do: {}",
        out.stderr
    );
    assert_eq!(outbox_count(&dir), 1, "nothing more was sent");
}

#[test]
fn a_lock_file_that_cannot_be_opened_says_what_to_do() {
    let (_tmp, dir) = sample_project();
    write_list(&dir, 1);
    std::fs::create_dir_all(dir.join(".dailyissue/state.lock")).expect("a folder in its place");
    let out = send(&dir, &[]).code(1);
    assert!(
        out.stderr.contains("state.lock") && out.stderr.contains("write access"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_outbox_that_is_a_file_is_a_file_error() {
    let (_tmp, dir) = sample_project();
    write_list(&dir, 2);
    std::fs::write(dir.join("not-a-folder"), b"x").expect("write");
    let out = send(&dir, &["--outbox", "not-a-folder"]).code(2);
    assert!(
        out.stderr.contains("--outbox not-a-folder")
            && out.stderr.contains("is a file, not a folder"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("SMTP"), "{}", out.stderr);
}

#[test]
fn test_copies_to_one_address_twice_go_out_once() {
    let (_tmp, dir) = sample_project();
    write_list(&dir, 2);
    let out = send(
        &dir,
        &["--to", "Editor@example.org", "--to", "editor@example.org"],
    )
    .success();
    assert!(out.stdout.contains("sent 1,"), "{}", out.stdout);
    assert_eq!(outbox_count(&dir), 1);
}

#[test]
fn before_send_time_an_implicit_run_waits_and_says_when() {
    let server = Server::start(Options::default());
    let (_tmp, dir) = sample_project();
    write_list(&dir, 3);
    add_smtp(&dir, server.port(), "");
    // 00:30 in New York on the day; send_time is 06:00.
    let early = [SECRET, ("DAILYISSUE_NOW", "2027-03-01T05:30:00Z")];
    let out = run_env(&dir, &["send"], &early).success();
    assert!(
        out.stdout.contains("nothing sent")
            && out
                .stdout
                .contains("before the 06:00 send time in America/New_York")
            && out.stdout.contains("in 5h 30m"),
        "{}",
        out.stdout
    );
    assert!(server.received().is_empty());
    // --date still sends at once.
    run_env(&dir, &["send", "--date", DATE], &early).success();
    assert_eq!(server.received().len(), 3);
    // At 06:10 the implicit run sends (nothing left to send here).
    let on_time = [SECRET, ("DAILYISSUE_NOW", "2027-03-02T11:10:00Z")];
    let out = run_env(&dir, &["send"], &on_time).success();
    assert!(out.stdout.contains("sent 3"), "{}", out.stdout);
}

#[test]
fn an_outbox_inside_the_archive_or_the_project_root_is_refused() {
    let (_tmp, dir) = sample_project();
    write_list(&dir, 2);
    for outbox in ["public/mail", ".", "public"] {
        let out = send(&dir, &["--outbox", outbox]).code(2);
        assert!(
            out.stderr.contains(&format!("--outbox {outbox}:"))
                && out.stderr.contains("hold readers' addresses"),
            "{outbox}: {}",
            out.stderr
        );
    }
    assert!(!dir.join("public").exists(), "nothing written");
    send(&dir, &["--outbox", "mail"]).success();
}

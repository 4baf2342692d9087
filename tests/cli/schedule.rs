//! `schedule`: crontab lines and systemd units for this project, in the
//! newsletter's zone, every run with the same environment file; and the
//! lines themselves, run as cron would run them, send and retry.

use std::path::Path;

use crate::smtp::{Options, Server};
use crate::support::*;

fn canonical(p: &Path) -> String {
    p.canonicalize().expect("canonical").display().to_string()
}

/// The command of the crontab line whose time fields are `fields`.
fn command(crontab: &str, fields: &str) -> String {
    let line = crontab
        .lines()
        .find(|l| l.starts_with(&format!("{fields}  ")))
        .unwrap_or_else(|| panic!("no `{fields}` line:\n{crontab}"));
    line[fields.len() + 2..].replace("\\%", "%")
}

fn replace_setting(dir: &Path, key: &str, line: &str) {
    let path = dir.join("dailyissue.toml");
    let settings = std::fs::read_to_string(&path).expect("settings");
    let mut found = false;
    let text: String = settings
        .lines()
        .map(|l| {
            if l.starts_with(key) {
                found = true;
                format!("{line}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let text = if found {
        text
    } else {
        format!("{line}\n{text}")
    };
    std::fs::write(path, text).expect("write settings");
}

#[test]
fn cron_lines_carry_the_zone_paths_and_one_environment_file() {
    let (_tmp, dir) = init_project();
    let out = run(&dir, &["schedule", "--cron", "--env-file", "secrets.env"]).success();
    let cron = out.stdout;
    assert!(cron.contains("\nCRON_TZ=America/New_York\n"), "{cron}");
    let expected = format!(
        "cd '{}' && set -a && . '{}' && set +a && '{}' send >> send.log 2>&1",
        canonical(&dir),
        std::path::absolute(dir.join("secrets.env"))
            .expect("absolute")
            .display(),
        canonical(Path::new(BIN)),
    );
    assert!(command(&cron, "0 6 * * *").starts_with(&expected), "{cron}");
    assert!(
        command(&cron, "30 6,7,8 * * *").starts_with(&expected),
        "retries: {cron}"
    );
    assert!(
        command(&cron, "# 0 * * * *").starts_with(&expected),
        "hourly fallback: {cron}"
    );
    assert!(
        cron.contains("DAILYISSUE_UNSUBSCRIBE_SECRET"),
        "what the file must set: {cron}"
    );

    // From the settings, not written in.
    replace_setting(&dir, "timezone", "timezone = \"Europe/Berlin\"");
    replace_setting(&dir, "max_lateness", "max_lateness = \"1h\"");
    replace_setting(&dir, "send_time", "send_time = \"07:15\"");
    let cron = run(&dir, &["schedule", "--cron"]).success().stdout;
    assert!(cron.contains("\nCRON_TZ=Europe/Berlin\n"), "{cron}");
    assert!(
        command(&cron, "15 7 * * *").contains(". '/etc/dailyissue.env'"),
        "{cron}"
    );
    assert!(
        command(&cron, "45 7 * * *").contains(". '/etc/dailyissue.env'"),
        "{cron}"
    );
    assert_eq!(
        cron.matches("send >> send.log").count(),
        3,
        "within max_lateness: {cron}"
    );
    assert!(cron.contains("\n# 15 * * * *  "), "{cron}");

    let units = run(&dir, &["schedule", "--systemd"]).success().stdout;
    for line in [
        "# /etc/systemd/system/dailyissue.service\n",
        &format!("\nWorkingDirectory={}\n", canonical(&dir)),
        "\nEnvironmentFile=/etc/dailyissue.env\n",
        &format!("\nExecStart={} send\n", canonical(Path::new(BIN))),
        "# /etc/systemd/system/dailyissue.timer\n",
        "\nOnCalendar=*-*-* 07:15:00 Europe/Berlin\n",
        "\nOnCalendar=*-*-* 07:45:00 Europe/Berlin\n",
        "\nPersistent=true\n",
    ] {
        assert!(units.contains(line), "{line}\n{units}");
    }
    assert_eq!(units.matches("OnCalendar=").count(), 2, "{units}");
    run(&dir, &["schedule"]).code(2);
}

/// The lines as cron runs them: the first run sends and leaves a deferred
/// reader, the retry line (same environment file: the secret, and the
/// clock of the morning) delivers the rest.
#[test]
fn the_first_line_sends_and_the_retry_line_finishes_with_the_same_secret() {
    let server = Server::start(Options {
        tls: false,
        auth: None,
    });
    let (_tmp, dir) = sample_project();
    let all = write_list(&dir, 6);
    add_smtp(&dir, server.port(), "");
    // Two attempts in the first run (retries = 1), both 451.
    server.fail_rcpt(&all[2], 451, "4.7.1 try again later", 2);
    std::fs::write(
        dir.join("secrets.env"),
        format!(
            "{}={}\nDAILYISSUE_NOW=2027-03-01T11:00:00Z\n",
            SECRET.0, SECRET.1
        ),
    )
    .expect("env file");
    let cron = run(&dir, &["schedule", "--cron", "--env-file", "secrets.env"])
        .success()
        .stdout;
    let sh = |command: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .env_remove(SECRET.0)
            .env_remove("DAILYISSUE_NOW")
            .env_remove("RUST_LOG")
            .status()
            .expect("sh")
            .code()
    };
    assert_eq!(sh(&command(&cron, "0 6 * * *")), Some(75), "one deferred");
    assert_eq!(server.received().len(), 5);
    assert_eq!(
        sh(&command(&cron, "30 6,7,8 * * *")),
        Some(0),
        "the retry delivers"
    );
    assert_eq!(copies(&server).len(), 6);
    assert!(copies(&server).values().all(|n| *n == 1));
    let log = std::fs::read_to_string(dir.join("send.log")).expect("send.log");
    assert!(log.contains("sent 5, deferred 1"), "{log}");
    assert!(log.contains("sent 1, deferred 0"), "{log}");
    assert!(
        !log.contains("is not set"),
        "the secret came from the file: {log}"
    );
}

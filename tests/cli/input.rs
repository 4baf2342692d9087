//! Hostile input and operator mistakes (issue #9): a broken subscriber CSV,
//! an undeliverable issue, unsafe links, settings and records that would
//! brick the project later, repeated issue numbers, colliding paths, and
//! what `serve` may hand out. Every case must stop with exit 2 and
//! `path:line` (or be refused) before anything is sent or written.

use std::path::Path;

use crate::support::*;

const DATE: &str = "2027-03-01";
const LIST: &str = "subscribers.example.csv";

fn write_list(dir: &Path, text: &str) {
    std::fs::write(dir.join(LIST), text).expect("write list");
}

/// `n` valid rows of the sample list's shape.
fn rows(n: usize) -> String {
    (1..=n)
        .map(|i| format!("reader{i}@example.org,Reader {i},active,test\n"))
        .collect()
}

/// Every `.eml` file the file sink wrote, anywhere under `outbox/`.
fn outbox(dir: &Path) -> Vec<std::path::PathBuf> {
    fn walk(p: &Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(p) else {
            return;
        };
        for e in entries.flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("outbox"), &mut out);
    out
}

fn send(dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["send", "--date", DATE];
    args.extend_from_slice(extra);
    run(dir, &args)
}

// --- 4. A broken CSV stops check and send -------------------------------

#[test]
fn an_unclosed_quote_stops_check_and_send_and_nothing_is_sent() {
    let (_tmp, dir) = sample_project();
    write_list(
        &dir,
        &format!(
            "email,name,status,signup_source\na1@example.org,\"A1,active,test\n{}",
            rows(8)
        ),
    );
    let check = run(&dir, &["check", "--date", DATE]).code(2);
    assert!(
        check.stderr.contains(&format!(
            "{LIST}:2: a quote is probably not closed: the field that opens here runs on to the end of the file"
        )),
        "{}",
        check.stderr
    );
    let sent = send(&dir, &[]).code(2);
    assert!(
        sent.stderr
            .contains(&format!("{LIST}:2: a quote is probably not closed")),
        "{}",
        sent.stderr
    );
    assert!(
        outbox(&dir).is_empty(),
        "nothing is sent: {:?}",
        outbox(&dir)
    );
    assert!(
        !dir.join(".dailyissue/state.db").exists(),
        "no ledger written"
    );
}

#[test]
fn rows_of_the_wrong_shape_stop_check_and_send() {
    for (list, expected) in [
        (
            format!(
                "email,name,status,signup_source\n{}park@example.org,Park, Ada,active,test\n",
                rows(2)
            ),
            format!("{LIST}:4: this row has 5 fields but the header has 4"),
        ),
        (
            format!(
                "email,name,status,signup_source\n\"split@\nexample.org\",S,active,test\n{}",
                rows(2)
            ),
            format!("{LIST}:2: the email field spans several lines"),
        ),
        (
            format!("email,name,email,signup_source\n{}", rows(2)),
            format!("{LIST}:1: the header row names the column `email` twice"),
        ),
    ] {
        let (_tmp, dir) = sample_project();
        write_list(&dir, &list);
        let check = run(&dir, &["check", "--date", DATE]).code(2);
        assert!(check.stderr.contains(&expected), "{}", check.stderr);
        let sent = send(&dir, &[]).code(2);
        assert!(sent.stderr.contains(&expected), "{}", sent.stderr);
        assert!(outbox(&dir).is_empty());
    }
}

use std::collections::BTreeSet;

use crate::support::*;

fn read(dir: &std::path::Path, day: &str) -> String {
    std::fs::read_to_string(dir.join(format!("issues/{day}.toml"))).expect("record")
}

#[test]
fn fourteen_days_without_repeats_and_the_same_bytes_again() {
    let (_tmp, dir) = sample_project();
    let out = run(&dir, &["plan", "--date", "2027-03-01", "--days", "14"]).success();
    assert!(out.stdout.contains("14 new records"), "{}", out.stdout);
    assert!(out.stderr.is_empty(), "no repeats expected: {}", out.stderr);
    let days: Vec<String> = (1..=14).map(|d| format!("2027-03-{d:02}")).collect();
    let first: Vec<String> = days.iter().map(|d| read(&dir, d)).collect();
    for section in ["term", "tool", "tip"] {
        let picks: BTreeSet<String> = first
            .iter()
            .map(|text| {
                let v: toml::Table = toml::from_str(text).expect("toml");
                v["picks"][section].as_str().expect("pick").to_string()
            })
            .collect();
        assert_eq!(picks.len(), 14, "{section} repeats: {picks:?}");
    }
    assert!(first[0].contains("number = 1\n"));
    assert!(first[13].contains("number = 14\n"));
    std::fs::remove_dir_all(dir.join("issues")).expect("rm");
    run(&dir, &["plan", "--date", "2027-03-01", "--days", "14"]).success();
    let second: Vec<String> = days.iter().map(|d| read(&dir, d)).collect();
    assert_eq!(first, second);
}

#[test]
fn existing_records_are_kept_byte_for_byte() {
    let (_tmp, dir) = sample_project();
    run(&dir, &["plan", "--date", "2027-03-01", "--days", "2"]).success();
    let edited = read(&dir, "2027-03-02").replace("[picks]", "# editor was here\n[picks]");
    std::fs::write(dir.join("issues/2027-03-02.toml"), &edited).expect("write");
    let out = run(&dir, &["plan", "--date", "2027-03-01", "--days", "3"]).success();
    assert!(
        out.stdout.contains("1 new record in issues/, 2 kept"),
        "{}",
        out.stdout
    );
    assert_eq!(read(&dir, "2027-03-02"), edited);
    assert!(read(&dir, "2027-03-03").contains("number = 3\n"));
}

#[test]
fn a_pinned_item_lands_on_its_day() {
    let (_tmp, dir) = sample_project();
    run(&dir, &["plan", "--date", "2027-06-20", "--days", "7"]).success();
    assert!(read(&dir, "2027-06-23").contains("term = \"turing-test\""));
}

#[test]
fn bad_dates_are_usage_errors() {
    let (_tmp, dir) = sample_project();
    let out = run(&dir, &["plan", "--date", "2027-02-30"]).code(2);
    assert!(out.stderr.contains("--date"), "{}", out.stderr);
}

#[test]
fn an_exhausted_section_repeats_with_a_warning_unless_forbidden() {
    let (_tmp, dir) = init_project();
    // 16 tools: the 17th day repeats one.
    let out = run(&dir, &["plan", "--date", "2027-03-01", "--days", "17"]).success();
    assert!(
        out.stderr
            .contains("warning: section `tool` ran out of unused items on 2027-03-17"),
        "{}",
        out.stderr
    );
    std::fs::remove_dir_all(dir.join("issues")).expect("rm");
    let settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    std::fs::write(
        dir.join("dailyissue.toml"),
        format!("repeats = false\n{settings}"),
    )
    .expect("write");
    let refused = run(&dir, &["plan", "--date", "2027-03-01", "--days", "17"]).code(2);
    assert!(
        refused.stderr.contains("content/tools: section `tool` has used every eligible item by 2027-03-17 and `repeats = false` forbids repeating one"),
        "{}",
        refused.stderr
    );
    assert!(
        !dir.join("issues/2027-03-01.toml").exists(),
        "nothing written when any day fails"
    );
}

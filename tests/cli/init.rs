use crate::support::*;

#[test]
fn init_then_check_then_plan() {
    let (_tmp, dir) = init_project();
    assert!(dir.join("dailyissue.toml").is_file());
    assert!(dir.join("templates/email.html").is_file());
    let check = run(&dir, &["check", "--date", "2027-03-01"]).success();
    assert!(
        check.stdout.contains("ok: no problems found"),
        "{}",
        check.stdout
    );
    let plan = run(&dir, &["plan", "--date", "2027-03-01", "--days", "3"]).success();
    assert!(plan.stdout.contains("3 new records"), "{}", plan.stdout);
    for day in ["2027-03-01", "2027-03-02", "2027-03-03"] {
        assert!(dir.join(format!("issues/{day}.toml")).is_file(), "{day}");
    }
    run(&dir, &["check", "--date", "2027-03-02"]).success();
}

#[test]
fn init_never_overwrites() {
    let (tmp, dir) = init_project();
    std::fs::write(dir.join("content/terms/token.md"), "mine").expect("write");
    let again = run(tmp.path(), &["init", "news"]).code(2);
    assert!(
        again.stderr.contains("not overwriting existing files"),
        "{}",
        again.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("content/terms/token.md")).expect("read"),
        "mine"
    );
}

#[test]
fn finds_the_project_in_a_parent_folder_or_with_dash_c() {
    let (tmp, dir) = init_project();
    run(
        &dir.join("content/terms"),
        &["check", "--date", "2027-03-01"],
    )
    .success();
    run(tmp.path(), &["-C", "news", "check", "--date", "2027-03-01"]).success();
    let none = run(tmp.path(), &["check"]).code(2);
    assert!(
        none.stderr.contains("no dailyissue.toml in"),
        "{}",
        none.stderr
    );
}

#[test]
fn completions_and_man_page() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bash = run(tmp.path(), &["completions", "bash"]).success();
    assert!(bash.stdout.contains("dailyissue"));
    let man = run(tmp.path(), &["man"]).success();
    assert!(
        man.stdout.contains(".TH dailyissue"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
    let help = run(tmp.path(), &["plan", "--help"]).success();
    assert!(help.stdout.contains("--days"));
}

/// The sample `init` writes plans two weeks without repeating an item of
/// any section (it ships the repository's own pool).
#[test]
fn a_fresh_init_plans_two_weeks_without_a_repeat() {
    let (_tmp, dir) = init_project();
    for section in ["terms", "tools", "tips"] {
        let items = std::fs::read_dir(dir.join("content").join(section))
            .expect("section folder")
            .count();
        assert!(items >= 14, "{section}: {items}");
    }
    let out = run(
        &dir,
        &["plan", "--date", "2027-03-01", "--days", "14", "--json"],
    )
    .success();
    assert!(out.stderr.is_empty(), "no repeat warning: {}", out.stderr);
    let doc = json(&out);
    let days = doc["days"].as_array().expect("days");
    assert_eq!(days.len(), 14);
    for section in ["term", "tool", "tip"] {
        let picks: std::collections::BTreeSet<&str> = days
            .iter()
            .map(|d| d["picks"][section].as_str().expect("pick"))
            .collect();
        assert_eq!(picks.len(), 14, "{section} repeats: {picks:?}");
    }
    assert!(
        days.iter()
            .all(|d| d["repeats"].as_array().is_some_and(Vec::is_empty))
    );
    run(&dir, &["check", "--date", "2027-03-14"]).success();
}

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

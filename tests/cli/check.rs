//! Every folder under tests/fixtures/invalid/ is laid over a fresh `init`
//! project; `check` must exit 2 and print exactly the lines of its
//! `expected.txt` (the overlay's own expected.txt is not copied).

use crate::support::*;

#[test]
fn each_invalid_fixture_reports_exactly_its_problems() {
    let fixtures = repo_root().join("tests/fixtures/invalid");
    let mut names: Vec<_> = std::fs::read_dir(&fixtures)
        .expect("fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    let mut failures = Vec::new();
    for name in names {
        let (_tmp, dir) = init_project();
        let fixture = fixtures.join(&name);
        overlay(&fixture, &dir);
        std::fs::remove_file(dir.join("expected.txt")).expect("expected.txt in fixture");
        let expected =
            std::fs::read_to_string(fixture.join("expected.txt")).expect("read expected");
        let out = run(&dir, &["check", "--date", "2027-03-01"]);
        if out.code != 2 || out.stderr != expected {
            failures.push(format!(
                "--- {name}: exit {}\nexpected:\n{expected}got:\n{}",
                out.code, out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_sample_project_checks_clean() {
    let (_tmp, dir) = sample_project();
    let out = run(&dir, &["check", "--date", "2027-03-01"]).success();
    assert!(
        out.stdout.contains("ok: no problems found"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("unused items from 2027-03-01 last: term "),
        "{}",
        out.stdout
    );
}

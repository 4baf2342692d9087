//! The web archive of a 30-issue fixture: links, feed, glossary pages,
//! privacy and determinism.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::support::*;

fn project_with_30_issues() -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = sample_project();
    run(&dir, &["plan", "--date", "2027-03-01", "--days", "30"]).success();
    (tmp, dir)
}

fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(root).expect("prefix").to_path_buf(),
                    std::fs::read(&p).expect("read"),
                );
            }
        }
    }
    out
}

/// Every href/src in every page that is not external must name a written
/// file (and, with a fragment, an element with that id).
#[test]
fn every_internal_link_resolves() {
    let (_tmp, dir) = project_with_30_issues();
    let out = run(&dir, &["archive", "--all"]).success();
    assert!(out.stdout.contains("30 issues"), "{}", out.stdout);
    let site = dir.join("public");
    let all = files(&site);
    let mut checked = 0;
    for (rel, bytes) in all
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "html"))
    {
        let html = String::from_utf8_lossy(bytes);
        for attr in ["href=\"", "src=\""] {
            for rest in html.split(attr).skip(1) {
                let link = &rest[..rest.find('"').expect("closing quote")];
                if link.starts_with("http://")
                    || link.starts_with("https://")
                    || link.starts_with("mailto:")
                {
                    continue;
                }
                let (path, fragment) = link.split_once('#').unwrap_or((link, ""));
                let target = if path.is_empty() {
                    rel.clone()
                } else {
                    normalize(&rel.parent().expect("parent").join(path))
                };
                let target_file = if path.ends_with('/') {
                    target.join("index.html")
                } else {
                    target
                };
                let page = all
                    .get(&target_file)
                    .unwrap_or_else(|| panic!("{}: broken link {link}", rel.display()));
                if !fragment.is_empty() {
                    let page = String::from_utf8_lossy(page);
                    assert!(
                        page.contains(&format!("id=\"{fragment}\"")),
                        "{}: no #{fragment} in {}",
                        rel.display(),
                        target_file.display()
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "only {checked} links checked");
    for page in [
        "index.html",
        "page/2/index.html",
        "glossary/index.html",
        "tools/index.html",
        "feed.xml",
        "sitemap.xml",
        "style.css",
    ] {
        assert!(all.contains_key(Path::new(page)), "{page} missing");
    }
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn the_feed_has_the_latest_30_issues_newest_first() {
    let (_tmp, dir) = project_with_30_issues();
    run(&dir, &["plan", "--date", "2027-03-31", "--days", "5"]).success();
    run(&dir, &["archive", "--all"]).success();
    let xml = std::fs::read_to_string(dir.join("public/feed.xml")).expect("feed");
    let feed = atom_syndication::Feed::from_str(&xml).expect("valid Atom");
    assert_eq!(feed.entries().len(), 30);
    let dates: Vec<String> = feed
        .entries()
        .iter()
        .map(|e| e.updated().to_rfc3339())
        .collect();
    let mut sorted = dates.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, sorted, "newest first");
    assert!(
        feed.entries()[0].id().ends_with("/issues/2027-04-04/"),
        "{}",
        feed.entries()[0].id()
    );
    assert!(
        feed.entries()[0].links()[0]
            .href()
            .starts_with("https://daily.example.com/issues/")
    );
}

#[test]
fn a_term_featured_twice_has_one_page_listing_both_issues() {
    let (_tmp, dir) = project_with_30_issues();
    run(&dir, &["archive", "--all"]).success();
    let mut by_term: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for day in 1..=30 {
        let date = format!("2027-03-{day:02}");
        let record: toml::Table = toml::from_str(
            &std::fs::read_to_string(dir.join(format!("issues/{date}.toml"))).expect("record"),
        )
        .expect("toml");
        let term = record["picks"]["term"].as_str().expect("term").to_string();
        by_term.entry(term).or_default().push(date);
    }
    let (term, dates) = by_term
        .iter()
        .find(|(_, d)| d.len() == 2)
        .expect("a term repeats within 30 days of 26");
    let page = std::fs::read_to_string(dir.join(format!("public/glossary/{term}/index.html")))
        .expect("one page");
    for d in dates {
        assert!(
            page.contains(&format!("issues/{d}/index.html")),
            "{term} page lacks {d}"
        );
    }
    let glossary = std::fs::read_to_string(dir.join("public/glossary/index.html")).expect("A-Z");
    assert_eq!(
        glossary
            .matches(&format!("glossary/{term}/index.html"))
            .count(),
        1
    );
    assert_eq!(
        std::fs::read_dir(dir.join("public/glossary"))
            .expect("dir")
            .count(),
        by_term.len() + 1
    );
}

#[test]
fn no_subscriber_data_reaches_the_archive() {
    let (_tmp, dir) = project_with_30_issues();
    run(&dir, &["archive", "--all"]).success();
    let list = std::fs::read_to_string(dir.join("subscribers.example.csv")).expect("list");
    let addresses: Vec<&str> = list
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    for (rel, bytes) in files(&dir.join("public")) {
        let text = String::from_utf8_lossy(&bytes);
        for a in &addresses {
            assert!(!text.contains(a), "{} contains {a}", rel.display());
        }
        assert!(
            !text.contains("/u/"),
            "{} contains an unsubscribe link",
            rel.display()
        );
        assert!(
            !text.contains("Good morning"),
            "{} is personalised",
            rel.display()
        );
    }
}

#[test]
fn builds_are_deterministic_and_incremental() {
    let (_tmp, dir) = project_with_30_issues();
    run(&dir, &["archive", "--all", "--out", "a"]).success();
    run(&dir, &["archive", "--all", "--out", "b"]).success();
    assert_eq!(
        files(&dir.join("a")),
        files(&dir.join("b")),
        "byte-identical"
    );

    let again = run(&dir, &["archive", "--all", "--out", "a"]).success();
    assert!(again.stdout.contains("0 files written"), "{}", again.stdout);

    // Editing one tool rewrites its issue pages, the tools page and the
    // feed or sitemap only where they changed; nothing else.
    let tool = dir.join("content/tools/whisper.md");
    let text = std::fs::read_to_string(&tool).expect("tool");
    std::fs::write(&tool, text.replace("+++\n\n", "+++\n\nEdited. ")).expect("edit");
    let before = files(&dir.join("a"));
    let edited = run(&dir, &["archive", "--all", "--out", "a"]).success();
    let after = files(&dir.join("a"));
    let changed: BTreeSet<&PathBuf> = after
        .keys()
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(!changed.is_empty() && changed.len() < 10, "{changed:?}");
    assert!(
        edited
            .stdout
            .contains(&format!("{} files written", changed.len()))
            || changed.len() == 1,
        "{}",
        edited.stdout
    );

    // Issues that are no longer published disappear.
    std::fs::remove_file(dir.join("issues/2027-03-30.toml")).expect("rm");
    let shrunk = run(&dir, &["archive", "--all", "--out", "a"]).success();
    assert!(!dir.join("a/issues/2027-03-30").exists());
    assert!(shrunk.stdout.contains("removed"), "{}", shrunk.stdout);
}

#[test]
fn only_delivered_issues_are_published_by_default() {
    let (_tmp, dir) = project_with_30_issues();
    let none = run(&dir, &["archive"]).success();
    assert!(
        none.stderr.contains("no issue has been delivered yet"),
        "{}",
        none.stderr
    );
    run(&dir, &["send", "--date", "2027-03-02"]).success();
    let one = run(&dir, &["archive"]).success();
    assert!(one.stdout.contains("1 issue,"), "{}", one.stdout);
    assert!(dir.join("public/issues/2027-03-02/index.html").is_file());
    assert!(!dir.join("public/issues/2027-03-01").exists());
}

#[test]
fn pages_have_titles_descriptions_and_one_h1() {
    let (_tmp, dir) = project_with_30_issues();
    run(&dir, &["archive", "--all"]).success();
    for (rel, bytes) in files(&dir.join("public"))
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "html"))
    {
        let html = String::from_utf8_lossy(bytes);
        assert!(
            html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"),
            "{}",
            rel.display()
        );
        assert!(
            html.contains("<title>") && html.contains("<meta name=\"description\" content=\""),
            "{}",
            rel.display()
        );
        assert_eq!(html.matches("<h1").count(), 1, "{}", rel.display());
        // The one script: the signup form's time zone, which the form
        // does without.
        let scripts: Vec<&str> = html.split("<script>").skip(1).collect();
        assert!(
            scripts.len() <= 1
                && scripts.iter().all(|s| s.starts_with(
                    "try { document.getElementById(\"subscribe-tz\").value = Intl.DateTimeFormat()"
                )),
            "{}",
            rel.display()
        );
    }
}

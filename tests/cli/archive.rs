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
        // Besides it, only JSON-LD data.
        assert_eq!(
            html.matches("<script").count(),
            scripts.len()
                + html
                    .matches("<script type=\"application/ld+json\">")
                    .count(),
            "{}",
            rel.display()
        );
    }
}

/// Every page of the archive opens with one h1 and never skips a level on
/// the way down (item bodies start at h2 on their own page, h3 in a card).
#[test]
fn no_page_skips_a_heading_level() {
    let (_tmp, dir) = project_with_30_issues();
    run(&dir, &["archive", "--all"]).success();
    let mut pages = 0;
    for (rel, bytes) in files(&dir.join("public"))
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "html"))
    {
        let html = String::from_utf8_lossy(bytes);
        if let Some(p) = crate::render::outline_problem(&html) {
            panic!("{}: {p}", rel.display());
        }
        pages += 1;
    }
    assert!(pages > 50, "{pages} pages");
}

/// The JSON-LD blocks of a page, parsed.
fn structured_data(html: &str) -> Vec<serde_json::Value> {
    const OPEN: &str = "<script type=\"application/ld+json\">";
    html.split(OPEN)
        .skip(1)
        .map(|rest| {
            let json = &rest[..rest.find("</script>").expect("closed")];
            serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
        })
        .collect()
}

/// Term pages are `DefinedTerm`s of the glossary's `DefinedTermSet`, the
/// glossary index is that set, issue pages are `Article`s; every value is
/// escaped for the script it sits in.
#[test]
fn structured_data_parses_as_json_of_the_right_type() {
    let (_tmp, dir) = project_with_30_issues();
    // A title that could end the script or break the JSON if not escaped.
    let token = dir.join("content/terms/token.md");
    let text = std::fs::read_to_string(&token).expect("term");
    std::fs::write(
        &token,
        text.replacen(
            "title = \"Token\"",
            "title = \"Token </script><b>\\\"&'\"",
            1,
        ),
    )
    .expect("edit");
    run(&dir, &["archive", "--all"]).success();
    let site = dir.join("public");
    let read = |rel: &str| std::fs::read_to_string(site.join(rel)).expect(rel);

    let term = structured_data(&read("glossary/token/index.html"));
    assert_eq!(term.len(), 1);
    assert_eq!(term[0]["@context"], "https://schema.org");
    assert_eq!(term[0]["@type"], "DefinedTerm");
    assert_eq!(term[0]["name"], "Token </script><b>”&’");
    assert_eq!(term[0]["url"], "https://daily.example.com/glossary/token/");
    assert_eq!(term[0]["inDefinedTermSet"]["@type"], "DefinedTermSet");
    assert_eq!(
        term[0]["inDefinedTermSet"]["url"],
        "https://daily.example.com/glossary/"
    );
    assert!(
        term[0]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );

    let set = structured_data(&read("glossary/index.html"));
    assert_eq!(set[0]["@type"], "DefinedTermSet");
    assert_eq!(set[0]["url"], "https://daily.example.com/glossary/");
    let terms = set[0]["hasDefinedTerm"].as_array().expect("terms");
    assert!(terms.len() > 20, "{}", terms.len());
    assert!(terms.iter().all(|t| t["@type"] == "DefinedTerm"));

    let issue = structured_data(&read("issues/2027-03-01/index.html"));
    assert_eq!(issue[0]["@type"], "Article");
    assert_eq!(issue[0]["datePublished"], "2027-03-01");
    assert_eq!(
        issue[0]["url"],
        "https://daily.example.com/issues/2027-03-01/"
    );
    assert!(
        issue[0]["headline"]
            .as_str()
            .is_some_and(|h| h.starts_with("Hallucination"))
    );
    assert_eq!(issue[0]["publisher"]["name"], "Beginners in AI");
}

/// Every page says how it looks when shared: Open Graph and Twitter card
/// tags with its own title, description and canonical URL.
#[test]
fn pages_carry_open_graph_and_twitter_card_tags() {
    let (_tmp, dir) = project_with_30_issues();
    run(&dir, &["archive", "--all"]).success();
    let meta = |html: &str, attr: &str, name: &str| -> String {
        let tag = format!("<meta {attr}=\"{name}\" content=\"");
        let at = html.find(&tag).unwrap_or_else(|| panic!("no {name}")) + tag.len();
        html[at..at + html[at..].find('"').expect("quote")].to_string()
    };
    for (rel, og_type) in [
        ("glossary/hallucination/index.html", "article"),
        ("glossary/index.html", "website"),
        ("issues/2027-03-01/index.html", "article"),
        ("index.html", "website"),
        ("tools/index.html", "website"),
    ] {
        let html = std::fs::read_to_string(dir.join("public").join(rel)).expect(rel);
        let title =
            &html[html.find("<title>").expect("title") + 7..html.find("</title>").expect("end")];
        assert_eq!(meta(&html, "property", "og:title"), title, "{rel}");
        assert_eq!(meta(&html, "name", "twitter:title"), title, "{rel}");
        let description = meta(&html, "name", "description");
        assert_eq!(
            meta(&html, "property", "og:description"),
            description,
            "{rel}"
        );
        assert_eq!(
            meta(&html, "name", "twitter:description"),
            description,
            "{rel}"
        );
        assert_eq!(meta(&html, "property", "og:type"), og_type, "{rel}");
        assert_eq!(meta(&html, "name", "twitter:card"), "summary", "{rel}");
        assert_eq!(meta(&html, "property", "og:site_name"), "Beginners in AI");
        let canonical = format!(
            "https://daily.example.com/{}",
            rel.trim_end_matches("index.html")
        );
        assert_eq!(meta(&html, "property", "og:url"), canonical, "{rel}");
    }
    let term = std::fs::read_to_string(dir.join("public/glossary/hallucination/index.html"))
        .expect("term page");
    assert!(term.contains("<meta property=\"og:title\" content=\"Hallucination: what it means · Beginners in AI glossary\">"));
}

/// Term pages as the newsletter's glossary shows them: the "What it is:"
/// label, a review date people say, and under it the caveat.
#[test]
fn term_pages_label_the_summary_and_carry_the_caveat() {
    let (_tmp, dir) = project_with_30_issues();
    run(&dir, &["archive", "--all"]).success();
    let html = std::fs::read_to_string(dir.join("public/glossary/hallucination/index.html"))
        .expect("term page");
    assert!(html.contains("<p class=\"summary\"><strong>What it is:</strong> When an AI model"));
    let reviewed = html
        .find("Reviewed <time datetime=\"2026-11-01\">November 2026</time>.")
        .expect("review date");
    let caveat = html
        .find("Terminology moves quickly; verify specifics at the sources.")
        .expect("caveat");
    assert!(reviewed < caveat, "the caveat sits under the review date");
    // Related entries are links, terms apart from tips.
    let terms = html.find("<strong>Related terms:</strong>").expect("terms");
    let tips = html.find("<strong>Related tips:</strong>").expect("tips");
    assert!(terms < tips);
    assert!(
        html[tips..].contains("<a href=\"../../issues/"),
        "tips link their issue"
    );
}

/// Each feed entry is the web issue: its sections in the settings' order
/// (term, tool, tip, as the email), with the tool's link, the term's
/// sources and its glossary page, all absolute.
#[test]
fn feed_entries_are_the_web_issue() {
    let (_tmp, dir) = project_with_30_issues();
    run(&dir, &["archive", "--all"]).success();
    let xml = std::fs::read_to_string(dir.join("public/feed.xml")).expect("feed");
    let feed = atom_syndication::Feed::from_str(&xml).expect("valid Atom");
    let first = feed
        .entries()
        .iter()
        .find(|e| e.id().ends_with("/issues/2027-03-01/"))
        .expect("issue 1");
    let html = first.content().and_then(|c| c.value()).expect("content");
    let term = html.find("Term of the day").expect("term");
    let tool = html.find("Tool to try").expect("tool");
    let tip = html.find(">Tip<").expect("tip");
    assert!(term < tool && tool < tip, "the email's order");
    for link in [
        "href=\"https://notebooklm.google\"",
        "href=\"https://en.wikipedia.org/wiki/Hallucination_(artificial_intelligence)\"",
        "href=\"https://arxiv.org/abs/2311.05232\"",
        "href=\"https://daily.example.com/glossary/hallucination/index.html\"",
    ] {
        assert!(html.contains(link), "{link} missing from {html}");
    }
    assert!(html.contains("-minute read."), "the opening line");
    for href in html.split("href=\"").skip(1) {
        let url = &href[..href.find('"').expect("quote")];
        assert!(
            url.starts_with("https://"),
            "relative link {url} in the feed"
        );
    }
    let page = std::fs::read_to_string(dir.join("public/issues/2027-03-01/index.html"))
        .expect("issue page");
    assert!(page.contains("href=\"../../glossary/hallucination/index.html\""));
}

/// The issue page (and so the feed entry) opens with the email's own line:
/// the day's items and the reading time, worded the same.
#[test]
fn the_issue_page_opens_with_the_emails_line() {
    let (_tmp, dir) = project_with_30_issues();
    run(&dir, &["archive", "--all"]).success();
    let intro = |html: &str| {
        let at = html.find("class=\"intro\"").expect("opening line");
        let text = &html[at + html[at..].find('>').expect("tag") + 1..];
        text[..text.find("</").expect("end")].to_string()
    };
    for date in ["2027-03-01", "2027-03-17"] {
        let email = run(&dir, &["preview", "--date", date]).success().stdout;
        let page = std::fs::read_to_string(dir.join(format!("public/issues/{date}/index.html")))
            .expect("issue page");
        let line = intro(&email);
        assert!(
            line.starts_with("Today: ") && line.ends_with("-minute read."),
            "{line}"
        );
        assert_eq!(intro(&page), line, "{date}");
    }
}

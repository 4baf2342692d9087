//! Sections are data: a project with a fourth section and one without
//! tools both check, plan, preview, send and archive, with no code that
//! knows a section by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::*;

/// The sample's three sections as `init` writes them, declared (declaring
/// any section replaces the defaults).
const TERM: &str = r#"
[[section]]
name = "term"
required = ["title", "summary"]
title = "Term of the day"
index_title = "Glossary"
pages = "each"
path = "glossary"
page_template = "web/term.html"
index_template = "web/glossary.html"
"#;
const TOOL: &str = r#"
[[section]]
name = "tool"
required = ["title", "summary", "url"]
title = "Tool to try"
index_title = "Tools"
pages = "list"
index_template = "web/tools.html"
"#;
const TIP: &str = r#"
[[section]]
name = "tip"
"#;
const PROMO: &str = r#"
[[section]]
name = "promo"
required = ["title", "url", "price"]
title = "Two ways to go further"
"#;

const PROMO_TITLES: [&str; 2] = ["Prompting for Busy People", "The Local AI Handbook"];

/// Appends `sections` to the settings, with `edit` applied to them first.
fn declare(dir: &Path, sections: &[&str], edit: impl Fn(String) -> String) {
    let settings = std::fs::read_to_string(dir.join("dailyissue.toml")).expect("settings");
    let (head, tail) = settings
        .split_once("\n[unsubscribe]")
        .expect("an [unsubscribe] table");
    let text = format!("{head}{}\n[unsubscribe]{tail}", sections.concat());
    std::fs::write(dir.join("dailyissue.toml"), edit(text)).expect("write settings");
}

fn add_promos(dir: &Path) {
    std::fs::create_dir_all(dir.join("content/promos")).expect("mkdir");
    for (slug, title, price) in [
        ("prompting-course", PROMO_TITLES[0], 49),
        ("local-ai-book", PROMO_TITLES[1], 19),
    ] {
        std::fs::write(
            dir.join(format!("content/promos/{slug}.md")),
            format!(
                "+++\ntitle = \"{title}\"\nurl = \"https://shop.example.com/{slug}\"\nprice = {price}\n+++\nA paid product, **{price} USD**.\n"
            ),
        )
        .expect("write promo");
    }
}

/// Removes the tool section's items, and every `related` link to them
/// (items may not point at what is gone).
fn remove_tools(dir: &Path) {
    let tools: Vec<String> = std::fs::read_dir(dir.join("content/tools"))
        .expect("tools")
        .map(|e| {
            let name = e.expect("entry").file_name();
            name.to_string_lossy().trim_end_matches(".md").to_string()
        })
        .collect();
    std::fs::remove_dir_all(dir.join("content/tools")).expect("rm tools");
    for section in ["terms", "tips"] {
        for entry in std::fs::read_dir(dir.join("content").join(section)).expect("items") {
            let path = entry.expect("entry").path();
            let text: String = read(path.clone())
                .lines()
                .map(|line| match line.strip_prefix("related = ") {
                    Some(list) => {
                        let kept: Vec<&str> = list
                            .trim_matches(['[', ']'])
                            .split(", ")
                            .filter(|s| !tools.iter().any(|t| s.trim_matches('"') == t))
                            .collect();
                        format!("related = [{}]\n", kept.join(", "))
                    }
                    None => format!("{line}\n"),
                })
                .collect();
            std::fs::write(path, text).expect("write item");
        }
    }
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file under `root`, by path relative to it.
fn site(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).expect("prefix").to_path_buf();
                out.insert(
                    rel,
                    String::from_utf8_lossy(&std::fs::read(&p).expect("read")).into(),
                );
            }
        }
    }
    out
}

/// Internal links of every page that name no written file (or no element
/// with the fragment's id).
fn broken_links(site: &BTreeMap<PathBuf, String>) -> Vec<String> {
    let mut broken = Vec::new();
    for (rel, html) in site
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "html"))
    {
        for rest in html.split("href=\"").skip(1) {
            let link = &rest[..rest.find('"').expect("closing quote")];
            if link.starts_with("http") || link.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = link.split_once('#').unwrap_or((link, ""));
            let mut target = PathBuf::new();
            if !path.is_empty() {
                for c in rel.parent().expect("parent").join(path).components() {
                    match c {
                        std::path::Component::ParentDir => {
                            target.pop();
                        }
                        other => target.push(other),
                    }
                }
            } else {
                target = rel.clone();
            }
            match site.get(&target) {
                Some(page)
                    if fragment.is_empty() || page.contains(&format!("id=\"{fragment}\"")) => {}
                _ => broken.push(format!("{}: {link}", rel.display())),
            }
        }
    }
    broken
}

/// The HTML body of the .eml that `send` wrote for `address`.
fn sent_html(dir: &Path, address: &str) -> String {
    let eml = std::fs::read(dir.join(format!("outbox/{DATE}/{address}.eml"))).expect("eml");
    let msg = mail_parser::MessageParser::default()
        .parse(&eml)
        .expect("parses");
    msg.body_html(0).expect("html part").into_owned()
}

#[test]
fn a_fourth_section_is_checked_planned_previewed_sent_and_archived() {
    let (_tmp, dir) = init_project();
    declare(&dir, &[TERM, TOOL, TIP, PROMO], |s| s);
    add_promos(&dir);

    let check = run(&dir, &["check", "--date", DATE]).success();
    assert!(
        check.stdout.contains("sections term, tool, tip, promo")
            && check
                .stdout
                .contains("content: 2 promo items in content/promos"),
        "{}",
        check.stdout
    );

    let plan = run(&dir, &["plan", "--date", DATE, "--days", "2"]).success();
    let header = plan.stdout.lines().next().expect("header");
    assert!(
        header.contains("TIP") && header.contains("PROMO"),
        "{header}"
    );
    let picked: Vec<String> = ["2027-03-01", "2027-03-02"]
        .iter()
        .map(|day| {
            let record: toml::Table =
                toml::from_str(&read(dir.join(format!("issues/{day}.toml")))).expect("record");
            record["picks"]["promo"]
                .as_str()
                .expect("promo pick")
                .to_string()
        })
        .collect();
    assert_ne!(picked[0], picked[1], "two items, two days: {picked:?}");

    // The promo comes last, with the generic card; the term keeps the
    // sample's look.
    let html = run(&dir, &["preview", "--date", DATE]).success().stdout;
    let (tip, promo) = (
        html.find("Tip</p>").expect("tip card"),
        html.find("Two ways to go further</p>").expect("promo card"),
    );
    assert!(tip < promo, "the promo follows the tip");
    assert!(html.contains("Term of the day") && html.contains("Who it is for:"));
    assert!(
        PROMO_TITLES.iter().any(|t| html[promo..].contains(t)),
        "{}",
        &html[promo..]
    );
    let text = run(&dir, &["preview", "--date", DATE, "--format", "text"])
        .success()
        .stdout;
    assert!(text.contains("TWO WAYS TO GO FURTHER: "), "{text}");
    assert!(text.contains("https://shop.example.com/"), "{text}");

    // A partial of the project's own wins over the generic card.
    std::fs::write(
        dir.join("templates/email/promo.txt"),
        "GO FURTHER: {{ promo.title }} for {{ promo.price }} USD\n",
    )
    .expect("partial");
    let text = run(&dir, &["preview", "--date", DATE, "--format", "text"])
        .success()
        .stdout;
    assert!(
        text.contains("GO FURTHER: ") && text.contains(" USD") && !text.contains("TWO WAYS"),
        "{text}"
    );

    run_env(&dir, &["send", "--date", DATE], &[SECRET]).success();
    let mail = sent_html(&dir, "reader.one@example.net");
    assert!(
        mail.contains("Two ways to go further") && PROMO_TITLES.iter().any(|t| mail.contains(t)),
        "{mail}"
    );

    run(&dir, &["archive", "--all"]).success();
    let site = site(&dir.join("public"));
    let issue = &site[Path::new("issues/2027-03-01/index.html")];
    let promo = issue
        .find("Two ways to go further")
        .expect("promo on the issue page");
    assert!(
        issue.find("label-tip").expect("tip card") < promo
            && issue[promo..].contains(
                PROMO_TITLES
                    .iter()
                    .find(|t| issue.contains(*t))
                    .expect("title")
            ),
        "{issue}"
    );
    // No pages of its own (`pages` defaults to "none"), and no nav link.
    assert!(
        !site.keys().any(|p| p.starts_with("promos")),
        "{:?}",
        site.keys()
    );
    assert!(!issue.contains("promos/"), "{issue}");
    assert_eq!(broken_links(&site), Vec::<String>::new());
    let feed = &site[Path::new("feed.xml")];
    assert!(PROMO_TITLES.iter().any(|t| feed.contains(t)), "{feed}");
}

#[test]
fn a_project_without_tools_checks_plans_previews_sends_and_archives() {
    let (_tmp, dir) = init_project();
    remove_tools(&dir);
    // The default subject and preheader then come from the items.
    declare(&dir, &[TERM, TIP], |s| {
        s.lines()
            .filter(|l| !l.starts_with("subject =") && !l.starts_with("preheader ="))
            .map(|l| format!("{l}\n"))
            .collect()
    });

    let check = run(&dir, &["check", "--date", DATE]).success();
    assert!(
        check.stdout.contains("sections term, tip\n"),
        "{}",
        check.stdout
    );
    let plan = run(&dir, &["plan", "--date", DATE, "--days", "3"]).success();
    assert!(!plan.stdout.contains("TOOL"), "{}", plan.stdout);
    let record = read(dir.join("issues/2027-03-01.toml"));
    let subject = record
        .lines()
        .find_map(|l| l.strip_prefix("subject = "))
        .expect("subject");
    let picks: toml::Table = toml::from_str(&record).expect("record");
    let title = |section: &str| {
        let slug = picks["picks"][section].as_str().expect("pick");
        let item = read(dir.join(format!("content/{section}s/{slug}.md")));
        item.lines()
            .find_map(|l| l.strip_prefix("title = "))
            .expect("title")
            .trim_matches('"')
            // As typeset: apostrophes are curly.
            .replace('\'', "’")
    };
    assert_eq!(
        subject.trim_matches(['"', '\'']),
        format!("{}, {}", title("term"), title("tip"))
    );

    for format in ["html", "text"] {
        let out = run(&dir, &["preview", "--date", DATE, "--format", format])
            .success()
            .stdout;
        let out = out.to_lowercase();
        assert!(
            !out.contains("tool to try") && out.contains(&title("tip").to_lowercase()),
            "{out}"
        );
    }
    run_env(&dir, &["send", "--date", DATE], &[SECRET]).success();
    let mail = sent_html(&dir, "reader.two@example.org");
    assert!(mail.contains(&title("term")) && !mail.contains("Tool to try"));

    let archived = run(&dir, &["archive", "--all"]).success();
    assert!(
        archived.stdout.contains("3 issues, 3 item pages"),
        "{}",
        archived.stdout
    );
    let site = site(&dir.join("public"));
    assert!(
        !site.keys().any(|p| p.starts_with("tools")),
        "{:?}",
        site.keys()
    );
    assert!(site.contains_key(Path::new("glossary/index.html")));
    for (page, html) in &site {
        assert!(!html.contains(">Tools<"), "{}", page.display());
    }
    assert_eq!(broken_links(&site), Vec::<String>::new());
}

#[test]
fn the_built_in_templates_draw_any_section_with_a_generic_card() {
    let (_tmp, dir) = init_project();
    // No templates of the project's own: only the built-in ones.
    std::fs::remove_dir_all(dir.join("templates")).expect("rm templates");
    declare(&dir, &[TERM, TIP, PROMO], |s| {
        s.replace("pages = \"each\"", "pages = \"list\"")
            .lines()
            .filter(|l| !l.starts_with("subject ="))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    add_promos(&dir);
    remove_tools(&dir);

    run(&dir, &["check", "--date", DATE]).success();
    run(&dir, &["plan", "--date", DATE, "--days", "2"]).success();
    let html = run(&dir, &["preview", "--date", DATE]).success().stdout;
    for label in [
        "Term of the day</p>",
        "Tip</p>",
        "Two ways to go further</p>",
    ] {
        assert!(html.contains(label), "{label}");
    }
    // The term's card links its place on the glossary page (`pages = "list"`).
    assert!(html.contains("https://example.com/glossary/#"), "{html}");
    run(&dir, &["archive", "--all"]).success();
    let site = site(&dir.join("public"));
    let glossary = &site[Path::new("glossary/index.html")];
    assert!(glossary.contains("<h1>Glossary</h1>"), "{glossary}");
    assert!(
        !site
            .keys()
            .any(|p| p.starts_with("glossary/") && p.components().count() > 2)
    );
    assert_eq!(broken_links(&site), Vec::<String>::new());
}

#[test]
fn index_templates_written_before_sections_were_data_still_render() {
    let (_tmp, dir) = init_project();
    // What the glossary and tools templates of older projects used.
    std::fs::write(
        dir.join("templates/web/glossary.html"),
        "{{ terms | length }} terms{% for g in groups %} {{ g.letter }}:{{ g.terms | length }}{% endfor %}; {{ nav == \"glossary\" }}\n",
    )
    .expect("glossary");
    std::fs::write(
        dir.join("templates/web/tools.html"),
        "{% for t in tools %}{{ t.slug }} {{ t.appearances | length }} {% endfor %}{{ nav == \"tools\" }}\n",
    )
    .expect("tools");
    run(&dir, &["plan", "--date", DATE, "--days", "2"]).success();
    run(&dir, &["archive", "--all"]).success();
    assert_eq!(
        read(dir.join("public/glossary/index.html")),
        "2 terms H:1 P:1; True\n"
    );
    assert_eq!(
        read(dir.join("public/tools/index.html")),
        "hugging-face 1 notebooklm 1 True\n"
    );
}

/// The built-in templates keep a sound outline too: the email opens with
/// the masthead's h1 and each archive page with its own, none skips a
/// level; item pages describe themselves as a `DefinedTerm` of their
/// index, issue pages as an `Article`, and the links still all resolve.
#[test]
fn the_built_in_templates_never_skip_a_heading_level() {
    let (_tmp, dir) = init_project();
    std::fs::remove_dir_all(dir.join("templates")).expect("rm templates");
    run(&dir, &["plan", "--date", DATE, "--days", "2"]).success();
    let html = run(&dir, &["preview", "--date", DATE]).success().stdout;
    if let Some(p) = crate::render::outline_problem(&html) {
        panic!("email: {p}");
    }
    assert!(
        html.contains("content=\"\"") && html.contains("-minute read."),
        "{html}"
    );
    run(&dir, &["archive", "--all"]).success();
    let site = site(&dir.join("public"));
    let (mut items, mut issues) = (0, 0);
    for (page, html) in site
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "html"))
    {
        if let Some(p) = crate::render::outline_problem(html) {
            panic!("{}: {p}", page.display());
        }
        let ld = |t: &str| html.contains(&format!("\"@type\": \"{t}\""));
        if page.starts_with("glossary/") && page.components().count() == 3 {
            assert!(ld("DefinedTerm") && ld("DefinedTermSet"), "{html}");
            items += 1;
        }
        if page.starts_with("issues/") {
            assert!(ld("Article"), "{html}");
            issues += 1;
        }
    }
    assert_eq!((items > 0, issues), (true, 2));
    assert_eq!(broken_links(&site), Vec::<String>::new());
}

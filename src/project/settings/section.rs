//! `[[section]]`: the parts every issue is made of. A section names the
//! folder of its items, the fields each item must have, what generic
//! templates call it, and how the web archive shows its items: a page each
//! with an A–Z index (`pages = "each"`), one page listing them
//! (`"list"`), or only inside the issue pages (`"none"`, the default).
//!
//! Nothing outside this file and the sample project knows a section by
//! name: the sample's three (term, tool, tip) are the defaults when the
//! settings declare none. Templates decide what a section looks like (see
//! `templates` for the names looked up per section).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::Problems;
use super::values::{RESERVED, has_control, is_identifier};
use crate::project::slug::is_slug;

/// The built-in page of one item, for sections whose own is missing.
pub const ITEM_TEMPLATE: &str = "web/item.html";
/// The built-in index of a section's items.
pub const ITEMS_TEMPLATE: &str = "web/items.html";

/// First folders of the archive (and of `serve`) that a section's `path`
/// may not take: the issue pages and index pages, the unsubscribe link and
/// health check, and the endpoints `serve` reserves for signups, feedback
/// and webhooks.
const TAKEN_PATHS: &[&str] = &[
    "issues",
    "page",
    "u",
    "healthz",
    "subscribe",
    "confirm",
    "feedback",
    "hooks",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionSettings {
    /// The template variable of the section's item, and its key in records.
    pub name: String,
    pub dir: PathBuf,
    /// Fields every item must have; always starts with `title`.
    pub required: Vec<String>,
    /// What generic templates call the section: the heading of its card.
    pub title: String,
    /// The heading of its archive index and its link in the site's
    /// navigation (`pages` other than `none`).
    pub index_title: String,
    pub pages: Pages,
    /// The archive folder of its pages (one URL path segment).
    pub path: String,
    /// Renders the page of one item (`pages = "each"`), if the project or
    /// the built-ins have it; else [`ITEM_TEMPLATE`].
    pub page_template: String,
    /// Renders the index of its items, if present; else [`ITEMS_TEMPLATE`].
    pub index_template: String,
}

/// How the web archive shows a section's featured items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pages {
    /// Only inside the pages of the issues that featured them.
    None,
    /// One page at `PATH/` listing them all, each with an anchor `#SLUG`.
    List,
    /// A page each at `PATH/SLUG/`, and an A–Z index at `PATH/`.
    Each,
}

impl Pages {
    pub fn as_str(self) -> &'static str {
        match self {
            Pages::None => "none",
            Pages::List => "list",
            Pages::Each => "each",
        }
    }
}

impl SectionSettings {
    /// Where the archive shows `slug`, relative to the archive's root
    /// (`glossary/token/`, `tools/#chatgpt`); `None` when the section has
    /// no pages. Whether the item was featured yet is the caller's concern.
    pub fn page_path(&self, slug: &str) -> Option<String> {
        match self.pages {
            Pages::None => None,
            Pages::List => Some(format!("{}/#{slug}", self.path)),
            Pages::Each => Some(format!("{}/{slug}/", self.path)),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSection {
    name: String,
    dir: Option<PathBuf>,
    #[serde(default)]
    required: Vec<String>,
    title: Option<Spanned<String>>,
    index_title: Option<Spanned<String>>,
    #[serde(default = "no_pages")]
    pages: Pages,
    path: Option<Spanned<String>>,
    page_template: Option<Spanned<String>>,
    index_template: Option<Spanned<String>>,
}

fn no_pages() -> Pages {
    Pages::None
}

/// The sections used when the settings declare none: the sample's term
/// (a glossary page each), tool (one page of tools) and tip.
pub fn default_sections() -> Vec<SectionSettings> {
    let s = |name: &str, required: &[&str], title: &str, index_title: &str| SectionSettings {
        name: name.into(),
        dir: default_dir(name),
        required: required.iter().map(|r| r.to_string()).collect(),
        title: title.into(),
        index_title: index_title.into(),
        pages: Pages::None,
        path: default_path(name),
        page_template: ITEM_TEMPLATE.into(),
        index_template: ITEMS_TEMPLATE.into(),
    };
    let term = SectionSettings {
        pages: Pages::Each,
        path: "glossary".into(),
        page_template: "web/term.html".into(),
        index_template: "web/glossary.html".into(),
        ..s("term", &["title", "summary"], "Term of the day", "Glossary")
    };
    let tool = SectionSettings {
        pages: Pages::List,
        index_template: "web/tools.html".into(),
        ..s("tool", &["title", "summary", "url"], "Tool to try", "Tools")
    };
    let tip = s("tip", &["title", "summary"], "Tip", "Tips");
    vec![term, tool, tip]
}

/// Whether `sections` are the defaults' three names, for which the default
/// subject and preheader name the term and the tool.
pub(super) fn are_the_defaults(sections: &[SectionSettings]) -> bool {
    let mut names: Vec<&str> = sections.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    names == ["term", "tip", "tool"]
}

fn default_dir(name: &str) -> PathBuf {
    PathBuf::from(format!("content/{name}s"))
}

fn default_path(name: &str) -> String {
    format!("{}s", name.replace('_', "-"))
}

/// "promo_codes" → "Promo codes".
fn default_title(name: &str) -> String {
    let words = name.replace('_', " ");
    let mut chars = words.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// Validates the declared sections, reporting each problem with the span
/// to blame; the defaults when none are declared.
pub(super) fn parse(raw: &[Spanned<RawSection>], problems: &mut Problems) -> Vec<SectionSettings> {
    let mut sections: Vec<SectionSettings> = Vec::new();
    // Archive folder -> the section that has it.
    let mut paths: BTreeMap<String, String> = BTreeMap::new();
    for spanned in raw {
        let s = spanned.get_ref();
        let name_ok = name(spanned, problems);
        if sections.iter().any(|d| d.name == s.name) {
            problems.bad(
                spanned.span(),
                format!("section `{}` is declared twice", s.name),
            );
        }
        let title = text(problems, s, &s.title, "title", default_title(&s.name));
        let index_title = text(problems, s, &s.index_title, "index_title", title.clone());
        let page_template = text(
            problems,
            s,
            &s.page_template,
            "page_template",
            ITEM_TEMPLATE.into(),
        );
        let index_template = text(
            problems,
            s,
            &s.index_template,
            "index_template",
            ITEMS_TEMPLATE.into(),
        );
        let path = path(spanned, name_ok, &mut paths, problems);
        let mut required = s.required.clone();
        if !required.iter().any(|r| r == "title") {
            required.insert(0, "title".into());
        }
        sections.push(SectionSettings {
            name: s.name.clone(),
            dir: s.dir.clone().unwrap_or_else(|| default_dir(&s.name)),
            required,
            title,
            index_title,
            pages: s.pages,
            path,
            page_template,
            index_template,
        });
    }
    if sections.is_empty() {
        default_sections()
    } else {
        sections
    }
}

/// Whether the section's name can be a template variable that shadows
/// nothing; reports it when not.
fn name(spanned: &Spanned<RawSection>, problems: &mut Problems) -> bool {
    let s = spanned.get_ref();
    if !is_identifier(&s.name) {
        problems.bad(
            spanned.span(),
            format!(
                "section name `{}` must start with a lowercase letter and use only a-z, 0-9 and _ (it becomes a template variable)",
                s.name.escape_debug()
            ),
        );
        return false;
    }
    if RESERVED.contains(&s.name.as_str()) {
        problems.bad(
            spanned.span(),
            format!(
                "section name `{}` is taken: templates already have a `{}` of their own (reserved: {}); choose another name, e.g. `{}_item`",
                s.name,
                s.name,
                RESERVED.join(", "),
                s.name
            ),
        );
    }
    true
}

/// A one-line text field of section `s` as written, or `default`.
fn text(
    problems: &mut Problems,
    s: &RawSection,
    field: &Option<Spanned<String>>,
    key: &str,
    default: String,
) -> String {
    let Some(field) = field else {
        return default;
    };
    let value = field.get_ref();
    if value.trim().is_empty() || has_control(value) {
        problems.bad(
            field.span(),
            format!(
                "section `{}`: `{key}` must be one line of text, not empty",
                s.name
            ),
        );
    }
    value.clone()
}

/// The section's archive folder: one URL path segment, and for a section
/// with pages one that neither the archive, `serve` nor another section
/// has (`paths`, which it joins).
fn path(
    spanned: &Spanned<RawSection>,
    name_ok: bool,
    paths: &mut BTreeMap<String, String>,
    problems: &mut Problems,
) -> String {
    let s = spanned.get_ref();
    let path = match &s.path {
        Some(p) => p.get_ref().clone(),
        None => default_path(&s.name),
    };
    let path_span = s.path.as_ref().map_or(spanned.span(), Spanned::span);
    if s.path.is_none() && !name_ok {
        // The name is reported; the path made from it says nothing more.
    } else if !is_slug(&path) || path.ends_with('-') {
        problems.bad(
            path_span,
            format!(
                "section `{}`: `path` = \"{}\" must be one folder name of lowercase letters, digits and hyphens, such as \"glossary\"",
                s.name,
                path.escape_debug()
            ),
        );
    } else if s.pages != Pages::None {
        if TAKEN_PATHS.contains(&path.as_str()) {
            problems.bad(
                path_span,
                format!(
                    "section `{}`: `path` = \"{path}\" is taken by the archive or `serve` (taken: {}); choose another folder",
                    s.name,
                    TAKEN_PATHS.join(", ")
                ),
            );
        } else if let Some(other) = paths.get(&path) {
            problems.bad(
                path_span,
                format!(
                    "section `{}`: `path` = \"{path}\" is already the folder of section `{other}`; give each section with pages a folder of its own",
                    s.name
                ),
            );
        } else {
            paths.insert(path.clone(), s.name.clone());
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Settings;
    use super::*;

    const MINIMAL: &str = r#"name = "Beginners in AI"
url = "https://example.com"
timezone = "America/New_York"
from = "daily@example.com"
postal_address = "1 Main St, Springfield"
"#;

    fn parse(extra: &str) -> Result<Settings, Vec<String>> {
        Settings::parse(&format!("{MINIMAL}{extra}"), Path::new("dailyissue.toml"))
            .map_err(|ps| ps.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn a_new_section_has_no_pages_and_generic_templates() {
        let s = parse("[[section]]\nname = \"promo_code\"\n").expect("valid");
        assert_eq!(
            s.sections,
            [SectionSettings {
                name: "promo_code".into(),
                dir: "content/promo_codes".into(),
                required: vec!["title".into()],
                title: "Promo code".into(),
                index_title: "Promo code".into(),
                pages: Pages::None,
                path: "promo-codes".into(),
                page_template: ITEM_TEMPLATE.into(),
                index_template: ITEMS_TEMPLATE.into(),
            }]
        );
        assert_eq!(s.sections[0].page_path("x"), None);
    }

    #[test]
    fn sections_declare_their_pages_titles_and_templates() {
        let s = parse(
            "[[section]]\nname = \"term\"\ntitle = \"Term of the day\"\nindex_title = \"Glossary\"\npages = \"each\"\npath = \"glossary\"\npage_template = \"web/term.html\"\nindex_template = \"web/glossary.html\"\n\
             [[section]]\nname = \"tool\"\npages = \"list\"\n",
        )
        .expect("valid");
        let (term, tool) = (&s.sections[0], &s.sections[1]);
        assert_eq!(
            (term.title.as_str(), term.index_title.as_str()),
            ("Term of the day", "Glossary")
        );
        assert_eq!(term.page_template, "web/term.html");
        assert_eq!(term.index_template, "web/glossary.html");
        assert_eq!(term.page_path("token").as_deref(), Some("glossary/token/"));
        assert_eq!(tool.path, "tools");
        assert_eq!(tool.page_path("ollama").as_deref(), Some("tools/#ollama"));
    }

    #[test]
    fn the_defaults_are_the_samples_three_with_its_pages() {
        let s = parse("").expect("valid");
        let pages: Vec<(&str, Pages, &str)> = s
            .sections
            .iter()
            .map(|s| (s.name.as_str(), s.pages, s.path.as_str()))
            .collect();
        assert_eq!(
            pages,
            [
                ("term", Pages::Each, "glossary"),
                ("tool", Pages::List, "tools"),
                ("tip", Pages::None, "tips"),
            ]
        );
        assert_eq!(s.subject, "{{ term.title }}, {{ tool.title }}, and one tip");
        assert_eq!(s.preheader, "{{ term.summary }}");
    }

    #[test]
    fn default_subject_and_preheader_name_only_sections_that_exist() {
        for extra in [
            // No tools.
            "[[section]]\nname = \"term\"\n[[section]]\nname = \"tip\"\n",
            // A fourth section.
            "[[section]]\nname = \"term\"\n[[section]]\nname = \"tool\"\n[[section]]\nname = \"tip\"\n[[section]]\nname = \"promo\"\n",
        ] {
            let s = parse(extra).expect("valid");
            for template in [&s.subject, &s.preheader] {
                assert!(
                    !template.contains("term.") && !template.contains("tool."),
                    "{template}"
                );
            }
        }
        let s =
            parse("subject = \"{{ term.title }}\"\n[[section]]\nname = \"term\"\n").expect("valid");
        assert_eq!(s.subject, "{{ term.title }}", "an explicit subject is kept");
    }

    #[test]
    fn bad_section_settings_are_reported_with_their_lines() {
        // (what follows MINIMAL, the line, the message starts with)
        let cases: &[(&str, usize, &str)] = &[
            (
                "[[section]]\nname = \"promo\"\npages = \"every\"\n",
                8,
                "unknown variant `every`",
            ),
            (
                "[[section]]\nname = \"promo\"\npages = \"list\"\npath = \"issues\"\n",
                9,
                "section `promo`: `path` = \"issues\" is taken",
            ),
            (
                "[[section]]\nname = \"promo\"\npath = \"Go/Further\"\n",
                8,
                "section `promo`: `path` = \"Go/Further\" must be one folder name",
            ),
            (
                "[[section]]\nname = \"promo\"\ntitle = \"Two\\nways\"\n",
                8,
                "section `promo`: `title` must be one line",
            ),
            (
                "[[section]]\nname = \"a\"\npages = \"each\"\npath = \"more\"\n[[section]]\nname = \"b\"\npages = \"list\"\npath = \"more\"\n",
                13,
                "section `b`: `path` = \"more\" is already the folder of section `a`",
            ),
            (
                "[[section]]\nname = \"section\"\n",
                6,
                "section name `section` is taken",
            ),
            ("description = \"\"\n", 6, "`description` must be one line"),
        ];
        for (extra, line, message) in cases {
            let errs = parse(extra).expect_err(extra);
            let expected = format!("dailyissue.toml:{line}: {message}");
            assert!(
                errs.iter().any(|e| e.starts_with(&expected)),
                "{extra}: {errs:?}"
            );
        }
    }

    #[test]
    fn sections_without_pages_may_share_a_path() {
        parse("[[section]]\nname = \"a\"\npath = \"x\"\n[[section]]\nname = \"b\"\npath = \"x\"\n")
            .expect("no pages, no folder");
    }
}

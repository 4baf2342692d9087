//! One content file: its front matter split from its body, parsed as
//! TOML and checked — the file name is a slug, the section's required
//! fields are there, the fields every section recognises have their types
//! — into an [`Item`], or every problem of the file with its line. Pure:
//! the pool (`super`) reads the files and checks what spans them.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::problem::{Problem, key_line, line_of};
use crate::project::settings::{SectionSettings, toml_message};
use crate::project::slug::{is_slug, slugify};

/// One item of the pool, validated.
#[derive(Debug, Clone)]
pub struct Item {
    pub section: String,
    pub slug: String,
    /// Path relative to the project root, for messages.
    pub path: PathBuf,
    pub title: String,
    pub draft: bool,
    /// Pinned to this day: the item appears on that date and no other.
    pub date: Option<NaiveDate>,
    pub not_before: Option<NaiveDate>,
    pub related: Vec<String>,
    /// Every front-matter field, passed to templates as is.
    pub fields: toml::Table,
    /// The Markdown body.
    pub body: String,
    /// 1-based line where the body starts, for render errors.
    pub body_line: usize,
    pub(super) related_line: usize,
    pub(super) date_line: usize,
}

/// Splits a file into (front matter, body, line where the body starts).
/// Line numbers in messages are 1-based within the whole file.
fn split_front_matter(text: &str, path: &Path) -> Result<(String, String, usize), Problem> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or("");
    if first.trim_end() != "+++" {
        let hint = if first.trim_end() == "---" {
            "YAML front matter (`---`) is not supported: put TOML fields (title = \"...\") between two lines `+++` instead"
        } else {
            "missing front matter: the file must start with a line `+++`, then TOML fields such as title = \"...\", then a closing `+++`"
        };
        return Err(Problem::at(path, 1, hint));
    }
    let mut front = String::new();
    let mut line = 1;
    for l in lines.by_ref() {
        line += 1;
        if l.trim_end() == "+++" {
            let body: String = lines.collect();
            return Ok((front, body, line + 1));
        }
        front.push_str(l);
    }
    Err(Problem::at(
        path,
        1,
        "front matter opened with `+++` is never closed: add a line `+++` after the last field",
    ))
}

/// Parses and checks one content file: the fields its section requires,
/// and the types of the fields every section recognises (`title`, `draft`,
/// `date`, `not_before`, `last_reviewed`, `tags`, `related`, `url`,
/// `sources`). Any other field is the templates' business.
pub fn parse_item(
    text: &str,
    section: &SectionSettings,
    slug: &str,
    path: &Path,
) -> Result<Item, Vec<Problem>> {
    let (front, body, body_line) = split_front_matter(text, path).map_err(|p| vec![p])?;
    let fields = front_matter_table(&front, path)?;
    let mut problems = name_and_required(&fields, section, slug, path);
    // Reported after the problems above, in the order the fields are checked.
    let mut check = FrontMatter {
        text: &front,
        fields: &fields,
        path,
        wrong: Vec::new(),
    };
    let title = check.title();
    let draft = check.draft();
    let date = check.date("date");
    let not_before = check.date("not_before");
    let _ = check.date("last_reviewed");
    let related = check.strings("related");
    let _tags = check.strings("tags");
    check.url();
    check.sources();
    let (related_line, date_line) = (check.line("related"), check.line("date"));
    problems.append(&mut check.wrong);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Item {
        section: section.name.clone(),
        slug: slug.to_string(),
        path: path.to_path_buf(),
        title,
        draft,
        date,
        not_before,
        related,
        fields,
        body,
        body_line,
        related_line,
        date_line,
    })
}

/// The front matter as a TOML table, or the one problem that stops reading
/// it (at its line in the file).
fn front_matter_table(front: &str, path: &Path) -> Result<toml::Table, Vec<Problem>> {
    toml::from_str(front).map_err(|e| {
        let line = e.span().map(|s| line_of(front, s.start)).unwrap_or(1);
        vec![Problem::at(
            path,
            file_line(line),
            format!("invalid TOML in front matter: {}", toml_message(&e)),
        )]
    })
}

/// Front matter starts on line 2 of the file.
fn file_line(line_in_front: usize) -> usize {
    line_in_front + 1
}

/// Problems of the file as a whole, reported on its first line: a file
/// name that is not a slug, and each field the section requires but the
/// front matter lacks.
fn name_and_required(
    fields: &toml::Table,
    section: &SectionSettings,
    slug: &str,
    path: &Path,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if !is_slug(slug) {
        problems.push(Problem::at(
            path,
            1,
            format!(
                "file name `{slug}.md` is not a valid slug: rename it using lowercase letters, digits and hyphens, e.g. `{}.md`",
                slugify(slug)
            ),
        ));
    }
    for key in &section.required {
        if !fields.contains_key(key) {
            problems.push(Problem::at(
                path,
                1,
                format!(
                    "missing required field `{key}` (section `{}` requires {}); add it to the front matter",
                    section.name,
                    section.required.join(", ")
                ),
            ));
        }
    }
    problems
}

/// The recognised fields of one file's front matter, checked one at a
/// time; each field of the wrong type is collected in `wrong`, with the
/// line of its key (the TOML parser keeps no spans for a table).
struct FrontMatter<'a> {
    text: &'a str,
    fields: &'a toml::Table,
    path: &'a Path,
    wrong: Vec<Problem>,
}

impl FrontMatter<'_> {
    /// The line of `key` in the file, or 1 when it is not found.
    fn line(&self, key: &str) -> usize {
        key_line(self.text, key).map(file_line).unwrap_or(1)
    }

    fn wrong(&mut self, key: &str, expected: &str, example: &str) {
        let line = self.line(key);
        self.wrong.push(Problem::at(
            self.path,
            line,
            format!("`{key}` must be {expected}, e.g. {key} = {example}"),
        ));
    }

    /// The title; empty when missing (a required field, reported apart).
    fn title(&mut self) -> String {
        match self.fields.get("title") {
            Some(toml::Value::String(s)) if !s.trim().is_empty() => return s.clone(),
            Some(toml::Value::String(_)) => self.wrong("title", "a non-empty string", "\"Token\""),
            Some(_) => self.wrong("title", "a string", "\"Token\""),
            None => {}
        }
        String::new()
    }

    fn draft(&mut self) -> bool {
        match self.fields.get("draft") {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(_) => {
                self.wrong("draft", "true or false", "true");
                false
            }
        }
    }

    fn date(&mut self, key: &str) -> Option<NaiveDate> {
        let v = self.fields.get(key)?;
        match toml_date(v) {
            Some(d) if crate::project::settings::date_in_range(d) => Some(d),
            Some(_) => {
                self.wrong(key, "a date from 1000-01-01 to 9999-12-31", "2027-03-01");
                None
            }
            None => {
                let example = "2027-03-01 (a TOML date, without quotes)";
                self.wrong(key, "a date", example);
                None
            }
        }
    }

    fn strings(&mut self, key: &str) -> Vec<String> {
        match self.fields.get(key) {
            None => Vec::new(),
            Some(toml::Value::Array(a)) if a.iter().all(|v| v.is_str()) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(_) => {
                self.wrong(key, "a list of strings", "[\"a\", \"b\"]");
                Vec::new()
            }
        }
    }

    fn url(&mut self) {
        if let Some(v) = self.fields.get("url")
            && !v.as_str().is_some_and(is_web_url)
        {
            self.wrong("url", "an absolute https URL", "\"https://example.com\"");
        }
    }

    /// `[[sources]]`: tables with a `title` and a web `url`; blamed on the
    /// first `[[sources]]` header, where such a list usually starts.
    fn sources(&mut self) {
        let Some(v) = self.fields.get("sources") else {
            return;
        };
        let ok = v.as_array().is_some_and(|a| {
            a.iter().all(|s| {
                s.as_table().is_some_and(|t| {
                    t.get("url")
                        .and_then(|u| u.as_str())
                        .is_some_and(is_web_url)
                        && t.get("title").is_some_and(|t| t.is_str())
                })
            })
        });
        if !ok {
            let line = self
                .text
                .lines()
                .position(|l| l.trim() == "[[sources]]")
                .map(|i| file_line(i + 1))
                .unwrap_or_else(|| self.line("sources"));
            self.wrong.push(Problem::at(
                self.path,
                line,
                "`sources` must be a list of tables with a `title` and an absolute https `url`: [[sources]]\\ntitle = \"...\"\\nurl = \"https://...\"",
            ));
        }
    }
}

fn toml_date(v: &toml::Value) -> Option<NaiveDate> {
    let toml::Value::Datetime(dt) = v else {
        return None;
    };
    if dt.time.is_some() || dt.offset.is_some() {
        return None;
    }
    let d = dt.date?;
    NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
}

/// An absolute http(s) URL with a host, as written (no spaces or control
/// characters): what an item's `url` and its sources' `url` must be, since
/// templates put them in links as they are.
pub fn is_web_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && !s.contains(|c: char| c.is_whitespace() || c.is_control())
        && url::Url::parse(s).is_ok_and(|u| {
            matches!(u.scheme(), "https" | "http") && u.host_str().is_some_and(|h| !h.is_empty())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term() -> SectionSettings {
        crate::project::settings::default_sections().remove(0)
    }

    fn parse(text: &str) -> Result<Item, Vec<String>> {
        parse_item(text, &term(), "token", Path::new("content/terms/token.md"))
            .map_err(|ps| ps.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn parses_front_matter_and_body() {
        let item = parse(
            "+++\ntitle = \"Token\"\nsummary = \"A piece of text.\"\ndate = 2027-03-01\nrelated = [\"prompt\"]\nlevel = 2\n+++\n## What\nBody.\n",
        )
        .expect("valid");
        assert_eq!(item.title, "Token");
        assert_eq!(item.date, NaiveDate::from_ymd_opt(2027, 3, 1));
        assert_eq!(item.related, vec!["prompt"]);
        assert_eq!(item.body, "## What\nBody.\n");
        assert_eq!(item.body_line, 8);
        assert_eq!(item.fields["level"].as_integer(), Some(2));
        assert!(!item.draft);
    }

    #[test]
    fn missing_front_matter_is_reported_on_line_one() {
        let errs = parse("title = \"Token\"\n").expect_err("invalid");
        assert_eq!(
            errs,
            [
                "content/terms/token.md:1: missing front matter: the file must start with a line `+++`, then TOML fields such as title = \"...\", then a closing `+++`"
            ]
        );
    }

    #[test]
    fn yaml_front_matter_gets_a_hint() {
        let errs = parse("---\ntitle: Token\n---\n").expect_err("invalid");
        assert!(
            errs[0].contains("YAML front matter (`---`) is not supported"),
            "{errs:?}"
        );
    }

    #[test]
    fn unclosed_front_matter_is_reported() {
        let errs = parse("+++\ntitle = \"Token\"\n").expect_err("invalid");
        assert!(errs[0].contains(":1: front matter opened with `+++` is never closed"));
    }

    #[test]
    fn invalid_toml_points_at_the_file_line() {
        let errs =
            parse("+++\ntitle = \"Token\"\nsummary = unquoted words\n+++\n").expect_err("invalid");
        assert!(
            errs[0].starts_with("content/terms/token.md:3: invalid TOML"),
            "{errs:?}"
        );
    }

    #[test]
    fn missing_required_and_wrong_types_are_all_reported() {
        let errs =
            parse("+++\ntitle = 5\ndraft = \"yes\"\ndate = \"2027-03-01\"\ntags = \"x\"\n+++\n")
                .expect_err("invalid");
        assert_eq!(errs.len(), 5, "{errs:?}");
        assert!(errs[0].contains(":1: missing required field `summary`"));
        assert!(errs[1].contains(":2: `title` must be a string"));
        assert!(errs[2].contains(":3: `draft` must be true or false"));
        assert!(errs[3].contains(":4: `date` must be a date"));
        assert!(errs[4].contains(":5: `tags` must be a list of strings"));
    }

    #[test]
    fn only_recognised_and_required_fields_are_checked() {
        let promo = SectionSettings {
            name: "promo".into(),
            dir: "content/promos".into(),
            required: vec!["title".into(), "price".into()],
            ..term()
        };
        let check = |text: &str| {
            parse_item(
                text,
                &promo,
                "course",
                Path::new("content/promos/course.md"),
            )
            .map_err(|ps| ps.iter().map(|p| p.to_string()).collect::<Vec<_>>())
        };
        // A section's own fields may have any type; templates decide.
        let item = check("+++\ntitle = \"Course\"\nprice = 49\nsummary = 5\n+++\n").expect("valid");
        assert_eq!(item.fields["price"].as_integer(), Some(49));
        let errs = check("+++\ntitle = \"Course\"\nurl = \"ftp://x\"\n+++\n").expect_err("invalid");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains(
            ":1: missing required field `price` (section `promo` requires title, price)"
        ));
        assert!(errs[1].contains(":3: `url` must be an absolute https URL"));
    }

    #[test]
    fn sources_need_https_urls() {
        let errs = parse(
            "+++\ntitle = \"T\"\nsummary = \"S\"\n[[sources]]\ntitle = \"x\"\nurl = \"ftp://x\"\n+++\n",
        )
        .expect_err("invalid");
        assert!(errs[0].contains(":4: `sources` must be"), "{errs:?}");
    }

    #[test]
    fn item_urls_are_absolute_http_with_a_host() {
        for (url, ok) in [
            ("https://chatgpt.com", true),
            ("http://example.org/a?b=1#c", true),
            ("https://", false),
            ("https://exa mple.org", false),
            ("https://example.org/\u{1b}[2J", false),
            ("javascript://%0Aalert(1)", false),
            ("ftp://example.org", false),
        ] {
            assert_eq!(is_web_url(url), ok, "{url}");
        }
    }

    #[test]
    fn bad_file_names_get_a_suggested_slug() {
        let errs = parse_item(
            "+++\ntitle = \"T\"\nsummary = \"S\"\n+++\n",
            &term(),
            "Large Language_Model",
            Path::new("x.md"),
        )
        .expect_err("invalid");
        assert!(
            errs[0].message.contains("e.g. `large-language-model.md`"),
            "{errs:?}"
        );
    }
}

//! Templates: the project's `templates/` folder layered over the defaults
//! built into the binary (`include_str!`), loaded once into one minijinja
//! environment with strict undefined behaviour and HTML autoescape for
//! `.html` files.
//!
//! This module owns loading and compiling templates and turning minijinja's
//! errors into `path:line: message` problems; what goes into a template's
//! context is `render`'s business.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior};
use unicode_width::UnicodeWidthStr;

use crate::problem::Problem;

pub use crate::project::settings::TEMPLATES_DIR as DIR;

/// Defaults built into the binary, by template name (the files under
/// `src/project/templates/`). They know no section by name: the email and
/// the issue pages show each section with its own partial when the project
/// has one (`email/NAME.html`, `email/NAME.txt`, `web/issue/NAME.html`), else
/// with the generic card here; a section's archive pages use the templates
/// its settings name when present, else `web/item.html` and
/// `web/items.html`. The sample project (the repository's `templates/`,
/// written by `init`) adds the partials and pages of its term, tool and tip.
pub const DEFAULTS: &[(&str, &str)] = &[
    ("email.html", include_str!("templates/email.html")),
    ("email.txt", include_str!("templates/email.txt")),
    ("email.css", include_str!("templates/email.css")),
    (
        "email/section.html",
        include_str!("templates/email/section.html"),
    ),
    (
        "email/section.txt",
        include_str!("templates/email/section.txt"),
    ),
    ("web/base.html", include_str!("templates/web/base.html")),
    ("web/issue.html", include_str!("templates/web/issue.html")),
    (
        "web/issue-content.html",
        include_str!("templates/web/issue-content.html"),
    ),
    (
        "web/issue/section.html",
        include_str!("templates/web/issue/section.html"),
    ),
    ("web/index.html", include_str!("templates/web/index.html")),
    ("web/item.html", include_str!("templates/web/item.html")),
    ("web/items.html", include_str!("templates/web/items.html")),
    ("web/style.css", include_str!("templates/web/style.css")),
    (
        "web/subscribe.html",
        include_str!("templates/web/subscribe.html"),
    ),
    (
        "web/subscribe.css",
        include_str!("templates/web/subscribe.css"),
    ),
    (
        "email/feedback.html",
        include_str!("templates/email/feedback.html"),
    ),
    (
        "email/feedback.txt",
        include_str!("templates/email/feedback.txt"),
    ),
    ("confirm.html", include_str!("templates/confirm.html")),
    ("confirm.txt", include_str!("templates/confirm.txt")),
    ("welcome.html", include_str!("templates/welcome.html")),
    ("welcome.txt", include_str!("templates/welcome.txt")),
];

/// The signup letters (`serve`'s confirmation and welcome), rendered in
/// full for each reader, never spliced.
pub const LETTERS: &[&str] = &["confirm.html", "confirm.txt", "welcome.html", "welcome.txt"];

/// Where each template came from, for messages.
#[derive(Debug, Clone)]
pub struct Templates {
    env: Environment<'static>,
    origins: BTreeMap<String, PathBuf>,
    splice: bool,
}

impl Templates {
    /// Loads the defaults, then every file under `root/templates/` (recursively,
    /// names relative to that folder with `/`), compiling each one. Every
    /// syntax error is reported.
    pub fn load(root: &Path) -> Result<Templates, Vec<Problem>> {
        let mut sources: BTreeMap<String, (String, PathBuf)> = DEFAULTS
            .iter()
            .map(|(name, src)| {
                (
                    name.to_string(),
                    (
                        src.to_string(),
                        PathBuf::from(format!("(built-in) {DIR}/{name}")),
                    ),
                )
            })
            .collect();
        let mut problems = Vec::new();
        collect_files(&root.join(DIR), Path::new(""), &mut sources, &mut problems);
        let mut env = new_environment();
        let mut origins = BTreeMap::new();
        // The web archive's templates never see a subscriber, nor are the
        // signup letters spliced.
        let splice = sources
            .iter()
            .filter(|(name, _)| !name.starts_with("web/") && !LETTERS.contains(&name.as_str()))
            .all(|(_, (source, _))| only_printed(source));
        for (name, (source, origin)) in sources {
            if let Err(e) = env.add_template_owned(name.clone(), source) {
                problems.push(problem(&origin, &e));
            }
            origins.insert(name, origin);
        }
        if problems.is_empty() {
            Ok(Templates {
                env,
                origins,
                splice,
            })
        } else {
            Err(problems)
        }
    }

    pub fn env(&self) -> &Environment<'static> {
        &self.env
    }

    /// The first of `names` that exists, as minijinja's `{% include [..] %}`
    /// chooses: how a section's own template wins over the generic one.
    pub fn first<'n>(&self, names: &[&'n str]) -> Option<&'n str> {
        names
            .iter()
            .copied()
            .find(|name| self.origins.contains_key(*name))
    }

    /// Whether every email template uses personal values only in ways the
    /// email's splicing reproduces (see [`only_printed`]).
    pub fn personal_values_only_printed(&self) -> bool {
        self.splice
    }

    /// The file a template came from, for messages.
    pub fn origin(&self, name: &str) -> PathBuf {
        self.origins
            .get(name)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(format!("{DIR}/{name}")))
    }

    /// Converts a render error into a problem naming the template and line.
    pub fn error(&self, e: &minijinja::Error, context: &str) -> Problem {
        let name = e.name().unwrap_or("template");
        let mut p = problem(&self.origin(name), e);
        if !context.is_empty() {
            p.message = format!("{} ({context})", p.message);
        }
        p
    }
}

/// A minijinja environment with the house rules: strict undefined values,
/// autoescape by file extension, templates kept as written.
pub fn new_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env.add_filter("wrap", wrap_filter);
    env.add_filter("date", date_filter);
    // minijinja's HTML escaping also turns `/` into `&#x2f;`, which is valid
    // but makes every URL in an attribute unreadable; escape only what HTML
    // needs (& < > " ').
    env.set_formatter(|out, state, value| {
        if matches!(state.auto_escape(), minijinja::AutoEscape::Html)
            && !value.is_safe()
            && let Some(s) = value.as_str()
        {
            let mut escaped = String::with_capacity(s.len());
            crate::html::escape(s, &mut escaped);
            return out.write_str(&escaped).map_err(minijinja::Error::from);
        }
        minijinja::escape_formatter(out, state, value)
    });
    env
}

/// Whether `source` uses personal values (`subscriber.*`,
/// `unsubscribe_url`, `feedback_url`) only in ways splicing reproduces: printed as they are
/// (`{{ subscriber.name }}`) or tested for emptiness (`{% if
/// subscriber.name %}`, `elif`, `if not`). A comparison (`== "vip"`), a
/// filter (`|upper`), a `set` or a loop would see the marker instead of the
/// value and give every reader of a shape the same, wrong result, so any
/// other use turns splicing off for the issue (slower, never wrong).
fn only_printed(source: &str) -> bool {
    let personal = |expr: &str| {
        expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|word| matches!(word, "subscriber" | "unsubscribe_url" | "feedback_url"))
    };
    let plain_value = |expr: &str| {
        let expr = expr.trim();
        expr == "unsubscribe_url"
            || expr == "feedback_url"
            || expr.strip_prefix("subscriber.").is_some_and(|field| {
                !field.is_empty() && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
    };
    let mut rest = source;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let (close, is_print) = match after.chars().next() {
            Some('{') => ("}}", true),
            Some('%') => ("%}", false),
            _ => {
                rest = after;
                continue;
            }
        };
        let body = &after[1..];
        let Some(end) = body.find(close) else {
            return false;
        };
        let tag = body[..end].trim_matches('-');
        rest = &body[end + 2..];
        if !personal(tag) {
            continue;
        }
        let ok = if is_print {
            plain_value(tag)
        } else {
            let tag = tag.trim();
            let test = tag
                .strip_prefix("if ")
                .or_else(|| tag.strip_prefix("elif "))
                .map(|t| t.trim_start().strip_prefix("not ").unwrap_or(t));
            test.is_some_and(plain_value)
        };
        if !ok {
            return false;
        }
    }
    true
}

/// The width of the plain-text part, in display columns.
pub const TEXT_WIDTH: usize = 76;

/// Word-wraps `text` at `width` display columns, greedily, as mail clients
/// do: CJK characters and emoji count two columns (unicode-width), and a
/// word longer than a line (a long URL) gets a line of its own, unbroken.
/// Runs of whitespace become one space.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.is_empty() {
        return Vec::new();
    }
    let options = textwrap::Options::new(width.max(1))
        .wrap_algorithm(textwrap::WrapAlgorithm::FirstFit)
        .word_separator(textwrap::WordSeparator::AsciiSpace)
        .word_splitter(textwrap::WordSplitter::NoHyphenation)
        .break_words(false);
    textwrap::wrap(&words, options)
        .into_iter()
        .map(std::borrow::Cow::into_owned)
        .collect()
}

/// `{{ text | wrap }}` or `{{ text | wrap(60, "  ") }}`: word-wraps plain
/// text to `width` columns (default 76), indenting lines after the first.
fn wrap_filter(text: String, width: Option<usize>, indent: Option<String>) -> String {
    let width = width.unwrap_or(TEXT_WIDTH).max(20);
    let indent = indent.unwrap_or_default();
    text.lines()
        .map(|line| {
            let lines = wrap(
                line,
                width.saturating_sub(UnicodeWidthStr::width(indent.as_str())),
            );
            lines.join(&format!("\n{indent}"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `{{ term.last_reviewed | date("%B %Y") }}`: a date as front matter gives
/// it to templates (`YYYY-MM-DD`, or a date-time starting so) in a chrono
/// format ("November 2026").
fn date_filter(value: String, format: String) -> Result<String, minijinja::Error> {
    use std::fmt::Write;
    let invalid =
        |what: String| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, what);
    let date: chrono::NaiveDate = value
        .get(..10)
        .unwrap_or(&value)
        .parse()
        .map_err(|_| invalid(format!("`{value}` is not a date (YYYY-MM-DD)")))?;
    let mut out = String::new();
    write!(out, "{}", date.format(&format))
        .map_err(|_| invalid(format!("`{format}` is not a date format")))?;
    Ok(out)
}

/// Turns a minijinja error into `path:line: message`, naming an undefined
/// variable when that is what went wrong.
pub fn problem(path: &Path, e: &minijinja::Error) -> Problem {
    let mut message = e
        .detail()
        .map_or_else(|| e.kind().to_string(), |d| format!("{}: {d}", e.kind()));
    if e.kind() == minijinja::ErrorKind::UndefinedError
        && let Some(expr) = undefined_expression(e)
    {
        message = format!(
            "undefined value `{expr}`; check the spelling, or guard it with {{% if {expr} is defined %}}"
        );
    }
    Problem::new(path, e.line(), message)
}

/// The source text of the expression that was undefined, from the debug info.
fn undefined_expression(e: &minijinja::Error) -> Option<String> {
    let source = e.template_source()?;
    let span = e.range()?;
    source.get(span).map(|s| s.trim().to_string())
}

fn collect_files(
    dir: &Path,
    prefix: &Path,
    out: &mut BTreeMap<String, (String, PathBuf)>,
    problems: &mut Vec<Problem>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let rel = prefix.join(&name);
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, &rel, out, problems);
            continue;
        }
        let label = Path::new(DIR).join(&rel);
        match std::fs::read_to_string(&path) {
            Ok(source) => {
                let key = rel.to_string_lossy().replace('\\', "/");
                out.insert(key, (source, label));
            }
            Err(e) => problems.push(Problem::new(&label, None, format!("cannot read: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_files_override_defaults_and_syntax_errors_name_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("templates/partials")).expect("mkdir");
        std::fs::write(
            dir.path().join("templates/email.txt"),
            "Hi {{ subscriber.name }}\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("templates/partials/bad.html"),
            "ok\n{% if %}\n",
        )
        .expect("write");
        let errs = Templates::load(dir.path()).expect_err("syntax error");
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .to_string()
                .starts_with("templates/partials/bad.html:2: syntax error"),
            "{errs:?}"
        );
        std::fs::remove_file(dir.path().join("templates/partials/bad.html")).expect("rm");
        let t = Templates::load(dir.path()).expect("valid");
        assert_eq!(t.origin("email.txt"), PathBuf::from("templates/email.txt"));
        assert!(
            t.origin("email.html")
                .to_string_lossy()
                .starts_with("(built-in)")
        );
    }

    #[test]
    fn splicing_is_only_for_templates_that_print_or_test_personal_values() {
        for ok in [
            "Hi {{ subscriber.first_name }}, <a href=\"{{ unsubscribe_url }}\">x</a>",
            "{% if subscriber.name %}Hi {{- subscriber.name -}}{% endif %}",
            "{% if not subscriber.city %}{% elif subscriber.x %}{% endif %}",
            "{{ term.title | upper }} {% if issue.number > 1 %}{% endif %}",
            "{# subscriber.name == 1 #}",
        ] {
            assert!(only_printed(ok), "{ok}");
        }
        for wrong in [
            "{% if subscriber.plan == \"vip\" %}VIP{% endif %}",
            "{{ subscriber.name | upper }}",
            "{{ subscriber.name[:1] }}",
            "{% set n = subscriber.name %}{{ n }}",
            "{% if subscriber.name and subscriber.city %}{% endif %}",
            "{{ subscriber }}",
            "{{ unsubscribe_url ~ \"?x\" }}",
            "{% if subscriber.name %} unclosed {{ x",
        ] {
            assert!(!only_printed(wrong), "{wrong}");
        }
    }

    #[test]
    fn wrap_keeps_long_words_whole() {
        let url = "https://example.com/a/very/long/path/that/does/not/fit";
        assert_eq!(
            wrap(&format!("see {url} now"), 20),
            vec!["see".to_string(), url.to_string(), "now".to_string()]
        );
    }

    #[test]
    fn wide_characters_count_two_columns() {
        // Ten CJK characters are 20 columns: five fit in a line of 10.
        let lines = wrap("日本語の文章 です。 これは 長い 文 です", 10);
        assert!(
            lines
                .iter()
                .all(|l| UnicodeWidthStr::width(l.as_str()) <= 10 || !l.contains(' ')),
            "{lines:?}"
        );
        assert_eq!(wrap("🙂🙂🙂 🙂🙂🙂", 6), vec!["🙂🙂🙂", "🙂🙂🙂"]);
        assert!(wrap("  ", 10).is_empty());
    }

    #[test]
    fn html_escaping_keeps_urls_readable() {
        let mut env = new_environment();
        env.add_template("t.html", "<a href=\"{{ u }}\">{{ n }}</a>")
            .expect("compiles");
        let out = env
            .get_template("t.html")
            .and_then(|t| {
                t.render(minijinja::context! { u => "https://x.org/a?b=1&c=2", n => "<b>'A'</b>" })
            })
            .expect("renders");
        assert_eq!(
            out,
            "<a href=\"https://x.org/a?b=1&amp;c=2\">&lt;b&gt;&#39;A&#39;&lt;/b&gt;</a>"
        );
    }

    #[test]
    fn dates_format_for_readers_and_bad_ones_are_errors() {
        let env = new_environment();
        let render = |t: &str| env.render_str(t, minijinja::context! { d => "2026-11-01" });
        assert_eq!(
            render("Reviewed {{ d | date(\"%B %Y\") }}").expect("renders"),
            "Reviewed November 2026"
        );
        let err = env
            .render_str(
                "{{ d | date(\"%B\") }}",
                minijinja::context! { d => "soon" },
            )
            .expect_err("not a date");
        assert!(err.to_string().contains("`soon` is not a date"), "{err}");
        let err = render("{{ d | date(\"%Q\") }}").expect_err("bad format");
        assert!(err.to_string().contains("is not a date format"), "{err}");
    }

    #[test]
    fn undefined_values_are_named() {
        let mut env = new_environment();
        env.add_template("subject", "{{ term.titel }}")
            .expect("compiles");
        let ctx = minijinja::context! { term => minijinja::context! { title => "x" } };
        let e = env
            .get_template("subject")
            .expect("exists")
            .render(ctx)
            .expect_err("undefined");
        let p = problem(Path::new("dailyissue.toml"), &e);
        assert!(p.message.contains("undefined value `term.titel`"), "{p}");
    }
}

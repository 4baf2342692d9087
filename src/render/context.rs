//! Template contexts: what the templates see of an issue, its items and
//! the newsletter — the email's (without the personal values, which
//! `render::email` adds per reader), the archive's building blocks, and the
//! settings' one-line templates, whose strings (subject, preheader) are
//! rendered here. The email itself is rendered in `render::email`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::NaiveDate;
use minijinja::Value;

use crate::problem::Problem;
use crate::project::content::{Item, Pool};
use crate::project::issue::IssueRecord;
use crate::project::settings::{FILE_NAME, SectionSettings, Settings};
use crate::project::templates::{new_environment, problem};
use crate::render::markdown;
use crate::render::typography::{self, smart_quotes, word_count};

/// Converts a TOML value for templates: dates become `YYYY-MM-DD` strings.
pub fn toml_value(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::from(s.as_str()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::from(*b),
        toml::Value::Datetime(d) => Value::from(d.to_string()),
        toml::Value::Array(a) => Value::from(a.iter().map(toml_value).collect::<Vec<_>>()),
        toml::Value::Table(t) => Value::from(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_value(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

/// The host of a URL, for display ("chatgpt.com", without "www."); the
/// URL itself when it has none.
pub fn host(url: &str) -> String {
    let Some(host) = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
    else {
        return url.to_string();
    };
    host.strip_prefix("www.")
        .map_or(host.clone(), str::to_string)
}

/// A front-matter value as prose for templates: [`toml_value`] with the
/// strings' quotes and apostrophes made curly (never in a URL or in
/// `backticks`; see `render::typography`).
pub fn prose_value(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::from(smart_quotes(s)),
        toml::Value::Array(a) => Value::from(a.iter().map(prose_value).collect::<Vec<_>>()),
        toml::Value::Table(t) => Value::from(
            t.iter()
                .map(|(k, v)| (k.clone(), prose_value(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
        other => toml_value(other),
    }
}

/// An item's front matter (as prose: curly quotes, see [`prose_value`])
/// plus `slug`, `section` and `host` (of its `url`, for "Visit
/// chatgpt.com"; none without one), as a template value. `extra` adds
/// computed fields (rendered bodies, URLs).
pub fn item_value(item: &Item, extra: &[(&str, Value)]) -> Value {
    let mut map: BTreeMap<String, Value> = item
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), prose_value(v)))
        .collect();
    map.insert("slug".into(), Value::from(item.slug.as_str()));
    map.insert("section".into(), Value::from(item.section.as_str()));
    let url = item.fields.get("url").and_then(|u| u.as_str());
    map.insert("host".into(), Value::from(url.map(host)));
    for (k, v) in extra {
        map.insert((*k).to_string(), v.clone());
    }
    Value::from(map)
}

/// A section as templates see it: `name`, `title`, `index_title`,
/// `pages` (`each`, `list` or `none`), `path`, and, in an issue, its
/// `item`.
pub fn section_value(section: &SectionSettings, item: Option<Value>) -> Value {
    let mut map: BTreeMap<&str, Value> = BTreeMap::new();
    map.insert("name", Value::from(section.name.as_str()));
    map.insert("title", Value::from(section.title.as_str()));
    map.insert("index_title", Value::from(section.index_title.as_str()));
    map.insert("pages", Value::from(section.pages.as_str()));
    map.insert("path", Value::from(section.path.as_str()));
    if let Some(item) = item {
        map.insert("item", item);
    }
    Value::from(map)
}

/// Every section of the newsletter, in order, without items: what a
/// site's navigation lists (`newsletter.sections`).
pub fn all_sections(settings: &Settings) -> Value {
    Value::from(
        settings
            .sections
            .iter()
            .map(|s| section_value(s, None))
            .collect::<Vec<_>>(),
    )
}

/// The web version of an issue.
pub fn web_url(settings: &Settings, date: NaiveDate) -> String {
    format!("{}/issues/{date}/", settings.url)
}

/// The page of an item in the web archive, if items of its section get one
/// (the section's `pages`).
pub fn page_url(settings: &Settings, section: &str, slug: &str) -> Option<String> {
    let path = settings.section(section)?.page_path(slug)?;
    Some(format!("{}/{path}", settings.url))
}

/// A date as issues show it: `Monday, March 1, 2027`.
pub fn date_long(date: NaiveDate) -> String {
    date.format("%A, %B %-d, %Y").to_string()
}

/// The items featured by the issues up to one date, by slug, each with the
/// last date it was in an issue: what the email may link to in the web
/// archive.
pub type Featured = HashMap<String, NaiveDate>;

/// The email's picked items: each section's item by section name and
/// `sections` (each with its `item`, in the settings' order). An item
/// carries its front matter, its body rendered (`body_html`,
/// `body_text`), its archive `page_url`, its `related_items` and the same
/// grouped by section (`related_groups`, see [`related_groups`]).
/// `featured` holds what was featured up to this issue, so that only
/// archive pages that exist are linked.
pub fn email_sections(
    settings: &Settings,
    pool: &Pool,
    picks: &BTreeMap<String, String>,
    featured: &Featured,
) -> BTreeMap<String, Value> {
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    let mut sections = Vec::new();
    for s in &settings.sections {
        let Some(slug) = picks.get(&s.name) else {
            continue;
        };
        let Some(item) = pool.get(&s.name, slug) else {
            continue;
        };
        let related = related_items(settings, pool, item, featured);
        let value = item_value(
            item,
            &[
                (
                    "body_html",
                    Value::from_safe_string(markdown::to_html(&item.body, &settings.url)),
                ),
                (
                    "body_text",
                    Value::from(markdown::to_text(&item.body, &settings.url)),
                ),
                ("page_url", Value::from(page_url(settings, &s.name, slug))),
                ("related_groups", related_groups(settings, &related)),
                (
                    "related_items",
                    Value::from(related.into_iter().map(|r| r.value).collect::<Vec<_>>()),
                ),
            ],
        );
        sections.push(section_value(s, Some(value.clone())));
        map.insert(s.name.clone(), value);
    }
    map.insert("sections".into(), Value::from(sections));
    map
}

/// One item an item names as related, as templates see it.
pub struct Related {
    pub section: String,
    /// Where a reader can read it, if anywhere yet.
    pub url: Option<String>,
    pub value: Value,
}

/// The items an item names as related that are in the pool: `slug`,
/// `title`, `section`, the archive `page_url` once it has been featured
/// (for sections with pages), and `url`, where a reader can read it: that
/// page; for an item of a section without pages, the web version of the
/// last issue that featured it (at the item's card, `#SECTION`); else
/// where it can be read outside the archive ([`outside_url`]: a tool's
/// site, a term's first source); none for an item not featured yet that
/// has neither (a tip).
fn related_items(
    settings: &Settings,
    pool: &Pool,
    item: &Item,
    featured: &Featured,
) -> Vec<Related> {
    item.related
        .iter()
        .filter_map(|r| pool.find(r))
        .map(|r| {
            let date = featured.get(&r.slug);
            let page = date.and_then(|_| page_url(settings, &r.section, &r.slug));
            let url = page.clone().or_else(|| {
                date.map(|d| format!("{}#{}", web_url(settings, *d), r.section))
                    .or_else(|| outside_url(r))
            });
            Related {
                section: r.section.clone(),
                url: url.clone(),
                value: minijinja::context! {
                    slug => r.slug.as_str(),
                    title => smart_quotes(&r.title),
                    section => r.section.as_str(),
                    page_url => page,
                    url => url,
                },
            }
        })
        .collect()
}

/// Where a reader can read about an item outside the archive: its own
/// web address (`url`, a tool's site), else its first source (`[[sources]]`,
/// a term's reference), if it has either.
pub fn outside_url(item: &Item) -> Option<String> {
    let web = |v: &toml::Value| {
        v.as_str()
            .filter(|u| crate::project::content::is_web_url(u))
            .map(str::to_string)
    };
    item.fields.get("url").and_then(web).or_else(|| {
        item.fields
            .get("sources")
            .and_then(|s| s.as_array())
            .and_then(|s| s.iter().find_map(|s| s.get("url").and_then(web)))
    })
}

/// Related items grouped by section, in the settings' order, keeping only
/// those a reader can open (`url`), so every entry shown is a link: each
/// group has the section's `name`, `title` and `index_title`, `plural`
/// (its name in the plural, "terms", for "Related terms:") and `items`.
pub fn related_groups(settings: &Settings, related: &[Related]) -> Value {
    let groups: Vec<Value> = settings
        .sections
        .iter()
        .filter_map(|s| {
            let items: Vec<Value> = related
                .iter()
                .filter(|r| r.section == s.name && r.url.is_some())
                .map(|r| r.value.clone())
                .collect();
            (!items.is_empty()).then(|| {
                minijinja::context! {
                    name => s.name.as_str(),
                    title => s.title.as_str(),
                    index_title => s.index_title.as_str(),
                    plural => format!("{}s", s.name.replace('_', " ")),
                    items => items,
                }
            })
        })
        .collect();
    Value::from(groups)
}

/// Minutes to read the picked items (titles, front-matter prose and
/// bodies), rounded up: the issue's reading time.
pub fn reading_minutes(pool: &Pool, picks: &BTreeMap<String, String>) -> usize {
    let words: usize = picks
        .iter()
        .filter_map(|(section, slug)| pool.get(section, slug))
        .map(|item| {
            let fields: usize = item
                .fields
                .values()
                .filter_map(|v| v.as_str())
                .filter(|s| !s.contains("://"))
                .map(word_count)
                .sum();
            fields + word_count(&item.body)
        })
        .sum();
    typography::reading_minutes(words)
}

/// The email's `issue`: number, dates, subject, preheader, web version,
/// and `reading_minutes` (see [`reading_minutes`]).
pub fn email_issue(
    record: &IssueRecord,
    subject: &str,
    preheader: &str,
    web_url: &str,
    reading_minutes: usize,
) -> Value {
    minijinja::context! {
        number => record.number,
        date => record.date.to_string(),
        date_long => date_long(record.date),
        subject => subject,
        preheader => preheader,
        web_url => web_url,
        reading_minutes => reading_minutes,
    }
}

/// The email's `newsletter`: the settings a footer or header shows, and
/// whether the development secret signs the unsubscribe links.
pub fn email_newsletter(settings: &Settings, development_secret: bool) -> Value {
    minijinja::context! {
        name => settings.name.as_str(),
        url => settings.url.as_str(),
        host => host(&settings.url),
        postal_address => settings.postal_address.as_str(),
        description => settings.description.as_deref(),
        sections => all_sections(settings),
        from_name => settings.from.name.as_deref(),
        from_email => settings.from.email.to_string(),
        reply_to => settings.reply_to.as_ref().map(|m| m.email.to_string()),
        list_id => settings.list_id.as_str(),
        development_secret => development_secret,
    }
}

/// The context of the settings' one-line templates (`subject`, `preheader`):
/// each section's item by section name, `sections` (each with its `item`,
/// in the settings' order), `issue` and `newsletter`.
pub fn headline_context(
    settings: &Settings,
    pool: &Pool,
    picks: &BTreeMap<String, String>,
    number: u32,
    date: NaiveDate,
) -> Value {
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    let mut sections = Vec::new();
    for section in &settings.sections {
        let Some(item) = picks
            .get(&section.name)
            .and_then(|slug| pool.get(&section.name, slug))
        else {
            continue;
        };
        let value = item_value(item, &[]);
        sections.push(section_value(section, Some(value.clone())));
        map.insert(section.name.clone(), value);
    }
    map.insert("sections".into(), Value::from(sections));
    map.insert(
        "issue".into(),
        minijinja::context! { number => number, date => date.to_string() },
    );
    map.insert(
        "newsletter".into(),
        minijinja::context! { name => settings.name.as_str(), url => settings.url.as_str() },
    );
    Value::from(map)
}

/// Renders a one-line template from the settings (`subject`, `preheader`),
/// collapsing whitespace so the result is safe as a header value.
pub fn headline(
    key: &str,
    template: &str,
    ctx: &Value,
    date: NaiveDate,
) -> Result<String, Problem> {
    let env = new_environment();
    let line = env
        .render_str(template, ctx)
        .map(|s| crate::project::subscribers::clean_line(&s))
        .map_err(|e| {
            let mut p = problem(Path::new(FILE_NAME), &e);
            p.line = None;
            p.message = format!("`{key}` template, issue of {date}: {}", p.message);
            p
        })?;
    if key == "subject" && line.is_empty() {
        return Err(Problem::new(
            FILE_NAME,
            None,
            format!(
                "`subject` template, issue of {date}: the subject comes out empty; make the template print something for every issue"
            ),
        ));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_short() {
        assert_eq!(host("https://www.deepl.com/translator?x=1"), "deepl.com");
        assert_eq!(host("https://chatgpt.com"), "chatgpt.com");
        assert_eq!(host("https://user@Example.ORG:8443/x"), "example.org");
    }

    #[test]
    fn toml_dates_become_strings() {
        let t: toml::Table = toml::from_str("d = 2027-03-01\nn = [1, 2]").expect("toml");
        assert_eq!(toml_value(&t["d"]).to_string(), "2027-03-01");
        assert_eq!(toml_value(&t["n"]).len(), Some(2));
    }

    #[test]
    fn headlines_are_single_lines_and_undefined_values_are_named() {
        let ctx = minijinja::context! { term => minijinja::context! { title => "A\nB" } };
        let date: NaiveDate = "2027-03-01".parse().expect("date");
        assert_eq!(
            headline("subject", "{{ term.title }}!", &ctx, date).expect("ok"),
            "A B!"
        );
        let err =
            headline("subject", "{{ term.nothing | default('') }}", &ctx, date).expect_err("empty");
        assert!(
            err.to_string().contains("the subject comes out empty"),
            "{err}"
        );
        let err = headline("subject", "{{ tool.title }}", &ctx, date).expect_err("undefined");
        assert!(
            err.to_string()
                .contains("`subject` template, issue of 2027-03-01: undefined value `tool.title`"),
            "{err}"
        );
    }
}

//! Rendering: from an issue record and the pool to text a reader sees.
//!
//! This file builds template contexts and renders the per-issue strings
//! (subject, preheader). The email itself is rendered in `render::email`.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use minijinja::Value;

use crate::problem::Problem;
use crate::project::content::{Item, Pool};
use crate::project::settings::{FILE_NAME, Settings};
use crate::project::templates::{new_environment, problem};

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

/// An item's front matter plus `slug`, `section` and `host` (of its `url`,
/// for "Visit chatgpt.com"; none without one), as a template value.
/// `extra` adds computed fields (rendered bodies, URLs).
pub fn item_value(item: &Item, extra: &[(&str, Value)]) -> Value {
    let mut map: BTreeMap<String, Value> = item
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), toml_value(v)))
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

/// The context of the settings' one-line templates (`subject`, `preheader`):
/// each section's item by section name, `issue` and `newsletter`.
pub fn headline_context(
    settings: &Settings,
    pool: &Pool,
    picks: &BTreeMap<String, String>,
    number: u32,
    date: NaiveDate,
) -> Value {
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    for (section, slug) in picks {
        if let Some(item) = pool.get(section, slug) {
            map.insert(section.clone(), item_value(item, &[]));
        }
    }
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

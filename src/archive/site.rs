//! The archive's HTML pages and stylesheet, rendered from `templates/web/`
//! (defaults built in): a page per issue, the index of issues newest first
//! with pagination, and for each section with pages a page per featured
//! item (`pages = "each"`) and its index (`each` and `list`). Pages link
//! to each other with relative URLs, so the site works at any path; the
//! canonical URL of each page uses the `url` setting. No section is known
//! by name: its settings say where its pages go and which templates draw
//! them.

use std::collections::{BTreeMap, HashMap};

use minijinja::Value;

use crate::problem::Problem;
use crate::project::Project;
use crate::project::content::{Item, Pool};
use crate::project::settings::{ITEM_TEMPLATE, ITEMS_TEMPLATE, Pages, SectionSettings};
use crate::project::templates::Templates;
use crate::render::context::{self, date_long, item_value};
use crate::render::markdown;
use crate::render::typography::smart_quotes;

use super::Entry;
use super::{feed, sitemap};

/// Issues per page of the index.
const PER_PAGE: usize = 20;

/// An issue's content without the page around it: its page includes it,
/// and the feed carries it.
const ISSUE_CONTENT_TEMPLATE: &str = "web/issue-content.html";

/// What the pages are made from, and the items' bodies rendered once.
pub(super) struct Site<'a> {
    project: &'a Project,
    pool: &'a Pool,
    templates: &'a Templates,
    entries: &'a [Entry<'a>],
    /// For each section with pages: its featured items by slug, with the
    /// issues (indexes into `entries`) they appeared in.
    featured: BTreeMap<String, BTreeMap<String, Vec<usize>>>,
    /// Every featured item, of any section, by slug: the last issue (index
    /// into `entries`) it appeared in.
    last_featured: HashMap<String, usize>,
    /// Bodies as HTML for cards under an h2 (issue pages, list pages), by
    /// slug.
    html: HashMap<String, String>,
}

impl<'a> Site<'a> {
    pub(super) fn new(
        project: &'a Project,
        pool: &'a Pool,
        templates: &'a Templates,
        entries: &'a [Entry<'a>],
    ) -> Site<'a> {
        let mut featured: BTreeMap<String, BTreeMap<String, Vec<usize>>> = project
            .settings
            .sections
            .iter()
            .filter(|s| s.pages != Pages::None)
            .map(|s| (s.name.clone(), BTreeMap::new()))
            .collect();
        let mut html = HashMap::new();
        let mut last_featured = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            for (section, slug) in &e.stored.record.picks {
                if let Some(items) = featured.get_mut(section) {
                    items.entry(slug.clone()).or_default().push(i);
                }
                last_featured.insert(slug.clone(), i);
                if let Some(item) = pool.get(section, slug) {
                    html.entry(item.slug.clone())
                        .or_insert_with(|| markdown::to_html(&item.body, &project.settings.url));
                }
            }
        }
        Site {
            project,
            pool,
            templates,
            entries,
            featured,
            last_featured,
            html,
        }
    }

    /// Pages of single items (sections with `pages = "each"`).
    pub(super) fn item_pages(&self) -> usize {
        self.project
            .settings
            .sections
            .iter()
            .filter(|s| s.pages == Pages::Each)
            .map(|s| self.listed(s).len())
            .sum()
    }

    /// A section's featured items that are still in the pool, by title,
    /// each with the issues it appeared in.
    fn listed(&self, section: &SectionSettings) -> Vec<(&'a Item, &[usize])> {
        let Some(featured) = self.featured.get(&section.name) else {
            return Vec::new();
        };
        let pool: &'a Pool = self.pool;
        let mut items: Vec<(&'a Item, &[usize])> = featured
            .iter()
            .filter_map(|(slug, a)| pool.get(&section.name, slug).map(|i| (i, a.as_slice())))
            .collect();
        items.sort_by_key(|(i, _)| (i.title.to_lowercase(), i.slug.clone()));
        items
    }

    /// The link from a page `root` below the archive's root to where
    /// `slug` of `section` is shown, if it has been featured and its
    /// section has pages. `from` is the section whose item page links, so
    /// that items of one section link to each other as siblings.
    fn href(
        &self,
        section: &SectionSettings,
        slug: &str,
        root: &str,
        from: Option<&str>,
    ) -> Option<String> {
        if !self
            .featured
            .get(&section.name)
            .is_some_and(|f| f.contains_key(slug))
        {
            return None;
        }
        match section.pages {
            Pages::None => None,
            Pages::Each if from == Some(section.name.as_str()) => {
                Some(format!("../{slug}/index.html"))
            }
            Pages::Each => Some(format!("{root}{}/{slug}/index.html", section.path)),
            Pages::List => Some(format!("{root}{}/index.html#{slug}", section.path)),
        }
    }

    /// What `item` names as related, linked from a page `root` below the
    /// archive's root: `related` (each with `title`, `slug`, `section` and
    /// `href`, where it can be read: its page, else the last issue that
    /// featured it at its card (`#SECTION`), else its outside URL
    /// (`context::outside_url`); none if nowhere yet) and the same grouped
    /// by section, only those with an `href` (see
    /// `context::related_groups`). `from` is as for [`Site::href`].
    fn related(&self, item: &Item, root: &str, from: Option<&str>) -> (Value, Value) {
        let settings = &self.project.settings;
        let related: Vec<context::Related> = item
            .related
            .iter()
            .filter_map(|r| self.pool.find(r))
            .map(|r| {
                let href = settings
                    .section(&r.section)
                    .and_then(|s| self.href(s, &r.slug, root, from))
                    .or_else(|| {
                        self.last_featured.get(&r.slug).map(|&i| {
                            let date = self.entries[i].stored.record.date;
                            format!("{root}issues/{date}/index.html#{}", r.section)
                        })
                    })
                    .or_else(|| context::outside_url(r));
                context::Related {
                    section: r.section.clone(),
                    url: href.clone(),
                    value: minijinja::context! {
                        title => smart_quotes(&r.title),
                        slug => r.slug.as_str(),
                        section => r.section.as_str(),
                        href => href,
                    },
                }
            })
            .collect();
        let groups = context::related_groups(settings, &related);
        let all = related.into_iter().map(|r| r.value).collect::<Vec<_>>();
        (Value::from(all), groups)
    }

    fn newsletter(&self) -> Value {
        let s = &self.project.settings;
        minijinja::context! {
            name => s.name.as_str(),
            url => s.url.as_str(),
            host => crate::render::context::host(&s.url),
            postal_address => s.postal_address.as_str(),
            description => s.description.as_deref(),
            sections => context::all_sections(s),
        }
    }

    /// The signup box of a page `root` below the archive's root (see
    /// `web/subscribe.html`): none when signups are off.
    fn subscribe(&self, root: &str) -> Value {
        let s = &self.project.settings;
        if !s.subscribe.enabled {
            return Value::from(());
        }
        let promise = s.subscribe.promise.clone().unwrap_or_else(|| {
            let about = s
                .description
                .as_deref()
                .map_or(String::new(), |d| format!("{d} "));
            format!("{about}Free, and you can unsubscribe at any time.")
        });
        let latest = self
            .entries
            .last()
            .map(|e| format!("{root}issues/{}/index.html", e.stored.record.date));
        minijinja::context! {
            action => s.subscribe.action.as_str(),
            promise => promise,
            latest => latest,
        }
    }

    /// An item for templates: its front matter, `body_html`, and `extra`.
    fn item(&self, item: &Item, extra: &[(&str, Value)]) -> Value {
        let body = self.html.get(&item.slug).cloned().unwrap_or_default();
        let mut fields = vec![("body_html", Value::from_safe_string(body))];
        fields.extend(extra.iter().cloned());
        item_value(item, &fields)
    }

    fn issue_summary(&self, i: usize) -> Value {
        let e = &self.entries[i];
        let date = e.stored.record.date;
        minijinja::context! {
            number => e.stored.record.number,
            date => date.to_string(),
            date_long => date_long(date),
            subject => e.subject.as_str(),
            summary => e.preheader.as_str(),
        }
    }

    fn summaries(&self, indexes: &[usize]) -> Value {
        Value::from(
            indexes
                .iter()
                .map(|&i| self.issue_summary(i))
                .collect::<Vec<_>>(),
        )
    }

    fn render(
        &self,
        name: &str,
        rel: &str,
        nav: &str,
        mut ctx: BTreeMap<String, Value>,
    ) -> Result<Vec<u8>, Problem> {
        let depth = rel.matches('/').count();
        let root = "../".repeat(depth);
        ctx.insert("subscribe".into(), self.subscribe(&root));
        ctx.insert("root".into(), Value::from(root));
        ctx.insert("nav".into(), Value::from(nav));
        ctx.insert("newsletter".into(), self.newsletter());
        let canonical = format!(
            "{}/{}",
            self.project.settings.url,
            rel.trim_end_matches("index.html")
        );
        ctx.insert("canonical".into(), Value::from(canonical));
        self.templates
            .env()
            .get_template(name)
            .and_then(|t| t.render(Value::from(ctx)))
            .map(|s| s.into_bytes())
            .map_err(|e| self.templates.error(&e, &format!("archive page {rel}")))
    }

    /// Every file of the archive, as bytes by path below its root.
    pub(super) fn build(&self) -> Result<BTreeMap<String, Vec<u8>>, Problem> {
        let mut files = BTreeMap::new();
        files.insert(
            "style.css".to_string(),
            self.templates
                .env()
                .get_template("web/style.css")
                .and_then(|t| t.render(()))
                .map_err(|e| self.templates.error(&e, "archive stylesheet"))?
                .into_bytes(),
        );
        self.issue_pages(&mut files)?;
        self.index_pages(&mut files)?;
        for section in &self.project.settings.sections {
            match section.pages {
                Pages::None => {}
                Pages::List => self.index_page(section, &mut files)?,
                Pages::Each => {
                    self.item_pages_of(section, &mut files)?;
                    self.index_page(section, &mut files)?;
                }
            }
        }
        let feed = feed::atom(&self.project.settings, self.entries, &self.feed_contents()?);
        files.insert("feed.xml".into(), feed.into_bytes());
        let sitemap = sitemap::sitemap(&self.project.settings.url, &files);
        files.insert("sitemap.xml".into(), sitemap.into_bytes());
        Ok(files)
    }

    /// What an issue page shows of issue `i`, with links from `root`: each
    /// section's item (`href`: its page; `related_groups`), `sections`,
    /// `issue` (with `reading_minutes`), `previous` and `next`.
    fn issue_context(&self, i: usize, root: &str) -> BTreeMap<String, Value> {
        let e = &self.entries[i];
        let record = &e.stored.record;
        let mut ctx = BTreeMap::new();
        let mut sections = Vec::new();
        for section in &self.project.settings.sections {
            let Some(item) = record
                .picks
                .get(&section.name)
                .and_then(|slug| self.pool.get(&section.name, slug))
            else {
                continue;
            };
            let href = self.href(section, &item.slug, root, None);
            let (_, related_groups) = self.related(item, root, None);
            let value = self.item(
                item,
                &[
                    ("href", Value::from(href)),
                    ("related_groups", related_groups),
                ],
            );
            sections.push(context::section_value(section, Some(value.clone())));
            ctx.insert(section.name.clone(), value);
        }
        ctx.insert("sections".into(), Value::from(sections));
        ctx.insert(
            "issue".into(),
            minijinja::context! {
                number => record.number,
                date => record.date.to_string(),
                date_long => date_long(record.date),
                subject => e.subject.as_str(),
                preheader => e.preheader.as_str(),
                reading_minutes => context::reading_minutes(self.pool, &record.picks),
            },
        );
        let summary = |j: Option<usize>| j.map_or(Value::from(()), |j| self.issue_summary(j));
        ctx.insert("previous".into(), summary(i.checked_sub(1)));
        ctx.insert(
            "next".into(),
            summary(Some(i + 1).filter(|&j| j < self.entries.len())),
        );
        ctx
    }

    fn issue_pages(&self, files: &mut BTreeMap<String, Vec<u8>>) -> Result<(), Problem> {
        for (i, e) in self.entries.iter().enumerate() {
            let rel = format!("issues/{}/index.html", e.stored.record.date);
            let ctx = self.issue_context(i, "../../");
            files.insert(
                rel.clone(),
                self.render("web/issue.html", &rel, "issues", ctx)?,
            );
        }
        Ok(())
    }

    /// The feed's content of the latest issues: each issue as its page
    /// shows it (`web/issue-content.html`: the summary line and the
    /// sections' cards in the settings' order), with absolute links.
    fn feed_contents(&self) -> Result<Vec<(usize, String)>, Problem> {
        let root = format!("{}/", self.project.settings.url);
        let latest = (0..self.entries.len()).rev().take(feed::FEED_ENTRIES);
        latest
            .map(|i| {
                let mut ctx = self.issue_context(i, &root);
                ctx.insert("root".into(), Value::from(root.as_str()));
                ctx.insert("newsletter".into(), self.newsletter());
                let at = format!("feed entry of {}", self.entries[i].stored.record.date);
                self.templates
                    .env()
                    .get_template(ISSUE_CONTENT_TEMPLATE)
                    .and_then(|t| t.render(Value::from(ctx)))
                    .map(|html| (i, html))
                    .map_err(|e| self.templates.error(&e, &at))
            })
            .collect()
    }

    fn index_pages(&self, files: &mut BTreeMap<String, Vec<u8>>) -> Result<(), Problem> {
        let newest_first: Vec<usize> = (0..self.entries.len()).rev().collect();
        let pages: Vec<&[usize]> = if newest_first.is_empty() {
            vec![&[]]
        } else {
            newest_first.chunks(PER_PAGE).collect()
        };
        let page_path = |n: usize| {
            if n == 1 {
                "index.html".to_string()
            } else {
                format!("page/{n}/index.html")
            }
        };
        for (k, chunk) in pages.iter().enumerate() {
            let n = k + 1;
            let rel = page_path(n);
            let mut ctx = BTreeMap::new();
            ctx.insert("issues".into(), self.summaries(chunk));
            ctx.insert("total".into(), Value::from(self.entries.len()));
            ctx.insert(
                "page".into(),
                minijinja::context! {
                    number => n,
                    count => pages.len(),
                    first_number => chunk.first().map_or(0, |&i| self.entries[i].stored.record.number),
                    newer => (n > 1).then(|| page_path(n - 1)),
                    older => (n < pages.len()).then(|| page_path(n + 1)),
                },
            );
            files.insert(
                rel.clone(),
                self.render("web/index.html", &rel, "issues", ctx)?,
            );
        }
        Ok(())
    }

    /// One page per featured item of `section` (`pages = "each"`), at
    /// `PATH/SLUG/`: the section's `page_template`, or the generic one.
    fn item_pages_of(
        &self,
        section: &SectionSettings,
        files: &mut BTreeMap<String, Vec<u8>>,
    ) -> Result<(), Problem> {
        let template = self.template(&section.page_template, ITEM_TEMPLATE);
        let root = "../../";
        for (item, appearances) in self.listed(section) {
            let rel = format!("{}/{}/index.html", section.path, item.slug);
            let (related, related_groups) = self.related(item, root, Some(section.name.as_str()));
            // The page's h1 is the item's title: body headings start at h2.
            let body = markdown::to_html_at(&item.body, &self.project.settings.url, 2);
            let value = self.item(
                item,
                &[
                    ("body_html", Value::from_safe_string(body)),
                    ("related_groups", related_groups.clone()),
                ],
            );
            let mut ctx = BTreeMap::new();
            ctx.insert("item".into(), value.clone());
            ctx.insert(section.name.clone(), value);
            ctx.insert("section".into(), context::section_value(section, None));
            ctx.insert("related".into(), related);
            ctx.insert("related_groups".into(), related_groups);
            ctx.insert("appearances".into(), self.summaries(appearances));
            files.insert(
                rel.clone(),
                self.render(template, &rel, &section.path, ctx)?,
            );
        }
        Ok(())
    }

    /// The index of a section's featured items, at `PATH/`: the section's
    /// `index_template`, or the generic one. Items come by title (`items`)
    /// and grouped by first letter (`groups`), each with its `href` from
    /// the index and the issues it appeared in.
    fn index_page(
        &self,
        section: &SectionSettings,
        files: &mut BTreeMap<String, Vec<u8>>,
    ) -> Result<(), Problem> {
        let template = self.template(&section.index_template, ITEMS_TEMPLATE);
        let mut items = Vec::new();
        let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
        for (item, appearances) in self.listed(section) {
            // From PATH/index.html, whose root is one folder up.
            let href = match section.pages {
                Pages::Each => format!("../{}/{}/index.html", section.path, item.slug),
                _ => format!("#{}", item.slug),
            };
            let value = self.item(
                item,
                &[
                    ("href", Value::from(href)),
                    ("appearances", self.summaries(appearances)),
                ],
            );
            let letter = item
                .title
                .chars()
                .next()
                .filter(|c| c.is_ascii_alphabetic())
                .map_or("#".to_string(), |c| c.to_ascii_uppercase().to_string());
            match groups.last_mut() {
                Some((l, group)) if *l == letter => group.push(value.clone()),
                _ => groups.push((letter, vec![value.clone()])),
            }
            items.push(value);
        }
        // The items also go by the section's name in the plural (`terms`,
        // `tools`), as the index templates of projects made before sections
        // were data name them.
        let plural = format!("{}s", section.name);
        let groups: Vec<Value> = groups
            .into_iter()
            .map(|(letter, items)| {
                let items = Value::from(items);
                let mut group = BTreeMap::from([
                    ("letter".to_string(), Value::from(letter)),
                    ("items".to_string(), items.clone()),
                ]);
                group.entry(plural.clone()).or_insert(items);
                Value::from(group)
            })
            .collect();
        let items = Value::from(items);
        let mut ctx = BTreeMap::new();
        ctx.insert("section".into(), context::section_value(section, None));
        ctx.insert("items".into(), items.clone());
        ctx.insert("groups".into(), Value::from(groups));
        ctx.entry(plural).or_insert(items);
        let rel = format!("{}/index.html", section.path);
        files.insert(
            rel.clone(),
            self.render(template, &rel, &section.path, ctx)?,
        );
        Ok(())
    }

    /// `name` if the project or the built-ins have it, else `generic`.
    fn template<'n>(&self, name: &'n str, generic: &'n str) -> &'n str {
        self.templates.first(&[name, generic]).unwrap_or(generic)
    }
}

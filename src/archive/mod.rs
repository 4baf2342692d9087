//! `archive`: the static web archive — one page per issue, an index newest
//! first with pagination, the pages of the sections that have them (a page
//! per featured item and an A–Z index for `pages = "each"`, one page listing
//! them for `pages = "list"`), an Atom feed of the latest 30 issues,
//! `sitemap.xml` and one stylesheet. No section is known by name: its
//! settings say where its pages go and which templates draw them.
//!
//! Pages come from `templates/web/` (defaults built in) and link to each
//! other with relative URLs, so the site works at any path and from
//! `serve`; canonical URLs, the feed and the sitemap use the `url` setting.
//! The build is deterministic (no clock, sorted everywhere) and
//! incremental: a file is written only when its bytes change, and files a
//! previous build wrote that are no longer produced are removed (tracked in
//! a manifest, so nothing else in the folder is touched). No personal data
//! reaches the archive: pages are rendered without a subscriber.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, TimeZone};
use minijinja::Value;

use crate::atomic;
use crate::problem::{Failure, Problem};
use crate::project::Project;
use crate::project::content::{Item, Pool};
use crate::project::issue::Stored;
use crate::project::settings::{ITEM_TEMPLATE, ITEMS_TEMPLATE, Pages, SectionSettings};
use crate::project::templates::Templates;
use crate::render::context::{self, item_value};
use crate::render::markdown;

const PER_PAGE: usize = 20;
const FEED_ENTRIES: usize = 30;
const MANIFEST: &str = ".dailyissue-archive";

#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    pub out: Option<PathBuf>,
    /// Every record in `issues/`, not only those with a delivery.
    pub all: bool,
}

#[derive(Debug, Default)]
pub struct ArchiveReport {
    pub out: PathBuf,
    pub issues: usize,
    /// Pages of single items (sections with `pages = "each"`).
    pub item_pages: usize,
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub note: Option<String>,
}

/// One issue as the archive sees it.
struct Entry<'a> {
    stored: &'a Stored,
    subject: String,
    preheader: String,
}

pub fn archive(project: &Project, opts: &ArchiveOptions) -> Result<ArchiveReport, Failure> {
    let settings = &project.settings;
    let (pool, templates, issues) = project.parts(crate::project::With::Content).content()?;
    let mut problems = Vec::new();
    let out = project
        .root
        .join(opts.out.as_ref().unwrap_or(&settings.archive_dir));
    refuse_private(project, &out)?;
    let mut report = ArchiveReport {
        out: out.clone(),
        ..ArchiveReport::default()
    };

    let delivered: BTreeSet<NaiveDate> = if opts.all {
        issues.records.keys().copied().collect()
    } else {
        match crate::ledger::read(project)? {
            Some(l) => l.delivered_dates()?.into_iter().collect(),
            None => BTreeSet::new(),
        }
    };
    if delivered.is_empty() {
        report.note = Some(if opts.all {
            "issues/ has no records; run `dailyissue plan` first".into()
        } else {
            "no issue has been delivered yet; pass --all to publish every planned issue".into()
        });
    }
    let mut entries = Vec::new();
    for (date, stored) in issues.records.range(..) {
        if !delivered.contains(date) {
            continue;
        }
        problems.extend(
            stored
                .record
                .check_against(&pool, &stored.path, &stored.text),
        );
        let ctx = context::headline_context(
            settings,
            &pool,
            &stored.record.picks,
            stored.record.number,
            *date,
        );
        let subject = match &stored.record.subject {
            Some(s) => crate::project::subscribers::clean_line(s),
            None => {
                context::headline("subject", &settings.subject, &ctx, *date).unwrap_or_else(|p| {
                    problems.push(p);
                    String::new()
                })
            }
        };
        let preheader = context::headline("preheader", &settings.preheader, &ctx, *date)
            .unwrap_or_else(|p| {
                problems.push(p);
                String::new()
            });
        entries.push(Entry {
            stored,
            subject,
            preheader,
        });
    }
    if !problems.is_empty() {
        return Err(Failure::input(problems));
    }

    let site = Site::new(project, &pool, &templates, &entries);
    let files = site.build().map_err(Failure::one)?;
    report.issues = entries.len();
    report.item_pages = site.item_pages();
    write(&out, &files, &mut report)?;
    Ok(report)
}

/// Refuses to publish a folder that holds the project's private data (the
/// settings, the list, the ledger, the outbox, the DKIM key): `archive`
/// writes there and `serve` hands out everything in it.
pub fn refuse_private(project: &Project, dir: &Path) -> Result<(), Failure> {
    let private = crate::project::settings::private_inside(&project.settings, &project.root, dir);
    if private.is_empty() {
        return Ok(());
    }
    Err(Failure::Usage(crate::problem::Usage::ArchiveHoldsPrivate {
        dir: dir.to_path_buf(),
        private,
    }))
}

fn date_long(date: NaiveDate) -> String {
    date.format("%A, %B %-d, %Y").to_string()
}

struct Site<'a> {
    project: &'a Project,
    pool: &'a Pool,
    templates: &'a Templates,
    entries: &'a [Entry<'a>],
    /// For each section with pages: its featured items by slug, with the
    /// issues (indexes into `entries`) they appeared in.
    featured: BTreeMap<String, BTreeMap<String, Vec<usize>>>,
    html: HashMap<String, String>,
}

impl<'a> Site<'a> {
    fn new(
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
        for (i, e) in entries.iter().enumerate() {
            for (section, slug) in &e.stored.record.picks {
                if let Some(items) = featured.get_mut(section) {
                    items.entry(slug.clone()).or_default().push(i);
                }
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
            html,
        }
    }

    fn item_pages(&self) -> usize {
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
        ctx.insert("root".into(), Value::from("../".repeat(depth)));
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

    fn build(&self) -> Result<BTreeMap<String, Vec<u8>>, Problem> {
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
        files.insert("feed.xml".into(), self.feed().into_bytes());
        files.insert("sitemap.xml".into(), self.sitemap(&files).into_bytes());
        Ok(files)
    }

    fn issue_pages(&self, files: &mut BTreeMap<String, Vec<u8>>) -> Result<(), Problem> {
        for (i, e) in self.entries.iter().enumerate() {
            let record = &e.stored.record;
            let rel = format!("issues/{}/index.html", record.date);
            let root = "../../";
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
                let value = self.item(item, &[("href", Value::from(href))]);
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
                },
            );
            ctx.insert(
                "previous".into(),
                if i > 0 {
                    self.issue_summary(i - 1)
                } else {
                    Value::from(())
                },
            );
            ctx.insert(
                "next".into(),
                if i + 1 < self.entries.len() {
                    self.issue_summary(i + 1)
                } else {
                    Value::from(())
                },
            );
            files.insert(
                rel.clone(),
                self.render("web/issue.html", &rel, "issues", ctx)?,
            );
        }
        Ok(())
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
            let related: Vec<Value> =
                item.related
                    .iter()
                    .filter_map(|r| self.pool.find(r))
                    .map(|r| {
                        let href =
                            self.project.settings.section(&r.section).and_then(|s| {
                                self.href(s, &r.slug, root, Some(section.name.as_str()))
                            });
                        minijinja::context! { title => r.title.as_str(), href => href }
                    })
                    .collect();
            let value = self.item(item, &[]);
            let mut ctx = BTreeMap::new();
            ctx.insert("item".into(), value.clone());
            ctx.insert(section.name.clone(), value);
            ctx.insert("section".into(), context::section_value(section, None));
            ctx.insert("related".into(), Value::from(related));
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

    /// When an issue counts as published: its day at `send_time`, local time.
    fn published(&self, date: NaiveDate) -> chrono::DateTime<chrono::FixedOffset> {
        let s = &self.project.settings;
        let local = date.and_time(s.send_time);
        let dt = s
            .timezone
            .from_local_datetime(&local)
            .earliest()
            .unwrap_or_else(|| s.timezone.from_utc_datetime(&local));
        dt.fixed_offset()
    }

    fn feed(&self) -> String {
        use atom_syndication::{Content, Entry as AtomEntry, Feed, Link, Person, Text};
        let s = &self.project.settings;
        let mut entries = Vec::new();
        for i in (0..self.entries.len()).rev().take(FEED_ENTRIES) {
            let e = &self.entries[i];
            let record = &e.stored.record;
            let url = format!("{}/issues/{}/", s.url, record.date);
            let mut entry = AtomEntry::default();
            entry.set_id(url.clone());
            entry.set_title(Text::plain(format!("#{} {}", record.number, e.subject)));
            entry.set_updated(self.published(record.date));
            entry.set_published(Some(self.published(record.date)));
            let mut link = Link::default();
            link.set_href(url);
            link.set_rel("alternate");
            link.set_mime_type(Some("text/html".to_string()));
            entry.set_links(vec![link]);
            entry.set_summary(Some(Text::plain(e.preheader.clone())));
            let mut html = String::new();
            for (section, slug) in &record.picks {
                if let Some(item) = self.pool.get(section, slug) {
                    let mut title = String::new();
                    crate::html::escape(&item.title, &mut title);
                    html.push_str(&format!("<h2>{title}</h2>\n"));
                    html.push_str(self.html.get(slug).map_or("", String::as_str));
                }
            }
            let mut content = Content::default();
            content.set_content_type(Some("html".to_string()));
            content.set_value(Some(html));
            entry.set_content(Some(content));
            entries.push(entry);
        }
        let mut feed = Feed::default();
        feed.set_id(format!("{}/", s.url));
        feed.set_title(Text::plain(s.name.clone()));
        feed.set_subtitle(s.description.clone().map(Text::plain));
        let mut me = Link::default();
        me.set_href(format!("{}/feed.xml", s.url));
        me.set_rel("self");
        let mut site = Link::default();
        site.set_href(format!("{}/", s.url));
        site.set_rel("alternate");
        feed.set_links(vec![me, site]);
        let mut author = Person::default();
        author.set_name(s.name.clone());
        feed.set_authors(vec![author]);
        let updated = self
            .entries
            .last()
            .map(|e| self.published(e.stored.record.date))
            .unwrap_or_else(|| {
                self.published(NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default())
            });
        feed.set_updated(updated);
        feed.set_entries(entries);
        let mut out = feed.to_string();
        out.push('\n');
        out
    }

    fn sitemap(&self, files: &BTreeMap<String, Vec<u8>>) -> String {
        sitemap(&self.project.settings.url, files)
    }
}

/// `sitemap.xml`: one `<url>` per page (`…/index.html`), issues with their
/// date as `<lastmod>`. `base` may hold `&` or `'` (a path such as
/// `/news&views`), so every location is entity-escaped as the sitemap
/// protocol asks (quick-xml, already built for the Atom feed).
fn sitemap(base: &str, files: &BTreeMap<String, Vec<u8>>) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    for rel in files.keys().filter(|k| k.ends_with("index.html")) {
        let path = rel.trim_end_matches("index.html");
        let loc = quick_xml::escape::escape(format!("{base}/{path}"));
        let lastmod = rel
            .strip_prefix("issues/")
            .and_then(|r| r.split('/').next())
            .map(|d| format!("<lastmod>{}</lastmod>", quick_xml::escape::escape(d)))
            .unwrap_or_default();
        out.push_str(&format!("  <url><loc>{loc}</loc>{lastmod}</url>\n"));
    }
    out.push_str("</urlset>\n");
    out
}

/// Writes what changed, removes what a previous build wrote and this one
/// did not, and records the new manifest.
fn write(
    out: &Path,
    files: &BTreeMap<String, Vec<u8>>,
    report: &mut ArchiveReport,
) -> Result<(), Failure> {
    std::fs::create_dir_all(out)?;
    for (rel, bytes) in files {
        let path = out.join(rel);
        if std::fs::read(&path).is_ok_and(|old| old == *bytes) {
            report.unchanged += 1;
            continue;
        }
        atomic::write(&path, bytes)?;
        report.written += 1;
    }
    let manifest_path = out.join(MANIFEST);
    let previous = std::fs::read_to_string(&manifest_path).unwrap_or_default();
    for old in previous
        .lines()
        .filter(|l| !l.is_empty() && !files.contains_key(*l))
    {
        let rel = Path::new(old);
        if rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
            && out.join(rel).is_file()
        {
            std::fs::remove_file(out.join(rel))?;
            report.removed += 1;
            // Tidy empty folders left behind (issues/DATE/, page/N/).
            let mut dir = out.join(rel).parent().map(Path::to_path_buf);
            while let Some(d) = dir {
                if d == out || std::fs::remove_dir(&d).is_err() {
                    break;
                }
                dir = d.parent().map(Path::to_path_buf);
            }
        }
    }
    let manifest: String = files.keys().map(|k| format!("{k}\n")).collect();
    if previous != manifest {
        atomic::write(&manifest_path, manifest.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sitemap_escapes_locations() {
        let files: BTreeMap<String, Vec<u8>> = [
            ("index.html", ""),
            ("issues/2027-03-01/index.html", ""),
            ("style.css", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
        assert_eq!(
            sitemap("https://example.com/news&views'", &files),
            concat!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                "<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
                "  <url><loc>https://example.com/news&amp;views&apos;/</loc></url>\n",
                "  <url><loc>https://example.com/news&amp;views&apos;/issues/2027-03-01/</loc>",
                "<lastmod>2027-03-01</lastmod></url>\n",
                "</urlset>\n",
            )
        );
    }
}

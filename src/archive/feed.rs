//! The archive's Atom feed: the latest issues, each entry the web issue
//! itself — its content is what the issue page shows (the summary line and
//! every section's card in the settings' order, with the tool's link, the
//! term's sources and glossary page), rendered by the site with absolute
//! links — dated when its first copy went out (the ledger keeps that
//! instant; with local mornings, the zone whose morning comes first), else
//! at the issue's `send_time` in the newsletter's time zone. Built with
//! atom_syndication, which escapes the XML as the format requires.

use atom_syndication::{Content, Entry as AtomEntry, Feed, Link, Person, Text};
use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};

use crate::project::settings::Settings;

use super::Entry;

/// Issues in the feed, newest first.
pub(super) const FEED_ENTRIES: usize = 30;

/// `feed.xml` for the published `entries` (oldest first); `contents`
/// holds the latest issues' content as HTML, newest first, each with its
/// index into `entries`.
pub(super) fn atom(
    settings: &Settings,
    entries: &[Entry<'_>],
    contents: &[(usize, String)],
) -> String {
    let s = settings;
    let latest: Vec<AtomEntry> = contents
        .iter()
        .take(FEED_ENTRIES)
        .map(|(i, html)| entry(s, &entries[*i], html))
        .collect();
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
    // A feed without issues still needs a date that does not change
    // between builds.
    let updated = entries
        .last()
        .map(|e| when(s, e))
        .unwrap_or_else(|| published(s, NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default()));
    feed.set_updated(updated);
    feed.set_entries(latest);
    let mut out = feed.to_string();
    out.push('\n');
    out
}

/// One issue as a feed entry: linked to its page, summarised by its
/// preheader, its web content as the content.
fn entry(s: &Settings, e: &Entry<'_>, html: &str) -> AtomEntry {
    let record = &e.stored.record;
    let url = format!("{}/issues/{}/", s.url, record.date);
    let mut entry = AtomEntry::default();
    entry.set_id(url.clone());
    entry.set_title(Text::plain(format!("#{} {}", record.number, e.subject)));
    entry.set_updated(when(s, e));
    entry.set_published(Some(when(s, e)));
    let mut link = Link::default();
    link.set_href(url);
    link.set_rel("alternate");
    link.set_mime_type(Some("text/html".to_string()));
    entry.set_links(vec![link]);
    entry.set_summary(Some(Text::plain(e.preheader.clone())));
    let mut content = Content::default();
    content.set_content_type(Some("html".to_string()));
    content.set_value(Some(html.to_string()));
    entry.set_content(Some(content));
    entry
}

/// When an issue was published: when its first copy went out, shown in
/// the newsletter's zone; else its day at `send_time` there.
fn when(s: &Settings, e: &Entry<'_>) -> DateTime<FixedOffset> {
    match e.published {
        Some(at) => at.with_timezone(&s.timezone).fixed_offset(),
        None => published(s, e.stored.record.date),
    }
}

/// When an issue counts as published: its day at `send_time`, local time.
fn published(s: &Settings, date: NaiveDate) -> DateTime<FixedOffset> {
    let local = date.and_time(s.send_time);
    let dt = s
        .timezone
        .from_local_datetime(&local)
        .earliest()
        .unwrap_or_else(|| s.timezone.from_utc_datetime(&local));
    dt.fixed_offset()
}

//! The top-level values that name the newsletter and its sender: `name`,
//! the archive's `url`, the `from` and `reply_to` mailboxes, the
//! `postal_address` the law asks for, the one-line `description`, the
//! `subject` and `preheader` templates (and their defaults), `list_id` and
//! `feedback_id`. Most of them reach mail headers or every issue record,
//! so each is refused here when it would break one later.

use lettre::message::Mailbox;
use toml::Spanned;

use super::Problems;
use super::raw::Raw;
use super::section::{self, SectionSettings};
use super::values::{has_control, is_host, url_problem};

/// The checked values that other concerns build on.
pub(super) struct Newsletter {
    /// Base URL of the web archive, without a trailing slash.
    pub url: String,
    /// `None` when invalid (a problem was recorded).
    pub from: Option<Mailbox>,
    pub reply_to: Option<Mailbox>,
}

/// Checks the top-level values other than the schedule's and `list_id`.
pub(super) fn check(raw: &Raw, problems: &mut Problems) -> Newsletter {
    let from = mailbox(problems, &raw.from, "from");
    let reply_to = raw
        .reply_to
        .as_ref()
        .and_then(|r| mailbox(problems, r, "reply_to"));
    let url = url(problems, &raw.url);
    name(problems, &raw.name);
    postal_address(problems, &raw.postal_address);
    if let Some(subject) = &raw.subject
        && subject.get_ref().trim().is_empty()
    {
        problems.bad(
            subject.span(),
            "`subject` must not be empty: it is the template of every issue's subject, e.g. \"{{ term.title }}, and more\"".into(),
        );
    }
    if let Some(d) = &raw.description
        && (d.get_ref().trim().is_empty() || has_control(d.get_ref()))
    {
        problems.bad(
            d.span(),
            "`description` must be one line of text without control characters: it is the feed's subtitle and the pages' description".into(),
        );
    }
    if let Some(f) = &raw.feedback_id
        && (f.get_ref().is_empty() || !f.get_ref().chars().all(|c| c.is_ascii_graphic()))
    {
        problems.bad(
            f.span(),
            "`feedback_id` must be printable ASCII without spaces, such as \"issue:daily:example\" (it becomes the Feedback-ID header)".into(),
        );
    }
    Newsletter {
        url,
        from,
        reply_to,
    }
}

fn mailbox(problems: &mut Problems, field: &Spanned<String>, key: &str) -> Option<Mailbox> {
    match field.get_ref().parse::<Mailbox>() {
        Ok(m) => Some(m),
        Err(e) => {
            problems.bad(
                field.span(),
                format!(
                    "`{key}` is not a valid mailbox ({e}): write \"Name <address@example.com>\" or a bare address"
                ),
            );
            None
        }
    }
}

/// The archive's base URL without a trailing slash.
fn url(problems: &mut Problems, raw: &Spanned<String>) -> String {
    let url = raw.get_ref().trim_end_matches('/').to_string();
    if let Some(why) = url_problem(&url, false) {
        let why = if url.starts_with("https://") || url.starts_with("http://") {
            format!(": {why}")
        } else {
            String::new()
        };
        problems.bad(
            raw.span(),
            format!(
                "`url` must be an absolute http(s) URL such as \"https://example.com\", not `{}`{why}",
                raw.get_ref().escape_debug()
            ),
        );
    }
    url
}

fn name(problems: &mut Problems, name: &Spanned<String>) {
    if name.get_ref().trim().is_empty() {
        problems.bad(name.span(), "`name` must not be empty".into());
    } else if has_control(name.get_ref()) {
        problems.bad(
            name.span(),
            "`name` must be one line without control characters: it appears in headers and in every issue record".into(),
        );
    }
}

/// Line breaks are allowed: an address takes several lines.
fn postal_address(problems: &mut Problems, address: &Spanned<String>) {
    if address.get_ref().trim().is_empty() {
        problems.bad(
            address.span(),
            "`postal_address` must not be empty: bulk mail must carry a postal address (CAN-SPAM)"
                .into(),
        );
    } else if address
        .get_ref()
        .chars()
        .any(|c| c.is_control() && c != '\n')
    {
        problems.bad(
            address.span(),
            "`postal_address` must not contain control characters other than line breaks".into(),
        );
    }
}

/// The List-Id: as written (a dotted name), or made from the name's slug
/// and the archive's host.
pub(super) fn list_id(raw: &Raw, url: &str, problems: &mut Problems) -> String {
    if let Some(l) = &raw.list_id {
        if !is_host(l.get_ref()) || !l.get_ref().contains('.') {
            problems.bad(
                l.span(),
                "`list_id` must be a dotted name such as \"daily.example.com\" (ASCII letters, digits, - and dots) without <>, spaces or line breaks".into(),
            );
        }
        return l.get_ref().clone();
    }
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split(['/', ':'])
        .next()
        .unwrap_or("")
        .to_string();
    let label = crate::project::slug::slugify(raw.name.get_ref());
    let label = if label.is_empty() {
        "daily".to_string()
    } else {
        label
    };
    format!("{label}.{host}")
}

/// The subject when the settings give none: the sample's for its three
/// sections; otherwise the titles of the day's items, in section order.
pub(super) fn default_subject(sections: &[SectionSettings]) -> String {
    if section::are_the_defaults(sections) {
        "{{ term.title }}, {{ tool.title }}, and one tip".into()
    } else {
        "{{ sections | map(attribute='item.title') | join(', ') }}".into()
    }
}

/// The preheader when the settings give none: the sample's term summary;
/// otherwise the first section's item's `summary`, or its title.
pub(super) fn default_preheader(sections: &[SectionSettings]) -> String {
    if section::are_the_defaults(sections) {
        "{{ term.summary }}".into()
    } else {
        "{% for s in sections[:1] %}{{ s.item.summary | default(s.item.title) }}{% endfor %}".into()
    }
}

//! The preflight: what mailbox providers and the law look for in an issue
//! before it goes out. Takes the prepared email and the list; gives the
//! problems (issue-level ones stop both `check` and `send`; per-reader ones
//! are `check`'s, blamed on the CSV row) and warnings.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use crate::problem::{Failure, Problem};
use crate::project::subscribers::{List, Subscriber};
use crate::render::email::{CopyError, Email, Rendered};

/// What the preflight found.
#[derive(Debug, Default)]
pub struct Preflight {
    pub problems: Vec<Problem>,
    pub warnings: Vec<String>,
    /// Active readers on the list.
    pub readers: usize,
    pub largest_html: usize,
    /// Checks the issue itself failed, so that the per-reader part blames a
    /// row only for what that row's values cause.
    failed: BTreeSet<Check>,
}

impl Preflight {
    /// The verdict for `send`: what makes the issue undeliverable stops the
    /// run (exit 2, nothing sent) exactly as it fails `check`.
    pub fn into_result(self) -> Result<Preflight, Failure> {
        if self.problems.is_empty() {
            Ok(self)
        } else {
            Err(Failure::input(self.problems))
        }
    }
}

/// Gmail clips messages whose HTML is larger than about 102 KB.
pub const MAX_HTML: usize = 100 * 1024;

/// One check on one reader's copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Check {
    Size,
    UnsubscribeHtml,
    UnsubscribeText,
    PostalHtml,
    PostalText,
}

/// The checks a reader's copy fails: size, the unsubscribe link in both
/// parts, the postal address in both parts.
fn failed_checks(email: &Email, reader: &Subscriber, copy: &Rendered) -> Vec<Check> {
    let settings = email.settings();
    let mut postal_html = String::new();
    crate::html::escape(&settings.postal_address, &mut postal_html);
    let url = email.unsubscribe_url(reader);
    let mut url_html = String::new();
    crate::html::escape(&url, &mut url_html);
    [
        (Check::Size, copy.html.len() <= MAX_HTML),
        (Check::UnsubscribeHtml, copy.html.contains(&url_html)),
        (Check::UnsubscribeText, copy.text.contains(&url)),
        (Check::PostalHtml, copy.html.contains(&postal_html)),
        (
            Check::PostalText,
            copy.text.contains(&settings.postal_address),
        ),
    ]
    .into_iter()
    .filter_map(|(check, ok)| (!ok).then_some(check))
    .collect()
}

/// A failed check as a problem of the issue, blamed on the template.
fn issue_problem(email: &Email, check: Check, largest_html: usize) -> Problem {
    let html = email.templates().origin("email.html");
    let text = email.templates().origin("email.txt");
    match check {
        Check::Size => Problem::new(
            html,
            None,
            format!(
                "the HTML of the issue of {} is {} KB; Gmail clips messages over about 102 KB, hiding the footer and unsubscribe link. Shorten the content or the template",
                email.date,
                largest_html / 1024
            ),
        ),
        Check::UnsubscribeHtml => Problem::new(
            html,
            None,
            "the HTML part has no unsubscribe link: add <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a> to the footer",
        ),
        Check::UnsubscribeText => Problem::new(
            text,
            None,
            "the text part has no unsubscribe link: add {{ unsubscribe_url }} to the footer",
        ),
        Check::PostalHtml => Problem::new(
            html,
            None,
            "the HTML part does not show the postal address (required for bulk mail): add {{ newsletter.postal_address }} to the footer",
        ),
        Check::PostalText => Problem::new(
            text,
            None,
            "the text part does not show the postal address (required for bulk mail): add {{ newsletter.postal_address }} to the footer",
        ),
    }
}

/// A failed check as a problem of one row: the issue passes it, this
/// reader's values make it fail.
fn row_problem(email: &Email, reader: &Subscriber, check: Check, copy: &Rendered) -> Problem {
    let what = match check {
        Check::Size => format!(
            "is {} KB, over the 100 KB at which Gmail clips messages, because of this row's values; shorten them",
            copy.html.len() / 1024
        ),
        Check::UnsubscribeHtml => {
            "has no unsubscribe link in its HTML part: the template drops it for this row's values"
                .into()
        }
        Check::UnsubscribeText => {
            "has no unsubscribe link in its text part: the template drops it for this row's values"
                .into()
        }
        Check::PostalHtml | Check::PostalText => {
            "does not show the postal address: the template drops it for this row's values".into()
        }
    };
    Problem::at(
        &email.settings().subscribers,
        reader.line as usize,
        format!("the copy for {} {what}", reader.email),
    )
}

/// The issue-level preflight, run by both `check` and `send`: what mailbox
/// providers and the law look for that makes the issue itself
/// undeliverable — size, the unsubscribe link in both parts, the postal
/// address, the list headers, the DKIM signature. It renders one reader per
/// personalisation *shape* (which personal values are empty), so its cost
/// does not grow with the list; warns on subject and preheader lengths and
/// plain-http links.
pub fn preflight(email: &Email, list: &List, record_path: &Path) -> Preflight {
    let mut report = Preflight::default();
    // One reader per shape; an empty list still gets its issue checked, as
    // the sample reader.
    let sample = crate::render::email::sample_reader(list.columns.len());
    report.readers = list.active;
    let mut shapes: Vec<&Subscriber> = list.samples().iter().collect();
    if shapes.is_empty() {
        report.warnings.push(
            "the subscriber list has no active subscribers; checked the issue as a sample reader"
                .into(),
        );
        shapes.push(&sample);
    }
    // The first reader's HTML, kept for the link check below.
    let mut first_html: Option<String> = None;
    let mut render_errors = HashSet::new();
    for reader in &shapes {
        match email.render(reader) {
            Ok(copy) => {
                report.largest_html = report.largest_html.max(copy.html.len());
                report.failed.extend(failed_checks(email, reader, &copy));
                if first_html.is_none() {
                    first_html = Some(copy.html);
                }
            }
            Err(p) => {
                if render_errors.insert(p.to_string()) {
                    report.problems.push(p);
                }
            }
        }
    }
    for check in report.failed.clone() {
        report
            .problems
            .push(issue_problem(email, check, report.largest_html));
    }
    match email.message(shapes[0]) {
        Ok(message) => {
            let raw = String::from_utf8_lossy(&message).into_owned();
            let head = raw
                .split("\r\n\r\n")
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            for h in ["list-unsubscribe:", "list-unsubscribe-post:", "list-id:"] {
                if !head.contains(&format!("\r\n{h}")) {
                    report.problems.push(Problem::new(
                        record_path,
                        None,
                        format!("messages lack the {} header", h.trim_end_matches(':')),
                    ));
                }
            }
            if email.signed() && !head.starts_with("dkim-signature:") {
                report.problems.push(Problem::new(
                    record_path,
                    None,
                    "messages are not DKIM-signed although [dkim] is set",
                ));
            }
        }
        Err(CopyError::Render(p)) => {
            if render_errors.insert(p.to_string()) {
                report.problems.push(p);
            }
        }
        Err(e @ (CopyError::Build(_) | CopyError::Sign(_))) => {
            report
                .problems
                .push(Problem::new(record_path, None, e.to_string()));
        }
    }
    let subject_len = email.subject.chars().count();
    if subject_len > 78 {
        report.warnings.push(format!(
            "the subject of {} is {subject_len} characters; phones show about 40-60 and long subjects get cut: \"{}\"",
            email.date, email.subject
        ));
    }
    let pre_len = email.preheader.chars().count();
    if !(40..=140).contains(&pre_len) {
        report.warnings.push(format!(
            "the preheader of {} is {pre_len} characters; inboxes show 40-140, so aim for that range",
            email.date
        ));
    }
    if let Some(html) = &first_html {
        let plain: Vec<&str> = html
            .split("href=\"http://")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .take(3)
            .collect();
        if !plain.is_empty() {
            report.warnings.push(format!(
                "links without https (mail clients warn, some providers score them as spam): http://{}",
                plain.join(", http://")
            ));
        }
    }
    report
}

/// The per-reader preflight, `check` only: renders the issue for every
/// active reader and reports, as a problem of that CSV row, what only the
/// row's values cause (checks the issue itself passed). `send` skips no one
/// for these: the issue-level part has already vouched for every shape, and
/// the loader's field limit bounds what a row can add.
pub fn preflight_readers(email: &Email, list: &List, report: &mut Preflight) {
    let known: HashSet<String> = report.problems.iter().map(|p| p.to_string()).collect();
    for reader in list.active() {
        let reader = &reader;
        let copy = match email.render(reader) {
            Ok(copy) => copy,
            Err(p) => {
                if !known.contains(&p.to_string()) {
                    report.problems.push(Problem::at(
                        &email.settings().subscribers,
                        reader.line as usize,
                        format!("this row's values break the template: {p}"),
                    ));
                }
                continue;
            }
        };
        report.largest_html = report.largest_html.max(copy.html.len());
        for check in failed_checks(email, reader, &copy) {
            if !report.failed.contains(&check) {
                report
                    .problems
                    .push(row_problem(email, reader, check, &copy));
            }
        }
    }
}

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
    let mut report = Preflight {
        readers: list.active,
        ..Preflight::default()
    };
    // One reader per shape; an empty list still gets its issue checked, as
    // the sample reader.
    let sample = crate::render::email::sample_reader(list.columns.len());
    let mut shapes: Vec<&Subscriber> = list.samples().iter().collect();
    if shapes.is_empty() {
        report.warnings.push(
            "the subscriber list has no active subscribers; checked the issue as a sample reader"
                .into(),
        );
        shapes.push(&sample);
    }
    // A broken template fails every shape (and the message) the same way:
    // its problem is reported once.
    let mut render_errors = HashSet::new();
    let first_html = report.check_copies(email, &shapes, &mut render_errors);
    report.check_message(email, shapes[0], record_path, &mut render_errors);
    report.warnings.extend(headline_warnings(email));
    report
        .warnings
        .extend(first_html.as_deref().and_then(plain_http_links));
    report
}

impl Preflight {
    /// Renders each shape's reader and runs the checks on the copy; a
    /// check any copy fails is a problem of the issue. Gives the first
    /// reader's HTML, for the link warning.
    fn check_copies(
        &mut self,
        email: &Email,
        shapes: &[&Subscriber],
        render_errors: &mut HashSet<String>,
    ) -> Option<String> {
        let mut first_html: Option<String> = None;
        for reader in shapes {
            match email.render(reader) {
                Ok(copy) => {
                    self.largest_html = self.largest_html.max(copy.html.len());
                    self.failed.extend(failed_checks(email, reader, &copy));
                    if first_html.is_none() {
                        first_html = Some(copy.html);
                    }
                }
                Err(p) => self.render_problem(p, render_errors),
            }
        }
        for check in self.failed.clone() {
            self.problems
                .push(issue_problem(email, check, self.largest_html));
        }
        first_html
    }

    /// Builds `reader`'s complete message, as `send` would, and checks its
    /// head: the list headers, and the DKIM signature when keys are set.
    fn check_message(
        &mut self,
        email: &Email,
        reader: &Subscriber,
        record_path: &Path,
        render_errors: &mut HashSet<String>,
    ) {
        let message = match email.message(reader) {
            Ok(message) => message,
            Err(CopyError::Render(p)) => return self.render_problem(p, render_errors),
            Err(e @ (CopyError::Build(_) | CopyError::Sign(_))) => {
                self.problems
                    .push(Problem::new(record_path, None, e.to_string()));
                return;
            }
        };
        let raw = String::from_utf8_lossy(&message).into_owned();
        let head = raw
            .split("\r\n\r\n")
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        for h in ["list-unsubscribe:", "list-unsubscribe-post:", "list-id:"] {
            if !head.contains(&format!("\r\n{h}")) {
                self.problems.push(Problem::new(
                    record_path,
                    None,
                    format!("messages lack the {} header", h.trim_end_matches(':')),
                ));
            }
        }
        if email.signed() && !head.starts_with("dkim-signature:") {
            self.problems.push(Problem::new(
                record_path,
                None,
                "messages are not DKIM-signed although [dkim] is set",
            ));
        }
    }

    /// A render error, unless the same one was reported already.
    fn render_problem(&mut self, p: Problem, seen: &mut HashSet<String>) {
        if seen.insert(p.to_string()) {
            self.problems.push(p);
        }
    }
}

/// Subject and preheader lengths that inboxes cut or show badly.
fn headline_warnings(email: &Email) -> Vec<String> {
    let mut warnings = Vec::new();
    let subject_len = email.subject.chars().count();
    if subject_len > 78 {
        warnings.push(format!(
            "the subject of {} is {subject_len} characters; phones show about 40-60 and long subjects get cut: \"{}\"",
            email.date, email.subject
        ));
    }
    let pre_len = email.preheader.chars().count();
    if !(40..=140).contains(&pre_len) {
        warnings.push(format!(
            "the preheader of {} is {pre_len} characters; inboxes show 40-140, so aim for that range",
            email.date
        ));
    }
    warnings
}

/// The first few plain-http links of a copy's HTML, as a warning.
fn plain_http_links(html: &str) -> Option<String> {
    let plain: Vec<&str> = html
        .split("href=\"http://")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .take(3)
        .collect();
    (!plain.is_empty()).then(|| {
        format!(
            "links without https (mail clients warn, some providers score them as spam): http://{}",
            plain.join(", http://")
        )
    })
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

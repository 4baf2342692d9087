//! Splicing: a reader's copy made by concatenation, not by rendering.
//!
//! Why it exists: speed. Rendering the templates and inlining the CSS for
//! every reader would make each copy cost a full render; instead the email
//! renders once per *shape* and a copy is pre-encoded literal segments with
//! the reader's few values encoded between them (see BENCHMARKS.md,
//! "Rendering"). A shape is the set of personal values (address, name, CSV
//! columns, unsubscribe link) that are empty for a reader: templates may test
//! a value (`{% if subscriber.name %}`), so each shape is rendered once, with
//! a [`marker`] wherever a non-empty value goes. [`split`] cuts that render at
//! the markers into literal segments, stored decoded (for previews) and
//! already quoted-printable encoded, each encoded segment ending at a line
//! boundary (`mail::qp::end_line`) so that a value can be encoded and spliced
//! in between ([`splice_encoded`]). No template, Markdown, CSS or body
//! encoding work happens per recipient.
//!
//! Its correctness guard: a spliced copy is right only if every reader of a
//! shape would get from a full render exactly what the marker stood for.
//! That holds when the email templates only print personal values or test
//! them for emptiness, which `project::templates::only_printed` checks
//! (`Templates::personal_values_only_printed`); a comparison, a filter or a
//! loop on a personal value turns splicing off for the issue. A marker
//! damaged on its way through a template (say `|truncate`) makes [`split`]
//! give `None`. Either way the shape is [`Shape::Direct`]: every reader of it
//! is rendered in full, slower but never wrong.

/// Markers are Unicode private-use characters, which text does not
/// normally hold.
const MARK_OPEN: char = '\u{E000}';
const MARK_CLOSE: char = '\u{E001}';

/// What a template prints where the value of `slot` goes.
fn marker(slot: usize) -> String {
    format!("{MARK_OPEN}{slot}{MARK_CLOSE}")
}

/// The stand-in values that render a shape: a marker for each slot, or
/// nothing where the reader's value is empty.
pub(super) fn markers(empty: &[bool]) -> Vec<String> {
    empty
        .iter()
        .enumerate()
        .map(|(i, empty)| if *empty { String::new() } else { marker(i) })
        .collect()
}

/// One part (HTML or text) of one shape: literals with slots between them.
#[derive(Debug)]
pub(super) struct Part {
    /// Decoded literal text, for previews.
    literals: Vec<String>,
    /// The same literals quoted-printable encoded, each ending at a line
    /// boundary so that values can be encoded and spliced in between.
    encoded: Vec<Vec<u8>>,
    /// `slots[i]` sits between `literals[i]` and `literals[i + 1]`.
    slots: Vec<usize>,
}

/// How the readers of one shape get their copy.
#[derive(Debug)]
pub(super) enum Shape {
    Spliced {
        html: Part,
        text: Part,
    },
    /// A template consumed a marker, or splicing is off for the issue;
    /// render each reader in full.
    Direct,
}

impl Shape {
    /// The shape of a render made with [`markers`] for `slots` values:
    /// spliced when the templates allow it (`allowed`) and both parts kept
    /// every marker intact.
    pub(super) fn cut(html: &str, text: &str, slots: usize, allowed: bool) -> Shape {
        if !allowed {
            return Shape::Direct;
        }
        match (split(html, slots), split(text, slots)) {
            (Some(html), Some(text)) => Shape::Spliced { html, text },
            _ => Shape::Direct,
        }
    }
}

/// Cuts rendered output at markers. `None` if a marker was damaged.
fn split(rendered: &str, slots: usize) -> Option<Part> {
    let mut literals = Vec::new();
    let mut found = Vec::new();
    let mut rest = rendered;
    while let Some(open) = rest.find(MARK_OPEN) {
        literals.push(rest[..open].to_string());
        let after = &rest[open + MARK_OPEN.len_utf8()..];
        let close = after.find(MARK_CLOSE)?;
        let slot: usize = after[..close].parse().ok()?;
        if slot >= slots {
            return None;
        }
        found.push(slot);
        rest = &after[close + MARK_CLOSE.len_utf8()..];
    }
    if rest.contains(MARK_CLOSE) {
        return None;
    }
    literals.push(rest.to_string());
    let encoded = literals
        .iter()
        .map(|l| {
            let mut out = Vec::new();
            crate::mail::qp::encode(l, &mut out);
            crate::mail::qp::end_line(&mut out);
            out
        })
        .collect();
    Some(Part {
        literals,
        encoded,
        slots: found,
    })
}

/// A reader's part, decoded: the literals with `values` (by slot) between
/// them, HTML-escaped in the HTML part.
pub(super) fn splice(part: &Part, values: &[String], html: bool) -> String {
    let mut out = String::new();
    for (i, lit) in part.literals.iter().enumerate() {
        out.push_str(lit);
        if let Some(&slot) = part.slots.get(i) {
            if html {
                crate::html::escape(&values[slot], &mut out);
            } else {
                out.push_str(&values[slot]);
            }
        }
    }
    out
}

/// A reader's part, quoted-printable encoded for MIME: the pre-encoded
/// literals with each value encoded between them.
pub(super) fn splice_encoded(part: &Part, values: &[String], html: bool) -> Vec<u8> {
    let size: usize = part.encoded.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(size + 256);
    let mut escaped = String::new();
    for (i, lit) in part.encoded.iter().enumerate() {
        out.extend_from_slice(lit);
        if let Some(&slot) = part.slots.get(i) {
            let value = if html {
                escaped.clear();
                crate::html::escape(&values[slot], &mut escaped);
                escaped.as_str()
            } else {
                values[slot].as_str()
            };
            crate::mail::qp::encode(value, &mut out);
            crate::mail::qp::end_line(&mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_splice_round_trip() {
        let part =
            split(&format!("Hi {}!\nBye {}.\n", marker(1), marker(0)), 2).expect("markers intact");
        let values = vec!["<a@b.c>".to_string(), "Ann & Bo".to_string()];
        assert_eq!(
            splice(&part, &values, false),
            "Hi Ann & Bo!\nBye <a@b.c>.\n"
        );
        assert_eq!(
            splice(&part, &values, true),
            "Hi Ann &amp; Bo!\nBye &lt;a@b.c&gt;.\n"
        );
    }

    #[test]
    fn damaged_markers_are_detected() {
        assert!(split(&format!("x{MARK_OPEN}1"), 2).is_none());
        assert!(split(&format!("x{MARK_OPEN}9{MARK_CLOSE}"), 2).is_none());
        assert!(split(&format!("x1{MARK_CLOSE}"), 2).is_none());
    }
}

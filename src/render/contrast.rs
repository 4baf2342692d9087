//! (Tests only.) The colour contrast of the built-in stylesheets, read from
//! the CSS itself: every text colour against the background it sits on,
//! in light mode and in dark mode (`prefers-color-scheme: dark`), must meet
//! WCAG 2 AA for normal text, 4.5:1. The ratios are written out in the
//! comments at the top of `email.css` and `web/style.css`; axe-core checks
//! the rendered pages the same way (`scripts/a11y`).
//!
//! The CSS reader here knows only what those two files use: plain rules,
//! one `@media (prefers-color-scheme: dark)` block, hex colours, and custom
//! properties on `:root`.

use crate::project::templates::DEFAULTS;

/// WCAG 2 AA for normal-size text.
const AA: f64 = 4.5;

fn stylesheet(name: &str) -> &'static str {
    DEFAULTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, src)| *src)
        .expect("built-in stylesheet")
}

/// The stylesheet's rules outside any `@media` block, and the rules of
/// its dark-mode block.
fn split_modes(css: &str) -> (String, String) {
    let css = strip_comments(css);
    let mut light = String::new();
    let mut dark = String::new();
    let mut rest = css.as_str();
    while let Some(at) = rest.find("@media") {
        light.push_str(&rest[..at]);
        let open = at + rest[at..].find('{').expect("media block");
        let mut depth = 0;
        let mut end = open;
        for (i, c) in rest[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i;
                        break;
                    }
                }
                _ => {}
            }
        }
        if rest[at..open].contains("prefers-color-scheme: dark") {
            dark.push_str(&rest[open + 1..end]);
        }
        rest = &rest[end + 1..];
    }
    light.push_str(rest);
    (light, dark)
}

fn strip_comments(css: &str) -> String {
    let mut out = String::new();
    let mut rest = css;
    while let Some(at) = rest.find("/*") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find("*/").expect("comment closed");
        rest = &rest[at + end + 2..];
    }
    out.push_str(rest);
    out
}

/// The last value `rules` give `property` for exactly `selector` (one of
/// a rule's comma-separated selectors), without `!important`.
fn declared(rules: &str, selector: &str, property: &str) -> Option<String> {
    let mut found = None;
    for rule in rules.split('}') {
        let Some((selectors, body)) = rule.split_once('{') else {
            continue;
        };
        if !selectors.split(',').any(|s| s.trim() == selector) {
            continue;
        }
        for decl in body.split(';') {
            if let Some((p, v)) = decl.split_once(':')
                && p.trim() == property
            {
                found = Some(v.replace("!important", "").trim().to_string());
            }
        }
    }
    found
}

/// `#rgb` or `#rrggbb` as linear-light relative luminance (WCAG 2).
fn luminance(hex: &str) -> f64 {
    let hex = hex.trim_start_matches('#');
    let hex: String = if hex.len() == 3 {
        hex.chars().flat_map(|c| [c, c]).collect()
    } else {
        hex.to_string()
    };
    assert_eq!(hex.len(), 6, "not a hex colour: {hex}");
    let channel = |i: usize| {
        let v = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")) / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
}

/// The WCAG 2 contrast ratio of two colours, 1 to 21.
fn ratio(a: &str, b: &str) -> f64 {
    let (x, y) = (luminance(a), luminance(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

#[test]
fn contrast_ratios_follow_wcag() {
    assert!((ratio("#000000", "#ffffff") - 21.0).abs() < 1e-9);
    assert!((ratio("#fff", "#ffffff") - 1.0).abs() < 1e-9);
    // The footer grey reported in issue 14, and the one that replaced it.
    assert!((ratio("#6b6f7b", "#f3f1ec") - 4.45).abs() < 0.01);
    assert!((ratio("#5d6270", "#f3f1ec") - 5.40).abs() < 0.01);
}

#[test]
fn email_text_meets_wcag_aa_in_light_and_dark_mode() {
    let (light, dark) = split_modes(stylesheet("email.css"));
    // (text: selector and property, background: selector and property)
    let pairs: &[(&str, &str, &str, &str)] = &[
        (".dateline", "color", ".page", "background-color"),
        (".promise", "color", ".page", "background-color"),
        (".promise a", "color", ".page", "background-color"),
        (".greeting", "color", ".page", "background-color"),
        (".intro", "color", ".page", "background-color"),
        (".feedback", "color", ".page", "background-color"),
        (".feedback a", "color", ".page", "background-color"),
        (".footer", "color", ".page", "background-color"),
        (".footer a", "color", ".page", "background-color"),
        (".brand a", "color", ".page", "background-color"),
        (".card-body", "color", ".card", "background-color"),
        (".summary", "color", ".card", "background-color"),
        (".audience", "color", ".card", "background-color"),
        ("h2", "color", ".card", "background-color"),
        ("h3", "color", ".card", "background-color"),
        (".title-link", "color", ".card", "background-color"),
        (".label", "color", ".card", "background-color"),
        (".label-tool", "color", ".card", "background-color"),
        (".label-tip", "color", ".card", "background-color"),
        ("a", "color", ".card", "background-color"),
        (".meta", "color", ".card", "background-color"),
        (".tool-fact-name", "color", ".card", "background-color"),
        (".tool-fact", "color", ".card", "background-color"),
        (".fit-yes", "color", ".fit-yes", "background-color"),
        (".fit-no", "color", ".fit-no", "background-color"),
        (".button a", "color", ".button", "background-color"),
        (".dev-note", "color", ".dev-note", "background-color"),
    ];
    let mut failures = Vec::new();
    for (mode, overrides) in [("light", ""), ("dark", dark.as_str())] {
        let value = |selector: &str, property: &str| {
            declared(overrides, selector, property)
                .or_else(|| declared(&light, selector, property))
                .unwrap_or_else(|| panic!("{mode}: {selector} has no {property}"))
        };
        for (fg, fg_prop, bg, bg_prop) in pairs {
            let (f, b) = (value(fg, fg_prop), value(bg, bg_prop));
            let r = ratio(&f, &b);
            if r < AA {
                failures.push(format!("{mode}: {fg} {f} on {bg} {b} is {r:.2}:1"));
            }
        }
    }
    assert!(failures.is_empty(), "below 4.5:1: {failures:#?}");
}

#[test]
fn archive_text_meets_wcag_aa_in_light_and_dark_mode() {
    let (light, dark) = split_modes(stylesheet("web/style.css"));
    let pairs: &[(&str, &str)] = &[
        ("--ink", "--card"),
        ("--ink", "--bg"),
        ("--ink", "--code"),
        ("--head", "--card"),
        ("--head", "--bg"),
        ("--muted", "--card"),
        ("--muted", "--bg"),
        ("--link", "--card"),
        ("--link", "--bg"),
        ("--term", "--card"),
        ("--tool", "--card"),
        ("--tip", "--card"),
        ("--yes-ink", "--yes-bg"),
        ("--no-ink", "--no-bg"),
    ];
    let mut failures = Vec::new();
    for (mode, overrides) in [("light", ""), ("dark", dark.as_str())] {
        let var = |name: &str| {
            declared(overrides, ":root", name)
                .or_else(|| declared(&light, ":root", name))
                .unwrap_or_else(|| panic!("{mode}: no {name}"))
        };
        for (fg, bg) in pairs {
            let r = ratio(&var(fg), &var(bg));
            if r < AA {
                failures.push(format!("{mode}: {fg} on {bg} is {r:.2}:1"));
            }
        }
        // The button keeps its colours in both modes.
        let button = |p: &str| declared(&light, ".button", p).expect("button colours");
        let r = ratio(&button("color"), &button("background"));
        if r < AA {
            failures.push(format!("{mode}: the button is {r:.2}:1"));
        }
    }
    assert!(failures.is_empty(), "below 4.5:1: {failures:#?}");
}

#[test]
fn the_css_reader_finds_declarations_and_the_dark_block() {
    let (light, dark) = split_modes(
        "/* x { color: #000 } */ a, .b { color: #111; }\n@media (max-width: 9px) { a { color: #222 !important; } }\n@media (prefers-color-scheme: dark) { .b { color: #333 !important; } }\n",
    );
    assert_eq!(declared(&light, "a", "color").as_deref(), Some("#111"));
    assert_eq!(declared(&light, ".b", "color").as_deref(), Some("#111"));
    assert_eq!(declared(&dark, ".b", "color").as_deref(), Some("#333"));
    assert_eq!(declared(&dark, "a", "color"), None);
    assert_eq!(declared(&light, "x", "color"), None);
}

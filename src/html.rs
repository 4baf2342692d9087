//! HTML escaping, the one rule shared by the templates' autoescape, the
//! email's personal values and `serve`'s pages: `& < > " '` become
//! entities, nothing else changes (so URLs in attributes stay readable).
//! pulldown-cmark's own escaper does exactly that; minijinja's
//! `HtmlEscape` would also turn every `/` into `&#x2f;`.

pub fn escape(s: &str, out: &mut String) {
    // Writing to a String cannot fail.
    let _ = pulldown_cmark_escape::escape_html(out, s);
}

/// [`escape`] into a new string.
pub fn escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape(s, &mut out);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_what_html_needs_and_nothing_else() {
        assert_eq!(
            super::escaped("<a href=\"/x?a=1&b='2'\">"),
            "&lt;a href=&quot;/x?a=1&amp;b=&#39;2&#39;&quot;&gt;"
        );
        assert_eq!(super::escaped("café 🙂 / plain"), "café 🙂 / plain");
    }
}

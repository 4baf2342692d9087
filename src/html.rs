//! HTML escaping, the one rule shared by the templates' autoescape, the
//! email's personal values and `serve`'s pages: `& < > " '` become
//! entities, nothing else changes (so URLs in attributes stay readable).

pub fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
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
            "&lt;a href=&quot;/x?a=1&amp;b=&#x27;2&#x27;&quot;&gt;"
        );
    }
}

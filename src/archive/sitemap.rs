//! The archive's `sitemap.xml`, from the paths of the files built.

use std::collections::BTreeMap;

/// `sitemap.xml`: one `<url>` per page (`…/index.html`), issues with their
/// date as `<lastmod>`. `base` may hold `&` or `'` (a path such as
/// `/news&views`), so every location is entity-escaped as the sitemap
/// protocol asks (quick-xml, already built for the Atom feed).
pub(super) fn sitemap(base: &str, files: &BTreeMap<String, Vec<u8>>) -> String {
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

//! Slugs: the names of content items (file stems), of pages and of
//! `related` links, and the label of the default `list_id`. Lower-case
//! ASCII letters and digits joined by single hyphens.

pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Lower-case ASCII letters and digits joined by single hyphens.
pub fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_words_joined_by_hyphens() {
        assert_eq!(slugify("Large Language_Model!"), "large-language-model");
        assert_eq!(slugify("  AI, for Beginners "), "ai-for-beginners");
        assert!(is_slug("open-weights-2"));
        assert!(!is_slug("-x") && !is_slug("Token") && !is_slug(""));
    }
}

//! Typography of plain strings: curly quotes and apostrophes in the front
//! matter's prose (titles, summaries, labels), and an issue's reading time.
//!
//! Markdown bodies get their smart punctuation from pulldown-cmark (see
//! `render::markdown`); front-matter values are plain strings, so they get
//! the same quotes here, by the same rule: a quote after a letter, digit or
//! closing punctuation closes, one at the start or after a space or an
//! opening bracket opens. Only quotes are changed, never dashes or dots (a
//! tip title may name `--help`), and never inside `backticks` or in a word
//! that holds a URL (`://`), so code and links stay as written.

/// Reading speed for the reading time, in words a minute: a
/// relaxed pace for readers new to the subject.
pub const WORDS_PER_MINUTE: usize = 220;

/// `text` with straight quotes and apostrophes made curly, except in code
/// spans and URLs.
pub fn smart_quotes(text: &str) -> String {
    if !text.contains(['\'', '"']) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut in_code = false;
    let mut in_url = false;
    let mut prev: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if prev.is_none_or(char::is_whitespace) && !c.is_whitespace() && !in_code {
            let word = text[at..].split(char::is_whitespace).next().unwrap_or("");
            in_url = word.contains("://");
        } else if c.is_whitespace() {
            in_url = false;
        }
        let next = chars.peek().map(|&(_, n)| n);
        let out_c = match c {
            '`' => {
                in_code = !in_code;
                c
            }
            _ if in_code || in_url => c,
            '"' if opens(prev, next) => '\u{201C}',
            '"' => '\u{201D}',
            // '90s: an apostrophe, not an opening quote.
            '\'' if opens(prev, next) && !next.is_some_and(|n| n.is_ascii_digit()) => '\u{2018}',
            '\'' => '\u{2019}',
            _ => c,
        };
        out.push(out_c);
        prev = Some(c);
    }
    out
}

/// Whether a quote between `prev` and `next` opens: at the start or after
/// a space, an opening bracket, a dash or another opening quote, and
/// followed by something other than a space.
fn opens(prev: Option<char>, next: Option<char>) -> bool {
    let after_opening = prev
        .is_none_or(|p| p.is_whitespace() || "([{-\u{2013}\u{2014}\u{2018}\u{201C}/".contains(p));
    after_opening && next.is_some_and(|n| !n.is_whitespace())
}

/// Whole minutes to read `words` words at [`WORDS_PER_MINUTE`], rounded up,
/// at least one.
pub fn reading_minutes(words: usize) -> usize {
    words.div_ceil(WORDS_PER_MINUTE).max(1)
}

/// Words in `text`, as a reader counts them: runs of anything but spaces
/// that hold a letter or a digit.
pub fn word_count(text: &str) -> usize {
    text.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_apostrophes_curl() {
        for (straight, curly) in [
            ("Check your AI app's memory", "Check your AI app’s memory"),
            (
                "An AI \"hallucination\" is wrong",
                "An AI “hallucination” is wrong",
            ),
            ("'Dear [COMPANY]...'", "‘Dear [COMPANY]...’"),
            ("(\"quoted\")", "(“quoted”)"),
            (
                "the '90s and the models' weights",
                "the ’90s and the models’ weights",
            ),
            ("\"Memory\", \"Activity\"", "“Memory”, “Activity”"),
            ("she said \"yes.\"", "she said “yes.”"),
            ("no quotes -- at all...", "no quotes -- at all..."),
        ] {
            assert_eq!(smart_quotes(straight), curly, "{straight}");
        }
    }

    #[test]
    fn code_and_urls_keep_straight_quotes() {
        assert_eq!(
            smart_quotes("type `echo 'hi'` and it's done"),
            "type `echo 'hi'` and it’s done"
        );
        assert_eq!(
            smart_quotes("see https://example.com/?q='x' or it's lost"),
            "see https://example.com/?q='x' or it’s lost"
        );
        let url = "https://en.wikipedia.org/wiki/Rock_'n'_roll";
        assert_eq!(smart_quotes(url), url);
    }

    #[test]
    fn reading_time_rounds_up_and_is_never_zero() {
        assert_eq!(reading_minutes(0), 1);
        assert_eq!(reading_minutes(WORDS_PER_MINUTE), 1);
        assert_eq!(reading_minutes(WORDS_PER_MINUTE + 1), 2);
        assert_eq!(word_count("A token — one of 3 words, -- not 5."), 8);
    }
}

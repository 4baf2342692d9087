//! Markdown to email-ready HTML and to plain text.
//!
//! HTML comes from pulldown-cmark with relative links made absolute against
//! the newsletter's URL, and headings moved below the page's own (see
//! [`to_html_at`]). Both renderings use pulldown-cmark's smart punctuation
//! (curly quotes and apostrophes, dashes, ellipses) in prose, never inside
//! code or a URL. Plain text is rendered from the same events: wrapped at
//! [`WIDTH`] columns, headings underlined, lists indented with hanging
//! indent, code kept verbatim, and links turned into numbered references
//! listed after the text, as good plain-text newsletters do.
//!
//! Invariant: only `https`, `http` and `mailto` links (images: `http(s)`
//! only), relative links made absolute, and in-page fragments leave this
//! module, in both renderings (the email and the web archive use them). Any
//! other target (`javascript:`, `data:`, `file:`, …) is dropped and its link
//! text shown as plain text; [`unsafe_links`] finds them for `check`.

use unicode_width::UnicodeWidthStr;

use crate::project::templates::wrap;
use pulldown_cmark::{Event, HeadingLevel, LinkType, Options, Parser, Tag, TagEnd};

use crate::problem::line_of;

/// Plain-text wrap width.
pub use crate::project::templates::TEXT_WIDTH as WIDTH;

fn parser(markdown: &str) -> Parser<'_> {
    Parser::new_ext(
        markdown,
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES | Options::ENABLE_SMART_PUNCTUATION,
    )
}

/// Renders HTML for a card under an h2 (the email's and issue pages'
/// items): body headings start at h3. See [`to_html_at`].
pub fn to_html(markdown: &str, base: &str) -> String {
    to_html_at(markdown, base, 3)
}

/// Renders HTML whose headings start at level `top` (2 on a page whose h1
/// is the item's title, 3 in a card under an h2), so that a page's outline
/// never skips a level: the body's first level (`#` or `##`, as content
/// writes it) becomes `top`, deeper levels follow one by one, down to h6.
/// Links and images that are not absolute are resolved against `base`,
/// and unsafe ones are shown as their text.
pub fn to_html_at(markdown: &str, base: &str, top: u8) -> String {
    let shift = Shift::new(markdown, top);
    // Per open link or image: whether its tags were dropped.
    let mut dropped: Vec<bool> = Vec::new();
    let events = parser(markdown).filter_map(|event| match event {
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let target = link_target(link_type, &dest_url, base, false);
            dropped.push(target.is_none());
            target.map(|url| {
                Event::Start(Tag::Link {
                    link_type,
                    dest_url: url.into(),
                    title,
                    id,
                })
            })
        }
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let target = link_target(link_type, &dest_url, base, true);
            dropped.push(target.is_none());
            target.map(|url| {
                Event::Start(Tag::Image {
                    link_type,
                    dest_url: url.into(),
                    title,
                    id,
                })
            })
        }
        Event::End(TagEnd::Link | TagEnd::Image) => {
            (!dropped.pop().unwrap_or(false)).then_some(event)
        }
        // The page's own headings come first; body headings sit below them.
        Event::Start(Tag::Heading {
            level,
            id,
            classes,
            attrs,
        }) => Some(Event::Start(Tag::Heading {
            level: shift.level(level),
            id,
            classes,
            attrs,
        })),
        Event::End(TagEnd::Heading(level)) => Some(Event::End(TagEnd::Heading(shift.level(level)))),
        // Raw HTML in content is shown as text: content is not trusted to be email-safe.
        Event::Html(html) | Event::InlineHtml(html) => Some(Event::Text(html)),
        other => Some(other),
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

/// How a body's heading levels move under the page's: the levels the body
/// uses, shallowest first, become `top`, `top + 1`, … (at most h6), so
/// neither the page nor the body skips a level (`##` then `####` becomes
/// h3 then h4 in a card).
struct Shift {
    /// Whether the body uses each level, h1 to h6.
    used: [bool; 6],
    top: usize,
}

impl Shift {
    fn new(markdown: &str, top: u8) -> Shift {
        let mut used = [false; 6];
        for event in Parser::new(markdown) {
            if let Event::Start(Tag::Heading { level, .. }) = event {
                used[level as usize - 1] = true;
            }
        }
        Shift {
            used,
            top: usize::from(top.clamp(1, 6)),
        }
    }

    fn level(&self, level: HeadingLevel) -> HeadingLevel {
        let rank = self.used[..level as usize - 1]
            .iter()
            .filter(|u| **u)
            .count();
        match (self.top + rank).min(6) {
            1 => HeadingLevel::H1,
            2 => HeadingLevel::H2,
            3 => HeadingLevel::H3,
            4 => HeadingLevel::H4,
            5 => HeadingLevel::H5,
            _ => HeadingLevel::H6,
        }
    }
}

/// Where a link (or image) may point once it leaves the renderer: an
/// `https`, `http` or (links only) `mailto` URL as written, an in-page
/// fragment, or a relative link joined to `base`. `None` for every other
/// scheme. The scheme is read by the URL standard's parser, which drops tabs
/// and line breaks and ignores case as browsers do (`Java\tScript:`).
/// Autolinked addresses (`<ada@example.org>`) stay addresses.
fn link_target(link_type: LinkType, dest: &str, base: &str, image: bool) -> Option<String> {
    if link_type == LinkType::Email && !image {
        return Some(dest.to_string());
    }
    match url::Url::parse(dest) {
        Ok(url) => match url.scheme() {
            "https" | "http" => Some(dest.trim().to_string()),
            "mailto" if !image => Some(dest.trim().to_string()),
            _ => None,
        },
        Err(url::ParseError::RelativeUrlWithoutBase) if dest.starts_with('#') => {
            Some(dest.to_string())
        }
        Err(url::ParseError::RelativeUrlWithoutBase) => Some(format!(
            "{}/{}",
            base.trim_end_matches('/'),
            dest.trim_start_matches('/')
        )),
        Err(_) => None,
    }
}

/// Links and images that the renderers show as plain text, each with the
/// 1-based line (within `markdown`) where it starts, for `check`'s warnings.
pub fn unsafe_links(markdown: &str) -> Vec<(usize, String)> {
    parser(markdown)
        .into_offset_iter()
        .filter_map(|(event, range)| {
            let (link_type, dest, image) = match event {
                Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    ..
                }) => (link_type, dest_url, false),
                Event::Start(Tag::Image {
                    link_type,
                    dest_url,
                    ..
                }) => (link_type, dest_url, true),
                _ => return None,
            };
            link_target(link_type, &dest, "https://example.com", image)
                .is_none()
                .then(|| (line_of(markdown, range.start), dest.to_string()))
        })
        .collect()
}

/// Renders wrapped plain text with numbered link references.
pub fn to_text(markdown: &str, base: &str) -> String {
    let mut r = TextRenderer::default();
    for event in parser(markdown) {
        r.event(event, base);
    }
    r.finish()
}

#[derive(Default)]
struct TextRenderer {
    out: String,
    /// Inline text of the block being built.
    line: String,
    /// Stack of list counters: None for bullets, Some(n) for numbered lists.
    lists: Vec<Option<u64>>,
    /// Prefix for the first line of the current item and for the rest.
    item_marker: Option<String>,
    quote_depth: usize,
    heading: Option<HeadingLevel>,
    in_code: bool,
    links: Vec<String>,
    /// Per open link or image: its target, `None` when shown as text only.
    link_stack: Vec<Option<String>>,
}

impl TextRenderer {
    fn indent(&self) -> String {
        let mut s = "> ".repeat(self.quote_depth);
        for _ in 0..self.lists.len().saturating_sub(1) {
            s.push_str("   ");
        }
        if !self.lists.is_empty() {
            s.push_str("   ");
        }
        s
    }

    fn blank_line(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            if !self.out.ends_with('\n') {
                self.out.push('\n');
            }
            let quote = "> ".repeat(self.quote_depth);
            self.out.push_str(quote.trim_end());
            self.out.push('\n');
        }
    }

    fn flush(&mut self) {
        let text = std::mem::take(&mut self.line);
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let rest = self.indent();
        let first = match self.item_marker.take() {
            Some(marker) => {
                let base = rest.len().saturating_sub(3);
                format!("{}{marker:<3}", &rest[..base])
            }
            None => rest.clone(),
        };
        let width = WIDTH
            .saturating_sub(UnicodeWidthStr::width(rest.as_str()))
            .max(20);
        let lines = wrap(text, width);
        for (i, l) in lines.iter().enumerate() {
            self.out.push_str(if i == 0 { &first } else { &rest });
            self.out.push_str(l);
            self.out.push('\n');
        }
        if let Some(level) = self.heading {
            let underline = if level == HeadingLevel::H1 { '=' } else { '-' };
            let len = lines.iter().map(|l| l.as_str().width()).max().unwrap_or(0);
            self.out.push_str(&rest);
            self.out.push_str(&underline.to_string().repeat(len));
            self.out.push('\n');
        }
    }

    fn event(&mut self, event: Event<'_>, base: &str) {
        match event {
            Event::Start(tag) => self.start(tag, base),
            Event::End(tag) => self.end(tag),
            Event::Text(text) if self.in_code => self.code_block_text(&text),
            Event::Text(text) => self.line.push_str(&text),
            Event::Code(code) => {
                self.line.push('"');
                self.line.push_str(&code);
                self.line.push('"');
            }
            Event::SoftBreak | Event::HardBreak => self.line.push(' '),
            Event::Rule => {
                self.flush();
                self.blank_line();
                self.out.push_str(&"-".repeat(20));
                self.out.push('\n');
            }
            Event::Html(html) | Event::InlineHtml(html) => self.line.push_str(&html),
            _ => {}
        }
    }

    /// An opening tag: blocks flush what came before and set the layout
    /// (quote depth, list markers, heading); inline tags mark the line.
    fn start(&mut self, tag: Tag<'_>, base: &str) {
        match tag {
            Tag::Paragraph if self.item_marker.is_none() => self.blank_line(),
            Tag::Heading { level, .. } => {
                self.blank_line();
                self.heading = Some(level);
            }
            Tag::BlockQuote(_) => {
                self.flush();
                self.blank_line();
                self.quote_depth += 1;
            }
            Tag::CodeBlock(_) => {
                self.flush();
                self.blank_line();
                self.in_code = true;
            }
            Tag::List(start) => {
                self.flush();
                if self.lists.is_empty() {
                    self.blank_line();
                }
                self.lists.push(start);
            }
            Tag::Item => {
                self.flush();
                self.item_marker = Some(self.next_marker());
            }
            Tag::Emphasis => self.line.push('_'),
            Tag::Strong => self.line.push('*'),
            Tag::Link {
                link_type,
                dest_url,
                ..
            } => self
                .link_stack
                .push(link_target(link_type, &dest_url, base, false)),
            Tag::Image {
                link_type,
                dest_url,
                ..
            } => {
                let target = link_target(link_type, &dest_url, base, true);
                if target.is_some() {
                    self.line.push_str("[image: ");
                }
                self.link_stack.push(target);
            }
            _ => {}
        }
    }

    /// The marker of the next item of the innermost list: `-`, or its
    /// number (counting on).
    fn next_marker(&mut self) -> String {
        match self.lists.last_mut() {
            Some(Some(n)) => {
                let m = format!("{n}.");
                *n += 1;
                m
            }
            _ => "-".to_string(),
        }
    }

    /// A closing tag: blocks flush their text and undo their layout; a
    /// link or image that leaves the renderer gets its numbered reference.
    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::Item => self.flush(),
            TagEnd::Heading(_) => {
                self.flush();
                self.heading = None;
            }
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.quote_depth = self.quote_depth.saturating_sub(1);
            }
            TagEnd::CodeBlock => {
                self.in_code = false;
            }
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
            }
            TagEnd::Emphasis => self.line.push('_'),
            TagEnd::Strong => self.line.push('*'),
            TagEnd::Link => {
                if let Some(Some(url)) = self.link_stack.pop() {
                    // An autolink (or a link whose text is its URL) needs
                    // no reference: the URL is already in the text.
                    let text_is_url = self.line.trim_end().ends_with(url.as_str());
                    if !text_is_url {
                        let n = self.reference(url);
                        self.line.push_str(&format!(" [{n}]"));
                    }
                }
            }
            TagEnd::Image => {
                if let Some(Some(url)) = self.link_stack.pop() {
                    let n = self.reference(url);
                    self.line.push_str(&format!("] [{n}]"));
                }
            }
            _ => {}
        }
    }

    /// Code is kept verbatim, indented four columns past the current
    /// indent; blank lines carry no trailing spaces. A line too long for
    /// [`WIDTH`] (often a prompt written on one line) is broken at spaces,
    /// its continuations indented two more columns, so no line of the
    /// text part passes the width; a word longer than a line stays whole.
    fn code_block_text(&mut self, text: &str) {
        let indent = format!("{}    ", self.indent());
        let room = WIDTH.saturating_sub(indent.width()).max(20);
        for l in text.lines() {
            self.out.push_str(indent.trim_end_matches(' '));
            if !l.is_empty() {
                self.out
                    .push_str(&indent[indent.trim_end_matches(' ').len()..]);
                if l.width() <= room {
                    self.out.push_str(l);
                } else {
                    let lead = &l[..l.len() - l.trim_start().len()];
                    let lines = wrap(l.trim_start(), room.saturating_sub(lead.width() + 2));
                    for (i, part) in lines.iter().enumerate() {
                        if i > 0 {
                            self.out.push('\n');
                            self.out.push_str(&indent);
                            self.out.push_str("  ");
                        }
                        self.out.push_str(lead);
                        self.out.push_str(part);
                    }
                }
            }
            self.out.push('\n');
        }
    }

    fn reference(&mut self, url: String) -> usize {
        match self.links.iter().position(|u| *u == url) {
            Some(i) => i + 1,
            None => {
                self.links.push(url);
                self.links.len()
            }
        }
    }

    fn finish(mut self) -> String {
        self.flush();
        let mut out = self.out.trim_end().to_string();
        out.push('\n');
        if !self.links.is_empty() {
            out.push('\n');
            for (i, url) in self.links.iter().enumerate() {
                out.push_str(&format!("[{}] {url}\n", i + 1));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://daily.example.com";

    #[test]
    fn html_links_become_absolute_and_raw_html_is_shown_as_text() {
        let html = to_html(
            "See [the guide](/guide) or [x](https://x.org).\n\n<script>alert(1)</script>\n",
            BASE,
        );
        assert!(
            html.contains("href=\"https://daily.example.com/guide\""),
            "{html}"
        );
        assert!(html.contains("href=\"https://x.org\""));
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn only_http_and_mailto_links_leave_the_renderer() {
        for md in [
            "[x](javascript://%0Aalert(1))",
            "[x](JavaScript:alert(1))",
            "[x](<java\tscript:alert(1)>)",
            "[x](&#106;avascript:alert(1))",
            "[x](javascript&colon;alert(1))",
            "[x](data:text/html;base64,PHNjcmlwdD4=)",
            "[x](vbscript:msgbox)",
            "[x](file:///etc/passwd)",
            "[x](ftp://example.org/x)",
            "<javascript:alert(1)>",
            "[x][r]\n\n[r]: javascript:alert(1)",
        ] {
            let html = to_html(md, BASE);
            assert!(!html.contains("<a"), "{md}: {html}");
            assert!(
                !html.contains("href") && !html.contains("src"),
                "{md}: {html}"
            );
            let text = to_text(md, BASE);
            assert!(!text.contains("[1]"), "{md}: {text}");
            assert_eq!(unsafe_links(md).len(), 1, "{md}");
        }
        let html = to_html("[x](javascript://%0Aalert(1)) and more", BASE);
        assert_eq!(html, "<p>x and more</p>\n");
        let ok = "[a](https://x.org) [b](http://x.org) [c](mailto:a@x.org) [d](/guide) [e](#top) <ada@example.org>";
        let html = to_html(ok, BASE);
        for href in [
            "https://x.org",
            "http://x.org",
            "mailto:a@x.org",
            "https://daily.example.com/guide",
            "#top",
            "mailto:ada@example.org",
        ] {
            assert!(html.contains(&format!("href=\"{href}\"")), "{href}: {html}");
        }
        assert!(unsafe_links(ok).is_empty());
    }

    #[test]
    fn images_must_be_http() {
        let md = "![a cat](https://x.org/cat.png)\n\n![mail](mailto:a@x.org)\n\n![js](javascript:alert(1))\n";
        let html = to_html(md, BASE);
        assert!(
            html.contains("<img src=\"https://x.org/cat.png\" alt=\"a cat\""),
            "{html}"
        );
        assert!(
            !html.contains("mailto") && !html.contains("javascript"),
            "{html}"
        );
        assert!(
            html.contains("<p>mail</p>") && html.contains("<p>js</p>"),
            "{html}"
        );
        let text = to_text(md, BASE);
        assert_eq!(
            text,
            "[image: a cat] [1]\n\nmail\n\njs\n\n[1] https://x.org/cat.png\n"
        );
        assert_eq!(
            unsafe_links(md),
            [
                (3, "mailto:a@x.org".to_string()),
                (5, "javascript:alert(1)".to_string())
            ]
        );
    }

    #[test]
    fn text_wraps_and_numbers_links() {
        let md = "## What it means\n\nA token is a [small chunk](https://en.wikipedia.org/wiki/Token) of text that a language model reads and writes, one after another, many times a second.\n\n- first point\n- second point that is long enough to need wrapping because it keeps going and going on\n\n1. step one\n2. step [two](https://x.org)\n";
        let text = to_text(md, BASE);
        assert_eq!(
            text,
            "What it means\n-------------\n\nA token is a small chunk [1] of text that a language model reads and writes,\none after another, many times a second.\n\n-  first point\n-  second point that is long enough to need wrapping because it keeps going\n   and going on\n\n1. step one\n2. step two [2]\n\n[1] https://en.wikipedia.org/wiki/Token\n[2] https://x.org\n"
        );
        assert!(text.lines().all(|l| l.chars().count() <= WIDTH));
    }

    #[test]
    fn heading_underlines_span_the_display_width() {
        // CJK and most emoji take two columns in a monospaced mail client.
        assert_eq!(to_text("# 日本語", BASE), "日本語\n======\n");
        assert_eq!(to_text("## Tip 🙂", BASE), "Tip 🙂\n------\n");
    }

    #[test]
    fn prose_gets_curly_quotes_but_code_and_urls_do_not() {
        let md = "It's an AI \"hallucination\": see <https://x.org/?q='a'> or [the 'guide'](https://x.org/it's).\n\nRun `echo \"it's\"`:\n\n```\nsay \"it's\"\n```\n";
        let html = to_html(md, BASE);
        assert!(
            html.contains("<p>It’s an AI “hallucination”: see <a href=\"https://x.org/?q=&#x27;a&#x27;\">https://x.org/?q='a'</a> or <a href=\"https://x.org/it&#x27;s\">the ‘guide’</a>.</p>"),
            "{html}"
        );
        assert!(html.contains("<code>echo \"it's\"</code>"), "{html}");
        assert!(html.contains("say \"it's\""), "{html}");
        let text = to_text(md, BASE);
        assert!(
            text.starts_with(
                "It’s an AI “hallucination”: see https://x.org/?q='a' or the ‘guide’ [1]."
            ),
            "{text}"
        );
        assert!(
            text.contains("\"echo \"it's\"\"") && text.contains("    say \"it's\"\n"),
            "{text}"
        );
        assert!(text.contains("[1] https://x.org/it's"), "{text}");
    }

    #[test]
    fn body_headings_start_below_the_page_heading_without_gaps() {
        let md = "## A\n\n#### B\n\n## C\n\n###### D\n";
        assert_eq!(
            to_html_at(md, BASE, 2),
            "<h2>A</h2>\n<h3>B</h3>\n<h2>C</h2>\n<h4>D</h4>\n"
        );
        assert_eq!(
            to_html(md, BASE),
            "<h3>A</h3>\n<h4>B</h4>\n<h3>C</h3>\n<h5>D</h5>\n"
        );
        assert_eq!(
            to_html_at("# A\n\n## B\n", BASE, 5),
            "<h5>A</h5>\n<h6>B</h6>\n"
        );
        assert_eq!(to_html_at("#### Only\n", BASE, 2), "<h2>Only</h2>\n");
    }

    #[test]
    fn code_blocks_are_indented_verbatim() {
        let text = to_text(
            "Try this:\n\n```\nSummarise this:\n  keep   spacing\n```\n",
            BASE,
        );
        assert_eq!(
            text,
            "Try this:\n\n    Summarise this:\n      keep   spacing\n"
        );
        let long = format!("```\n  {}\n```\n", "word ".repeat(30).trim_end());
        let text = to_text(&long, BASE);
        assert!(text.lines().all(|l| l.len() <= WIDTH), "{text}");
        assert!(
            text.starts_with("      word word")
                && text
                    .lines()
                    .nth(1)
                    .is_some_and(|l| l.starts_with("        word")),
            "{text}"
        );
        assert_eq!(text.matches("word").count(), 30);
    }
}

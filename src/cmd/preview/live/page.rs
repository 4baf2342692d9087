//! The live preview's own pages, as HTML strings: the preview (pickers,
//! the email at two widths, the text part, the headers, the raw message)
//! or, when the files have problems, every problem as `path:line: …`;
//! and the script and stylesheet they load. Every value is escaped. The
//! script keeps the page current: it listens on `/events` and reloads on
//! `reload`, or on `hello` when the files changed while it was away.

use std::fmt::Write as _;

use chrono::NaiveDate;

use crate::html::escaped;

use super::view::EmailView;

/// What the page was asked for: the picked day and reader.
#[derive(Debug, Clone)]
pub(super) struct Pick {
    pub date: NaiveDate,
    /// As typed; `None` for the default reader.
    pub reader: Option<String>,
}

impl Pick {
    /// The query string that asks for this pick (`date=…&as=…`).
    pub(super) fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("date", &self.date.to_string());
        if let Some(r) = &self.reader {
            q.append_pair("as", r);
        }
        q.finish()
    }
}

/// The top of every page: title, stylesheet, and the script that
/// reloads it, told which generation of the files it shows.
fn head(title: &str, generation: u64) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{}</title><link rel=\"stylesheet\" href=\"/live.css\">\
<script src=\"/live.js\" data-generation=\"{generation}\" defer></script></head>\n<body>\n",
        escaped(title)
    )
}

/// The pickers: a day (those with a record offered) and a reader (the
/// list's first readers offered; any address may be typed).
fn picker(pick: &Pick, reader: &str, view: Option<&EmailView>) -> String {
    let mut out = String::from("<form class=\"picker\" method=\"get\" action=\"/\">");
    let _ = write!(
        out,
        "<label>Date <input type=\"date\" name=\"date\" value=\"{}\" list=\"dates\" required></label>\
<label>Reader <input type=\"text\" name=\"as\" value=\"{}\" list=\"readers\" size=\"34\" spellcheck=\"false\"></label>\
<button type=\"submit\">Show</button>",
        pick.date,
        escaped(reader)
    );
    out.push_str("<datalist id=\"dates\">");
    for (date, number) in view.map_or(&[][..], |v| &v.dates[..]) {
        let _ = write!(out, "<option value=\"{date}\">No. {number}</option>");
    }
    out.push_str("</datalist><datalist id=\"readers\">");
    for (address, name, status) in view.map_or(&[][..], |v| &v.readers[..]) {
        let label = match (name.is_empty(), *status) {
            (true, "active") => String::new(),
            (false, "active") => name.clone(),
            (true, s) => format!("({s})"),
            (false, s) => format!("{name} ({s})"),
        };
        let _ = write!(
            out,
            "<option value=\"{}\">{}</option>",
            escaped(address),
            escaped(&label)
        );
    }
    out.push_str("</datalist></form>\n");
    out
}

/// The preview of one reader's copy.
pub(super) fn preview(view: &EmailView, pick: &Pick, generation: u64) -> String {
    let q = escaped(&pick.query());
    let date = view.date;
    let web = format!("/web/{date}/");
    let mut out = head(
        &format!("No. {} · {} (preview)", view.number, view.subject),
        generation,
    );
    out.push_str("<header>\n");
    out.push_str(&picker(pick, &view.address, Some(view)));
    let to = if view.name.is_empty() {
        escaped(&view.address)
    } else {
        format!("{} &lt;{}&gt;", escaped(&view.name), escaped(&view.address))
    };
    let _ = write!(
        out,
        "<p class=\"meta\"><strong>No. {}</strong> · {} · <span class=\"subject\">{}</span> · to {to}</p>\
<p class=\"links\"><a href=\"{web}issues/{date}/\" target=\"_blank\">View in browser</a> · \
<a href=\"{web}\" target=\"_blank\">Web archive</a> · \
<a href=\"/message.eml?{q}\" download=\"{date}.eml\">Download .eml</a></p>\n</header>\n<main>\n",
        view.number,
        crate::render::context::date_long(date),
        escaped(&view.subject),
    );
    if view.more_readers > 0 {
        let _ = writeln!(
            out,
            "<p class=\"hint\">The reader list offers the first {} readers; type any other address.</p>",
            view.readers.len()
        );
    }
    if !view.notes.is_empty() {
        out.push_str("<section class=\"notes\" aria-label=\"Notes\"><ul>");
        for note in &view.notes {
            let _ = write!(out, "<li>{}</li>", escaped(note));
        }
        out.push_str("</ul></section>\n");
    }
    let frame = |label: &str, width: u32| {
        format!(
            "<figure><figcaption>{label}, {width} px</figcaption>\
<iframe class=\"email\" title=\"The email at {width} pixels\" src=\"/email.html?{q}\" width=\"{width}\" height=\"1400\" \
sandbox=\"allow-same-origin allow-popups allow-popups-to-escape-sandbox\"></iframe></figure>"
        )
    };
    let _ = writeln!(
        out,
        "<section class=\"widths\" aria-label=\"The HTML part\">{}{}</section>",
        frame("Desktop", 700),
        frame("Phone", 390)
    );
    let raw = String::from_utf8_lossy(&view.message);
    let headers = raw
        .split_once("\r\n\r\n")
        .map_or(raw.as_ref(), |(h, _)| h)
        .replace("\r\n", "\n");
    let _ = write!(
        out,
        "<section><h2>Text part</h2><pre class=\"text\">{}</pre></section>\n\
<section><h2>Headers</h2><pre class=\"headers\">{}</pre></section>\n\
<details><summary>Raw message ({} bytes)</summary><pre class=\"raw\">{}</pre></details>\n\
</main></body></html>\n",
        escaped(&view.text),
        escaped(&headers),
        view.message.len(),
        escaped(&raw.replace("\r\n", "\n")),
    );
    out
}

/// Every problem instead of a stale email; the page reloads once a save
/// changes the files.
pub(super) fn problems(
    pick: Option<&Pick>,
    what: &str,
    problems: &[String],
    generation: u64,
) -> String {
    let n = problems.len();
    let mut out = head(
        &format!("{n} problem{} (preview)", crate::cmd::plural(n as u64)),
        generation,
    );
    if let Some(pick) = pick {
        let _ = write!(
            out,
            "<header>\n{}</header>\n",
            picker(pick, pick.reader.as_deref().unwrap_or(""), None)
        );
    }
    let _ = write!(
        out,
        "<main>\n<section class=\"problems\" role=\"alert\"><h1>{} cannot be shown: {n} problem{}</h1>\
<p>Fix {} and save; this page reloads by itself.</p><ul>",
        escaped(what),
        crate::cmd::plural(n as u64),
        if n == 1 { "it" } else { "them" }
    );
    for p in problems {
        let _ = write!(out, "<li><code>{}</code></li>", escaped(p));
    }
    out.push_str("</ul></section>\n</main></body></html>\n");
    out
}

/// A page of the preview's own standing in for a page of `serve` that
/// would write (a signup, a vote): what would happen, and that nothing
/// did. `body` is HTML.
pub(super) fn stand_in(title: &str, body: &str, generation: u64) -> String {
    format!(
        "{}<main>\n<h1>{}</h1>\n<p><strong>Preview:</strong> nothing is sent or written here.</p>\n{body}\n</main></body></html>\n",
        head(&format!("{title} (preview)"), generation),
        escaped(title)
    )
}

/// The script every page loads (from `/live.js`, so the pages can forbid
/// inline scripts).
pub(super) const SCRIPT: &str = r#"(() => {
  "use strict";
  const generation = document.currentScript.dataset.generation;
  const key = "dailyissue-preview-scroll:" + location.pathname + location.search;
  const saved = sessionStorage.getItem(key);
  if (saved !== null) {
    sessionStorage.removeItem(key);
    addEventListener("load", () => scrollTo(0, Number(saved)));
  }
  let reloading = false;
  const reload = () => {
    if (reloading) return;
    reloading = true;
    sessionStorage.setItem(key, String(scrollY));
    location.reload();
  };
  const events = new EventSource("/events");
  events.addEventListener("hello", (e) => { if (e.data !== generation) reload(); });
  events.addEventListener("reload", reload);
  addEventListener("DOMContentLoaded", () => {
    for (const frame of document.querySelectorAll("iframe.email")) {
      const fit = () => {
        try {
          frame.style.height = frame.contentDocument.documentElement.scrollHeight + 16 + "px";
        } catch (_) { /* not ours to measure */ }
      };
      frame.addEventListener("load", fit);
    }
    for (const input of document.querySelectorAll("form.picker input[type=date]")) {
      input.addEventListener("change", () => input.form.requestSubmit());
    }
  });
})();
"#;

pub(super) const STYLE: &str = r#":root { color-scheme: light dark; --line: #c9ccd3; --muted: #5b6170; --bg: #f3f1ec; --fg: #20242c; --card: #fff; --bad: #a4161a; }
@media (prefers-color-scheme: dark) { :root { --line: #3a3f4b; --muted: #a9afbd; --bg: #15171c; --fg: #dfe2e8; --card: #1d2027; --bad: #ff8a8a; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; background: var(--bg); color: var(--fg); }
header { position: sticky; top: 0; z-index: 1; padding: .6rem 1rem; background: var(--card); border-bottom: 1px solid var(--line); }
header p { margin: .3rem 0 0; }
.picker { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; }
.picker input, .picker button { font: inherit; padding: .2rem .4rem; }
.meta { color: var(--muted); }
.subject { color: var(--fg); font-weight: 600; }
main { padding: 1rem; }
.widths { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
figure { margin: 0; }
figcaption { color: var(--muted); margin-bottom: .3rem; }
iframe.email { display: block; border: 1px solid var(--line); background: #fff; max-width: 100%; }
pre { background: var(--card); border: 1px solid var(--line); padding: .8rem; overflow-x: auto; white-space: pre-wrap; word-break: break-word; max-width: 60rem; }
pre.text { white-space: pre; }
.notes ul, .problems ul { padding-left: 1.2rem; }
.notes li { color: var(--muted); }
.problems h1 { color: var(--bad); font-size: 1.3rem; }
.problems code { font-size: 14px; white-space: pre-wrap; }
.hint { color: var(--muted); margin: 0 0 .5rem; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_listed_escaped_each_with_its_place() {
        let pick = Pick {
            date: NaiveDate::from_ymd_opt(2027, 3, 1).expect("date"),
            reader: Some("\"><script>x</script>".into()),
        };
        let html = problems(
            Some(&pick),
            "The email",
            &[
                "content/tools/a.md:2: expected `=`".into(),
                "templates/email.html:9: unknown <tag>".into(),
            ],
            7,
        );
        assert!(html.contains("<code>content/tools/a.md:2: expected `=`</code>"));
        assert!(html.contains("<code>templates/email.html:9: unknown &lt;tag&gt;</code>"));
        assert!(html.contains("2 problems"));
        assert!(html.contains("data-generation=\"7\""));
        assert!(!html.contains("<script>x"), "{html}");
    }
}

//! `preview --serve`: a local page that shows the issue as a chosen reader
//! gets it, kept current while the editor works.
//!
//! - `GET /?date=D&as=ADDR`: pickers for the day and the reader, the HTML
//!   part at desktop (700 px) and phone (390 px) width side by side, the
//!   text part, the headers and the raw message; or, when the files have
//!   problems, all of them as `path:line: …` instead of a stale email;
//! - `GET /email.html?…`: the HTML part as the frames show it, its links
//!   pointed into the preview; `GET /message.eml?…`: the signed message;
//! - `GET /web/D/…`: the web archive up to the issue of D, rendered on the
//!   fly: where "View in browser" and the email's page links lead;
//! - `GET /unsubscribe/TOKEN`: the page `serve` shows a reader at their
//!   unsubscribe link, and after its button (POST) the page they would
//!   see next, with a banner: nothing is written;
//! - `GET /events`: server-sent events, `hello` with the files'
//!   generation on connecting, then `reload` after each change
//!   (`watch`), which the pages' script answers by reloading.
//!
//! Each request renders from the files as they are (a render is cached
//! until the next change), through the same `cmd::day_from` as `preview`
//! and `send`; the preview never writes: no issue record (a missing one is
//! planned in memory) and no ledger (it is never opened). It binds
//! loopback by default and then answers only requests addressed to a
//! loopback name (no DNS rebinding); its pages forbid inline scripts and
//! the email's frame runs none.

mod page;
mod view;
mod watch;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::stream::{self, Stream, StreamExt};

use crate::problem::Failure;
use crate::project::Project;

use super::PreviewOptions;
use page::Pick;
use view::{EmailView, Outcome};

/// Renders kept at once (each for one generation of the files).
const CACHED: usize = 8;

/// The web archive's files by path, and where its links lead.
type Site = (BTreeMap<String, Vec<u8>>, view::Links);

/// Renders by what they were made for (the generation of the files first).
type Cache<K, V> = Mutex<Vec<(K, Arc<Outcome<V>>)>>;

struct LiveState {
    root: PathBuf,
    now: DateTime<Utc>,
    /// The pickers' defaults: `--date` (or the next issue), `--as`.
    date: NaiveDate,
    reader: Option<String>,
    /// Counts the changes seen; every page knows the one it shows.
    generation: tokio::sync::watch::Sender<u64>,
    /// Only requests for a loopback host are answered.
    loopback: bool,
    emails: Cache<(u64, NaiveDate, Option<String>), EmailView>,
    sites: Cache<(u64, NaiveDate), Site>,
}

/// Serves the preview on `listen` until interrupted.
pub fn serve(project: Project, opts: &PreviewOptions, listen: SocketAddr) -> Result<(), Failure> {
    // The day shown first, as `preview` chooses it (the next issue, unless
    // `--date`); the picker changes it.
    let date = match opts.date {
        Some(d) => d,
        None => super::next_issue(&project, opts.today)?,
    };
    let state = Arc::new(LiveState {
        root: project.root.clone(),
        now: opts.now,
        date,
        reader: opts.reader.clone(),
        generation: tokio::sync::watch::Sender::new(0),
        loopback: listen.ip().is_loopback(),
        emails: Mutex::new(Vec::new()),
        sites: Mutex::new(Vec::new()),
    });
    if !state.loopback {
        tracing::warn!(
            "{listen} can be reached from other machines: the preview shows readers' addresses and names to anyone who can reach it"
        );
    }
    let watched = state.clone();
    watch::start(&project, move |changed| {
        let root = &watched.root;
        let names: Vec<String> = changed
            .iter()
            .map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string())
            .collect();
        tracing::info!("changed: {}; reloading", names.join(", "));
        watched.generation.send_modify(|n| *n += 1);
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)?;
    let open = opts.open;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {listen}: {e}; is another preview running? Give another address: --serve 127.0.0.1:PORT"
            )
        })?;
        let addr = listener.local_addr().map_err(anyhow::Error::from)?;
        let url = format!("http://{}/", shown(addr));
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "Live preview on {url} (reloads when a file changes; Ctrl-C to stop)"
            )?;
            out.flush()?;
        }
        if open && let Err(e) = opener::open_browser(&url) {
            tracing::warn!("cannot open a browser ({e}): open {url} by hand");
        }
        axum::serve(listener, app(state))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| Failure::Other(e.into()))
    })
}

/// The address to show in a URL: an unspecified one (`0.0.0.0`) as the
/// loopback address, which reaches it from this machine.
fn shown(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, addr.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

fn app(state: Arc<LiveState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/email.html", get(email_html))
        .route("/message.eml", get(message))
        .route("/events", get(events))
        .route("/live.js", get(script))
        .route("/live.css", get(style))
        .route("/web/{date}", get(web_folder))
        .route("/web/{date}/", get(web_index))
        .route("/web/{date}/{*path}", get(web_file).post(web_form))
        .route(
            "/unsubscribe/{*rest}",
            get(unsubscribe_page).post(unsubscribe_done),
        )
        .route("/feedback/{*rest}", get(feedback).post(feedback))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Refuses requests for another host when bound to loopback (a page on
/// the web cannot reach the preview through a name of its own that
/// resolves to 127.0.0.1), and marks every answer as not to be cached,
/// sniffed or sent on as a referrer.
async fn guard(State(state): State<Arc<LiveState>>, request: Request, next: Next) -> Response {
    if state.loopback
        && !request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(loopback_host)
    {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "the preview answers only requests for localhost\n",
        )
            .into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Whether a `Host` header names this machine: `localhost` (or a name
/// under it) or a loopback address, with any port.
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The pick a query asks for, the defaults filling in; a date that is not
/// one is a problem to show.
fn pick(state: &LiveState, uri: &Uri) -> Result<Pick, String> {
    let mut pick = Pick {
        date: state.date,
        reader: state.reader.clone(),
    };
    for (key, value) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        let value = value.trim();
        match key.as_ref() {
            "date" if !value.is_empty() => {
                pick.date = value
                    .parse()
                    .ok()
                    .filter(|d| crate::project::settings::date_in_range(*d))
                    .ok_or_else(|| {
                        format!(
                            "date: `{value}` is not a date from 1000-01-01 to 9999-12-31; pick one, or write it as YYYY-MM-DD"
                        )
                    })?;
            }
            "as" if !value.is_empty() => pick.reader = Some(value.to_string()),
            _ => {}
        }
    }
    Ok(pick)
}

impl LiveState {
    fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// The reader's copy for `pick` as the files are now: cached for this
    /// generation of the files, else rendered.
    async fn email(self: &Arc<Self>, pick: &Pick) -> (u64, Arc<Outcome<EmailView>>) {
        let generation = self.generation();
        let key = (generation, pick.date, pick.reader.clone());
        if let Some(hit) = cached(&self.emails, &key) {
            return (generation, hit);
        }
        let state = self.clone();
        let p = pick.clone();
        let made = tokio::task::spawn_blocking(move || {
            view::email(&state.root, state.now, p.date, p.reader.as_deref())
        })
        .await
        .unwrap_or_else(|e| Err(vec![format!("the preview failed: {e}")]));
        let made = Arc::new(made);
        keep(&self.emails, key, made.clone());
        (generation, made)
    }

    /// The web archive up to the issue of `date`, like [`LiveState::email`].
    async fn site(self: &Arc<Self>, date: NaiveDate) -> (u64, Arc<Outcome<Site>>) {
        let generation = self.generation();
        let key = (generation, date);
        if let Some(hit) = cached(&self.sites, &key) {
            return (generation, hit);
        }
        let state = self.clone();
        let made = tokio::task::spawn_blocking(move || view::web(&state.root, date))
            .await
            .unwrap_or_else(|e| Err(vec![format!("the preview failed: {e}")]));
        let made = Arc::new(made);
        keep(&self.sites, key, made.clone());
        (generation, made)
    }
}

fn cached<K: PartialEq, V>(cache: &Cache<K, V>, key: &K) -> Option<Arc<Outcome<V>>> {
    let cache = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    cache.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn keep<K: PartialEq, V>(cache: &Cache<K, V>, key: K, value: Arc<Outcome<V>>) {
    let mut cache = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    cache.retain(|(k, _)| *k != key);
    cache.push((key, value));
    if cache.len() > CACHED {
        cache.remove(0);
    }
}

/// The security policy of the preview's own pages: their script and
/// stylesheet only, the email's frames, images from anywhere (the email
/// may load them).
const PAGE_POLICY: &str = "default-src 'self'; img-src * data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The email in its frame: no script at all, its own styles, images from
/// anywhere, framed only by the preview.
const EMAIL_POLICY: &str = "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; font-src * data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'";

/// The web pages: the archive's stylesheet and images, and the preview's
/// reload script.
const WEB_POLICY: &str = "default-src 'self'; img-src * data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'";

fn html(status: StatusCode, policy: &'static str, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        )],
        Html(body),
    )
        .into_response()
}

/// A page of problems (a date that is not one, or the files' problems).
fn problems(pick: Option<&Pick>, what: &str, lines: &[String], generation: u64) -> Response {
    html(
        StatusCode::UNPROCESSABLE_ENTITY,
        PAGE_POLICY,
        page::problems(pick, what, lines, generation),
    )
}

async fn index(State(state): State<Arc<LiveState>>, uri: Uri) -> Response {
    let pick = match pick(&state, &uri) {
        Ok(p) => p,
        Err(why) => return problems(None, "This preview", &[why], state.generation()),
    };
    let (generation, made) = state.email(&pick).await;
    match &*made {
        Ok(view) => html(
            StatusCode::OK,
            PAGE_POLICY,
            page::preview(view, &pick, generation),
        ),
        Err(lines) => problems(Some(&pick), "The email", lines, generation),
    }
}

async fn email_html(State(state): State<Arc<LiveState>>, uri: Uri) -> Response {
    let pick = match pick(&state, &uri) {
        Ok(p) => p,
        Err(why) => return problems(None, "This preview", &[why], state.generation()),
    };
    let (generation, made) = state.email(&pick).await;
    match &*made {
        Ok(view) => {
            let local = view
                .links
                .localise(&view.html, &format!("/web/{}/", view.date));
            html(StatusCode::OK, EMAIL_POLICY, links_open_outside(&local))
        }
        Err(lines) => problems(None, "The email", lines, generation),
    }
}

/// Links in the email's frame open in a new tab, not inside the frame.
fn links_open_outside(html: &str) -> String {
    const BASE: &str = "<base target=\"_blank\">";
    match html.find("<head") {
        Some(at) => match html[at..].find('>') {
            Some(end) => {
                let at = at + end + 1;
                format!("{}{BASE}{}", &html[..at], &html[at..])
            }
            None => format!("{BASE}{html}"),
        },
        None => format!("{BASE}{html}"),
    }
}

async fn message(State(state): State<Arc<LiveState>>, uri: Uri) -> Response {
    let pick = match pick(&state, &uri) {
        Ok(p) => p,
        Err(why) => return problems(None, "This preview", &[why], state.generation()),
    };
    let (generation, made) = state.email(&pick).await;
    match &*made {
        Ok(view) => (
            [
                (header::CONTENT_TYPE, "message/rfc822".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}.eml\"", view.date),
                ),
            ],
            view.message.clone(),
        )
            .into_response(),
        Err(lines) => problems(None, "The email", lines, generation),
    }
}

/// `hello` with the generation now, then `reload` after every change.
async fn events(
    State(state): State<Arc<LiveState>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut rx = state.generation.subscribe();
    let now = *rx.borrow_and_update();
    let hello =
        stream::once(async move { Ok(Event::default().event("hello").data(now.to_string())) });
    let reloads = stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        let n = *rx.borrow_and_update();
        Some((Ok(Event::default().event("reload").data(n.to_string())), rx))
    });
    Sse::new(hello.chain(reloads)).keep_alive(KeepAlive::default())
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        page::SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        page::STYLE,
    )
        .into_response()
}

async fn web_folder(UrlPath(date): UrlPath<String>) -> Response {
    Redirect::permanent(&format!("/web/{}/", url_segment(&date))).into_response()
}

async fn web_index(
    State(state): State<Arc<LiveState>>,
    UrlPath(date): UrlPath<String>,
) -> Response {
    web(&state, &date, "").await
}

async fn web_file(
    State(state): State<Arc<LiveState>>,
    UrlPath((date, path)): UrlPath<(String, String)>,
) -> Response {
    web(&state, &date, &path).await
}

fn url_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A file of the web archive up to the issue of `date`: `x/` is
/// `x/index.html`, `x` a redirect to `x/` when that is a folder.
async fn web(state: &Arc<LiveState>, date: &str, path: &str) -> Response {
    let Ok(date) = date.parse::<NaiveDate>() else {
        return not_found().await;
    };
    let (generation, made) = state.site(date).await;
    let (files, links) = match &*made {
        Ok(site) => site,
        Err(lines) => return problems(None, "The web version", lines, generation),
    };
    let key = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_string()
    };
    let Some(bytes) = files.get(&key) else {
        if files.contains_key(&format!("{path}/index.html")) {
            let last = path.rsplit('/').next().unwrap_or(path);
            return Redirect::permanent(&format!("{}/", url_segment(last))).into_response();
        }
        return not_found().await;
    };
    let kind = content_type(&key);
    if kind.starts_with("text/html") {
        let page = links.localise(&String::from_utf8_lossy(bytes), &format!("/web/{date}/"));
        return html(StatusCode::OK, WEB_POLICY, reloading(&page, generation));
    }
    ([(header::CONTENT_TYPE, kind)], bytes.clone()).into_response()
}

/// A form of the web archive (the signup form) posted in the preview:
/// what `serve` would do, done by nobody.
async fn web_form(
    State(state): State<Arc<LiveState>>,
    UrlPath((_, path)): UrlPath<(String, String)>,
    body: String,
) -> Response {
    let address = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "email")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let body = if path == "subscribe" {
        format!(
            "<p><code>serve</code> would answer this signup for <strong>{}</strong> and mail a confirmation link; the address would join the list once it is confirmed.</p>",
            crate::html::escaped(&address)
        )
    } else {
        format!(
            "<p><code>serve</code> would answer this form (<code>/{}</code>).</p>",
            crate::html::escaped(&path)
        )
    };
    html(
        StatusCode::OK,
        PAGE_POLICY,
        page::stand_in("A form of the web archive", &body, state.generation()),
    )
}

/// A feedback link ("Was today's issue useful?"): what `serve` would ask
/// and record, with nothing recorded.
async fn feedback(
    State(state): State<Arc<LiveState>>,
    UrlPath(rest): UrlPath<String>,
    uri: Uri,
) -> Response {
    let root = state.root.clone();
    let made = tokio::task::spawn_blocking(move || view::feedback(&root, &rest)).await;
    let vote = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "vote")
        .map(|(_, v)| v.into_owned());
    match made {
        Ok(Ok((name, Some(date)))) => {
            let body = format!(
                "<p>The reader is asked whether the issue of {} was useful to {}; their answer{} would be counted by <code>serve</code>.</p>",
                crate::render::context::date_long(date),
                crate::html::escaped(&name),
                vote.map(|v| format!(" (“{}”)", crate::html::escaped(&v)))
                    .unwrap_or_default()
            );
            html(
                StatusCode::OK,
                PAGE_POLICY,
                page::stand_in("Feedback", &body, state.generation()),
            )
        }
        Ok(Ok((_, None))) => crate::serve::reader_invalid(),
        Ok(Err(lines)) => problems(None, "This page", &lines, state.generation()),
        Err(e) => problems(None, "This page", &[e.to_string()], state.generation()),
    }
}

/// A web page with the preview's reload script, so it follows edits too.
fn reloading(page: &str, generation: u64) -> String {
    let tag = format!("<script src=\"/live.js\" data-generation=\"{generation}\" defer></script>");
    match page.rfind("</body>") {
        Some(at) => format!("{}{tag}{}", &page[..at], &page[at..]),
        None => format!("{page}{tag}"),
    }
}

fn content_type(path: &str) -> &'static str {
    match Path::new(path).extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("xml") => "application/xml; charset=utf-8",
        Some("atom") => "application/atom+xml; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// What the preview adds to the pages `serve` shows a reader.
const BANNER: &str = "<p style=\"padding:.6rem .8rem;border:2px dashed #b5651d;border-radius:6px\"><strong>Preview:</strong> this is what a reader sees at their unsubscribe link. Nothing is written here: the ledger is not touched.</p>";

async fn unsubscribe_page(
    State(state): State<Arc<LiveState>>,
    UrlPath(rest): UrlPath<String>,
) -> Response {
    let root = state.root.clone();
    let r = rest.clone();
    let made = tokio::task::spawn_blocking(move || view::unsubscriber(&root, &r)).await;
    match made {
        Ok(Ok((name, Some(_)))) => crate::serve::reader_confirm(
            &name,
            &format!("/unsubscribe/{}", url_path(&rest)),
            BANNER,
        ),
        Ok(Ok((_, None))) => crate::serve::reader_invalid(),
        Ok(Err(lines)) => problems(None, "This page", &lines, state.generation()),
        Err(e) => problems(None, "This page", &[e.to_string()], state.generation()),
    }
}

/// The button of the unsubscribe page: what a reader would see next, and
/// nothing written.
async fn unsubscribe_done(
    State(state): State<Arc<LiveState>>,
    UrlPath(rest): UrlPath<String>,
) -> Response {
    let root = state.root.clone();
    let made = tokio::task::spawn_blocking(move || view::unsubscriber(&root, &rest)).await;
    match made {
        Ok(Ok((name, Some(address)))) => {
            let note = format!(
                "<p style=\"padding:.6rem .8rem;border:2px dashed #b5651d;border-radius:6px\"><strong>Preview:</strong> nothing was written. <code>serve</code> would now suppress {} in the ledger.</p>",
                crate::html::escaped(&address)
            );
            crate::serve::reader_unsubscribed(&name, &note)
        }
        Ok(Ok((_, None))) => crate::serve::reader_invalid(),
        Ok(Err(lines)) => problems(None, "This page", &lines, state.generation()),
        Err(e) => problems(None, "This page", &[e.to_string()], state.generation()),
    }
}

/// A path from a request, encoded again for a URL (tokens are URL-safe;
/// anything else is encoded).
fn url_path(s: &str) -> String {
    s.split('/').map(url_segment).collect::<Vec<_>>().join("/")
}

async fn not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        PAGE_POLICY,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title>\
<link rel=\"stylesheet\" href=\"/live.css\"></head><body><main><h1>Not found</h1>\
<p>The <a href=\"/\">preview</a> is at the root of this address.</p></main></body></html>\n"
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_are_answered() {
        for yes in [
            "localhost",
            "localhost:8081",
            "LOCALHOST:1",
            "app.localhost:80",
            "127.0.0.1:8081",
            "127.8.9.10",
            "[::1]:8081",
            "[::1]",
        ] {
            assert!(loopback_host(yes), "{yes}");
        }
        for no in [
            "evil.example:8081",
            "10.0.0.1:8081",
            "localhost.evil.example",
            "[::2]:1",
            "",
            "0.0.0.0:8081",
        ] {
            assert!(!loopback_host(no), "{no}");
        }
    }

    #[test]
    fn links_in_the_frame_open_a_new_tab() {
        assert_eq!(
            links_open_outside("<html><head lang=x><title>t</title></head></html>"),
            "<html><head lang=x><base target=\"_blank\"><title>t</title></head></html>"
        );
        assert_eq!(
            links_open_outside("<p>x</p>"),
            "<base target=\"_blank\"><p>x</p>"
        );
    }

    #[test]
    fn web_pages_get_the_reload_script_before_their_end() {
        assert_eq!(
            reloading("<body><p>x</p></body></html>", 3),
            "<body><p>x</p><script src=\"/live.js\" data-generation=\"3\" defer></script></body></html>"
        );
    }
}

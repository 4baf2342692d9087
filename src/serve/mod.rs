//! `serve`: the unsubscribe endpoint (and the built web archive).
//!
//! - `GET /u/TOKEN`: a small confirmation page with a button;
//! - `POST /u/TOKEN`: RFC 8058 one-click (`List-Unsubscribe=One-Click`) or
//!   the button: suppresses the address and answers 200. No cookies, no
//!   login, no redirect;
//! - an invalid or tampered token answers 400 with a neutral page and
//!   writes nothing;
//! - `GET /healthz`: 200;
//! - without the secret set, links signed with the development secret
//!   (previews, `.eml` files) are accepted on a loopback address of a
//!   project without `[smtp]`, with the note `send` gives; otherwise
//!   unsubscribe links answer 503;
//! - `POST /hooks/ses`, `/hooks/postmark`, `/hooks/mailgun`,
//!   `/hooks/sendgrid`: the providers' bounce and complaint webhooks,
//!   verified and recorded (`hooks`; SNS certificates in `certs`);
//! - `POST /subscribe`, `GET`/`POST /confirm/TOKEN`: signups from the
//!   archive's form, double opt-in (`signup`; the letters go through
//!   `mailer`); `GET`/`POST /feedback/TOKEN`: one-click votes (`feedback`);
//! - anything else: a file from the archive folder through tower-http's
//!   `ServeDir` (paths that leave the folder, `/x/` → `x/index.html`, `/x`
//!   → redirect to `/x/`, content types, HEAD, 405 with `Allow` for other
//!   methods, ranges, `If-Modified-Since`), never a dotfile or anything
//!   under a dot-folder (checked here, after percent-decoding, since
//!   `ServeDir` serves them); text types are labelled UTF-8; a missing
//!   file gets a small page, and before `archive` has built anything every
//!   page says so (as a warning at start does). A folder that holds the
//!   project's settings, list, ledger, outbox or DKIM key is refused at
//!   start.
//!
//! Writes go to the same ledger as `send`, through one connection that
//! waits on SQLite's lock (busy timeout) rather than failing, so an
//! unsubscribe is never lost while a send runs. Addresses in logs are masked
//! and tokens never logged (`-v` logs each request with `/u/***`).

mod certs;
mod feedback;
mod hooks;
mod mailer;
mod signup;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use percent_encoding::percent_decode_str;
use tower_http::services::ServeDir;

use crate::html::escape as html_escape;
use crate::ledger::Ledger;
use crate::log::mask;
use crate::mail::token::{self, Secrets};
use crate::problem::Failure;
use crate::project::Project;
use crate::project::settings::Settings;
use crate::project::templates::Templates;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// The archive folder to serve (default: `archive_dir` from the settings).
    pub root: Option<PathBuf>,
}

struct AppState {
    /// `None` when the secret is not set and the address is not a
    /// loopback one: unsubscribe links are then answered with 503 and only
    /// the archive is served.
    secrets: Option<Secrets>,
    list_id: String,
    name: String,
    settings: Settings,
    /// The signup letters' templates.
    templates: Templates,
    /// How signup letters go out; `None` with `[subscribe] enabled = false`.
    mailer: Option<mailer::Mailer>,
    /// Shared with the webhooks.
    ledger: Arc<Mutex<Ledger>>,
    hooks: hooks::Hooks,
    archive: PathBuf,
    files: ServeDir,
}

/// Runs until interrupted (Ctrl-C / SIGTERM).
pub fn serve(project: &Project, opts: &ServeOptions) -> Result<(), Failure> {
    let settings = &project.settings;
    let secrets = secrets(settings, opts.listen);
    let archive = opts
        .root
        .clone()
        .unwrap_or_else(|| project.path(&settings.archive_dir));
    crate::archive::refuse_private(project, &archive)?;
    let ledger = Arc::new(Mutex::new(crate::ledger::open(project)?));
    let hooks = hooks::Hooks::new(project, ledger.clone(), Box::new(certs::Https::new()));
    let templates = project.templates().map_err(Failure::input)?;
    let mailer = if settings.subscribe.enabled {
        Some(mailer::Mailer::new(project)?)
    } else {
        None
    };
    if let Some(m) = &mailer {
        tracing::info!("signup letters go via {}", m.describe());
    }
    let state = Arc::new(AppState {
        secrets,
        list_id: settings.list_id.clone(),
        name: settings.name.clone(),
        settings: settings.clone(),
        templates,
        mailer,
        ledger,
        hooks,
        files: ServeDir::new(&archive),
        archive,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|source| listen_failed(opts.listen, source))?;
        let addr = listener.local_addr().map_err(anyhow::Error::from)?;
        tracing::info!(
            "serving unsubscribe links and {} on http://{addr}",
            state.archive.display()
        );
        if !built(&state.archive) {
            tracing::warn!("{}", no_archive_yet(&state.archive));
        }
        axum::serve(
            listener,
            app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Failure::Other(e.into()))
    })
}

/// The secrets links are checked (and signup letters signed) with.
/// Without the secret set, the development secret that signed the links of
/// previews and `.eml` files stands in, as `unsubscribe TOKEN` accepts
/// them, with the same note; but only where nothing leaves the machine, as
/// for `send`: on a loopback address (anyone who can reach the server
/// could forge such links) and without `[smtp]` (signup letters would go
/// out as real mail carrying them). Otherwise links answer 503.
fn secrets(settings: &crate::project::settings::Settings, listen: SocketAddr) -> Option<Secrets> {
    let var = &settings.unsubscribe.secret_env;
    match Secrets::from_env(settings) {
        Some(s) => Some(s),
        None if listen.ip().is_loopback() && settings.smtp.is_none() => {
            tracing::info!("{}", token::development_note(var));
            Some(Secrets::development())
        }
        None => {
            tracing::warn!(
                "{var} is not set, so unsubscribe links cannot be checked: they answer 503 until it is (the archive is served; the development secret stands in only on a loopback address and without [smtp])"
            );
            None
        }
    }
}

/// Whether `archive` holds a built archive (its front page).
fn built(archive: &std::path::Path) -> bool {
    archive.join("index.html").is_file()
}

fn no_archive_yet(archive: &std::path::Path) -> String {
    format!(
        "no archive built yet in {}: run `dailyissue archive` (unsubscribe links are answered meanwhile)",
        archive.display()
    )
}

/// A port another program holds may be free later (75); anything else
/// (no such local address, a port below 1024 without the right) is for
/// the operator to fix (1). Neither is bad input.
fn listen_failed(addr: SocketAddr, source: std::io::Error) -> Failure {
    if source.kind() == ErrorKind::AddrInUse {
        Failure::Temporary(crate::problem::Temporary::Listen { addr, source })
    } else {
        Failure::Other(anyhow::Error::new(source).context(format!(
            "cannot listen on {addr}; pick an address of this machine with --listen"
        )))
    }
}

fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/u/{token}", get(confirm_page).post(unsubscribe))
        .route("/subscribe", axum::routing::post(signup::subscribe))
        .route(
            "/confirm/{token}",
            get(signup::confirm_page).post(signup::confirm),
        )
        .route("/feedback/{token}", get(feedback::ask).post(feedback::vote))
        .route("/hooks/ses", hook_route(hooks::Provider::Ses))
        .route("/hooks/postmark", hook_route(hooks::Provider::Postmark))
        .route("/hooks/mailgun", hook_route(hooks::Provider::Mailgun))
        .route("/hooks/sendgrid", hook_route(hooks::Provider::Sendgrid))
        .fallback(static_file)
        .layer(axum::middleware::from_fn(log_request))
        .with_state(state)
}

/// `POST` for one provider's webhook, its body limited to
/// [`hooks::BODY_LIMIT`] (413 past it).
fn hook_route(provider: hooks::Provider) -> axum::routing::MethodRouter<Arc<AppState>> {
    post(
        move |State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes| async move {
            hook(state, provider, headers, body).await
        },
    )
    .layer(DefaultBodyLimit::max(hooks::BODY_LIMIT))
}

/// Checks and records a webhook request off the async threads (it may
/// fetch a certificate and waits for the ledger).
async fn hook(
    state: Arc<AppState>,
    provider: hooks::Provider,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let handled =
        tokio::task::spawn_blocking(move || state.hooks.handle(provider, &headers, &body)).await;
    match handled {
        Ok(reply) => (
            reply.status,
            [(header::CACHE_CONTROL, "no-store")],
            reply.text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("webhook: task failed: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "try again later\n").into_response()
        }
    }
}

/// `-v`: one line per request, with the token of a link left out (and
/// the query, which may carry form values).
async fn log_request(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = request.method().clone();
    let path = logged_path(request.uri().path());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::debug!(
        "{method} {path} {} in {:.0?}",
        response.status().as_u16(),
        started.elapsed()
    );
    response
}

/// A request's path as the log shows it: the token of a link is never
/// written (it would let anyone reading the log act as the reader).
fn logged_path(path: &str) -> String {
    for prefix in ["/u/", "/confirm/", "/feedback/"] {
        if path.starts_with(prefix) {
            return format!("{prefix}***");
        }
    }
    path.to_string()
}

/// Runs `f` on the ledger on a blocking thread (SQLite waits on its lock).
async fn with_ledger<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&mut Ledger) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let ledger = state.ledger.clone();
    tokio::task::spawn_blocking(move || {
        let mut ledger = ledger
            .lock()
            .map_err(|_| anyhow::anyhow!("ledger lock poisoned"))?;
        f(&mut ledger)
    })
    .await
    .map_err(|e| anyhow::anyhow!("the ledger task failed: {e}"))?
}

fn try_again() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "<p>We could not record your request just now. Please try again in a minute.</p>",
    )
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let mut t = String::new();
    html_escape(title, &mut t);
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"color-scheme\" content=\"light dark\"><title>{t}</title>\
<style>body{{font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;max-width:32rem;margin:12vh auto;padding:0 1.25rem;line-height:1.5;color:#2a2f3a;background:#f3f1ec}}\
h1{{font-family:Georgia,serif;font-size:1.6rem}}button{{font:inherit;font-weight:bold;padding:.7rem 1.3rem;border:0;border-radius:6px;background:#2a6f97;color:#fff;cursor:pointer}}\
@media (prefers-color-scheme:dark){{body{{background:#15171c;color:#dfe2e8}}}}</style></head>\
<body><h1>{t}</h1>{body}</body></html>\n"
    );
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(html),
    )
        .into_response()
}

fn invalid() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "This link does not work",
        "<p>The link is incomplete or has been changed. Use the link from the newest email, or reply to any email from us and we will do it by hand.</p>",
    )
}

fn not_configured() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again later",
        "<p>This is not available right now. Please try the link again later, or reply to any email from us.</p>",
    )
}

async fn confirm_page(
    State(state): State<Arc<AppState>>,
    UrlPath(token): UrlPath<String>,
) -> Response {
    let Some(secrets) = &state.secrets else {
        return not_configured();
    };
    // The page never names the reader: whoever opens the link (a
    // forwarded issue's reader, a link scanner) learns nothing from it.
    if token::verify(secrets, &state.list_id, &token).is_none() {
        return invalid();
    }
    reader_confirm(&state.name, &format!("/u/{token}"), "")
}

async fn unsubscribe(
    State(state): State<Arc<AppState>>,
    UrlPath(token): UrlPath<String>,
    body: String,
) -> Response {
    let Some(secrets) = &state.secrets else {
        return not_configured();
    };
    let Some(address) = token::verify(secrets, &state.list_id, &token) else {
        tracing::info!("unsubscribe: refused an invalid token");
        return invalid();
    };
    // The body is a form (application/x-www-form-urlencoded, RFC 8058).
    let one_click = url::form_urlencoded::parse(body.as_bytes())
        .any(|(key, value)| key == "List-Unsubscribe" && value == "One-Click");
    let how = if one_click { "one-click" } else { "web form" };
    let st = state.clone();
    let addr = address.clone();
    let written = tokio::task::spawn_blocking(move || -> anyhow::Result<bool> {
        let mut ledger = st
            .ledger
            .lock()
            .map_err(|_| anyhow::anyhow!("ledger lock poisoned"))?;
        ledger.suppress(&addr, "unsubscribed", Some(how))
    })
    .await;
    match written {
        Ok(Ok(new)) => {
            tracing::info!(
                "unsubscribe: {} ({how}){}",
                mask(&address),
                if new { "" } else { ", already suppressed" }
            );
            reader_unsubscribed(&state.name, "")
        }
        Ok(Err(e)) => {
            tracing::error!(
                "unsubscribe: cannot record {}: {}",
                mask(&address),
                crate::log::mask_in(&format!("{e:#}"), &address)
            );
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "<p>We could not record your request just now. Please try the link again in a minute.</p>",
            )
        }
        Err(e) => {
            tracing::error!("unsubscribe: task failed: {e}");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "<p>We could not record your request just now.</p>",
            )
        }
    }
}

/// Serves the web archive through `ServeDir`, minus dotfiles, with a
/// friendly 404.
async fn static_file(State(state): State<Arc<AppState>>, req: Request) -> Response {
    if hidden(req.uri().path()) {
        return not_found();
    }
    if !built(&state.archive) {
        return page(
            StatusCode::NOT_FOUND,
            "No archive built yet",
            "<p>No archive built yet: run <code>dailyissue archive</code>, then reload this page.</p>",
        );
    }
    match state.files.clone().try_call(req).await {
        Ok(res) if res.status() == StatusCode::NOT_FOUND => not_found(),
        Ok(res) => utf8(res.into_response()),
        // What `ServeDir`'s own `call` answers 404 to: gone, unreadable,
        // or a file taken for a folder (`/feed.xml/x`).
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::NotFound | ErrorKind::PermissionDenied | ErrorKind::NotADirectory
            ) =>
        {
            not_found()
        }
        Err(e) => {
            tracing::error!("serve: cannot read from {}: {e}", state.archive.display());
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file\n").into_response()
        }
    }
}

/// Whether a request path names a dotfile or anything under a dot-folder
/// (`.dailyissue/`, `.git/`, `.env`, the archive's own manifest), or `..`:
/// never part of the site. Decoded first, as `ServeDir` decodes it, so
/// `/%2Eenv` is caught too.
fn hidden(url_path: &str) -> bool {
    percent_decode_str(url_path)
        .decode_utf8_lossy()
        .split(['/', '\\'])
        .any(|segment| segment.starts_with('.'))
}

/// `ServeDir` names the type from the extension with no charset; what the
/// archive writes is UTF-8, so text, XML and Atom say so (a stylesheet or
/// `.txt` with non-ASCII text would otherwise be read as Latin-1).
fn utf8(mut res: Response) -> Response {
    let Some(ct) = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return res;
    };
    let textual =
        ct.starts_with("text/") || (ct.starts_with("application/") && ct.ends_with("xml"));
    if textual && let Ok(v) = HeaderValue::from_str(&format!("{ct}; charset=utf-8")) {
        res.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    res
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "<p>There is no page at this address. The <a href=\"/\">archive's front page</a> lists every issue.</p>",
    )
}

/// The pages a reader meets at an unsubscribe link, shared with
/// `preview --serve`, which shows them without writing anything: the
/// confirmation with its button (posting to `action`), the page after it,
/// and the one for a link that does not verify. `note` is HTML put first
/// in the page's body (the preview's banner; empty here).
/// The confirmation never names the reader: whoever opens a link (a
/// forwarded issue's reader, a link scanner) learns nothing from it.
pub(crate) fn reader_confirm(newsletter: &str, action: &str, note: &str) -> Response {
    let (mut name, mut act) = (String::new(), String::new());
    html_escape(newsletter, &mut name);
    html_escape(action, &mut act);
    page(
        StatusCode::OK,
        &format!("Unsubscribe from {newsletter}?"),
        &format!(
            "{note}<p>The address this email was sent to will get no more emails from {name}.</p>\
<form method=\"post\" action=\"{act}\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\"><button type=\"submit\">Unsubscribe</button></form>"
        ),
    )
}

/// See [`reader_confirm`].
pub(crate) fn reader_unsubscribed(newsletter: &str, note: &str) -> Response {
    let mut name = String::new();
    html_escape(newsletter, &mut name);
    page(
        StatusCode::OK,
        "You are unsubscribed",
        &format!("{note}<p>You will get no more emails from {name}. Thank you for reading.</p>"),
    )
}

/// See [`reader_confirm`].
pub(crate) fn reader_invalid() -> Response {
    invalid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotfiles_and_dot_folders_are_hidden() {
        for path in [
            "/.env",
            "/.git/config",
            "/.dailyissue/state.db",
            "/.dailyissue-archive",
            "/issues/.hidden",
            "/issues/../.env",
            "/../etc/passwd",
            "/./index.html",
            "/%2Eenv",
            "/%2egit/config",
            "/issues%2F..%2F.env",
            "/a\\.env",
        ] {
            assert!(hidden(path), "{path}");
        }
        for path in ["/", "/feed.xml", "/issues/2027-03-01/", "/glossary/a.b/"] {
            assert!(!hidden(path), "{path}");
        }
    }

    #[test]
    fn text_types_are_labelled_utf8() {
        let with = |ct: &'static str| {
            let res = utf8(([(header::CONTENT_TYPE, ct)], "").into_response());
            res.headers()[header::CONTENT_TYPE]
                .to_str()
                .map(str::to_owned)
        };
        for (given, served) in [
            ("text/html", "text/html; charset=utf-8"),
            ("text/css", "text/css; charset=utf-8"),
            ("text/xml", "text/xml; charset=utf-8"),
            (
                "application/atom+xml",
                "application/atom+xml; charset=utf-8",
            ),
            ("image/svg+xml", "image/svg+xml"),
            ("image/png", "image/png"),
        ] {
            assert_eq!(with(given).ok().as_deref(), Some(served), "{given}");
        }
    }
}

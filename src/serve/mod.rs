//! `serve`: the unsubscribe endpoint (and the built web archive).
//!
//! - `GET /u/TOKEN`: a small confirmation page with a button;
//! - `POST /u/TOKEN`: RFC 8058 one-click (`List-Unsubscribe=One-Click`) or
//!   the button: suppresses the address and answers 200. No cookies, no
//!   login, no redirect;
//! - an invalid or tampered token answers 400 with a neutral page and
//!   writes nothing;
//! - `GET /healthz`: 200;
//! - anything else: a file from the archive folder, when it exists, for
//!   GET and HEAD only (other methods get 405 with `Allow`), never a
//!   dotfile or anything under a dot-folder; a folder that holds the
//!   project's settings, list, ledger, outbox or DKIM key is refused at
//!   start (hand-written for now; tower-http's `ServeDir` is to replace it).
//!
//! Writes go to the same ledger as `send`, through one connection that
//! waits on SQLite's lock (busy timeout) rather than failing, so an
//! unsubscribe is never lost while a send runs. Addresses in logs are masked
//! and tokens never logged (`-v` logs each request with `/u/***`).

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::html::escape as html_escape;
use crate::ledger::Ledger;
use crate::log::mask;
use crate::mail::token::{self, Secrets};
use crate::problem::Failure;
use crate::project::Project;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// The archive folder to serve (default: `archive_dir` from the settings).
    pub root: Option<PathBuf>,
}

struct AppState {
    /// `None` when the secret is not set: unsubscribe links are then
    /// answered with 503 and only the archive is served.
    secrets: Option<Secrets>,
    list_id: String,
    name: String,
    ledger: Mutex<Ledger>,
    archive: PathBuf,
}

/// Runs until interrupted (Ctrl-C / SIGTERM).
pub fn serve(project: &Project, opts: &ServeOptions) -> Result<(), Failure> {
    let settings = &project.settings;
    let secrets = Secrets::from_env(settings);
    if secrets.is_none() {
        tracing::warn!(
            "{} is not set, so unsubscribe links cannot be checked: they answer 503 until it is (the archive is served)",
            settings.unsubscribe.secret_env
        );
    }
    let archive = opts
        .root
        .clone()
        .unwrap_or_else(|| project.path(&settings.archive_dir));
    crate::archive::refuse_private(project, &archive)?;
    let ledger = crate::ledger::open(project)?;
    let state = Arc::new(AppState {
        secrets,
        list_id: settings.list_id.clone(),
        name: settings.name.clone(),
        ledger: Mutex::new(ledger),
        archive,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|e| Failure::Usage(format!("cannot listen on {}: {e}", opts.listen)))?;
        let addr = listener.local_addr().map_err(anyhow::Error::from)?;
        tracing::info!(
            "serving unsubscribe links and {} on http://{addr}",
            state.archive.display()
        );
        axum::serve(listener, app(state))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| Failure::Other(e.into()))
    })
}

fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/u/{token}", get(confirm_page).post(unsubscribe))
        .fallback(static_file)
        .layer(axum::middleware::from_fn(log_request))
        .with_state(state)
}

/// `-v`: one line per request, with the token of an unsubscribe link
/// left out.
async fn log_request(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = request.method().clone();
    let path = match request.uri().path() {
        p if p.starts_with("/u/") => "/u/***".to_string(),
        p => p.to_string(),
    };
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::debug!(
        "{method} {path} {} in {:.0?}",
        response.status().as_u16(),
        started.elapsed()
    );
    response
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
        "<p>The unsubscribe link is incomplete or has been changed. Use the link from the newest email, or reply to any issue and we will take you off the list by hand.</p>",
    )
}

fn not_configured() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again later",
        "<p>Unsubscribing is not available right now. Please try the link again later, or reply to any issue.</p>",
    )
}

async fn confirm_page(
    State(state): State<Arc<AppState>>,
    UrlPath(token): UrlPath<String>,
) -> Response {
    let Some(secrets) = &state.secrets else {
        return not_configured();
    };
    let Some(address) = token::verify(secrets, &state.list_id, &token) else {
        return invalid();
    };
    let (mut name, mut addr, mut tok) = (String::new(), String::new(), String::new());
    html_escape(&state.name, &mut name);
    html_escape(&address, &mut addr);
    html_escape(&token, &mut tok);
    page(
        StatusCode::OK,
        &format!("Unsubscribe from {}?", state.name),
        &format!(
            "<p>{addr} will get no more emails from {name}.</p>\
<form method=\"post\" action=\"/u/{tok}\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\"><button type=\"submit\">Unsubscribe</button></form>"
        ),
    )
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
    let how = if body.contains("List-Unsubscribe=One-Click") {
        "one-click"
    } else {
        "web form"
    };
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
            let mut name = String::new();
            html_escape(&state.name, &mut name);
            page(
                StatusCode::OK,
                "You are unsubscribed",
                &format!("<p>You will get no more emails from {name}. Thank you for reading.</p>"),
            )
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

/// Serves the web archive: `/x/` → `x/index.html`; GET and HEAD only; no
/// path may leave the folder or name a dotfile.
async fn static_file(State(state): State<Arc<AppState>>, method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "method not allowed\n",
        )
            .into_response();
    }
    let Some(path) = archive_path(&state.archive, uri.path()) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type(&path))], bytes).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

fn archive_path(root: &Path, url_path: &str) -> Option<PathBuf> {
    let rel = Path::new(url_path.trim_start_matches('/'));
    // Only plain names, and no dotfiles (`.dailyissue/`, `.git/`, the
    // archive's own manifest): they are never part of the site.
    if rel.components().any(|c| match c {
        Component::Normal(name) => name.to_string_lossy().starts_with('.'),
        _ => true,
    }) {
        return None;
    }
    let mut path = root.join(rel);
    if url_path.ends_with('/') || path.is_dir() {
        path = path.join("index.html");
    }
    Some(path)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("xml") => "application/xml; charset=utf-8",
        Some("atom") => "application/atom+xml; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_stay_inside() {
        let root = Path::new("/srv/public");
        assert_eq!(
            archive_path(root, "/issues/2027-03-01/"),
            Some(root.join("issues/2027-03-01/index.html"))
        );
        assert_eq!(archive_path(root, "/feed.xml"), Some(root.join("feed.xml")));
        assert_eq!(archive_path(root, "/../etc/passwd"), None);
        assert_eq!(archive_path(root, "/a/../../b"), None);
        assert_eq!(archive_path(root, "/.dailyissue/state.db"), None);
        assert_eq!(archive_path(root, "/issues/.hidden"), None);
        assert_eq!(archive_path(root, "/.dailyissue-archive"), None);
    }
}

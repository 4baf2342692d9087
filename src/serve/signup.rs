//! Signups through `serve`: the archive's form and the double opt-in.
//!
//! - `POST /subscribe`: form-encoded only. A body over [`MAX_BODY`], another
//!   content type or a filled honeypot (`website`) is refused quietly; an
//!   address the list would not take gets the form back with the error;
//!   anything else gets one and the same "check your inbox" page, whether
//!   the address is new, pending, confirmed or suppressed, and in the same
//!   time (the confirmation is mailed after the answer), so the form
//!   cannot tell anyone who is on the list. The ledger judges the request
//!   against the limits in one transaction before any mail is sent.
//! - `GET /confirm/TOKEN`: a page with a button; changes nothing (link
//!   scanners and mail security proxies fetch links with GET).
//! - `POST /confirm/TOKEN`: confirms (again: harmless) and mails the welcome.
//!
//! Form values that reach a header (the address, the name in the
//! welcome's `To`) are checked here: the address by the list's own rules,
//! the name made one line, and dropped when it looks like a link (a known
//! way to smuggle spam into confirmation mail). The client's address is
//! kept only as a keyed hash; behind a reverse proxy on the same host it is
//! taken from the last `X-Forwarded-For` entry.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use chrono::Utc;
use lettre::Address;

use super::{AppState, invalid, not_configured, page, with_ledger};
use crate::html::escaped;
use crate::ledger::{Confirmed, Limits, Request, Requested};
use crate::log::mask;
use crate::mail::token;
use crate::project::subscribers::{AddressKey, clean_line, parse_address};
use crate::render::signup::{self, Confirmation, Welcome};

/// The most a signup form's body may hold: a few fields, never kilobytes.
pub(super) const MAX_BODY: usize = 4096;

/// The longest name kept.
const MAX_NAME: usize = 100;

/// The form's fields.
#[derive(Debug, Default)]
struct Form {
    email: String,
    name: String,
    website: String,
    tz: String,
    page: String,
}

fn parse_form(body: &[u8]) -> Form {
    let mut form = Form::default();
    for (key, value) in url::form_urlencoded::parse(body) {
        let slot = match key.as_ref() {
            "email" => &mut form.email,
            "name" => &mut form.name,
            "website" => &mut form.website,
            "tz" => &mut form.tz,
            "page" => &mut form.page,
            _ => continue,
        };
        *slot = value.into_owned();
    }
    form
}

/// A name as kept: one line, at most [`MAX_NAME`] characters, and nothing
/// that looks like a link or an address.
fn name(raw: &str) -> String {
    let name: String = clean_line(raw).chars().take(MAX_NAME).collect();
    let lower = name.to_lowercase();
    if ["://", "www.", "@", "<", ">", "http"]
        .iter()
        .any(|bad| lower.contains(bad))
    {
        return String::new();
    }
    name
}

/// The client, for the per-IP limit: the socket's peer, or, when that is
/// a proxy on this host, the address it appended to `X-Forwarded-For`.
fn client(peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    // Only the last entry is the proxy's own: the ones before it are
    // whatever the client sent.
    let forwarded = || {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
    };
    match peer.ip() {
        ip if ip.is_loopback() => forwarded().unwrap_or(ip),
        ip => ip,
    }
}

/// What the limit counts a client as: its IPv4 address, or its IPv6 /64
/// (one host gets a whole /64, so counting single addresses would count
/// nothing).
fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// How long a confirmation link works, in words.
fn validity(state: &AppState) -> String {
    let within = state.settings.subscribe.confirm_within;
    match (within.num_days(), within.num_hours()) {
        (1, _) => "one day".into(),
        (d, h) if d > 1 && h % 24 == 0 => format!("{d} days"),
        (_, 1) => "one hour".into(),
        (_, h) => format!("{h} hours"),
    }
}

/// The one answer to every signup that was not an invalid address.
fn check_inbox(state: &AppState) -> Response {
    page(
        StatusCode::OK,
        "Check your inbox",
        &format!(
            "<p>If that address can be subscribed, an email with a confirmation link is on its way to it. Open it and press the button to confirm; the link works for {}.</p>\
<p>Nothing after a few minutes? Look in the spam folder.</p><p><a href=\"{}\">Back to {}</a></p>",
            validity(state),
            escaped(&state.settings.url),
            escaped(&state.settings.name)
        ),
    )
}

/// The form again, with what is wrong with the address.
fn form_error(state: &AppState, form: &Form) -> Response {
    let field = "font:inherit;width:100%;padding:.6rem .7rem;border:2px solid #b4532a;border-radius:7px;margin:.3rem 0";
    page(
        StatusCode::BAD_REQUEST,
        "Please check the address",
        &format!(
            "<form method=\"post\" action=\"{action}\">\
<p><label for=\"email\"><strong>Email address</strong></label><br>\
<input id=\"email\" name=\"email\" type=\"email\" value=\"{email}\" required autocomplete=\"email\" aria-invalid=\"true\" aria-describedby=\"email-error\" autofocus style=\"{field}\"></p>\
<p id=\"email-error\" role=\"alert\">That is not an email address we can send to. Check it for typos.</p>\
<input type=\"hidden\" name=\"name\" value=\"{name}\"><input type=\"hidden\" name=\"tz\" value=\"{tz}\"><input type=\"hidden\" name=\"page\" value=\"{page}\">\
<button type=\"submit\">Subscribe</button></form>",
            action = escaped(&state.settings.subscribe.action),
            email = escaped(&form.email),
            name = escaped(&form.name),
            tz = escaped(&form.tz),
            page = escaped(&form.page),
        ),
    )
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// `POST /subscribe`.
pub(super) async fn subscribe(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !state.settings.subscribe.enabled {
        return super::not_found();
    }
    let Some(secrets) = state.secrets.clone() else {
        return not_configured();
    };
    let ip_hash = token::keyed_hash(&secrets, "client", &client_key(client(peer, &headers)));
    let bytes = if is_form(&headers) {
        axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|_| "too large")
    } else {
        Err("not a form")
    };
    let form = match bytes.map(|b| parse_form(&b)) {
        Ok(form) if form.website.trim().is_empty() => form,
        refused => {
            let why = refused.err().unwrap_or("honeypot");
            tracing::info!("signup: refused quietly ({why})");
            let logged = with_ledger(&state, move |l| {
                l.refuse_signup(Utc::now(), why, Some(&ip_hash))
            })
            .await;
            if let Err(e) = logged {
                tracing::error!("signup: cannot record a refusal: {e:#}");
            }
            return check_inbox(&state);
        }
    };
    let Ok(address) = parse_address(form.email.trim()) else {
        return form_error(&state, &form);
    };
    request(state, address, &form, ip_hash, secrets).await
}

/// Judges and records a valid request; mails the confirmation after the
/// answer when the ledger says so.
async fn request(
    state: Arc<AppState>,
    address: Address,
    form: &Form,
    ip_hash: String,
    secrets: token::Secrets,
) -> Response {
    let subscribe = &state.settings.subscribe;
    let key = AddressKey::from(&address);
    let now = Utc::now();
    let expires = now + subscribe.confirm_within;
    let address_hash = token::keyed_hash(&secrets, "address", &key);
    let timezone = form
        .tz
        .trim()
        .parse::<chrono_tz::Tz>()
        .ok()
        .map(|tz| tz.name().to_string());
    let page_url = Some(form.page.trim())
        .filter(|p| {
            p.starts_with(&state.settings.url) && p.len() <= 300 && !p.contains(char::is_control)
        })
        .map(str::to_string);
    let (name, limits) = (
        name(&form.name),
        Limits {
            per_address_per_day: subscribe.per_address_per_day,
            per_ip_per_hour: subscribe.per_ip_per_hour,
        },
    );
    let k = key.clone();
    let verdict = with_ledger(&state, move |l| {
        l.expire_signups(now)?;
        let req = Request {
            address: &k,
            name: &name,
            page: page_url.as_deref(),
            timezone: timezone.as_deref(),
            address_hash: &address_hash,
            ip_hash: Some(&ip_hash),
            at: now,
            expires,
        };
        l.request_signup(&req, limits)
    })
    .await;
    match verdict {
        Ok(Requested::Mail) => {
            tracing::info!(
                "signup: {} asked to join; mailing the confirmation",
                mask(&key)
            );
            let st = state.clone();
            // To the address as the ledger keeps it: the one that confirms.
            let address = parse_address(&key).unwrap_or(address);
            tokio::spawn(async move { mail_confirmation(st, address, expires, secrets).await });
        }
        Ok(other) => tracing::info!("signup: {} not mailed ({other:?})", mask(&key)),
        Err(e) => {
            tracing::error!(
                "signup: cannot record {}: {}",
                mask(&key),
                crate::log::mask_in(&format!("{e:#}"), &key)
            );
            return super::try_again();
        }
    }
    check_inbox(&state)
}

async fn mail_confirmation(
    state: Arc<AppState>,
    address: Address,
    expires: chrono::DateTime<Utc>,
    secrets: token::Secrets,
) {
    let settings = &state.settings;
    let key = AddressKey::from(&address);
    let token = token::confirm_token(&secrets, &settings.list_id, &key, expires.timestamp());
    let confirm_url = settings.subscribe.confirm_url.replace("{token}", &token);
    let c = Confirmation {
        address: &address,
        confirm_url: &confirm_url,
        expires,
    };
    let sent = match signup::confirmation(settings, &state.templates, &secrets, c, Utc::now()) {
        Ok(message) => match &state.mailer {
            Some(mailer) => mailer.send(&address, "confirm", message).await,
            None => Err("signups are off".into()),
        },
        Err(e) => Err(e.to_string()),
    };
    match sent {
        Ok(()) => tracing::info!("signup: confirmation sent to {}", mask(&key)),
        Err(e) => tracing::error!(
            "signup: cannot send the confirmation to {}: {e}",
            mask(&key)
        ),
    }
}

/// The address and expiry of a genuine confirmation token, or the page
/// that says why not.
fn verified(state: &AppState, token: &str) -> Result<(AddressKey, token::Secrets), Box<Response>> {
    let Some(secrets) = state.secrets.clone() else {
        return Err(Box::new(not_configured()));
    };
    let Some((address, expires)) = token::verify_confirm(&secrets, &state.settings.list_id, token)
    else {
        return Err(Box::new(invalid()));
    };
    if Utc::now().timestamp() > expires {
        return Err(Box::new(page(
            StatusCode::GONE,
            "This link has expired",
            &format!(
                "<p>Confirmation links work for {}. To subscribe, sign up again on <a href=\"{}\">{}</a>.</p>",
                validity(state),
                escaped(&state.settings.url),
                escaped(&state.settings.name)
            ),
        )));
    }
    Ok((address, secrets))
}

/// `GET /confirm/TOKEN`: the button, nothing else.
pub(super) async fn confirm_page(
    State(state): State<Arc<AppState>>,
    UrlPath(token): UrlPath<String>,
) -> Response {
    // Checked, but never shown: whoever opens the link (a mail security
    // scanner) learns nothing from the page.
    if let Err(page) = verified(&state, &token) {
        return *page;
    }
    let name = escaped(&state.settings.name);
    page(
        StatusCode::OK,
        &format!("Confirm your subscription to {}", state.settings.name),
        &format!(
            "<p>Press the button to start getting {name} at the address this email was sent to.</p>\
<form method=\"post\" action=\"/confirm/{}\"><button type=\"submit\" autofocus>Confirm my subscription</button></form>",
            escaped(&token)
        ),
    )
}

/// `POST /confirm/TOKEN`: confirms, and mails the welcome the first time.
pub(super) async fn confirm(
    State(state): State<Arc<AppState>>,
    UrlPath(token): UrlPath<String>,
) -> Response {
    let (key, secrets) = match verified(&state, &token) {
        Ok(v) => v,
        Err(page) => return *page,
    };
    let k = key.clone();
    let done = with_ledger(&state, move |l| {
        let confirmed = l.confirm_signup(&k, Utc::now())?;
        let latest = l.delivered_dates()?.last().copied();
        Ok((confirmed, latest))
    })
    .await;
    match done {
        Ok((Confirmed::Now(signup), latest)) => {
            tracing::info!("signup: {} confirmed", mask(&key));
            if state.settings.subscribe.welcome {
                let st = state.clone();
                tokio::spawn(async move {
                    mail_welcome(st, signup.address, signup.name, latest, secrets).await
                });
            }
            subscribed(&state)
        }
        Ok((Confirmed::Already, _)) => subscribed(&state),
        Ok((Confirmed::Missing | Confirmed::Suppressed, _)) => page(
            StatusCode::GONE,
            "This link no longer works",
            &format!(
                "<p>This signup is no longer waiting for its confirmation. To subscribe, sign up again on <a href=\"{}\">{}</a>.</p>",
                escaped(&state.settings.url),
                escaped(&state.settings.name)
            ),
        ),
        Err(e) => {
            tracing::error!(
                "signup: cannot confirm {}: {}",
                mask(&key),
                crate::log::mask_in(&format!("{e:#}"), &key)
            );
            super::try_again()
        }
    }
}

fn subscribed(state: &AppState) -> Response {
    let s = &state.settings;
    page(
        StatusCode::OK,
        "You are subscribed",
        &format!(
            "<p>Welcome to {}! A new issue arrives every morning at {} ({} time).</p><p><a href=\"{}\">Read the archive</a></p>",
            escaped(&s.name),
            s.send_time.format("%H:%M"),
            s.timezone.name(),
            escaped(&s.url)
        ),
    )
}

async fn mail_welcome(
    state: Arc<AppState>,
    address: String,
    name: String,
    latest: Option<chrono::NaiveDate>,
    secrets: token::Secrets,
) {
    let Ok(address) = parse_address(&address) else {
        return;
    };
    let w = Welcome {
        address: &address,
        name: &name,
        latest,
    };
    let key = AddressKey::from(&address);
    let sent = match signup::welcome(&state.settings, &state.templates, &secrets, w, Utc::now()) {
        Ok(message) => match &state.mailer {
            Some(mailer) => mailer.send(&address, "welcome", message).await,
            None => Err("signups are off ([subscribe] enabled = false)".into()),
        },
        Err(e) => Err(e.to_string()),
    };
    match sent {
        Ok(()) => tracing::info!("signup: welcome sent to {}", mask(&key)),
        Err(e) => tracing::error!("signup: cannot send the welcome to {}: {e}", mask(&key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_line_and_never_links() {
        assert_eq!(name("  Ada\r\nPark "), "Ada Park");
        assert_eq!(name("Win $$$ at https://spam.example"), "");
        assert_eq!(name("see www.spam.example"), "");
        assert_eq!(name("a@b.c"), "");
        assert_eq!(name(&"x".repeat(500)).len(), MAX_NAME);
    }

    #[test]
    fn the_client_is_the_peer_or_what_a_local_proxy_forwarded() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().expect("value"),
        );
        let local: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let remote: SocketAddr = "192.0.2.1:5000".parse().expect("addr");
        assert_eq!(client(local, &headers).to_string(), "198.51.100.7");
        assert_eq!(
            client(remote, &headers).to_string(),
            "192.0.2.1",
            "only a local proxy is trusted"
        );
        assert_eq!(client(local, &HeaderMap::new()).to_string(), "127.0.0.1");
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().expect("ip");
        assert_eq!(client_key(v6), "2001:db8:1:2::/64");
    }

    #[test]
    fn forms_are_read_field_by_field() {
        let f = parse_form(
            b"email=ada%40example.org&name=Ada+Park&website=&tz=Europe%2FBerlin&extra=x",
        );
        assert_eq!(
            (f.email.as_str(), f.name.as_str(), f.tz.as_str()),
            ("ada@example.org", "Ada Park", "Europe/Berlin")
        );
        assert!(f.website.is_empty());
    }
}

//! One-click feedback: "Was today's issue useful? Yes · No".
//!
//! - `GET /feedback/TOKEN?vote=yes|no`: the question with both answers as
//!   buttons (the one clicked in the email first in focus); records
//!   nothing, since link scanners fetch links too;
//! - `POST /feedback/TOKEN` (`vote=yes|no`, form-encoded): records the
//!   reader's vote on the token's issue; a second vote replaces the first.
//!
//! The token names the reader and the issue; the ledger keeps the vote
//! under a keyed hash of the reader, so only counts can be read back, and
//! the log names neither the reader nor the token.

use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use chrono::{NaiveDate, Utc};

use super::{AppState, invalid, not_configured, page, with_ledger};
use crate::html::escaped;
use crate::ledger::Vote;
use crate::mail::token;
use crate::project::subscribers::AddressKey;
use crate::render::context::date_long;

/// The reader and the issue of a genuine feedback token.
fn verified(
    state: &AppState,
    token: &str,
) -> Result<(AddressKey, NaiveDate, token::Secrets), Box<Response>> {
    let Some(secrets) = state.secrets.clone() else {
        return Err(Box::new(not_configured()));
    };
    match token::verify_feedback(&secrets, &state.settings.list_id, token) {
        Some((reader, date)) => Ok((reader, date, secrets)),
        None => Err(Box::new(invalid())),
    }
}

/// `GET /feedback/TOKEN`: the question, both answers as buttons.
pub(super) async fn ask(
    State(state): State<Arc<AppState>>,
    UrlPath(token): UrlPath<String>,
    uri: Uri,
) -> Response {
    let (_, date, _) = match verified(&state, &token) {
        Ok(v) => v,
        Err(page) => return *page,
    };
    let chosen = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "vote")
        .and_then(|(_, v)| Vote::parse(&v));
    let button = |vote: Vote, label: &str| {
        format!(
            "<button type=\"submit\" name=\"vote\" value=\"{}\"{} style=\"margin:0 .5rem .5rem 0\">{label}</button>",
            vote.as_str(),
            if chosen == Some(vote) {
                " autofocus"
            } else {
                ""
            }
        )
    };
    page(
        StatusCode::OK,
        &format!("Was the issue of {} useful?", date_long(date)),
        &format!(
            "<p>Your answer helps {} get better. Only the counts are kept.</p>\
<form method=\"post\" action=\"/feedback/{}\">{}{}</form>",
            escaped(&state.settings.name),
            escaped(&token),
            button(Vote::Yes, "Yes, it was useful"),
            button(Vote::No, "No, not really")
        ),
    )
}

/// `POST /feedback/TOKEN`: records the vote.
pub(super) async fn vote(
    State(state): State<Arc<AppState>>,
    UrlPath(token): UrlPath<String>,
    body: String,
) -> Response {
    let (reader, date, secrets) = match verified(&state, &token) {
        Ok(v) => v,
        Err(page) => return *page,
    };
    let Some(vote) = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "vote")
        .and_then(|(_, v)| Vote::parse(&v))
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "Which answer?",
            "<p>Use one of the two buttons: yes or no.</p>",
        );
    };
    let hash = token::keyed_hash(&secrets, "reader", &reader);
    let recorded = with_ledger(&state, move |l| l.vote(date, &hash, vote, Utc::now())).await;
    match recorded {
        Ok(how) => {
            tracing::info!("feedback: a vote on the issue of {date} ({how:?})");
            page(
                StatusCode::OK,
                "Thank you",
                &format!(
                    "<p>Your answer is recorded: {}. Changed your mind? The other link in the email changes it.</p>",
                    if vote == Vote::Yes {
                        "useful"
                    } else {
                        "not useful"
                    }
                ),
            )
        }
        Err(e) => {
            tracing::error!("feedback: cannot record a vote on the issue of {date}: {e:#}");
            super::try_again()
        }
    }
}

//! `unsubscribe` and `suppressions`: the suppression list by hand, for
//! requests that arrive by mailto, by reply or by phone. The list lives in
//! the ledger, apart from the CSV, so re-exporting the CSV never
//! resubscribes anyone.

use crate::cmd::Report;
use crate::ledger::{Ledger, Suppression};
use crate::mail::token;
use crate::problem::Failure;
use crate::project::Project;
use crate::project::subscribers::AddressKey;

fn ledger(project: &Project) -> Result<Ledger, Failure> {
    Ok(crate::ledger::open(project)?)
}

fn address(text: &str) -> Result<AddressKey, Failure> {
    let a = text.trim();
    a.parse::<lettre::Address>()
        .map(|_| AddressKey::new(a))
        .map_err(|_| Failure::Usage(crate::problem::Usage::NotAnAddressArg(text.to_string())))
}

/// What `unsubscribe` did.
#[derive(Debug, serde::Serialize)]
pub struct Unsubscribed {
    pub address: AddressKey,
    /// False when the address was already suppressed.
    pub new: bool,
}

impl Report for Unsubscribed {
    fn text(&self) -> String {
        let what = if self.new {
            "is unsubscribed"
        } else {
            "was already suppressed"
        };
        format!("{} {what}\n", self.address)
    }
}

/// The suppression list, by address.
#[derive(Debug, serde::Serialize)]
pub struct List {
    pub suppressions: Vec<Suppression>,
}

impl Report for List {
    /// One line per address, always the four columns the README names,
    /// separated by tabs: address, reason, day, and how it came (`by
    /// hand`, `token`, `one-click`, …; `-` when not recorded).
    fn text(&self) -> String {
        let mut out = String::new();
        for s in &self.suppressions {
            let day = s.created_at.get(..10).unwrap_or(&s.created_at);
            let how = s.note.as_deref().unwrap_or("-");
            out.push_str(&format!("{}\t{}\t{day}\t{how}\n", s.address, s.reason));
        }
        out
    }
}

/// What `suppressions add` did.
#[derive(Debug, serde::Serialize)]
pub struct Added {
    pub added: usize,
    pub already_suppressed: usize,
}

impl Report for Added {
    fn text(&self) -> String {
        format!(
            "{} added, {} already suppressed\n",
            self.added,
            crate::cmd::count(self.already_suppressed as u64, "was", "were")
        )
    }
}

/// What `suppressions remove` did.
#[derive(Debug, serde::Serialize)]
pub struct Removed {
    pub removed: usize,
    pub not_suppressed: usize,
}

impl Report for Removed {
    fn text(&self) -> String {
        format!(
            "{} removed, {} not suppressed\n",
            self.removed,
            crate::cmd::count(self.not_suppressed as u64, "was", "were")
        )
    }
}

/// Suppresses an address, or the address a token was made for (the token
/// must verify with the current or previous secret; without one set, the
/// development secret stands in, as it did for the mail that carried it).
/// What people paste is accepted as it comes: the address, the token, the
/// whole link, or the mailto subject (see [`Pasted`]).
pub fn unsubscribe(project: &Project, arg: &str) -> Result<Unsubscribed, Failure> {
    let settings = &project.settings;
    let (addr, how) = match Pasted::read(arg) {
        Pasted::Address(text) => (address(&text)?, "by hand"),
        Pasted::Token(t) => {
            let secrets = crate::cmd::secrets(project, crate::cmd::SecretUse::Local)?;
            if secrets.development {
                tracing::info!(
                    "{}",
                    token::development_note(&settings.unsubscribe.secret_env)
                );
            }
            let addr = token::verify(&secrets, &settings.list_id, &t)
                .ok_or_else(|| Failure::Usage(crate::problem::Usage::BadToken))?;
            (addr, "token")
        }
        Pasted::Neither => {
            return Err(Failure::Usage(
                crate::problem::Usage::NeitherAddressNorToken(arg.to_string()),
            ));
        }
    };
    let new = ledger(project)?.suppress(&addr, "unsubscribed", Some(how))?;
    Ok(Unsubscribed { address: addr, new })
}

/// What someone pasted into `unsubscribe`: an address, or a token given as
/// itself, as the link from the email (`https://…/u/TOKEN`, also in the
/// header's angle brackets) or as the mailto link or its subject
/// (`unsubscribe TOKEN`); or neither.
#[derive(Debug, PartialEq, Eq)]
enum Pasted {
    Address(String),
    Token(String),
    Neither,
}

impl Pasted {
    fn read(arg: &str) -> Pasted {
        let mut text = arg
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim()
            .to_string();
        if let Some(subject) = strip_prefix_ci(&text, "subject:") {
            text = subject.trim().to_string();
        }
        if strip_prefix_ci(&text, "mailto:").is_some() {
            // The mailto link: its subject carries the token.
            let subject = url::Url::parse(&text).ok().and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k.eq_ignore_ascii_case("subject"))
                    .map(|(_, v)| v.into_owned())
            });
            match subject {
                Some(s) => text = s.trim().to_string(),
                // A bare mailto: of the reader's own address.
                None => {
                    text = text["mailto:".len()..].to_string();
                }
            }
        } else if strip_prefix_ci(&text, "https://").is_some()
            || strip_prefix_ci(&text, "http://").is_some()
        {
            // The link: the token is its last path segment.
            let segment = url::Url::parse(&text).ok().and_then(|u| {
                u.path_segments()?.rev().find(|s| !s.is_empty()).map(|s| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8_lossy()
                        .into_owned()
                })
            });
            return match segment {
                Some(s) if token_shaped(&s) => Pasted::Token(s),
                _ => Pasted::Neither,
            };
        }
        if let Some(rest) = strip_prefix_ci(&text, "unsubscribe")
            && rest.starts_with(char::is_whitespace)
        {
            text = rest.trim().to_string();
        }
        if text.contains('@') {
            Pasted::Address(text)
        } else if token_shaped(&text) {
            Pasted::Token(text)
        } else {
            Pasted::Neither
        }
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Whether `text` could be a token at all: base64url (and the `.` of the
/// older readable form), and longer than any word a person would type by
/// mistake. Whether it is genuine is for `token::verify`.
fn token_shaped(text: &str) -> bool {
    text.len() >= 20
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub fn list(project: &Project) -> Result<List, Failure> {
    let suppressions = match crate::ledger::read(project)? {
        Some(l) => l.suppressions()?,
        None => Vec::new(),
    };
    Ok(List { suppressions })
}

/// Adds addresses.
pub fn add(project: &Project, addresses: &[String], reason: &str) -> Result<Added, Failure> {
    let addrs = addresses
        .iter()
        .map(|a| address(a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut l = ledger(project)?;
    let mut new = 0;
    for a in addrs {
        new += usize::from(l.suppress(&a, reason, Some("by hand"))?);
    }
    Ok(Added {
        added: new,
        already_suppressed: addresses.len() - new,
    })
}

/// Removes addresses.
pub fn remove(project: &Project, addresses: &[String]) -> Result<Removed, Failure> {
    let addrs = addresses
        .iter()
        .map(|a| address(a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut l = ledger(project)?;
    let mut removed = 0;
    for a in addrs {
        removed += usize::from(l.unsuppress(&a)?);
    }
    Ok(Removed {
        removed,
        not_suppressed: addresses.len() - removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_xyz";

    #[test]
    fn what_people_paste_is_read_as_an_address_or_a_token() {
        let token = || Pasted::Token(T.to_string());
        for pasted in [
            T.to_string(),
            format!("  {T}\n"),
            format!("https://example.com/u/{T}"),
            format!("<https://example.com/u/{T}>"),
            format!("http://127.0.0.1:8080/u/{T}/"),
            format!("unsubscribe {T}"),
            format!("Unsubscribe  {T}"),
            format!("Subject: unsubscribe {T}"),
            format!("mailto:unsubscribe@example.com?subject=unsubscribe%20{T}"),
            format!("<mailto:unsubscribe@example.com?subject=unsubscribe%20{T}>"),
        ] {
            assert_eq!(Pasted::read(&pasted), token(), "{pasted}");
        }
        let legacy = "eW91QGV4YW1wbGUub3Jn.c2lnbmF0dXJlLWJ5dGVz";
        assert_eq!(
            Pasted::read(legacy),
            Pasted::Token(legacy.into()),
            "the older readable form"
        );
        for pasted in [
            "ada@example.org",
            " Ada@Example.org ",
            "mailto:ada@example.org",
        ] {
            assert!(
                matches!(Pasted::read(pasted), Pasted::Address(a) if a.eq_ignore_ascii_case("ada@example.org")),
                "{pasted}"
            );
        }
        for pasted in [
            "hello",
            "please remove me",
            "unsubscribe",
            "https://example.com/",
            "https://example.com/u/short",
            "token with spaces in it, which no token has",
            "",
        ] {
            assert_eq!(Pasted::read(pasted), Pasted::Neither, "{pasted}");
        }
    }
}

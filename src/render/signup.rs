//! The signup letters `serve` mails one at a time: the double opt-in
//! confirmation (`confirm.html`, `confirm.txt`: transactional, no list
//! headers) and the welcome (`welcome.html`, `welcome.txt`: a list message
//! with the list headers and the reader's unsubscribe link), rendered in
//! full from the project's templates over the built-in ones and made into
//! complete messages. Signing is the caller's (it holds the DKIM keys).
//! Pure: the caller gives the time and the secrets.

use chrono::{DateTime, NaiveDate, Utc};
use lettre::Address;
use lettre::message::Mailbox;
use minijinja::Value;

use crate::mail::mime::{self, Letter, ListHeaders};
use crate::mail::token::{self, Secrets};
use crate::problem::Problem;
use crate::project::settings::{Pages, Settings};
use crate::project::subscribers::{AddressKey, clean_line};
use crate::project::templates::Templates;
use crate::render::context;

/// What a confirmation says.
#[derive(Debug, Clone, Copy)]
pub struct Confirmation<'a> {
    pub address: &'a Address,
    pub confirm_url: &'a str,
    /// When the link stops working.
    pub expires: DateTime<Utc>,
}

/// Who is welcomed, and the newest issue to point at.
#[derive(Debug, Clone, Copy)]
pub struct Welcome<'a> {
    pub address: &'a Address,
    pub name: &'a str,
    pub latest: Option<NaiveDate>,
}

/// Why a letter could not be made: a template failed (its problem), or
/// the message could not be assembled. Never names the reader.
#[derive(Debug, thiserror::Error)]
pub enum LetterError {
    #[error("{0}")]
    Template(Problem),
    #[error("cannot build the {0} message: {1}")]
    Build(&'static str, String),
}

/// Renders `name`.html and `name`.txt with `ctx`: (text, html).
fn render(templates: &Templates, name: &str, ctx: &Value) -> Result<(String, String), LetterError> {
    let part = |ext: &str| {
        let file = format!("{name}.{ext}");
        templates
            .env()
            .get_template(&file)
            .and_then(|t| t.render(ctx))
            .map_err(|e| LetterError::Template(templates.error(&e, &format!("{name} email"))))
    };
    Ok((part("txt")?, part("html")?))
}

/// The confirmation message for `c`, sent at `now`.
pub fn confirmation(
    settings: &Settings,
    templates: &Templates,
    secrets: &Secrets,
    c: Confirmation<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, LetterError> {
    let ctx = minijinja::context! {
        newsletter => context::email_newsletter(settings, secrets.development),
        subscriber => minijinja::context! { email => c.address.to_string() },
        confirm_url => c.confirm_url,
        expires => context::date_long(c.expires.with_timezone(&settings.timezone).date_naive()),
    };
    let (text, html) = render(templates, "confirm", &ctx)?;
    let letter = Letter {
        from: settings.from.clone(),
        reply_to: settings.reply_to.clone(),
        // No name: it came from a form anyone can fill in.
        to: Mailbox::new(None, c.address.clone()),
        subject: format!("Confirm your subscription to {}", settings.name),
        date: now.into(),
        message_id: mime::letter_id("confirm", settings.from.email.domain()),
        text,
        html,
        list: None,
    };
    mime::letter(letter).map_err(|e| LetterError::Build("confirmation", e.reason))
}

/// The welcome message for `w`, sent at `now`, with the list headers and
/// the reader's unsubscribe link.
pub fn welcome(
    settings: &Settings,
    templates: &Templates,
    secrets: &Secrets,
    w: Welcome<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, LetterError> {
    let key = AddressKey::from(w.address);
    let token = token::token(secrets, &settings.list_id, &key);
    let unsubscribe_url = settings.unsubscribe.url.replace("{token}", &token);
    let name = clean_line(w.name);
    let ctx = minijinja::context! {
        newsletter => context::email_newsletter(settings, secrets.development),
        subscriber => minijinja::context! {
            email => w.address.to_string(),
            name => name.as_str(),
            first_name => name.split_whitespace().next().unwrap_or(""),
        },
        unsubscribe_url => unsubscribe_url.as_str(),
        schedule => minijinja::context! {
            time => settings.send_time.format("%H:%M").to_string(),
            timezone => settings.timezone.name(),
        },
        latest_url => w.latest.map(|d| context::web_url(settings, d)),
        sections => section_pages(settings),
    };
    let (text, html) = render(templates, "welcome", &ctx)?;
    let letter = Letter {
        from: settings.from.clone(),
        reply_to: settings.reply_to.clone(),
        to: Mailbox::new((!name.is_empty()).then_some(name), w.address.clone()),
        subject: format!("Welcome to {}", settings.name),
        date: now.into(),
        message_id: mime::letter_id("welcome", settings.from.email.domain()),
        text,
        html,
        list: Some(ListHeaders {
            list_id: mime::Issue::list_id_header(&settings.name, &settings.list_id),
            unsubscribe_url,
            mailto: settings.unsubscribe.mailto.clone().map(|m| (m, token)),
        }),
    };
    mime::letter(letter).map_err(|e| LetterError::Build("welcome", e.reason))
}

/// The archive's section pages (`title`, `url`), for "catch up".
fn section_pages(settings: &Settings) -> Vec<Value> {
    settings
        .sections
        .iter()
        .filter(|s| s.pages != Pages::None)
        .map(|s| {
            minijinja::context! {
                title => s.index_title.as_str(),
                url => format!("{}/{}/", settings.url, s.path),
            }
        })
        .collect()
}

/// Renders both letters for a sample reader: the template problems `check`
/// reports before `serve` would meet them.
pub fn check(settings: &Settings, templates: &Templates) -> Vec<Problem> {
    let Ok(address) = "reader@example.com".parse::<Address>() else {
        return Vec::new();
    };
    let secrets = Secrets::development();
    let now = Utc::now();
    let confirm = confirmation(
        settings,
        templates,
        &secrets,
        Confirmation {
            address: &address,
            confirm_url: "https://example.com/confirm/TOKEN",
            expires: now,
        },
        now,
    );
    let welcome = welcome(
        settings,
        templates,
        &secrets,
        Welcome {
            address: &address,
            name: "Sample Reader",
            latest: Some(now.date_naive()),
        },
        now,
    );
    [confirm.err(), welcome.err()]
        .into_iter()
        .flatten()
        .filter_map(|e| match e {
            LetterError::Template(p) => Some(p),
            LetterError::Build(..) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::parse(
            "name = \"Daily\"\nurl = \"https://example.com\"\ntimezone = \"Europe/Berlin\"\nfrom = \"Daily <daily@example.com>\"\npostal_address = \"1 Main St\"\n[unsubscribe]\nmailto = \"unsubscribe@example.com\"\n",
            "dailyissue.toml".as_ref(),
        )
        .expect("settings")
    }

    #[test]
    fn the_confirmation_has_the_link_and_no_list_headers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let templates = Templates::load(dir.path()).expect("built-in templates");
        let address: Address = "ada@example.org".parse().expect("address");
        let now: DateTime<Utc> = "2027-03-01T10:00:00Z".parse().expect("time");
        let bytes = confirmation(
            &settings(),
            &templates,
            &Secrets::new(b"k", None),
            Confirmation {
                address: &address,
                confirm_url: "https://example.com/confirm/T0KEN",
                expires: now + chrono::Duration::days(7),
            },
            now,
        )
        .expect("letter");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("To: ada@example.org\r\n"), "{text}");
        assert!(text.contains("Subject: Confirm your subscription to Daily"));
        assert!(text.contains("Message-ID: <confirm."));
        assert!(text.contains("https://example.com/confirm/T0KEN"));
        assert!(text.contains("Monday, March 8, 2027"), "{text}");
        assert!(!text.contains("List-Unsubscribe"), "transactional");
    }

    #[test]
    fn the_welcome_is_a_list_message_with_a_working_unsubscribe_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let templates = Templates::load(dir.path()).expect("built-in templates");
        let address: Address = "ada@example.org".parse().expect("address");
        let secrets = Secrets::new(b"k", None);
        let s = settings();
        let now: DateTime<Utc> = "2027-03-01T10:00:00Z".parse().expect("time");
        let w = Welcome {
            address: &address,
            name: "Ada Park",
            latest: Some("2027-02-28".parse().expect("date")),
        };
        let bytes = welcome(&s, &templates, &secrets, w, now).expect("letter");
        let text = String::from_utf8_lossy(&bytes);
        let token = token::token(&secrets, &s.list_id, &"ada@example.org".into());
        let unfolded = text.replace("\r\n ", " ");
        assert!(
            unfolded.contains(&format!("List-Unsubscribe: <https://example.com/u/{token}>, <mailto:unsubscribe@example.com?subject=unsubscribe%20{token}>")),
            "{text}"
        );
        assert!(text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        assert!(
            text.contains("To: \"Ada Park\" <ada@example.org>"),
            "{text}"
        );
        assert!(text.contains("https://example.com/issues/2027-02-28/"));
        assert!(text.contains("06:00 (Europe/Berlin time)"), "{text}");
        assert!(check(&s, &templates).is_empty());
    }
}

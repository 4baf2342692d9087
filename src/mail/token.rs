//! Unsubscribe tokens: `BASE64URL(address) "." BASE64URL(HMAC-SHA256(secret,
//! list_id "\n" address))`, address lower-cased.
//!
//! The address part lets `serve` and `unsubscribe TOKEN` find the reader
//! without a lookup table; the MAC makes tokens unforgeable and
//! unenumerable without the secret, which lives only in the environment.
//! Verification is constant-time (`hmac`'s `verify_slice`). A previous secret
//! may be accepted too, so the secret can be rotated without breaking links
//! in mail already sent.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::project::settings::Settings;
use crate::project::subscribers::AddressKey;

type HmacSha256 = Hmac<Sha256>;

/// Used when no secret is set, and only where nothing leaves the machine
/// (preview, dry runs, the file transport). Tokens made with it say so.
pub const DEVELOPMENT_SECRET: &str = "dailyissue-development-secret-do-not-use-for-real-mail";

#[derive(Clone)]
pub struct Secrets {
    current: Vec<u8>,
    previous: Option<Vec<u8>>,
    /// True when the development secret stands in for a missing one.
    pub development: bool,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        f.debug_struct("Secrets")
            .field("development", &self.development)
            .finish_non_exhaustive()
    }
}

impl Secrets {
    pub fn new(current: &[u8], previous: Option<&[u8]>) -> Secrets {
        Secrets {
            current: current.to_vec(),
            previous: previous.map(<[u8]>::to_vec),
            development: false,
        }
    }

    pub fn development() -> Secrets {
        Secrets {
            development: true,
            ..Secrets::new(DEVELOPMENT_SECRET.as_bytes(), None)
        }
    }

    /// Reads the secrets named in the settings from the environment.
    /// `None` when the current one is unset or empty.
    pub fn from_env(settings: &Settings) -> Option<Secrets> {
        let read = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let current = read(&settings.unsubscribe.secret_env)?;
        let previous = settings
            .unsubscribe
            .previous_secret_env
            .as_deref()
            .and_then(read);
        Some(Secrets::new(
            current.as_bytes(),
            previous.as_deref().map(str::as_bytes),
        ))
    }
}

fn mac(secret: &[u8], list_id: &str, address: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(list_id.as_bytes());
    mac.update(b"\n");
    mac.update(address.as_bytes());
    mac
}

/// The token for `address` (any case; it is lower-cased and trimmed).
pub fn token(secrets: &Secrets, list_id: &str, address: &AddressKey) -> String {
    let tag = mac(&secrets.current, list_id, address)
        .finalize()
        .into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(address.as_bytes()),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// The address a token was made for, if the token is genuine under the
/// current or the previous secret.
pub fn verify(secrets: &Secrets, list_id: &str, token: &str) -> Option<AddressKey> {
    let (addr, tag) = token.trim().split_once('.')?;
    let address = String::from_utf8(URL_SAFE_NO_PAD.decode(addr).ok()?).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let genuine = |secret: &[u8]| mac(secret, list_id, &address).verify_slice(&tag).is_ok();
    let ok = genuine(&secrets.current) || secrets.previous.as_deref().is_some_and(genuine);
    ok.then(|| AddressKey::new(&address))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "daily.example.com";

    #[test]
    fn round_trips_and_ignores_case() {
        let s = Secrets::new(b"k1", None);
        let t = token(&s, LIST, &AddressKey::new(" Ada@Example.org "));
        assert_eq!(verify(&s, LIST, &t).as_deref(), Some("ada@example.org"));
        assert_eq!(t, token(&s, LIST, &AddressKey::new("ada@example.org")));
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "{t}"
        );
    }

    #[test]
    fn tampered_tokens_fail() {
        let s = Secrets::new(b"k1", None);
        let t = token(&s, LIST, &AddressKey::new("ada@example.org"));
        let (_, tag) = t.split_once('.').expect("two parts");
        let other = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("bob@example.org"));
        assert_eq!(
            verify(&s, LIST, &other),
            None,
            "a token for one address never works for another"
        );
        let mut flipped = t.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            verify(&s, LIST, &String::from_utf8(flipped).expect("ascii")),
            None
        );
        assert_eq!(verify(&s, LIST, "garbage"), None);
        assert_eq!(verify(&s, "other.list", &t), None);
    }

    #[test]
    fn wrong_secret_fails_and_previous_secret_still_works() {
        let old = Secrets::new(b"old", None);
        let t = token(&old, LIST, &AddressKey::new("ada@example.org"));
        assert_eq!(verify(&Secrets::new(b"new", None), LIST, &t), None);
        let rotated = Secrets::new(b"new", Some(b"old"));
        assert_eq!(
            verify(&rotated, LIST, &t).as_deref(),
            Some("ada@example.org")
        );
        assert_ne!(
            token(&rotated, LIST, &AddressKey::new("ada@example.org")),
            t,
            "new tokens use the new secret"
        );
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let s = Secrets::new(b"topsecret", None);
        assert!(!format!("{s:?}").contains("topsecret"));
    }
}

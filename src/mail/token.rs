//! Link tokens: what unsubscribe, confirmation and feedback links carry.
//!
//! A token is opaque: `BASE64URL(nonce ‖ ChaCha20-Poly1305(payload))`, the
//! payload being what the link is about (the reader's address; for a
//! confirmation its expiry, for a vote the day), and the associated
//! data binding it to this list and to one purpose, so an unsubscribe token
//! can never confirm a signup. Anyone who sees a link — a forwarded issue, a
//! proxy's log, a link scanner — learns nothing from it, cannot forge one,
//! and cannot enumerate them without the secret.
//!
//! Encryption is deterministic (the nonce is an HMAC of the payload, as in
//! SIV): the same reader gets the same unsubscribe link in every issue, and
//! nonces never repeat for different payloads. Keys are derived from the
//! secret in the environment; a previous secret may be accepted too, so
//! the secret can be rotated without breaking links in mail already sent.
//!
//! Links mailed before these tokens existed had the readable form
//! `BASE64URL(address) "." BASE64URL(HMAC-SHA256(secret, list_id "\n"
//! address))`; [`verify`] still accepts them for unsubscribing, until the
//! secret that made them is rotated away.

use aws_lc_rs::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
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

/// The note every command logs when the development secret stands in for
/// the one named `var` (preview, `send` to files or a dry run,
/// `unsubscribe TOKEN`, a `serve` on a loopback address): one wording, so
/// the development flow reads the same everywhere.
pub fn development_note(var: &str) -> String {
    format!(
        "{var} is not set: unsubscribe links use the development secret and will not verify in production"
    )
}

/// What a token is for: bound into it, so one kind never passes for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Purpose {
    Unsubscribe = 1,
    Confirm = 2,
    Feedback = 3,
}

/// The keys of one secret.
#[derive(Clone)]
struct Keys {
    /// The secret itself, for the legacy readable tokens.
    secret: Vec<u8>,
    seal: [u8; 32],
    nonce: [u8; 32],
}

impl Keys {
    fn new(secret: &[u8]) -> Keys {
        Keys {
            secret: secret.to_vec(),
            seal: derive(secret, b"dailyissue link token v2: encryption"),
            nonce: derive(secret, b"dailyissue link token v2: nonce"),
        }
    }
}

fn derive(secret: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = hmac(secret);
    mac.update(label);
    mac.finalize().into_bytes().into()
}

fn hmac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

#[derive(Clone)]
pub struct Secrets {
    current: Keys,
    previous: Option<Keys>,
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
            current: Keys::new(current),
            previous: previous.map(Keys::new),
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

    /// The keys to try, current first.
    fn all(&self) -> impl Iterator<Item = &Keys> {
        std::iter::once(&self.current).chain(self.previous.as_ref())
    }

    /// A secret derived for another use (e.g. hashing IP addresses), so
    /// the link secret itself is never used twice.
    pub fn derived(&self, label: &str) -> [u8; 32] {
        derive(&self.current.secret, label.as_bytes())
    }
}

/// A keyed hash of `value` for `purpose` (hex, 128 bits): what the ledger
/// keeps instead of an IP address, or of a reader in the signup log and the
/// votes, so that the stored value cannot be turned back into the address
/// without the secret, nor matched against a list of guesses.
pub fn keyed_hash(secrets: &Secrets, purpose: &str, value: &str) -> String {
    let key = secrets.derived(&format!("dailyissue keyed hash: {purpose}"));
    let mut mac = hmac(&key);
    mac.update(value.as_bytes());
    mac.finalize().into_bytes()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn aad(list_id: &str, purpose: Purpose) -> Vec<u8> {
    let mut aad = b"dailyissue/v2\n".to_vec();
    aad.extend_from_slice(list_id.as_bytes());
    aad.push(b'\n');
    aad.push(purpose as u8);
    aad
}

/// Seals `payload` for `purpose`: deterministic for a given secret.
fn seal(keys: &Keys, list_id: &str, purpose: Purpose, payload: &[u8]) -> String {
    let aad = aad(list_id, purpose);
    let mut mac = hmac(&keys.nonce);
    mac.update(&aad);
    mac.update(payload);
    let digest = mac.finalize().into_bytes();
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&digest[..NONCE_LEN]);
    let Ok(unbound) = UnboundKey::new(&CHACHA20_POLY1305, &keys.seal) else {
        unreachable!("a 32-byte key fits ChaCha20-Poly1305")
    };
    let key = LessSafeKey::new(unbound);
    let mut sealed = payload.to_vec();
    if key
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&aad[..]),
            &mut sealed,
        )
        .is_err()
    {
        unreachable!("sealing a short payload cannot fail")
    }
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    URL_SAFE_NO_PAD.encode(out)
}

/// The payload of a genuine token for `purpose`, under any accepted secret.
fn open(secrets: &Secrets, list_id: &str, purpose: Purpose, token: &str) -> Option<Vec<u8>> {
    let raw = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    if raw.len() < NONCE_LEN + 16 {
        return None;
    }
    let aad = aad(list_id, purpose);
    secrets.all().find_map(|keys| {
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &keys.seal).ok()?);
        let mut buf = sealed.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(&aad[..]), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    })
}

/// The unsubscribe token for `address`.
pub fn token(secrets: &Secrets, list_id: &str, address: &AddressKey) -> String {
    seal(
        &secrets.current,
        list_id,
        Purpose::Unsubscribe,
        address.as_bytes(),
    )
}

/// The address an unsubscribe token was made for, if it is genuine under
/// the current or the previous secret; links in the readable form mailed
/// before opaque tokens existed are accepted too.
pub fn verify(secrets: &Secrets, list_id: &str, token: &str) -> Option<AddressKey> {
    if let Some(plain) = open(secrets, list_id, Purpose::Unsubscribe, token) {
        return String::from_utf8(plain).ok().map(|a| AddressKey::new(&a));
    }
    verify_legacy(secrets, list_id, token)
}

/// A signup's confirmation token, valid until `expires` (Unix seconds).
pub fn confirm_token(
    secrets: &Secrets,
    list_id: &str,
    address: &AddressKey,
    expires: i64,
) -> String {
    let mut payload = expires.to_be_bytes().to_vec();
    payload.extend_from_slice(address.as_bytes());
    seal(&secrets.current, list_id, Purpose::Confirm, &payload)
}

/// The address and expiry of a genuine confirmation token (expired or not:
/// the caller decides, so it can say so).
pub fn verify_confirm(secrets: &Secrets, list_id: &str, token: &str) -> Option<(AddressKey, i64)> {
    let plain = open(secrets, list_id, Purpose::Confirm, token)?;
    let (expires, address) = plain.split_at_checked(8)?;
    let expires = i64::from_be_bytes(expires.try_into().ok()?);
    let address = String::from_utf8(address.to_vec()).ok()?;
    Some((AddressKey::new(&address), expires))
}

/// A reader's feedback token for the issue of `date`.
pub fn feedback_token(
    secrets: &Secrets,
    list_id: &str,
    address: &AddressKey,
    date: chrono::NaiveDate,
) -> String {
    let mut payload = date.to_string().into_bytes();
    payload.push(b'\n');
    payload.extend_from_slice(address.as_bytes());
    seal(&secrets.current, list_id, Purpose::Feedback, &payload)
}

/// The reader and the issue of a genuine feedback token.
pub fn verify_feedback(
    secrets: &Secrets,
    list_id: &str,
    token: &str,
) -> Option<(AddressKey, chrono::NaiveDate)> {
    let plain = open(secrets, list_id, Purpose::Feedback, token)?;
    let text = String::from_utf8(plain).ok()?;
    let (date, address) = text.split_once('\n')?;
    Some((AddressKey::new(address), date.parse().ok()?))
}

fn legacy_mac(secret: &[u8], list_id: &str, address: &str) -> HmacSha256 {
    let mut mac = hmac(secret);
    mac.update(list_id.as_bytes());
    mac.update(b"\n");
    mac.update(address.as_bytes());
    mac
}

/// The readable tokens of earlier versions: `BASE64URL(address).MAC`.
fn verify_legacy(secrets: &Secrets, list_id: &str, token: &str) -> Option<AddressKey> {
    let (addr, tag) = token.trim().split_once('.')?;
    let address = String::from_utf8(URL_SAFE_NO_PAD.decode(addr).ok()?).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    let genuine = secrets.all().any(|keys| {
        legacy_mac(&keys.secret, list_id, &address)
            .verify_slice(&tag)
            .is_ok()
    });
    genuine.then(|| AddressKey::new(&address))
}

/// A token in the readable form earlier versions mailed; for tests that
/// check such links keep working.
pub fn legacy_token(secrets: &Secrets, list_id: &str, address: &AddressKey) -> String {
    let tag = legacy_mac(&secrets.current.secret, list_id, address)
        .finalize()
        .into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(address.as_bytes()),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "daily.example.com";

    fn key(a: &str) -> AddressKey {
        AddressKey::new(a)
    }

    #[test]
    fn round_trips_ignore_case_and_are_stable() {
        let s = Secrets::new(b"k1", None);
        let t = token(&s, LIST, &key(" Ada@Example.org "));
        assert_eq!(verify(&s, LIST, &t).as_deref(), Some("ada@example.org"));
        assert_eq!(
            t,
            token(&s, LIST, &key("ada@example.org")),
            "same link every issue"
        );
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)),
            "{t}"
        );
    }

    #[test]
    fn tokens_reveal_nothing_of_the_address() {
        let s = Secrets::new(b"k1", None);
        let address = "ada.park@example.org";
        let t = token(&s, LIST, &key(address));
        let decoded = URL_SAFE_NO_PAD.decode(&t).expect("base64url");
        for encoding in [
            address.to_string(),
            URL_SAFE_NO_PAD.encode(address),
            base64::engine::general_purpose::STANDARD.encode(address),
            address.replace('@', "%40"),
        ] {
            assert!(!t.contains(&encoding), "{encoding} in {t}");
        }
        assert!(
            !decoded
                .windows(8)
                .any(|w| address.as_bytes().windows(8).any(|a| a == w)),
            "no plaintext inside"
        );
    }

    #[test]
    fn tampered_and_foreign_tokens_fail() {
        let s = Secrets::new(b"k1", None);
        let t = token(&s, LIST, &key("ada@example.org"));
        let mut raw = URL_SAFE_NO_PAD.decode(&t).expect("b64");
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert_eq!(verify(&s, LIST, &URL_SAFE_NO_PAD.encode(&raw)), None);
        assert_eq!(verify(&s, LIST, "garbage"), None);
        assert_eq!(verify(&s, "other.list", &t), None);
        assert_eq!(verify(&Secrets::new(b"k2", None), LIST, &t), None);
        // A token for one purpose never passes for another.
        let confirm = confirm_token(&s, LIST, &key("ada@example.org"), 2_000_000_000);
        assert_eq!(verify(&s, LIST, &confirm), None);
        assert_eq!(verify_confirm(&s, LIST, &t), None);
    }

    #[test]
    fn confirm_and_feedback_tokens_carry_their_data() {
        let s = Secrets::new(b"k1", None);
        let c = confirm_token(&s, LIST, &key("Bo@x.org"), 1_900_000_000);
        assert_eq!(
            verify_confirm(&s, LIST, &c),
            Some((key("bo@x.org"), 1_900_000_000))
        );
        let day: chrono::NaiveDate = "2027-03-01".parse().expect("date");
        let f = feedback_token(&s, LIST, &key("bo@x.org"), day);
        assert_eq!(verify_feedback(&s, LIST, &f), Some((key("bo@x.org"), day)));
        assert_ne!(
            f,
            feedback_token(&s, LIST, &key("bo@x.org"), day.succ_opt().expect("day")),
            "one token per issue"
        );
    }

    #[test]
    fn rotation_keeps_old_links_working_and_old_readable_links_still_unsubscribe() {
        let old = Secrets::new(b"old", None);
        let t = token(&old, LIST, &key("ada@example.org"));
        let legacy = legacy_token(&old, LIST, &key("ada@example.org"));
        assert_eq!(verify(&Secrets::new(b"new", None), LIST, &t), None);
        let rotated = Secrets::new(b"new", Some(b"old"));
        assert_eq!(
            verify(&rotated, LIST, &t).as_deref(),
            Some("ada@example.org")
        );
        assert_eq!(
            verify(&rotated, LIST, &legacy).as_deref(),
            Some("ada@example.org")
        );
        assert_eq!(verify(&Secrets::new(b"new", None), LIST, &legacy), None);
        assert_ne!(token(&rotated, LIST, &key("ada@example.org")), t);
    }

    #[test]
    fn keyed_hashes_depend_on_secret_and_purpose() {
        let s = Secrets::new(b"k1", None);
        let h = keyed_hash(&s, "ip", "192.0.2.1");
        assert_eq!(h.len(), 32);
        assert_eq!(h, keyed_hash(&s, "ip", "192.0.2.1"));
        assert_ne!(h, keyed_hash(&s, "reader", "192.0.2.1"));
        assert_ne!(h, keyed_hash(&Secrets::new(b"k2", None), "ip", "192.0.2.1"));
        assert!(!h.contains("192"));
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let s = Secrets::new(b"topsecret", None);
        assert!(!format!("{s:?}").contains("topsecret"));
    }
}

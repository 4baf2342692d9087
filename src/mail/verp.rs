//! VERP: an envelope sender (Return-Path) per delivery, so that any bounce
//! maps back to exactly one (issue date, address), even one that quotes
//! nothing of the original message.
//!
//! `[bounces] return_path = "bounces+{token}@example.com"` becomes
//! `bounces+k3x9...@example.com`, the token being the first 100 bits of
//! HMAC-SHA256(key, list_id ‖ issue date ‖ address) in lower-case base32:
//! 20 characters.
//!
//! Why a *lookup* token and not a sealed one, like the link tokens of
//! `token`: a sealed token must carry the whole address (up to 254 octets)
//! plus a nonce and a tag, which does not fit the 64 octets of a local
//! part. A keyed MAC truncated to 100 bits fits with room to spare, reveals
//! nothing of the address or the date, cannot be forged or guessed
//! (2^100 values; the ledger holds a few billion at most), and is stored
//! beside its delivery when the delivery is claimed, so the ledger turns a
//! token back into (date, address) with one index lookup. Storing it also
//! means rotating the secret never orphans a bounce still in flight.
//! Base32 in lower case because some mail servers change the case of local
//! parts; the match ignores case.
//!
//! The key is derived from the unsubscribe secret for this purpose only
//! (`Secrets::derived`), so no token of one kind helps forge another.

use chrono::NaiveDate;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::mail::token::Secrets;
use crate::project::settings::{ReturnPath, TOKEN_LEN};
use crate::project::subscribers::AddressKey;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Makes the envelope senders of one issue.
#[derive(Clone)]
pub struct Verp {
    key: [u8; 32],
    list_id: String,
    path: ReturnPath,
    date: NaiveDate,
}

impl std::fmt::Debug for Verp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Verp")
            .field("path", &self.path)
            .field("date", &self.date)
            .finish_non_exhaustive()
    }
}

impl Verp {
    pub fn new(secrets: &Secrets, list_id: &str, path: ReturnPath, date: NaiveDate) -> Verp {
        Verp {
            key: secrets.derived("dailyissue verp token v1"),
            list_id: list_id.to_string(),
            path,
            date,
        }
    }

    /// The token of `address`'s copy of this issue.
    pub fn token(&self, address: &AddressKey) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(self.list_id.as_bytes());
        mac.update(b"\n");
        mac.update(self.date.to_string().as_bytes());
        mac.update(b"\n");
        mac.update(address.as_bytes());
        base32_prefix(&mac.finalize().into_bytes())
    }

    /// The envelope sender carrying `token`. The settings checked that the
    /// template makes a valid address with any token of this alphabet.
    pub fn sender(&self, token: &str) -> Result<lettre::Address, lettre::address::AddressError> {
        format!("{}{token}{}", self.path.prefix, self.path.suffix).parse()
    }
}

/// The first `TOKEN_LEN` × 5 bits of `bytes` in lower-case base32.
fn base32_prefix(bytes: &[u8]) -> String {
    (0..TOKEN_LEN)
        .map(|i| {
            let bit = i * 5;
            let pair = u16::from(bytes[bit / 8]) << 8 | u16::from(bytes[bit / 8 + 1]);
            let index = (pair >> (11 - bit % 8)) & 0x1f;
            char::from(ALPHABET[usize::from(index)])
        })
        .collect()
}

/// The token in `address` when it is an envelope sender made from `path`
/// (any case), else `None`.
pub fn token_in(path: &ReturnPath, address: &str) -> Option<String> {
    let address = address.trim().trim_matches(['<', '>']).to_ascii_lowercase();
    let rest = address.strip_prefix(&path.prefix.to_ascii_lowercase())?;
    let token = rest.strip_suffix(&path.suffix.to_ascii_lowercase())?;
    (token.len() == TOKEN_LEN && token.bytes().all(|b| ALPHABET.contains(&b)))
        .then(|| token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verp(date: &str) -> Verp {
        Verp::new(
            &Secrets::new(b"k1", None),
            "daily.example.com",
            ReturnPath {
                prefix: "bounces+".into(),
                suffix: "@example.com".into(),
            },
            date.parse().expect("date"),
        )
    }

    #[test]
    fn tokens_fit_a_local_part_and_round_trip_through_the_sender() {
        let v = verp("2027-03-01");
        let t = v.token(&"Ada.Lovelace.With.A.Very.Long.Name@subdomain.example.org".into());
        assert_eq!(t.len(), TOKEN_LEN);
        let sender = v.sender(&t).expect("address");
        assert!(sender.user().len() <= 64);
        assert_eq!(token_in(&v.path, sender.as_ref()), Some(t.clone()));
        assert_eq!(
            token_in(&v.path, &format!("<{}>", sender.to_string().to_uppercase())),
            Some(t),
            "case and angle brackets do not matter"
        );
        assert_eq!(token_in(&v.path, "bounces@example.com"), None);
        assert_eq!(token_in(&v.path, "bounces+short@example.com"), None);
        assert_eq!(
            token_in(&v.path, "bounces+aaaaaaaaaaaaaaaaaaaa@example.org"),
            None
        );
    }

    #[test]
    fn tokens_differ_per_issue_and_reader_and_hide_both() {
        let v = verp("2027-03-01");
        let a = v.token(&"ada@example.org".into());
        assert_eq!(a, v.token(&"ADA@example.org".into()), "same delivery");
        assert_ne!(a, v.token(&"bob@example.org".into()));
        assert_ne!(a, verp("2027-03-02").token(&"ada@example.org".into()));
        assert!(!a.contains("ada") && !a.contains("2027"), "{a}");
    }

    #[test]
    fn base32_takes_five_bits_a_character() {
        assert_eq!(base32_prefix(&[0u8; 32]), "a".repeat(20));
        assert_eq!(base32_prefix(&[0xffu8; 32]), "7".repeat(20));
        let mut one = [0u8; 32];
        one[0] = 0b0000_1000;
        assert_eq!(&base32_prefix(&one)[..2], "ba");
    }
}

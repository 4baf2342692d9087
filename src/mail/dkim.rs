//! DKIM: the keys of `[[dkim]]` (one or more: RSA and Ed25519 side by side,
//! as RFC 8463 §5 advises), every message signed with each of them, and the
//! DNS records to publish.
//!
//! Signing goes through Stalwart's `mail-auth` (RSA through aws-lc-rs,
//! constant-time and about twice as fast as the pure-Rust `rsa` crate behind
//! lettre's DKIM). Signatures are relaxed/relaxed. They cover what
//! receivers look at — From, To, Subject, Date, Message-ID, Reply-To,
//! MIME-Version, Content-Type, List-Id, List-Unsubscribe,
//! List-Unsubscribe-Post (RFC 8058 requires the last two) and Feedback-ID
//! when set — and *over-sign* the headers that must appear once (each is
//! listed once more than it occurs), so a second From or List-Unsubscribe
//! added in transit breaks the signature. Headers that are absent (Reply-To
//! without a reply address) are signed as absent, for the same reason.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use crate::problem::Problem;
use crate::project::settings::{DkimAlgorithm, DkimSettings};

/// The headers every signature covers, once each.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// The headers a message has exactly once, signed one extra time so that
/// another copy added in transit fails verification.
pub const OVERSIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

enum Signer {
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
    Ed25519(DkimSigner<Ed25519Key, Done>),
}

/// A signer of `key` for the settings' domain and selector over
/// `headers`, relaxed/relaxed: the same for either algorithm.
fn signer<T: SigningKey>(
    key: T,
    settings: &DkimSettings,
    headers: Vec<String>,
) -> DkimSigner<T, Done> {
    DkimSigner::from_key(key)
        .domain(settings.domain.clone())
        .selector(settings.selector.clone())
        .headers(headers)
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}

/// One loaded key: what signs, and what to publish.
pub struct Key {
    signer: Signer,
    pub algorithm: DkimAlgorithm,
    /// `SELECTOR._domainkey.DOMAIN`
    pub dns_name: String,
    /// `v=DKIM1; k=...; p=...`
    pub dns_value: String,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Key")
            .field("algorithm", &self.algorithm)
            .field("dns_name", &self.dns_name)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// `SELECTOR._domainkey.DOMAIN IN TXT "v=DKIM1; k=...; p=..."`
    pub fn dns_record(&self) -> String {
        format!("{} IN TXT \"{}\"", self.dns_name, self.dns_value)
    }

    /// The `DKIM-Signature:` header line (CRLF-terminated) for `message`.
    pub fn sign(&self, message: &[u8]) -> Result<String, String> {
        let signature = match &self.signer {
            Signer::Rsa(s) => s.sign(message),
            Signer::Ed25519(s) => s.sign(message),
        };
        signature
            .map(|s| s.to_header())
            .map_err(|e| format!("DKIM signing with {} failed: {e}", self.dns_name))
    }
}

/// Every key of `[[dkim]]`, in the order the settings list them.
#[derive(Debug, Default)]
pub struct Keys(pub Vec<Key>);

impl Keys {
    /// Every key of the settings' `[[dkim]]`, read from under `root`, or
    /// every problem.
    pub fn load(
        settings: &crate::project::settings::Settings,
        root: &Path,
    ) -> Result<Keys, Vec<Problem>> {
        let mut keys = Vec::new();
        let mut problems = Vec::new();
        for d in &settings.dkim {
            match load(d, root, settings.feedback_id.is_some()) {
                Ok(key) => keys.push(key),
                Err(p) => problems.push(p),
            }
        }
        if problems.is_empty() {
            Ok(Keys(keys))
        } else {
            Err(problems)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `message` with one DKIM-Signature header per key in front of it.
    pub fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, String> {
        if self.0.is_empty() {
            return Ok(message);
        }
        let mut signed = Vec::with_capacity(message.len() + 1024 * self.0.len());
        for key in &self.0 {
            signed.extend_from_slice(key.sign(&message)?.as_bytes());
        }
        signed.extend_from_slice(&message);
        Ok(signed)
    }

    pub fn dns_records(&self) -> Vec<String> {
        self.0.iter().map(Key::dns_record).collect()
    }
}

/// Reads the key file named in `settings` (relative to `root`) and checks
/// it; the command layer's way to [`parse`].
pub fn load(settings: &DkimSettings, root: &Path, feedback_id: bool) -> Result<Key, Problem> {
    let path = &settings.private_key_file;
    let text = std::fs::read_to_string(root.join(path)).map_err(|e| {
        Problem::new(
            path,
            None,
            format!("cannot read the DKIM private key ({e}); check [dkim] private_key_file"),
        )
    })?;
    parse(settings, &text, feedback_id)
}

/// Checks the key text (`settings.private_key_file` labels problems) and
/// builds what signs, and the DNS record to publish. Pure.
///
/// RSA keys: PEM, PKCS#1 (`openssl genrsa -traditional`) or PKCS#8.
/// Ed25519 keys: the base64 of the 32-byte seed, or PKCS#8 PEM
/// (`openssl genpkey -algorithm ed25519`).
pub fn parse(settings: &DkimSettings, text: &str, feedback_id: bool) -> Result<Key, Problem> {
    let bad = |msg: String| Problem::new(&settings.private_key_file, None, msg);
    let mut headers: Vec<String> = SIGNED_HEADERS.iter().map(|h| h.to_string()).collect();
    if feedback_id {
        headers.push("Feedback-ID".into());
    }
    headers.extend(OVERSIGNED_HEADERS.iter().map(|h| h.to_string()));
    let (signer, k, public) = match settings.algorithm {
        DkimAlgorithm::RsaSha256 => {
            let (key, public) = rsa_key(text).map_err(bad)?;
            (Signer::Rsa(signer(key, settings, headers)), "rsa", public)
        }
        DkimAlgorithm::Ed25519Sha256 => {
            let (key, public) = ed25519_key(text).map_err(bad)?;
            (
                Signer::Ed25519(signer(key, settings, headers)),
                "ed25519",
                public,
            )
        }
    };
    Ok(Key {
        signer,
        algorithm: settings.algorithm,
        dns_name: format!("{}._domainkey.{}", settings.selector, settings.domain),
        dns_value: format!("v=DKIM1; k={k}; p={}", STANDARD.encode(public)),
    })
}

/// An RSA private key in PEM and its public key as SubjectPublicKeyInfo
/// DER (what `p=` carries, as `openssl rsa -pubout` prints it).
fn rsa_key(text: &str) -> Result<(RsaKey<Sha256>, Vec<u8>), String> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair;
    let hint = "generate one with `openssl genrsa -traditional -out dkim.pem 2048`";
    let der = PrivateKeyDer::from_pem_slice(text.as_bytes())
        .map_err(|e| format!("not an RSA private key in PEM ({e}); {hint}"))?;
    let pair = match &der {
        PrivateKeyDer::Pkcs1(k) => aws_lc_rs::rsa::KeyPair::from_der(k.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(k) => aws_lc_rs::rsa::KeyPair::from_pkcs8(k.secret_pkcs8_der()),
        _ => return Err(format!("not an RSA private key; {hint}")),
    }
    .map_err(|e| format!("not a usable RSA private key ({e}); {hint}"))?;
    let public = pair
        .public_key()
        .as_der()
        .map_err(|e| format!("cannot encode the RSA public key: {e}"))?
        .as_ref()
        .to_vec();
    let key = RsaKey::<Sha256>::from_key_der(der)
        .map_err(|e| format!("not a usable RSA private key ({e}); {hint}"))?;
    Ok((key, public))
}

/// An Ed25519 key (base64 seed or PKCS#8 PEM) and its raw public key.
fn ed25519_key(text: &str) -> Result<(Ed25519Key, Vec<u8>), String> {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    let hint = "the file must hold the base64 of a 32-byte seed (`openssl rand -base64 32`) or a PKCS#8 PEM key (`openssl genpkey -algorithm ed25519`)";
    if text.contains("-----BEGIN") {
        let der = PrivateKeyDer::from_pem_slice(text.as_bytes())
            .map_err(|e| format!("not an Ed25519 key ({e}); {hint}"))?;
        let key = Ed25519Key::from_pkcs8_maybe_unchecked_der(der.secret_der())
            .map_err(|e| format!("not a usable Ed25519 key ({e}); {hint}"))?;
        let public = key.public_key();
        return Ok((key, public));
    }
    let seed = STANDARD
        .decode(text.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| format!("not an Ed25519 key; {hint}"))?;
    let public = Ed25519KeyPair::from_seed_unchecked(&seed)
        .map_err(|e| format!("not a usable Ed25519 key ({e}); {hint}"))?
        .public_key()
        .as_ref()
        .to_vec();
    let key = Ed25519Key::from_seed_and_public_key(&seed, &public)
        .map_err(|e| format!("not a usable Ed25519 key ({e}); {hint}"))?;
    Ok((key, public))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(file: &str, algorithm: DkimAlgorithm) -> DkimSettings {
        DkimSettings {
            domain: "example.com".into(),
            selector: "daily".into(),
            private_key_file: file.into(),
            algorithm,
        }
    }

    fn fixtures() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dkim")
    }

    #[test]
    fn loads_keys_and_prints_the_dns_record() {
        let rsa = load(
            &settings("test-rsa.pem", DkimAlgorithm::RsaSha256),
            &fixtures(),
            false,
        )
        .expect("rsa");
        assert!(
            rsa.dns_record()
                .starts_with("daily._domainkey.example.com IN TXT \"v=DKIM1; k=rsa; p=MIIBIjAN"),
            "{}",
            rsa.dns_record()
        );
        let ed = load(
            &settings("test-ed25519.key", DkimAlgorithm::Ed25519Sha256),
            &fixtures(),
            true,
        )
        .expect("ed25519");
        assert!(
            ed.dns_record().contains("k=ed25519; p="),
            "{}",
            ed.dns_record()
        );
    }

    #[test]
    fn unreadable_or_wrong_keys_are_problems_naming_the_file() {
        let missing = load(
            &settings("nope.pem", DkimAlgorithm::RsaSha256),
            &fixtures(),
            false,
        )
        .expect_err("missing");
        assert!(
            missing
                .to_string()
                .starts_with("nope.pem: cannot read the DKIM private key"),
            "{missing}"
        );
        let wrong = load(
            &settings("test-ed25519.key", DkimAlgorithm::RsaSha256),
            &fixtures(),
            false,
        )
        .expect_err("wrong");
        assert!(
            wrong.to_string().contains("not an RSA private key"),
            "{wrong}"
        );
    }

    #[test]
    fn signatures_cover_and_oversign_the_list_headers() {
        let key = load(
            &settings("test-rsa.pem", DkimAlgorithm::RsaSha256),
            &fixtures(),
            false,
        )
        .expect("rsa");
        let message = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: x\r\nDate: Mon, 1 Mar 2027 11:00:00 +0000\r\nMessage-ID: <x@example.com>\r\nList-Id: <daily.example.com>\r\nList-Unsubscribe: <https://example.com/u/t>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nHello\r\n";
        let header = key.sign(message).expect("signed");
        let flat: String = header.split_whitespace().collect();
        let h = flat
            .split(";h=")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .expect("h=")
            .to_ascii_lowercase();
        let names: Vec<&str> = h.split(':').collect();
        for once in ["mime-version", "content-type", "reply-to"] {
            assert!(names.contains(&once), "{once} in {h}");
        }
        for twice in ["from", "to", "subject", "list-unsubscribe", "list-id"] {
            assert_eq!(
                names.iter().filter(|n| **n == twice).count(),
                2,
                "{twice} over-signed in {h}"
            );
        }
    }
}

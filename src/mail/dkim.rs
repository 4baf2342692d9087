//! DKIM: loading the key from `[dkim]`, the signing configuration lettre
//! uses, and the DNS record to publish.
//!
//! Signatures are relaxed/relaxed and cover From, To, Subject, Date,
//! Message-ID, List-Id, List-Unsubscribe, List-Unsubscribe-Post (RFC 8058
//! requires the last two to be signed) and Feedback-ID when set. Signing
//! itself happens in `message::build`, after every header is set.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};

use crate::problem::Problem;
use crate::project::settings::{DkimAlgorithm, DkimSettings};

/// The headers every signature covers, in this order.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// A loaded key: what signs, and what to publish.
#[derive(Debug)]
pub struct Key {
    pub config: DkimConfig,
    /// `SELECTOR._domainkey.DOMAIN IN TXT "v=DKIM1; k=...; p=..."`
    pub dns_record: String,
}

/// Reads the key file named in the settings (relative to `root`) and
/// checks it; the command layer's way to [`parse`].
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
pub fn parse(settings: &DkimSettings, text: &str, feedback_id: bool) -> Result<Key, Problem> {
    let path = &settings.private_key_file;
    let bad = |msg: String| Problem::new(path, None, msg);
    let (signing_key, k, public) = match settings.algorithm {
        DkimAlgorithm::RsaSha256 => {
            // lettre reads PKCS#1; accept PKCS#8 too by converting.
            let key = rsa::RsaPrivateKey::from_pkcs1_pem(text)
                .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_pem(text))
                .map_err(|e| {
                    bad(format!(
                        "not an RSA private key in PEM ({e}); generate one with `openssl genrsa -traditional -out dkim.pem 2048`"
                    ))
                })?;
            let pkcs1 =
                rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_pem(&key, rsa::pkcs1::LineEnding::LF)
                    .map_err(|e| bad(format!("cannot re-encode the RSA key: {e}")))?;
            let public = key
                .to_public_key()
                .to_public_key_der()
                .map_err(|e| bad(format!("cannot derive the public key: {e}")))?;
            let signing = DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
                .map_err(|e| bad(format!("lettre rejects the RSA key: {e:?}")))?;
            (signing, "rsa", STANDARD.encode(public.as_bytes()))
        }
        DkimAlgorithm::Ed25519Sha256 => {
            let seed = STANDARD
                .decode(text.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| {
                    bad(
                        "not an Ed25519 key: the file must hold the base64 of a 32-byte seed"
                            .into(),
                    )
                })?;
            let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
            let signing = DkimSigningKey::new(text.trim(), DkimSigningAlgorithm::Ed25519)
                .map_err(|e| bad(format!("lettre rejects the Ed25519 key: {e:?}")))?;
            (signing, "ed25519", STANDARD.encode(public.as_bytes()))
        }
    };
    let mut headers: Vec<HeaderName> = SIGNED_HEADERS
        .iter()
        .map(|h| HeaderName::new_from_ascii_str(h))
        .collect();
    if feedback_id {
        headers.push(HeaderName::new_from_ascii_str("Feedback-ID"));
    }
    let config = DkimConfig::new(
        settings.selector.clone(),
        settings.domain.clone(),
        signing_key,
        headers,
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    );
    let dns_record = format!(
        "{}._domainkey.{} IN TXT \"v=DKIM1; k={k}; p={public}\"",
        settings.selector, settings.domain
    );
    Ok(Key { config, dns_record })
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
            rsa.dns_record
                .starts_with("daily._domainkey.example.com IN TXT \"v=DKIM1; k=rsa; p=MIIBIjAN"),
            "{}",
            rsa.dns_record
        );
        let ed = load(
            &settings("test-ed25519.key", DkimAlgorithm::Ed25519Sha256),
            &fixtures(),
            true,
        )
        .expect("ed25519");
        assert!(ed.dns_record.contains("k=ed25519; p="), "{}", ed.dns_record);
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
}

//! `[dkim]` or `[[dkim]]`: the keys every message is signed with, one
//! signature per key — its domain, its selector (which names its DNS
//! record, so no two keys of a domain share one), the private key file
//! and the algorithm. The keys themselves are read by the command layer;
//! the file's path only takes part in `layout`'s collision check here.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Deserialize;

use super::Problems;
use super::raw::RawDkim;
use super::values::is_host;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DkimAlgorithm {
    #[serde(rename = "rsa-sha256")]
    RsaSha256,
    #[serde(rename = "ed25519-sha256")]
    Ed25519Sha256,
}

#[derive(Debug, Clone)]
pub struct DkimSettings {
    pub domain: String,
    pub selector: String,
    pub private_key_file: PathBuf,
    pub algorithm: DkimAlgorithm,
}

/// Checks every key, in the order written.
pub(super) fn check(raw: &[RawDkim], problems: &mut Problems) -> Vec<DkimSettings> {
    let mut selectors = HashSet::new();
    raw.iter()
        .map(|d| {
            for (field, key) in [(&d.domain, "domain"), (&d.selector, "selector")] {
                if !is_host(field.get_ref()) {
                    problems.bad(
                        field.span(),
                        format!(
                            "[dkim] {key} `{}` must be a DNS name (ASCII letters, digits, - and dots)",
                            field.get_ref().escape_debug()
                        ),
                    );
                }
            }
            if !selectors.insert((d.domain.get_ref().clone(), d.selector.get_ref().clone())) {
                problems.bad(
                    d.selector.span(),
                    format!(
                        "[[dkim]] selector `{}` of {} is listed twice; each key needs its own selector (its own DNS record)",
                        d.selector.get_ref(),
                        d.domain.get_ref()
                    ),
                );
            }
            DkimSettings {
                domain: d.domain.get_ref().clone(),
                selector: d.selector.get_ref().clone(),
                private_key_file: d.private_key_file.get_ref().clone(),
                algorithm: d.algorithm,
            }
        })
        .collect()
}

//! The SNS signing certificates `/hooks/ses` verifies with: fetched over
//! HTTPS (the platform's trust store) from the URL a message names — only
//! ever an `https://sns.REGION.amazonaws.com/...pem` URL, checked before
//! (`bounces::providers::ses::certificate_url`) — then kept in memory and
//! on disk beside the ledger (`sns-certs/SHA256-OF-URL.pem`), so a restart
//! fetches nothing it had. Amazon rotates its key by publishing a new URL,
//! so a cached certificate never goes stale.
//!
//! The fetcher is a trait so the tests confirm subscriptions without the
//! network; the cache on disk is what the CLI tests pre-seed with the test
//! certificate.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::bounces::providers::ses;

/// The largest certificate or confirmation answer read.
const FETCH_LIMIT: u64 = 64 * 1024;

/// Fetches a URL's body (HTTPS GET, 200 only).
pub(super) trait Fetch: Send + Sync {
    fn get(&self, url: &url::Url) -> Result<Vec<u8>, String>;
}

/// The real fetcher: ureq over rustls (ring) with the platform verifier,
/// https only, no redirects, a 10 s limit.
pub(super) struct Https(ureq::Agent);

impl Https {
    pub(super) fn new() -> Https {
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .https_only(true)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .new_agent();
        Https(agent)
    }
}

impl Fetch for Https {
    fn get(&self, url: &url::Url) -> Result<Vec<u8>, String> {
        let mut response = self
            .0
            .get(url.as_str())
            .call()
            .map_err(|e| format!("cannot fetch {url}: {e}"))?;
        if response.status() != 200 {
            return Err(format!("{url} answered {}", response.status()));
        }
        response
            .body_mut()
            .with_config()
            .limit(FETCH_LIMIT)
            .read_to_vec()
            .map_err(|e| format!("cannot read {url}: {e}"))
    }
}

/// The certificate cache, with the fetcher behind it.
pub(super) struct Certificates {
    dir: PathBuf,
    memory: Mutex<HashMap<String, Vec<u8>>>,
    pub(super) fetch: Box<dyn Fetch>,
}

impl Certificates {
    pub(super) fn new(dir: PathBuf, fetch: Box<dyn Fetch>) -> Certificates {
        Certificates {
            dir,
            memory: Mutex::new(HashMap::new()),
            fetch,
        }
    }

    /// The certificate (DER) at `url`: from memory, the disk, or fetched.
    pub(super) fn get(&self, url: &url::Url) -> Result<Vec<u8>, String> {
        let key = url.as_str().to_string();
        if let Some(der) = self.memory.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(der);
        }
        let file = self
            .dir
            .join(format!("{}.pem", crate::bounces::digest(key.as_bytes())));
        let der = match std::fs::read(&file)
            .ok()
            .and_then(|pem| ses::certificate_der(&pem).ok())
        {
            Some(der) => der,
            None => {
                let pem = self.fetch.get(url)?;
                let der = ses::certificate_der(&pem).map_err(|e| format!("{url}: {e}"))?;
                let saved = std::fs::create_dir_all(&self.dir)
                    .map_err(anyhow::Error::from)
                    .and_then(|()| crate::atomic::write(&file, &pem));
                if let Err(e) = saved {
                    tracing::warn!(
                        "cannot keep the SNS certificate in {}: {e:#}",
                        self.dir.display()
                    );
                }
                tracing::info!("fetched the SNS signing certificate {url}");
                der
            }
        };
        if let Ok(mut m) = self.memory.lock() {
            m.insert(key, der.clone());
        }
        Ok(der)
    }
}

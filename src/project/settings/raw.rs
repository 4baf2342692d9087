//! The shape of `dailyissue.toml` as serde reads it, before any check:
//! every table with `deny_unknown_fields` (a typo is an error that names
//! the key), the values the parser blames kept `Spanned` for their line,
//! and the defaults of keys left out. Defaults carry the empty span 0..0,
//! which `layout` reads as "not written"; every default is a valid value,
//! so no other check blames one.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::bounces::RawBounces;
use super::section::RawSection;
use super::{DkimAlgorithm, Tls};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    pub(super) name: Spanned<String>,
    pub(super) url: Spanned<String>,
    pub(super) timezone: Spanned<String>,
    pub(super) from: Spanned<String>,
    pub(super) reply_to: Option<Spanned<String>>,
    pub(super) postal_address: Spanned<String>,
    pub(super) description: Option<Spanned<String>>,
    pub(super) subject: Option<Spanned<String>>,
    pub(super) preheader: Option<String>,
    #[serde(default = "default_subscribers")]
    pub(super) subscribers: Spanned<PathBuf>,
    #[serde(default = "default_ledger")]
    pub(super) ledger: Spanned<PathBuf>,
    #[serde(default = "default_outbox")]
    pub(super) outbox: Spanned<PathBuf>,
    #[serde(default = "default_archive_dir")]
    pub(super) archive_dir: Spanned<PathBuf>,
    #[serde(default = "default_send_time")]
    pub(super) send_time: Spanned<String>,
    #[serde(default = "default_max_lateness")]
    pub(super) max_lateness: Spanned<String>,
    /// `zone` (default) or `local`: see `schedule`.
    pub(super) delivery: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) daily_cap: u64,
    #[serde(default = "yes")]
    pub(super) repeats: bool,
    pub(super) list_id: Option<Spanned<String>>,
    pub(super) feedback_id: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) section: Vec<Spanned<RawSection>>,
    pub(super) smtp: Option<Spanned<RawSmtp>>,
    pub(super) unsubscribe: Option<RawUnsubscribe>,
    #[serde(default)]
    pub(super) dkim: RawDkims,
    pub(super) bounces: Option<RawBounces>,
    pub(super) subscribe: Option<RawSubscribe>,
    pub(super) feedback: Option<RawFeedback>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSubscribe {
    #[serde(default = "yes")]
    pub(super) enabled: bool,
    pub(super) action: Option<Spanned<String>>,
    pub(super) confirm_url: Option<Spanned<String>>,
    pub(super) per_address_per_day: Option<Spanned<u32>>,
    pub(super) per_ip_per_hour: Option<Spanned<u32>>,
    #[serde(default = "yes")]
    pub(super) welcome: bool,
    pub(super) confirm_within: Option<Spanned<String>>,
    pub(super) promise: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeedback {
    #[serde(default = "yes")]
    pub(super) enabled: bool,
    pub(super) url: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    pub(super) host: Spanned<String>,
    pub(super) port: Option<Spanned<u16>>,
    #[serde(default = "default_tls")]
    pub(super) tls: Tls,
    pub(super) username: Option<Spanned<String>>,
    pub(super) password_env: Option<Spanned<String>>,
    #[serde(default = "default_concurrency")]
    pub(super) concurrency: usize,
    #[serde(default)]
    pub(super) rate_per_second: f64,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) helo: Option<Spanned<String>>,
    #[serde(default = "default_retries")]
    pub(super) retries: Spanned<u32>,
    pub(super) retry_base: Option<Spanned<String>>,
    pub(super) ca_file: Option<Spanned<PathBuf>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUnsubscribe {
    pub(super) url: Option<Spanned<String>>,
    pub(super) mailto: Option<Spanned<String>>,
    #[serde(default = "default_secret_env")]
    pub(super) secret_env: Spanned<String>,
    pub(super) previous_secret_env: Option<Spanned<String>>,
}

/// `[dkim]` (one key) or `[[dkim]]` (several), read with the same
/// deserializer so every field keeps its span and unknown keys are named.
#[derive(Default)]
pub(super) struct RawDkims(pub(super) Vec<RawDkim>);

impl<'de> Deserialize<'de> for RawDkims {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RawDkims, D::Error> {
        struct Tables;
        impl<'de> serde::de::Visitor<'de> for Tables {
            type Value = RawDkims;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a [dkim] table or [[dkim]] tables")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawDkims, A::Error> {
                RawDkim::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|one| RawDkims(vec![one]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawDkims, A::Error> {
                let mut all = Vec::new();
                while let Some(one) = seq.next_element()? {
                    all.push(one);
                }
                Ok(RawDkims(all))
            }
        }
        d.deserialize_any(Tables)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDkim {
    pub(super) domain: Spanned<String>,
    pub(super) selector: Spanned<String>,
    pub(super) private_key_file: Spanned<PathBuf>,
    #[serde(default = "default_dkim_algorithm")]
    pub(super) algorithm: DkimAlgorithm,
}

fn default_subscribers() -> Spanned<PathBuf> {
    Spanned::new(0..0, "subscribers.csv".into())
}
fn default_ledger() -> Spanned<PathBuf> {
    Spanned::new(0..0, ".dailyissue/state.db".into())
}
fn default_outbox() -> Spanned<PathBuf> {
    Spanned::new(0..0, "outbox".into())
}
fn default_archive_dir() -> Spanned<PathBuf> {
    Spanned::new(0..0, "public".into())
}
fn default_max_lateness() -> Spanned<String> {
    Spanned::new(0..0, "6h".into())
}
fn yes() -> bool {
    true
}
fn default_tls() -> Tls {
    Tls::Starttls
}
fn default_concurrency() -> usize {
    8
}
fn default_retries() -> Spanned<u32> {
    Spanned::new(0..0, 3)
}
fn default_send_time() -> Spanned<String> {
    Spanned::new(0..0, "06:00".into())
}
pub(super) fn default_secret_env() -> Spanned<String> {
    Spanned::new(0..0, "DAILYISSUE_UNSUBSCRIBE_SECRET".into())
}
fn default_dkim_algorithm() -> DkimAlgorithm {
    DkimAlgorithm::RsaSha256
}

//! dailyissue builds and sends a daily newsletter.
//!
//! The pipeline, one folder (or file) per stage, in the order an issue
//! travels (see ARCHITECTURE.md for the whole map):
//!
//! - [`project`]: the newsletter on disk — settings, the content pool, the
//!   subscriber list, issue records, templates — loaded once;
//! - [`pick`]: the day's items, by clear rules (pure);
//! - [`plan`]: issue records for days (picks, number, subject);
//! - [`render`]: the issue as an email prepared once and personalised per
//!   reader, and the checks mailbox providers apply (preflight);
//! - [`mail`]: MIME, quoted-printable, DKIM, link tokens;
//! - [`deliver`]: who gets a copy, the delivery pipeline, transports, the
//!   run lock;
//! - [`bounces`]: bounce and complaint mail and provider webhooks,
//!   classified (pure), and the policy and rates;
//! - [`ledger`]: what went out and what came back (SQLite);
//! - [`serve`]: the HTTP endpoints (unsubscribe, the archive);
//! - [`archive`]: the static web archive;
//! - [`timer`]: when the runs happen, as crontab lines or systemd units
//!   (pure).
//!
//! [`cmd`] holds one file per command (options → stages → a report), and
//! [`run`] maps parsed arguments onto them and prints the report, as text
//! or JSON; `main.rs` only parses arguments. Any module may log through
//! `tracing`; [`log`] owns how lines look and which show. Lower stages
//! never import higher ones.

pub(crate) mod archive;
pub(crate) mod atomic;
pub mod bounces;
pub mod cli;
pub mod cmd;
pub(crate) mod deliver;
pub mod html;
pub(crate) mod ledger;
pub(crate) mod log;
pub mod mail;
pub(crate) mod pick;
pub(crate) mod plan;
pub mod problem;
pub mod project;
pub mod render;
#[cfg(test)]
mod robustness;
pub mod run;
pub(crate) mod serve;
pub mod timer;

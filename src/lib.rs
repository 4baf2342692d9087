//! dailyissue builds and sends a daily newsletter.
//!
//! The pipeline, one module per stage:
//!
//! - load: `project` finds the project; `settings`, `content` (the pool),
//!   `subscribers` (the CSV), `templates`, `issue` (the records) parse it;
//! - pick: `pick` chooses the day's items, `plan` writes the records;
//! - render: `markdown`, `render`, `email` (prepared once per issue,
//!   personalised per reader), `message` (MIME with lettre), `dkim`;
//! - deliver: `send` decides who gets a copy, `delivery` runs the pipeline
//!   through `transport`, recording every row in the `ledger`; `lock` keeps
//!   runs apart;
//! - after: `status`, `unsubscribe` (tokens), `suppressions`, `serve`,
//!   `archive` (the web archive).
//!
//! `run` maps each command onto these; `main.rs` only parses arguments.
//! The library exposes what the binary, the integration tests and the
//! benchmarks need; everything else is crate-private.

pub(crate) mod archive;
pub(crate) mod atomic;
pub(crate) mod check;
pub mod cli;
pub mod content;
pub(crate) mod delivery;
pub(crate) mod dkim;
pub mod edition;
pub mod email;
pub(crate) mod init;
pub mod issue;
pub(crate) mod ledger;
pub(crate) mod lock;
pub(crate) mod markdown;
pub mod message;
pub(crate) mod pick;
pub(crate) mod plan;
pub(crate) mod preview;
pub mod problem;
pub mod project;
pub(crate) mod render;
#[cfg(test)]
mod robustness;
pub mod run;
pub(crate) mod send;
pub(crate) mod serve;
pub(crate) mod settings;
pub(crate) mod status;
pub mod subscribers;
pub(crate) mod suppressions;
pub(crate) mod templates;
pub(crate) mod transport;
pub mod unsubscribe;

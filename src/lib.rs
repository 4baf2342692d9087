//! dailyissue builds and sends a daily newsletter.
//!
//! The pipeline, one module per stage: `settings` and `content` load the
//! project, `pick` chooses the day's items, `issue` records them, `render`
//! turns a record into an email, and `run` maps each command onto them.

pub mod archive;
pub mod atomic;
pub mod check;
pub mod cli;
pub mod content;
pub mod delivery;
pub mod dkim;
pub mod edition;
pub mod email;
pub mod init;
pub mod issue;
pub mod ledger;
pub mod lock;
pub mod markdown;
pub mod message;
pub mod pick;
pub mod plan;
pub mod preview;
pub mod problem;
pub mod project;
pub mod render;
pub mod run;
pub mod send;
pub mod serve;
pub mod settings;
pub mod status;
pub mod subscribers;
pub mod suppressions;
pub mod templates;
pub mod transport;
pub mod unsubscribe;

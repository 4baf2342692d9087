//! Deliver: takes the prepared email and the readers due, gives every
//! reader's copy to a transport (SMTP, `.eml` files, nowhere for a dry run)
//! and records each outcome in the ledger, one run at a time.
//!
//! - `pipeline`: workers, retries, group-commit ledger writes, crash safety;
//! - `transport`: the one seam every message passes through;
//! - `lock`: one run at a time.

pub(crate) mod lock;
pub(crate) mod pipeline;
pub(crate) mod transport;

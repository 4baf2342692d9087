//! `unsubscribe` and `suppressions`: the suppression list by hand, for
//! requests that arrive by mailto, by reply or by phone. The list lives in
//! the ledger, apart from the CSV, so re-exporting the CSV never
//! resubscribes anyone.

use crate::cmd::Report;
use crate::ledger::{Ledger, Suppression};
use crate::mail::token::{self, Secrets};
use crate::problem::Failure;
use crate::project::Project;
use crate::project::subscribers::AddressKey;

fn ledger(project: &Project) -> Result<Ledger, Failure> {
    Ok(crate::ledger::open(project)?)
}

fn address(text: &str) -> Result<AddressKey, Failure> {
    let a = text.trim();
    a.parse::<lettre::Address>()
        .map(|_| AddressKey::new(a))
        .map_err(|_| Failure::Usage(crate::problem::Usage::NotAnAddressArg(text.to_string())))
}

/// What `unsubscribe` did.
#[derive(Debug, serde::Serialize)]
pub struct Unsubscribed {
    pub address: AddressKey,
    /// False when the address was already suppressed.
    pub new: bool,
}

impl Report for Unsubscribed {
    fn text(&self) -> String {
        let what = if self.new {
            "is unsubscribed"
        } else {
            "was already suppressed"
        };
        format!("{} {what}\n", self.address)
    }
}

/// The suppression list, by address.
#[derive(Debug, serde::Serialize)]
pub struct List {
    pub suppressions: Vec<Suppression>,
}

impl Report for List {
    /// One line per address: address, reason, day, and the note if any,
    /// separated by tabs.
    fn text(&self) -> String {
        let mut out = String::new();
        for s in &self.suppressions {
            let day = s.created_at.get(..10).unwrap_or(&s.created_at);
            out.push_str(&format!("{}\t{}\t{day}", s.address, s.reason));
            if let Some(note) = &s.note {
                out.push_str(&format!("\t{note}"));
            }
            out.push('\n');
        }
        out
    }
}

/// What `suppressions add` did.
#[derive(Debug, serde::Serialize)]
pub struct Added {
    pub added: usize,
    pub already_suppressed: usize,
}

impl Report for Added {
    fn text(&self) -> String {
        format!(
            "{} added, {} already suppressed\n",
            self.added, self.already_suppressed
        )
    }
}

/// What `suppressions remove` did.
#[derive(Debug, serde::Serialize)]
pub struct Removed {
    pub removed: usize,
    pub not_suppressed: usize,
}

impl Report for Removed {
    fn text(&self) -> String {
        format!(
            "{} removed, {} were not suppressed\n",
            self.removed, self.not_suppressed
        )
    }
}

/// Suppresses an address, or the address a token was made for (the token
/// must verify with the current or previous secret).
pub fn unsubscribe(project: &Project, arg: &str) -> Result<Unsubscribed, Failure> {
    let settings = &project.settings;
    let (addr, how) = if arg.contains('@') {
        (address(arg)?, "by hand")
    } else {
        let secrets = Secrets::from_env(settings).ok_or_else(|| {
            Failure::Usage(crate::problem::Usage::SecretForToken {
                var: settings.unsubscribe.secret_env.clone(),
            })
        })?;
        let addr = token::verify(&secrets, &settings.list_id, arg)
            .ok_or_else(|| Failure::Usage(crate::problem::Usage::BadToken))?;
        (addr, "token")
    };
    let new = ledger(project)?.suppress(&addr, "unsubscribed", Some(how))?;
    Ok(Unsubscribed { address: addr, new })
}

pub fn list(project: &Project) -> Result<List, Failure> {
    let suppressions = match crate::ledger::read(project)? {
        Some(l) => l.suppressions()?,
        None => Vec::new(),
    };
    Ok(List { suppressions })
}

/// Adds addresses.
pub fn add(project: &Project, addresses: &[String], reason: &str) -> Result<Added, Failure> {
    let addrs = addresses
        .iter()
        .map(|a| address(a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut l = ledger(project)?;
    let mut new = 0;
    for a in addrs {
        new += usize::from(l.suppress(&a, reason, Some("by hand"))?);
    }
    Ok(Added {
        added: new,
        already_suppressed: addresses.len() - new,
    })
}

/// Removes addresses.
pub fn remove(project: &Project, addresses: &[String]) -> Result<Removed, Failure> {
    let addrs = addresses
        .iter()
        .map(|a| address(a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut l = ledger(project)?;
    let mut removed = 0;
    for a in addrs {
        removed += usize::from(l.unsuppress(&a)?);
    }
    Ok(Removed {
        removed,
        not_suppressed: addresses.len() - removed,
    })
}

//! `unsubscribe` and `suppressions`: the suppression list by hand, for
//! requests that arrive by mailto, by reply or by phone. The list lives in
//! the ledger, apart from the CSV, so re-exporting the CSV never
//! resubscribes anyone.

use crate::ledger::{Ledger, Suppression};
use crate::mail::token::{self, Secrets};
use crate::problem::Failure;
use crate::project::Project;

fn ledger(project: &Project) -> Result<Ledger, Failure> {
    Ok(crate::ledger::open(project)?)
}

fn address(text: &str) -> Result<String, Failure> {
    let a = text.trim();
    a.parse::<lettre::Address>()
        .map(|_| a.to_lowercase())
        .map_err(|_| Failure::Usage(format!("`{text}` is not an email address")))
}

/// What `unsubscribe` did.
#[derive(Debug)]
pub struct Unsubscribed {
    pub address: String,
    pub new: bool,
}

/// Suppresses an address, or the address a token was made for (the token
/// must verify with the current or previous secret).
pub fn unsubscribe(project: &Project, arg: &str) -> Result<Unsubscribed, Failure> {
    let settings = &project.settings;
    let (addr, how) = if arg.contains('@') {
        (address(arg)?, "by hand")
    } else {
        let secrets = Secrets::from_env(settings).ok_or_else(|| {
            Failure::Usage(format!(
                "{} is not set: a token can only be checked with the secret that made it (or pass the address)",
                settings.unsubscribe.secret_env
            ))
        })?;
        let addr = token::verify(&secrets, &settings.list_id, arg).ok_or_else(|| {
            Failure::Usage("that token is not valid for this list (changed, truncated, or made with another secret)".into())
        })?;
        (addr, "token")
    };
    let new = ledger(project)?.suppress(&addr, "unsubscribed", Some(how))?;
    Ok(Unsubscribed { address: addr, new })
}

pub fn list(project: &Project) -> Result<Vec<Suppression>, Failure> {
    match crate::ledger::read(project)? {
        Some(l) => Ok(l.suppressions()?),
        None => Ok(Vec::new()),
    }
}

/// Adds addresses; returns how many were new.
pub fn add(project: &Project, addresses: &[String], reason: &str) -> Result<usize, Failure> {
    let addrs = addresses
        .iter()
        .map(|a| address(a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut l = ledger(project)?;
    let mut new = 0;
    for a in addrs {
        new += usize::from(l.suppress(&a, reason, Some("by hand"))?);
    }
    Ok(new)
}

/// Removes addresses; returns how many were there.
pub fn remove(project: &Project, addresses: &[String]) -> Result<usize, Failure> {
    let addrs = addresses
        .iter()
        .map(|a| address(a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut l = ledger(project)?;
    let mut removed = 0;
    for a in addrs {
        removed += usize::from(l.unsuppress(&a)?);
    }
    Ok(removed)
}

//! `bounces list [ADDRESS] [--json]`: every bounce and complaint recorded,
//! newest first, with its evidence — why an address was suppressed, so a
//! false positive can be seen and undone (`suppressions remove`).

use crate::cmd::Report;
use crate::ledger::Event;
use crate::problem::{Failure, Usage};
use crate::project::Project;
use crate::project::subscribers::AddressKey;

/// The events (with `--json`, each with its raw evidence).
#[derive(Debug, serde::Serialize)]
pub struct List {
    pub events: Vec<Event>,
}

impl Report for List {
    /// Two lines an event: what, whom, when, whether it suppressed; then
    /// what the report said.
    /// What came from the report (status, type, diagnostic) is written
    /// on one line with control characters blanked: whoever sent the
    /// bounce wrote it, and it must not drive the operator's terminal.
    fn text(&self) -> String {
        use crate::project::subscribers::clean_line;
        let mut out = String::new();
        for e in &self.events {
            let status = e
                .status
                .as_deref()
                .map(|s| format!(" {}", clean_line(s)))
                .unwrap_or_default();
            let effect = match (&e.suppressed, &e.cleared_at) {
                (_, Some(at)) => format!(", cleared {}", at.get(..10).unwrap_or(at)),
                (Some(reason), None) => format!(", suppressed ({reason})"),
                (None, None) => String::new(),
            };
            out.push_str(&format!(
                "#{} {} {} issue {}: {}{status} ({}, via {}){effect}\n",
                e.id,
                e.received_at.get(..10).unwrap_or(&e.received_at),
                e.address,
                e.issue_date,
                e.kind.as_str(),
                clean_line(&e.report_type),
                e.source,
            ));
            if let Some(d) = &e.diagnostic {
                out.push_str(&format!("    {}\n", clean_line(d)));
            }
        }
        if self.events.is_empty() {
            out.push_str("no bounces or complaints recorded\n");
        }
        out
    }
}

/// The events of every address, or of `address`.
pub fn list(project: &Project, address: Option<&str>) -> Result<List, Failure> {
    let key = match address {
        Some(a) if a.parse::<lettre::Address>().is_ok() => Some(AddressKey::new(a)),
        Some(a) => return Err(Failure::Usage(Usage::NotAnAddressArg(a.to_string()))),
        None => None,
    };
    let events = match crate::ledger::read(project)? {
        Some(l) => l.bounce_events(key.as_ref())?,
        None => Vec::new(),
    };
    Ok(List { events })
}

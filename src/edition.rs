//! An edition: one day's issue loaded with everything needed to render it
//! for readers — the pool, the templates, the record (written on first use,
//! as `plan` would), the list and the unsubscribe secret. `preview`, `check`
//! and `send` all start here, so they render exactly the same message.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};

use crate::atomic;
use crate::email::{Email, Inputs};
use crate::issue::{self, Stored};
use crate::plan;
use crate::problem::{Failure, Problem};
use crate::project::Project;
use crate::subscribers::List;
use crate::unsubscribe::Secrets;

/// Where the unsubscribe secret may fall back to the development one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUse {
    /// Nothing leaves the machine (preview, dry run, file transport, check).
    Local,
    /// Real mail: a missing secret is an error.
    Mail,
}

#[derive(Debug)]
pub struct Edition {
    pub email: Email,
    pub list: List,
    pub record: Stored,
    /// True when the record was created by this call (and written).
    pub created: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct EditionOptions {
    pub date: NaiveDate,
    pub sent_at: DateTime<Utc>,
    pub secrets: SecretUse,
    /// Write a missing issue record (preview, send) or keep it in memory (check).
    pub write_record: bool,
}

pub fn load(project: &Project, opts: EditionOptions) -> Result<Edition, Failure> {
    let settings = &project.settings;
    let mut problems = Vec::new();
    let pool = project.pool().map_err(|p| problems.extend(p)).ok();
    let templates = project.templates().map_err(|p| problems.extend(p)).ok();
    let issues = project.issues().map_err(|p| problems.extend(p)).ok();
    let list = project.subscribers().map_err(|p| problems.push(p)).ok();
    let (Some(pool), Some(templates), Some(mut issues), Some(list)) =
        (pool, templates, issues, list)
    else {
        return Err(Failure::input(problems));
    };
    let mut warnings = Vec::new();
    let secrets = match (Secrets::from_env(settings), opts.secrets) {
        (Some(s), _) => s,
        (None, SecretUse::Local) => {
            warnings.push(format!(
                "{} is not set: unsubscribe links use the development secret and will not verify in production",
                settings.unsubscribe.secret_env
            ));
            Secrets::development()
        }
        (None, SecretUse::Mail) => {
            return Err(Failure::Usage(format!(
                "{} is not set: sending real mail needs the unsubscribe secret in that environment variable (any long random string, e.g. from `openssl rand -hex 32`)",
                settings.unsubscribe.secret_env
            )));
        }
    };
    let planned = plan::ensure(project, &pool, &mut issues, opts.date)?;
    let Some(stored) = issues.get(opts.date).cloned() else {
        return Err(Failure::Other(anyhow::anyhow!(
            "issue record for {} vanished",
            opts.date
        )));
    };
    problems.extend(
        stored
            .record
            .check_against(&pool, &stored.path, &stored.text),
    );
    if !problems.is_empty() {
        return Err(Failure::input(problems));
    }
    if !planned.kept && opts.write_record {
        atomic::write(&project.path(&stored.path), stored.text.as_bytes())?;
    }
    for (section, slug, last) in &planned.repeats {
        warnings.push(format!(
            "section `{section}` has used every eligible item; {} repeats `{slug}` (last sent {last})",
            opts.date
        ));
    }
    let featured: HashSet<String> = issues
        .records
        .range(..=opts.date)
        .flat_map(|(_, s)| s.record.picks.values().cloned())
        .collect();
    let columns = list.columns.clone();
    let email = Email::prepare(Inputs {
        settings,
        pool: &pool,
        templates: &templates,
        record: &stored.record,
        featured: &featured,
        columns: &columns,
        secrets,
        sent_at: opts.sent_at,
    })
    .map_err(Failure::one)?;
    Ok(Edition {
        email,
        list,
        record: stored,
        created: !planned.kept,
        warnings,
    })
}

/// Path of an issue record, for messages.
pub fn record_path(date: NaiveDate) -> std::path::PathBuf {
    std::path::Path::new(issue::DIR).join(issue::file_name(date))
}

/// Renders the edition for every active reader, collecting problems: what
/// `check` runs before a send.
pub fn render_all(edition: &Edition) -> Vec<Problem> {
    let mut problems = Vec::new();
    for reader in edition.list.active() {
        if let Err(p) = edition.email.render(reader)
            && !problems.contains(&p)
        {
            problems.push(p);
        }
    }
    problems
}

//! The commands: one file each (`send/` a folder, as it outgrew a file).
//! A command takes its options (plain values the command layer made from
//! the arguments, the clock and the environment), loads the project once,
//! calls the stages, and returns a [`Report`] that `run` prints as text or
//! JSON. Only this layer (and `run`) touches the environment, the clock and
//! the disk for its own sake.

pub(crate) mod archive;
pub(crate) mod bounces;
pub(crate) mod check;
pub(crate) mod history;
pub(crate) mod init;
pub(crate) mod ledger;
pub(crate) mod mornings;
pub(crate) mod plan;
pub(crate) mod preview;
pub(crate) mod schedule;
pub(crate) mod send;
pub(crate) mod status;
pub(crate) mod subscribers;
pub(crate) mod suppressions;

use chrono::{DateTime, NaiveDate, Utc};

use crate::atomic;
use crate::mail::dkim;
use crate::mail::token::Secrets;

use crate::problem::{Failure, Problem};
use crate::project::{Loaded, Project};
use crate::render::edition::{Edition, Inputs};

/// What a command tells whoever ran it: a text for people, or the same
/// fields as one JSON object for scripts (`--json`; `run` adds `ok`,
/// `exit_code` and `warnings`, see docs/json.md). Notes and warnings are
/// not part of the text: they are logged as they happen.
pub trait Report: serde::Serialize {
    fn text(&self) -> String;

    /// The exit code of a run that finished: 0, or 75 when something is
    /// left for a later run, 1 when it stopped on something a rerun will
    /// not fix.
    fn exit_code(&self) -> u8 {
        0
    }
}

/// `s` after a count that is not 1.
pub(crate) fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `1 record`, `2 records`, `0 records`: a count with its noun (or any
/// words) in the singular or the plural, as the count asks.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Where the unsubscribe secret may fall back to the development one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUse {
    /// Nothing leaves the machine (preview, dry run, file transport, check).
    Local,
    /// Real mail: a missing secret is an error.
    Mail,
}

/// The unsubscribe secrets from the environment, or the development one
/// where nothing leaves the machine.
pub fn secrets(project: &Project, used: SecretUse) -> Result<Secrets, Failure> {
    let settings = &project.settings;
    match (Secrets::from_env(settings), used) {
        (Some(s), _) => Ok(s),
        (None, SecretUse::Local) => Ok(Secrets::development()),
        (None, SecretUse::Mail) => Err(Failure::Usage(crate::problem::Usage::SecretForMail {
            var: settings.unsubscribe.secret_env.clone(),
        })),
    }
}

/// The DKIM keys named in the settings, read and checked (every problem).
pub fn dkim_keys(project: &Project) -> Result<dkim::Keys, Failure> {
    dkim::Keys::load(&project.settings, &project.root).map_err(Failure::input)
}

/// How a command opens the issue of a day.
#[derive(Debug, Clone, Copy)]
pub struct DayOptions {
    pub date: NaiveDate,
    pub now: DateTime<Utc>,
    pub secrets: SecretUse,
    /// Write a missing issue record (preview, send) or keep it in memory (check).
    pub write_record: bool,
}

/// The issue of a day, ready to render, with the project it came from.
#[derive(Debug)]
pub struct Day {
    pub loaded: Loaded,
    pub edition: Edition,
    /// True when the record was made now (and, if asked, written).
    pub created: bool,
    /// Set when the development secret stands in for a missing one.
    pub secret_note: Option<String>,
    /// Items repeated because their section ran out.
    pub repeat_notes: Vec<String>,
}

impl Day {
    /// Tells whoever previews or sends: a note when the development secret
    /// stands in, a warning for each repeated item.
    pub fn log_notes(&self) {
        if let Some(note) = &self.secret_note {
            tracing::info!("{note}");
        }
        for note in &self.repeat_notes {
            tracing::warn!("{note}");
        }
    }
}

/// Loads the project once and prepares the issue of `opts.date`: the one
/// place `preview`, `send` and `check` get their edition from, so they
/// render exactly the same message.
pub fn open_day(project: &Project, opts: DayOptions) -> Result<Day, Failure> {
    let started = std::time::Instant::now();
    let loaded = project.load()?;
    tracing::debug!(
        "loaded content, templates, issue records and the list in {:.0?}",
        started.elapsed()
    );
    day_from(project, loaded, opts)
}

/// [`open_day`] for a project already loaded.
pub fn day_from(project: &Project, mut loaded: Loaded, opts: DayOptions) -> Result<Day, Failure> {
    let started = std::time::Instant::now();
    let secrets = secrets(project, opts.secrets)?;
    let dkim = dkim_keys(project)?;
    let planned = crate::plan::ensure(
        &project.settings,
        &loaded.pool,
        &mut loaded.issues,
        opts.date,
    )?;
    let record = loaded.issues.get(opts.date).cloned().ok_or_else(|| {
        Failure::one(Problem::new(
            crate::project::issue::path(opts.date),
            None,
            "the issue record vanished while it was being planned",
        ))
    })?;
    let edition = Edition::prepare(Inputs {
        settings: &project.settings,
        pool: &loaded.pool,
        templates: &loaded.templates,
        issues: &loaded.issues,
        record,
        columns: &loaded.list.columns,
        secrets,
        dkim,
        sent_at: opts.now,
    })?;
    tracing::debug!(
        "prepared issue {} of {} ({}) in {:.0?}",
        edition.record.record.number,
        opts.date,
        if planned.kept {
            "planned"
        } else {
            "picked now"
        },
        started.elapsed()
    );
    if !planned.kept && opts.write_record {
        atomic::write(
            &project.path(&edition.record.path),
            edition.record.text.as_bytes(),
        )?;
    }
    let repeat_notes = planned
        .repeats
        .iter()
        .map(|(section, slug, last)| {
            format!(
                "section `{section}` has used every eligible item; {} repeats `{slug}` (last picked {last})",
                opts.date
            )
        })
        .collect();
    Ok(Day {
        secret_note: edition.secret_warning(),
        loaded,
        edition,
        created: !planned.kept,
        repeat_notes,
    })
}

//! The command layer: turns parsed arguments into options, reads the clock
//! once, calls one function per command, prints its result, and maps the
//! outcome to an exit code. Errors are printed here and only here.

use std::io::Write;
use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use clap::CommandFactory;

use crate::archive::{self, ArchiveOptions};
use crate::cli::{Cli, Command, LedgerAction, PreviewFormat, SuppressionsAction};
use crate::cmd::check::{self, CheckOptions};
use crate::cmd::init;
use crate::cmd::plan::{self, PlanOptions};
use crate::cmd::preview::{self, Format, PreviewOptions};
use crate::cmd::send::{self, SendOptions};
use crate::cmd::status;
use crate::cmd::suppressions;
use crate::problem::Failure;
use crate::project::Project;
use crate::serve::{self, ServeOptions};

pub fn run(cli: Cli) -> ExitCode {
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            let code = failure.exit_code();
            match &failure {
                Failure::Other(e) => eprintln!("error: {e:#}"),
                other => eprintln!("{other}"),
            }
            ExitCode::from(code)
        }
    }
}

/// The clock, read once per command. `DAILYISSUE_NOW` (RFC 3339) stands in
/// for it in tests and rehearsals ("what would the 06:00 run do?").
fn now() -> Result<DateTime<Utc>, Failure> {
    match std::env::var("DAILYISSUE_NOW") {
        Ok(text) if !text.is_empty() => DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                Failure::Usage(format!(
                    "DAILYISSUE_NOW = {text:?} is not an RFC 3339 time such as 2027-03-01T06:00:00Z ({e}); unset it to use the clock"
                ))
            }),
        _ => Ok(Utc::now()),
    }
}

/// Runs one command; the number is the exit code of a run that finished
/// (0, or 75 when recipients are left for a later run).
fn dispatch(cli: Cli) -> Result<u8, Failure> {
    let start = cli.directory.clone().unwrap_or_else(|| ".".into());
    let project = || Project::discover(&start);
    let now = now()?;
    let today = |p: &Project, date: Option<NaiveDate>| date.unwrap_or_else(|| p.today(now));
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Init { dir } => {
            let dir = start.join(dir);
            let written = init::init(&dir)?;
            writeln!(out, "created {} files in {}", written.len(), dir.display())?;
            writeln!(
                out,
                "next: cd {} && dailyissue check && dailyissue plan",
                dir.display()
            )?;
        }
        Command::Check { date } => {
            let project = project()?;
            let opts = CheckOptions {
                date: today(&project, date),
                now,
            };
            let report = check::check(&project, opts)?;
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            write!(out, "{}", report.text())?;
        }
        Command::Plan { date, days } => {
            let project = project()?;
            let opts = PlanOptions {
                start: today(&project, date),
                days,
            };
            let planned = plan::plan(&project, opts)?;
            let sections: Vec<String> = project
                .settings
                .sections
                .iter()
                .map(|s| s.name.clone())
                .collect();
            write!(out, "{}", plan::table(&planned, &sections))?;
            let new = planned.iter().filter(|d| !d.kept).count();
            writeln!(
                out,
                "{new} new record{} in issues/, {} kept",
                if new == 1 { "" } else { "s" },
                planned.len() - new
            )?;
            let mut warned = std::collections::BTreeSet::new();
            for d in &planned {
                for (section, slug, last) in &d.repeats {
                    if warned.insert(section.clone()) {
                        eprintln!(
                            "warning: section `{section}` ran out of unused items on {}: it repeats `{slug}` (last sent {last}) and repeats from then on; add items to keep issues fresh",
                            d.record.date
                        );
                    }
                }
            }
        }
        Command::Preview {
            date,
            reader,
            format,
            out: path,
            open,
        } => {
            let project = project()?;
            let opts = PreviewOptions {
                date: date.unwrap_or_else(|| project.today(now)),
                now,
                reader,
                format: match format {
                    PreviewFormat::Html => Format::Html,
                    PreviewFormat::Text => Format::Text,
                    PreviewFormat::Eml => Format::Eml,
                },
                out: path,
                open,
            };
            let result = preview::preview(&project, &opts)?;
            for w in &result.warnings {
                eprintln!("note: {w}");
            }
            if let Some(bytes) = result.stdout {
                out.write_all(&bytes)?;
            }
            for p in &result.written {
                eprintln!("wrote {} (as {})", p.display(), result.reader);
            }
        }
        Command::Send {
            date,
            dry_run,
            outbox,
            to,
            limit,
            json,
            force,
            retry_failed,
            retry_unknown,
        } => {
            let project = project()?;
            let opts = SendOptions {
                date: date.unwrap_or_else(|| project.today(now)),
                implicit_date: date.is_none(),
                now,
                dry_run,
                outbox,
                to,
                limit,
                force,
                retry_failed,
                retry_unknown,
                progress: !json,
            };
            let (summary, warnings) = send::send(&project, &opts)?;
            for w in &warnings {
                eprintln!("note: {w}");
            }
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&summary).map_err(anyhow::Error::from)?
                )?;
            } else {
                write!(out, "{}", summary.text())?;
            }
            return Ok(summary.exit_code());
        }
        Command::Status { date, json } => {
            let project = project()?;
            let date = today(&project, date);
            let report = status::status(&project, date)?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&report).map_err(anyhow::Error::from)?
                )?;
            } else {
                write!(out, "{}", report.text())?;
            }
        }
        Command::Unsubscribe { target } => {
            let project = project()?;
            let done = suppressions::unsubscribe(&project, &target)?;
            writeln!(
                out,
                "{} {}",
                done.address,
                if done.new {
                    "is unsubscribed"
                } else {
                    "was already suppressed"
                }
            )?;
        }
        Command::Suppressions { action } => {
            let project = project()?;
            match action {
                SuppressionsAction::List => {
                    for s in suppressions::list(&project)? {
                        writeln!(
                            out,
                            "{}\t{}\t{}{}",
                            s.address,
                            s.reason,
                            s.created_at.get(..10).unwrap_or(&s.created_at),
                            s.note.map(|n| format!("\t{n}")).unwrap_or_default()
                        )?;
                    }
                }
                SuppressionsAction::Add { addresses, reason } => {
                    let new = suppressions::add(&project, &addresses, &reason)?;
                    writeln!(
                        out,
                        "{new} added, {} already suppressed",
                        addresses.len() - new
                    )?;
                }
                SuppressionsAction::Remove { addresses } => {
                    let removed = suppressions::remove(&project, &addresses)?;
                    writeln!(
                        out,
                        "{removed} removed, {} were not suppressed",
                        addresses.len() - removed
                    )?;
                }
            }
        }
        Command::Ledger {
            action: LedgerAction::Backup { file },
        } => {
            let project = project()?;
            let ledger = crate::ledger::read(&project)?.ok_or_else(|| {
                Failure::Usage(format!(
                    "there is no ledger at {} yet: nothing to back up",
                    project.ledger_path().display()
                ))
            })?;
            let dest = start.join(&file);
            ledger.backup(&dest)?;
            let size = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
            writeln!(
                out,
                "backed up {} to {} ({} KB)",
                project.ledger_path().display(),
                dest.display(),
                size.div_ceil(1024)
            )?;
        }
        Command::Serve { listen } => {
            let project = project()?;
            serve::serve(&project, &ServeOptions { listen, root: None })?;
        }
        Command::Archive {
            out: dir,
            all,
            serve: listen,
        } => {
            let project = project()?;
            let report = archive::archive(&project, &ArchiveOptions { out: dir, all })?;
            if let Some(note) = &report.note {
                eprintln!("note: {note}");
            }
            writeln!(
                out,
                "archive in {}: {} issue{}, {} item page{}; {} file{} written, {} unchanged, {} removed",
                report.out.display(),
                report.issues,
                if report.issues == 1 { "" } else { "s" },
                report.item_pages,
                if report.item_pages == 1 { "" } else { "s" },
                report.written,
                if report.written == 1 { "" } else { "s" },
                report.unchanged,
                report.removed
            )?;
            if let Some(listen) = listen {
                out.flush()?;
                serve::serve(
                    &project,
                    &ServeOptions {
                        listen,
                        root: Some(report.out),
                    },
                )?;
            }
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "dailyissue", &mut out);
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
        }
    }
    Ok(0)
}

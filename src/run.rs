//! The command layer: turns parsed arguments into options, reads the clock
//! once, calls one function per command, prints its result, and maps the
//! outcome to an exit code. Errors are printed here and only here.

use std::io::Write;
use std::process::ExitCode;

use chrono::{NaiveDate, Utc};
use clap::CommandFactory;

use crate::check::{self, CheckOptions};
use crate::cli::{Cli, Command};
use crate::init;
use crate::plan::{self, PlanOptions};
use crate::problem::Failure;
use crate::project::Project;

pub fn run(cli: Cli) -> ExitCode {
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
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

fn dispatch(cli: Cli) -> Result<(), Failure> {
    let start = cli.directory.clone().unwrap_or_else(|| ".".into());
    let project = || Project::discover(&start);
    let today = |p: &Project, date: Option<NaiveDate>| date.unwrap_or_else(|| p.today(Utc::now()));
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
            };
            let report = check::check(&project, opts)?;
            for line in &report.lines {
                writeln!(out, "{line}")?;
            }
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            writeln!(out, "ok: no problems found")?;
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
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "dailyissue", &mut out);
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
        }
    }
    Ok(())
}

//! The command layer: sets logging up, turns parsed arguments into
//! options, reads the clock once, calls one function per command, prints
//! its report (text, or one JSON document with `--json`), and maps the
//! outcome to an exit code.
//!
//! Errors are printed here and only here: on stderr as they are (a report,
//! not a log line: no timestamp, shown even with `-q`), and with `--json`
//! also as one JSON document on stdout. The JSON shapes are documented in
//! docs/json.md.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};

use crate::archive::ArchiveOptions;
use crate::cli::{
    BouncesAction, BouncesArgs, Cli, Command, LedgerAction, PreviewArgs, PreviewFormat, SendArgs,
    SubscribersAction, SuppressionsAction,
};
use crate::cmd::check::{self, CheckOptions};
use crate::cmd::plan::{self, PlanOptions};
use crate::cmd::preview::{self, Format, PreviewOptions};
use crate::cmd::schedule::{self, ScheduleOptions};
use crate::cmd::send::{self, SendOptions};
use crate::cmd::{
    Report, archive, bounces, history, init, ledger, status, subscribers, suppressions,
};
use crate::log::{self, Verbosity};
use crate::problem::Failure;
use crate::project::Project;
use crate::serve::{self, ServeOptions};

pub fn run(cli: Cli) -> ExitCode {
    log::init(Verbosity {
        quiet: cli.quiet,
        verbose: cli.verbose,
    });
    let json = cli.json();
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(failure) => fail(&failure, json),
    };
    ExitCode::from(code)
}

/// Arguments clap refused: its message on stderr as usual, and with
/// `--json` on the command line also one JSON document on stdout, so a
/// script never has to parse prose. Help and `--version` print as usual.
pub fn bad_arguments(e: clap::Error) -> ExitCode {
    if e.use_stderr() && std::env::args_os().any(|a| a == "--json") {
        let _ = e.print();
        let doc = Failed {
            ok: false,
            exit_code: crate::problem::EXIT_INPUT,
            kind: "usage",
            error: first_line(&e.render().to_string()),
            problems: Vec::new(),
            warnings: Vec::new(),
        };
        print_json(&doc);
        return ExitCode::from(crate::problem::EXIT_INPUT);
    }
    e.exit()
}

/// clap's message without its `error: ` label and usage lines.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// What every command may need from outside: where it was started, and
/// the clock.
struct Env {
    start: PathBuf,
    now: DateTime<Utc>,
}

impl Env {
    fn project(&self) -> Result<Project, Failure> {
        let project = Project::discover(&self.start)?;
        tracing::debug!("project: {}", project.root.display());
        Ok(project)
    }

    /// `--date`, or today in the newsletter's time zone.
    fn day(&self, project: &Project, date: Option<NaiveDate>) -> NaiveDate {
        date.unwrap_or_else(|| project.today(self.now))
    }
}

/// The clock, read once per command. `DAILYISSUE_NOW` (RFC 3339) stands in
/// for it in tests and rehearsals ("what would the 06:00 run do?").
fn now() -> Result<DateTime<Utc>, Failure> {
    match std::env::var("DAILYISSUE_NOW") {
        Ok(text) if !text.is_empty() => DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                Failure::Usage(crate::problem::Usage::Clock {
                    value: text.clone(),
                    reason: e.to_string(),
                })
            }),
        _ => Ok(Utc::now()),
    }
}

/// Runs one command and prints its report; the number is the exit code of
/// a run that finished (0, or 75 when recipients are left for a later run).
fn dispatch(cli: Cli) -> Result<u8, Failure> {
    let env = Env {
        start: cli.directory.clone().unwrap_or_else(|| ".".into()),
        now: now()?,
    };
    match cli.command {
        Command::Init { dir } => print(&init::init(&env.start.join(dir))?, false),
        Command::Check { date, json } => {
            let project = env.project()?;
            let opts = CheckOptions {
                date: env.day(&project, date),
                now: env.now,
            };
            print(&check::check(&project, opts)?, json)
        }
        Command::Plan { date, days, json } => {
            let project = env.project()?;
            let start = match (date, project.settings.delivery) {
                // Local mornings: from the date where the day began last.
                (None, crate::project::settings::Delivery::Local) => {
                    plan::first_local_day(&project, env.now)
                }
                _ => env.day(&project, date),
            };
            let opts = PlanOptions { start, days };
            print(&plan::plan(&project, opts)?, json)
        }
        Command::Preview(args) => run_preview(&env, args),
        Command::Send(args) => run_send(&env, args),
        Command::Status { date, days, json } => {
            let project = env.project()?;
            let opts = status::StatusOptions {
                date: env.day(&project, date),
                now: env.now,
                days,
            };
            print(&status::status(&project, opts)?, json)
        }
        Command::History { last, json } => {
            print(&history::history(&env.project()?, last, env.now)?, json)
        }
        Command::Schedule {
            cron,
            systemd: _,
            env_file,
        } => run_schedule(&env, cron, &env_file),
        Command::Unsubscribe { target } => {
            print(&suppressions::unsubscribe(&env.project()?, &target)?, false)
        }
        Command::Suppressions { action } => run_suppressions(&env.project()?, action),
        Command::Subscribers { action } => run_subscribers(&env, action),
        Command::Bounces(args) => run_bounces(&env.project()?, args),
        Command::Ledger {
            action: LedgerAction::Backup { file },
        } => print(
            &ledger::backup(&env.project()?, &env.start.join(file))?,
            false,
        ),
        Command::Serve { listen } => {
            serve::serve(&env.project()?, &ServeOptions { listen, root: None })?;
            Ok(0)
        }
        Command::Archive {
            out,
            all,
            serve: listen,
            json,
        } => run_archive(&env, ArchiveOptions { out, all }, listen, json),
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut crate::cli::command(), "dailyissue", &mut out);
            Ok(0)
        }
        Command::Man { command, out } => man(&env, &command, out),
    }
}

/// `schedule`: crontab lines or systemd units for this project, running
/// the binary that prints them.
fn run_schedule(env: &Env, cron: bool, env_file: &std::path::Path) -> Result<u8, Failure> {
    let project = env.project()?;
    let binary = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| anyhow::Error::from(e).context("cannot find the running dailyissue"))?;
    let opts = ScheduleOptions {
        kind: if cron {
            schedule::Kind::Cron
        } else {
            schedule::Kind::Systemd
        },
        binary,
        env_file: std::path::absolute(env.start.join(env_file))?,
        user: std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|u| {
                !u.is_empty()
                    && u.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            }),
    };
    print(&schedule::schedule(&project, &opts)?, false)
}

/// `archive`, then `serve` on what it built with `--serve`.
fn run_archive(
    env: &Env,
    opts: ArchiveOptions,
    listen: Option<std::net::SocketAddr>,
    json: bool,
) -> Result<u8, Failure> {
    let project = env.project()?;
    let report = archive::archive(&project, &opts)?;
    let code = print(&report, json)?;
    if let Some(listen) = listen {
        let root = Some(report.out);
        serve::serve(&project, &ServeOptions { listen, root })?;
    }
    Ok(code)
}

/// `man`: the main page, one command's, or every page into a folder.
fn man(env: &Env, command: &[String], out: Option<PathBuf>) -> Result<u8, Failure> {
    let pages = crate::cli::man_pages()?;
    if let Some(dir) = out {
        let dir = env.start.join(dir);
        std::fs::create_dir_all(&dir).map_err(|e| {
            anyhow::Error::from(e).context(format!("cannot create {}", dir.display()))
        })?;
        for (name, page) in &pages {
            crate::atomic::write(&dir.join(name), page)?;
        }
        println!(
            "wrote {} to {}",
            crate::cmd::count(pages.len() as u64, "man page", "man pages"),
            dir.display()
        );
        return Ok(0);
    }
    let mut name = String::from("dailyissue");
    for word in command {
        name.push('-');
        name.push_str(word);
    }
    name.push_str(".1");
    let Some((_, page)) = pages.iter().find(|(n, _)| *n == name) else {
        return Err(Failure::Usage(crate::problem::Usage::NoManPage(
            command.join(" "),
        )));
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(page)?;
    stdout.flush()?;
    Ok(0)
}

fn run_preview(env: &Env, args: PreviewArgs) -> Result<u8, Failure> {
    let project = env.project()?;
    let opts = PreviewOptions {
        date: args.date,
        today: project.today(env.now),
        now: env.now,
        reader: args.reader,
        format: args.format.map(|f| match f {
            PreviewFormat::Html => Format::Html,
            PreviewFormat::Text => Format::Text,
            PreviewFormat::Eml => Format::Eml,
        }),
        out: args.out,
        open: args.open,
    };
    if let Some(listen) = args.serve {
        preview::live::serve(project, &opts, listen)?;
        return Ok(0);
    }
    let preview = preview::preview(&project, &opts)?;
    match &preview.stdout {
        // The message itself is the output; there is nothing to report.
        Some(bytes) => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()?;
            Ok(0)
        }
        None => print(&preview, false),
    }
}

fn run_send(env: &Env, args: SendArgs) -> Result<u8, Failure> {
    let project = env.project()?;
    let opts = SendOptions {
        date: env.day(&project, args.date),
        implicit_date: args.date.is_none(),
        now: env.now,
        dry_run: args.dry_run,
        outbox: args.outbox,
        to: args.to,
        limit: args.limit,
        force: args.force,
        retry_failed: args.retry_failed,
        retry_unknown: args.retry_unknown,
        progress: !args.json,
    };
    print(&send::send(&project, &opts)?, args.json)
}

fn run_suppressions(project: &Project, action: SuppressionsAction) -> Result<u8, Failure> {
    match action {
        SuppressionsAction::List { json } => print(&suppressions::list(project)?, json),
        SuppressionsAction::Add { addresses, reason } => {
            print(&suppressions::add(project, &addresses, &reason)?, false)
        }
        SuppressionsAction::Remove { addresses } => {
            print(&suppressions::remove(project, &addresses)?, false)
        }
    }
}

fn run_subscribers(env: &Env, action: SubscribersAction) -> Result<u8, Failure> {
    let project = env.project()?;
    match action {
        SubscribersAction::List { pending, json } => {
            print(&subscribers::list(&project, pending)?, json)
        }
        SubscribersAction::Add { address, name } => print(
            &subscribers::add(&project, &address, name.as_deref(), env.now)?,
            false,
        ),
        SubscribersAction::Remove { address } => {
            print(&subscribers::remove(&project, &address, env.now)?, false)
        }
        SubscribersAction::Export { file } => print(
            &subscribers::export(&project, file.map(|f| (env.start.join(&f), f)))?,
            false,
        ),
        SubscribersAction::Import { file, json } => print(
            &subscribers::import(&project, &env.start.join(&file), &file, env.now)?,
            json,
        ),
    }
}

fn run_bounces(project: &Project, args: BouncesArgs) -> Result<u8, Failure> {
    use crate::cmd::bounces::Input;
    if let Some(BouncesAction::List { address, json }) = args.action {
        return print(&bounces::list(project, address.as_deref())?, json);
    }
    let input = match (args.maildir, args.mbox) {
        (Some(dir), _) => Input::Maildir(dir),
        (_, Some(file)) => Input::Mbox(file),
        _ if std::io::stdin().is_terminal() => {
            return Err(Failure::Usage(crate::problem::Usage::BouncesNeedInput));
        }
        _ => Input::Stdin,
    };
    print(&bounces::bounces(project, &input)?, args.json)
}

/// The JSON document of a command that finished: `ok`, `exit_code` and
/// `warnings`, then the report's own fields.
#[derive(serde::Serialize)]
struct Done<'a, R> {
    ok: bool,
    exit_code: u8,
    warnings: Vec<String>,
    #[serde(flatten)]
    report: &'a R,
}

/// The JSON document of a command that failed.
#[derive(serde::Serialize)]
struct Failed {
    ok: bool,
    exit_code: u8,
    /// `input` (files; see `problems`), `usage` (arguments, environment),
    /// `temporary` (retry later) or `other`.
    kind: &'static str,
    /// One line for people; `problems` has the details of bad input.
    error: String,
    problems: Vec<ProblemJson>,
    warnings: Vec<String>,
}

#[derive(serde::Serialize)]
struct ProblemJson {
    path: String,
    line: Option<usize>,
    message: String,
}

/// Prints a finished command's report; returns its exit code.
fn print(report: &impl Report, json: bool) -> Result<u8, Failure> {
    let code = report.exit_code();
    let mut out = std::io::stdout().lock();
    if json {
        let doc = Done {
            ok: code == 0,
            exit_code: code,
            warnings: log::warnings(),
            report,
        };
        let text = serde_json::to_string(&doc).map_err(anyhow::Error::from)?;
        writeln!(out, "{text}")?;
    } else {
        out.write_all(report.text().as_bytes())?;
    }
    out.flush()?;
    Ok(code)
}

/// Prints why a command failed; returns the exit code.
fn fail(failure: &Failure, json: bool) -> u8 {
    let code = failure.exit_code();
    match failure {
        // Bad input is a list of `path:line: message` lines editors jump
        // to, then the count; everything else is one line, labelled as
        // clap labels its own.
        Failure::Input(_) => eprintln!("{failure}"),
        Failure::Other(e) => eprintln!("error: {e:#}"),
        other => eprintln!("error: {other}"),
    }
    if json {
        let (kind, error, problems) = match failure {
            Failure::Input(problems) => (
                "input",
                format!(
                    "{} problem{} found",
                    problems.len(),
                    crate::cmd::plural(problems.len() as u64)
                ),
                problems
                    .iter()
                    .map(|p| ProblemJson {
                        path: p.path.display().to_string(),
                        line: p.line,
                        message: p.message.clone(),
                    })
                    .collect(),
            ),
            Failure::Usage(m) => ("usage", m.to_string(), Vec::new()),
            Failure::Temporary(m) => ("temporary", m.to_string(), Vec::new()),
            Failure::Other(e) => ("other", format!("{e:#}"), Vec::new()),
        };
        print_json(&Failed {
            ok: false,
            exit_code: code,
            kind,
            error,
            problems,
            warnings: log::warnings(),
        });
    }
    code
}

/// One JSON document on stdout; nothing more can be done if that fails.
fn print_json(doc: &impl serde::Serialize) {
    if let Ok(text) = serde_json::to_string(doc) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

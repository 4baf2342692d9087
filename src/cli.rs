//! Command-line arguments (clap). Nothing outside `cli` and `run` sees these
//! types: `run` turns them into each command's options.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};

/// Build and send a daily newsletter from Markdown content, one issue a day.
#[derive(Debug, Parser)]
#[command(name = "dailyissue", version, about, long_about = None, max_term_width = 100)]
#[command(after_help = AFTER_HELP)]
pub struct Cli {
    /// Run as if started in DIR (the project is found in DIR or its nearest parent)
    #[arg(short = 'C', long = "directory", value_name = "DIR", global = true)]
    pub directory: Option<PathBuf>,

    /// Print only errors on stderr: no notes, warnings or progress
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more on stderr: -v connections, retries and timings; -vv every message
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Whether the command asked for one JSON document on stdout (then a
    /// failure is one too).
    pub fn json(&self) -> bool {
        match &self.command {
            Command::Check { json, .. }
            | Command::Plan { json, .. }
            | Command::Send(SendArgs { json, .. })
            | Command::Status { json, .. }
            | Command::History { json, .. }
            | Command::Archive { json, .. }
            | Command::Suppressions {
                action: SuppressionsAction::List { json },
            }
            | Command::Subscribers {
                action:
                    SubscribersAction::List { json, .. } | SubscribersAction::Import { json, .. },
            } => *json,
            Command::Bounces(b) => b.json(),
            _ => false,
        }
    }
}

const AFTER_HELP: &str = "\
Reports go to stdout (one JSON document with --json, failures too); notes, warnings and
progress go to stderr, each line with an RFC 3339 timestamp when stderr is not a terminal
(cron, a log file; the systemd journal stamps lines itself). RUST_LOG (e.g.
`dailyissue=debug`) overrides -q and -v.

Exit codes: 0 done (or nothing to do), 2 bad input (every problem listed), 75 temporary
(retry later: deferred recipients, unreachable server, another run holds the lock),
1 anything else.";

/// What every command's `--help` ends with.
const COMMAND_AFTER_HELP: &str = "\
Exit codes: 0 done (or nothing to do), 2 bad input (every problem listed), 75 temporary (retry
later), 1 anything else; `dailyissue man` has the details.";

/// The command line as parsed and documented: the derived one, with the
/// exit codes at the end of every command's `--help` (and man page).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().mut_subcommands(|sub| sub.after_help(COMMAND_AFTER_HELP))
}

/// Parses the process's arguments with [`command`].
pub fn parse() -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let mut cmd = command();
    let matches = cmd.try_get_matches_from_mut(std::env::args_os())?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a newsletter project with sample content; never overwrites a file
    Init {
        /// Folder to create the project in
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Validate settings, content, templates, subscribers and the issue of a day
    Check {
        /// Check the issue of this day (YYYY-MM-DD); default: today in the newsletter's time zone
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = date)]
        date: Option<NaiveDate>,
        /// Print the report, or every problem found, as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Write issue records for the coming days; existing records are kept as they are
    Plan {
        /// First day to plan (YYYY-MM-DD); default: today in the newsletter's time zone
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = date)]
        date: Option<NaiveDate>,
        /// Number of consecutive days to plan
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3660))]
        days: u32,
        /// Print the plan as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Render the issue of a day as one reader gets it; sends nothing
    Preview(PreviewArgs),
    /// Deliver the issue of a day to every active subscriber who has not got it yet
    Send(SendArgs),
    /// Show what the ledger holds for the issue of a day, and the list's growth up to today
    Status {
        /// The issue's day (YYYY-MM-DD); default: today in the newsletter's time zone
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = date)]
        date: Option<NaiveDate>,
        /// Days of growth to show, ending today
        #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=366))]
        days: u32,
        /// Print as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// One row per issue that went out: number, date, subject, list size and outcomes
    History {
        /// Only the N most recent issues
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        last: Option<u32>,
        /// Print as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Suppress an address, given as the address or as an unsubscribe token
    Unsubscribe {
        /// An email address, or an unsubscribe token as pasted: the token, the whole link
        /// (https://…/u/TOKEN) or the mailto subject (unsubscribe TOKEN)
        target: String,
    },
    /// List, add or remove suppressed addresses (never mailed again)
    Suppressions {
        #[command(subcommand)]
        action: SuppressionsAction,
    },
    /// The list: CSV rows and confirmed signups, each address once; add, remove, export, import
    Subscribers {
        #[command(subcommand)]
        action: SubscribersAction,
    },
    /// Read bounce and complaint mail (one message on stdin, a maildir, an mbox); `list` what was recorded
    Bounces(BouncesArgs),
    /// Look after the delivery ledger (`.dailyissue/state.db`)
    Ledger {
        #[command(subcommand)]
        action: LedgerAction,
    },
    /// Answer unsubscribe links (GET page, RFC 8058 one-click POST) and the providers' bounce and complaint webhooks (/hooks/ses, postmark, mailgun, sendgrid), and serve the web archive
    Serve {
        /// Address and port to listen on
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: std::net::SocketAddr,
    },
    /// Build the static web archive: issue pages, section pages, Atom feed, sitemap
    Archive {
        /// Output folder (default: `archive_dir` from the settings, `public/`)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Publish every record in issues/, not only issues that were delivered
        #[arg(long)]
        all: bool,
        /// Then serve the folder (and unsubscribe links) on this address
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
        serve: Option<std::net::SocketAddr>,
        /// Print the report as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Print crontab lines or systemd units that run `send` for this project, in its time zone
    #[command(group(clap::ArgGroup::new("kind").required(true).args(["cron", "systemd"])))]
    Schedule {
        /// Crontab lines (CRON_TZ, and an hourly fallback for a cron without it)
        #[arg(long)]
        cron: bool,
        /// A systemd service and timer (OnCalendar= in the newsletter's zone)
        #[arg(long)]
        systemd: bool,
        /// The environment file with the secrets, read by every run
        #[arg(long, value_name = "FILE", default_value = "/etc/dailyissue.env")]
        env_file: PathBuf,
    },
    /// Print shell completions
    Completions {
        /// Shell to complete for
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of dailyissue or of one command, or write them all
    Man {
        /// The command whose page to print, e.g. `send` or `suppressions list` (default: the
        /// main page)
        command: Vec<String>,
        /// Write every page (dailyissue.1, dailyissue-send.1, …) into this folder instead
        #[arg(long, value_name = "DIR", conflicts_with = "command")]
        out: Option<PathBuf>,
    },
}

// The arguments of `preview` (documented on the variant, which clap shows).
#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// The issue's day (YYYY-MM-DD); default: the next issue, today's (in the newsletter's
    /// time zone) until it has gone out, then tomorrow's
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = date)]
    pub date: Option<NaiveDate>,
    /// Render for this address (default: the first active subscriber)
    #[arg(long = "as", value_name = "ADDR")]
    pub reader: Option<String>,
    /// What to print or write [default: html, or what the --out file's extension says]
    #[arg(long, value_enum)]
    pub format: Option<PreviewFormat>,
    /// Write to this file (with an extension: .html, .txt, .eml), or to this folder as
    /// DATE.html, .txt and .eml (a folder that exists, a path ending in /, or one without an
    /// extension)
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Open the HTML in the default browser (or $BROWSER); an error where
    /// none can start, as over SSH
    #[arg(long)]
    pub open: bool,
    /// Serve a live preview on ADDR (default 127.0.0.1:8081): the email at
    /// desktop and phone width, its text, headers and raw message, for any
    /// date and reader, reloaded when a file changes; writes nothing
    #[arg(
        long,
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = "127.0.0.1:8081",
        conflicts_with_all = ["out", "format"]
    )]
    pub serve: Option<std::net::SocketAddr>,
}

// The arguments of `send` (documented on the variant, which clap shows).
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The issue's day (YYYY-MM-DD); default: today in the newsletter's time zone
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = date)]
    pub date: Option<NaiveDate>,
    /// Render everything but deliver nothing and write no delivery state
    #[arg(long)]
    pub dry_run: bool,
    /// Write messages as .eml files into DIR instead of sending over SMTP
    #[arg(long, value_name = "DIR")]
    pub outbox: Option<PathBuf>,
    /// Send a test copy to ADDR (repeatable); not counted as a delivery
    #[arg(long, value_name = "ADDR")]
    pub to: Vec<String>,
    /// Send at most N messages in this run
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Print the summary as one JSON object
    #[arg(long)]
    pub json: bool,
    /// Send even though the issue record changed after delivery began, or the last issue's complaint rate was over 0.3%
    #[arg(long)]
    pub force: bool,
    /// Also retry addresses that failed permanently (5xx) in an earlier run
    #[arg(long)]
    pub retry_failed: bool,
    /// Also resend to readers whose two attempts got no answer (they may get a third copy)
    #[arg(long)]
    pub retry_unknown: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PreviewFormat {
    /// The HTML part
    Html,
    /// The plain-text part
    Text,
    /// The complete RFC 5322 message
    Eml,
}

#[derive(Debug, Subcommand)]
pub enum SuppressionsAction {
    /// Print one suppressed address per line: address, reason, date, how it came (tab-separated)
    List {
        /// Print the list as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Suppress addresses
    Add {
        /// Addresses to suppress
        #[arg(required = true)]
        addresses: Vec<String>,
        /// Why (unsubscribed, complained, bounced, manual, or any word)
        #[arg(long, default_value = "manual")]
        reason: String,
    },
    /// Remove addresses from the suppression list (they will be mailed again)
    Remove {
        /// Addresses to remove
        #[arg(required = true)]
        addresses: Vec<String>,
    },
}

// The arguments of `bounces` (documented on the variant, which clap shows).
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BouncesArgs {
    #[command(subcommand)]
    pub action: Option<BouncesAction>,
    /// Process the new messages of this maildir: handled ones move to cur/ flagged seen, other mail is left alone
    #[arg(long, value_name = "DIR", conflicts_with = "mbox")]
    pub maildir: Option<PathBuf>,
    /// Process every message of this mbox file (read only)
    #[arg(long, value_name = "FILE")]
    pub mbox: Option<PathBuf>,
    /// Print what was done as one JSON object
    #[arg(long)]
    pub json: bool,
}

impl BouncesArgs {
    fn json(&self) -> bool {
        match &self.action {
            Some(BouncesAction::List { json, .. }) => *json,
            None => self.json,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum BouncesAction {
    /// Every bounce and complaint recorded, newest first, with its evidence
    List {
        /// Only this address's events
        address: Option<String>,
        /// Print the events (with the raw evidence) as one JSON object
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SubscribersAction {
    /// Print the list: each CSV row, then each signup the CSV does not hold
    List {
        /// Only the signups waiting for their confirmation
        #[arg(long)]
        pending: bool,
        /// Print the list as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Add a reader as a confirmed signup, without a confirmation email
    Add {
        /// The reader's address
        address: String,
        /// The reader's name
        #[arg(long, value_name = "N")]
        name: Option<String>,
    },
    /// Remove a signup (a CSV row stays until you delete it)
    Remove {
        /// The reader's address
        address: String,
    },
    /// Write the list as CSV (pending signups left out, suppressions marked)
    Export {
        /// Where to write it (replaced if it exists); default: stdout
        file: Option<PathBuf>,
    },
    /// Merge a CSV from another tool (Mailchimp, Substack, ...) into the signups
    Import {
        /// The CSV file; its address column is found by name
        file: PathBuf,
        /// Print the report as one JSON object
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LedgerAction {
    /// Copy the ledger to FILE: a consistent snapshot, safe while `send` or `serve` run
    Backup {
        /// Where to write the copy (replaced if it exists)
        file: PathBuf,
    },
}

/// The man pages: `dailyissue(1)`, with EXIT STATUS, ENVIRONMENT and FILES,
/// and one page per command (`dailyissue-send(1)`, and for commands of
/// commands `dailyissue-suppressions-list(1)`), as the main page's
/// COMMANDS section names them. Each as (file name, roff).
pub fn man_pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    fn walk(cmd: &clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let man = clap_mangen::Man::new(sub.clone());
            let mut page = Vec::new();
            man.render(&mut page)?;
            out.push((man.get_filename(), page));
            walk(sub, out)?;
        }
        Ok(())
    }
    let mut cmd = command().disable_help_subcommand(true);
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut main = Vec::new();
    man.render(&mut main)?;
    let mut pages = vec![(man.get_filename(), main_sections(main))];
    walk(&cmd, &mut pages)?;
    Ok(pages)
}

/// The main page with EXIT STATUS, ENVIRONMENT and FILES, before its
/// VERSION section (or at its end).
fn main_sections(page: Vec<u8>) -> Vec<u8> {
    let page = String::from_utf8_lossy(&page).into_owned();
    match page.find("\n.SH VERSION") {
        Some(at) => format!(
            "{}\n{}{}",
            &page[..at],
            MAN_SECTIONS.trim_end(),
            &page[at..]
        ),
        None => format!("{page}{MAN_SECTIONS}"),
    }
    .into_bytes()
}

const MAN_SECTIONS: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Done, or nothing to do.
.TP
\fB2\fR
Bad input: settings, content, templates, the subscriber list, arguments or the environment; every problem in a file is listed as path:line: message.
.TP
\fB75\fR
Temporary (EX_TEMPFAIL): worth running again later, as cron may simply do: recipients deferred or left by \fB\-\-limit\fR or daily_cap, an SMTP server that cannot be reached, another run holding the lock, a listening port in use.
.TP
\fB1\fR
Anything else.
.PP
With \fB\-\-json\fR the codes are the same, and the document's exit_code repeats the code.
.SH ENVIRONMENT
.TP
\fBDAILYISSUE_UNSUBSCRIBE_SECRET\fR
The secret that makes and checks unsubscribe links (the variable named by secret_env in [unsubscribe]). Sending over SMTP needs it; without it, previews, .eml files, dry runs, \fBunsubscribe\fR TOKEN and \fBserve\fR on a loopback address of a project without [smtp] use a development secret, with a note.
.TP
The variable named by previous_secret_env in [unsubscribe]
The secret before the current one: links it made keep working after a rotation.
.TP
\fBDAILYISSUE_SMTP_PASSWORD\fR
The SMTP password, when password_env in [smtp] names this variable (any name may be chosen).
.TP
\fBDAILYISSUE_NOW\fR
An RFC 3339 time that stands in for the clock, for rehearsals (what would the 06:00 run do?) and tests.
.TP
\fBRUST_LOG\fR
A tracing filter (e.g. dailyissue=debug) that replaces \fB\-q\fR and \fB\-v\fR.
.TP
\fBBROWSER\fR
The browser \fBpreview \-\-open\fR starts.
.SH FILES
.TP
\fBdailyissue.toml\fR
The settings; the project is the nearest folder upwards that holds it.
.TP
\fBcontent/\fISECTION\fB/*.md\fR
The pool: one item per file, Markdown with TOML front matter.
.TP
\fBtemplates/\fR
Templates over the built-in ones (email, web archive).
.TP
\fBissues/\fIYYYY\-MM\-DD\fB.toml\fR
One record per planned or sent issue.
.TP
\fBsubscribers.csv\fR
The list (the subscribers setting).
.TP
\fB.dailyissue/state.db\fR
The delivery ledger (SQLite): deliveries, suppressions, frozen records. Back it up with \fBledger backup\fR.
.TP
\fB.dailyissue/state.lock\fR
One run at a time.
.TP
\fBoutbox/\fIDATE\fB/*.eml\fR
Messages of the file transport.
.TP
\fBpublic/\fR
The web archive \fBarchive\fR builds and \fBserve\fR serves.
"#;

/// A `--date`: YYYY-MM-DD with a four-digit year (1000–9999), so that every
/// record it leads to is a file later commands can read back.
fn date(text: &str) -> Result<NaiveDate, String> {
    let date: NaiveDate = text
        .parse()
        .map_err(|e| format!("{e}; write the date as YYYY-MM-DD, e.g. 2027-03-01"))?;
    if crate::project::settings::date_in_range(date) {
        Ok(date)
    } else {
        Err("dates run from 1000-01-01 to 9999-12-31".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_a_man_page_and_the_main_page_its_sections() {
        let pages = man_pages().expect("render");
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for name in [
            "dailyissue.1",
            "dailyissue-init.1",
            "dailyissue-send.1",
            "dailyissue-suppressions.1",
            "dailyissue-suppressions-list.1",
            "dailyissue-ledger-backup.1",
            "dailyissue-man.1",
        ] {
            assert!(names.contains(&name), "{name}: {names:?}");
        }
        let main = String::from_utf8_lossy(&pages[0].1);
        // Every page the main page names exists.
        let mut named = 0;
        for line in main.lines() {
            if let Some(start) = line.find("dailyissue\\-") {
                let rest = &line[start..];
                let end = rest.find("(1)").expect("a (1) after the name");
                let file = format!("{}.1", rest[..end].replace("\\-", "-"));
                assert!(names.contains(&file.as_str()), "{file}");
                named += 1;
            }
        }
        assert!(
            named >= 10,
            "the COMMANDS section names each command: {main}"
        );
        for section in [".SH \"EXIT STATUS\"", ".SH ENVIRONMENT", ".SH FILES"] {
            assert!(main.contains(section), "{section}");
        }
        assert!(main.contains("DAILYISSUE_UNSUBSCRIBE_SECRET"));
        assert!(main.contains("DAILYISSUE_SMTP_PASSWORD"));
    }

    #[test]
    fn dates_have_four_digit_years() {
        assert!(date("2027-03-01").is_ok());
        assert!(date("9999-12-31").is_ok());
        for bad in [
            "+10000-01-01",
            "0999-12-31",
            "-0001-01-01",
            "2027-02-30",
            "tomorrow",
        ] {
            assert!(date(bad).is_err(), "{bad}");
        }
    }
}

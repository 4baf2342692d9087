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
        /// The day (YYYY-MM-DD); default: today in the newsletter's time zone
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = date)]
        date: Option<NaiveDate>,
        /// Days of growth to show, ending today
        #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=366))]
        days: u32,
        /// Print as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Suppress an address, given as the address or as an unsubscribe token
    Unsubscribe {
        /// An email address, or the token from an unsubscribe link or mailto subject
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
    /// Print shell completions
    Completions {
        /// Shell to complete for
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    Man,
}

// The arguments of `preview` (documented on the variant, which clap shows).
#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// The day (YYYY-MM-DD); default: today in the newsletter's time zone
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = date)]
    pub date: Option<NaiveDate>,
    /// Render for this address (default: the first active subscriber)
    #[arg(long = "as", value_name = "ADDR")]
    pub reader: Option<String>,
    /// What to print or write
    #[arg(long, value_enum, default_value_t = PreviewFormat::Html)]
    pub format: PreviewFormat,
    /// Write to this file, or to this folder as .html, .txt and .eml
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Open the HTML in the default browser (or $BROWSER); an error where
    /// none can start, as over SSH
    #[arg(long)]
    pub open: bool,
}

// The arguments of `send` (documented on the variant, which clap shows).
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The day (YYYY-MM-DD); default: today in the newsletter's time zone
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
    /// Print one suppressed address per line, with reason and date
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

//! Command-line arguments (clap). Nothing outside `cli` and `run` sees these
//! types: `run` turns them into each command's options.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};

/// Build and send a daily newsletter: one term, one tool, one tip.
#[derive(Debug, Parser)]
#[command(name = "dailyissue", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// Run as if started in DIR (the project is found in DIR or its nearest parent)
    #[arg(short = 'C', long = "directory", value_name = "DIR", global = true)]
    pub directory: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
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
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<NaiveDate>,
    },
    /// Write issue records for the coming days; existing records are kept as they are
    Plan {
        /// First day to plan (YYYY-MM-DD); default: today in the newsletter's time zone
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<NaiveDate>,
        /// Number of consecutive days to plan
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3660))]
        days: u32,
    },
    /// Print shell completions
    Completions {
        /// Shell to complete for
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    Man,
}

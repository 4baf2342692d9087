//! The `dailyissue` binary: parse arguments, run one command, exit with its code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    dailyissue::run::run(dailyissue::cli::Cli::parse())
}

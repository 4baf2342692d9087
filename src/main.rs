//! The `dailyissue` binary: parse arguments, run one command, exit with its code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match dailyissue::cli::Cli::try_parse() {
        Ok(cli) => dailyissue::run::run(cli),
        Err(e) => dailyissue::run::bad_arguments(e),
    }
}

//! The `dailyissue` binary: parse arguments, run one command, exit with its code.

use std::process::ExitCode;

fn main() -> ExitCode {
    match dailyissue::cli::parse() {
        Ok(cli) => dailyissue::run::run(cli),
        Err(e) => dailyissue::run::bad_arguments(e),
    }
}

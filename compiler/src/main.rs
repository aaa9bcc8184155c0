//! The `agentpolicy` command line: reads files, calls the library, prints, and sets the
//! exit code. All language logic lives in the library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::run(args)
}

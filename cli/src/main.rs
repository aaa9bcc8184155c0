//! The `agentpolicy` command line: reads files, calls the library, prints, and sets the
//! exit code. All language logic lives in the library.

mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let args = commands::Cli::parse();
    commands::run(args)
}

/// `agentpolicy check ... | head` closes stdout early; Rust then panics in `print!`.
/// That is not a failure of the command, so leave quietly (exit 141, as a shell reports
/// SIGPIPE) instead of printing a panic; every other panic keeps the default report.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

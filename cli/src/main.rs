//! The `agentpolicy` command line: reads files, calls the library, prints, and sets the
//! exit code. All language logic lives in the library.

mod commands;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    // The proofs depend on which Z3 is linked (Debian's, or the `z3-solver` wheel's),
    // and that is decided at build time: `--version` says which.
    let version = format!(
        "{} (Z3 {})",
        env!("CARGO_PKG_VERSION"),
        agentpolicy_verify::z3_version()
    );
    // Once per process: clap takes the version as a `'static` text.
    let version: &'static str = Box::leak(version.into_boxed_str());
    let matches = commands::Cli::command().version(version).get_matches();
    let args = match commands::Cli::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
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

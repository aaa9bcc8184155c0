//! `agentpolicy completions SHELL` and `agentpolicy man [--output DIR]`: shell completion
//! scripts (clap_complete) and manual pages (clap_mangen), generated from the same clap
//! definition the binary parses with, so they never drift from `--help`.

use std::path::PathBuf;

use clap::CommandFactory;

use super::{Cli, EXIT_USAGE};

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for. Install, for example, with
    /// `agentpolicy completions bash > ~/.local/share/bash-completion/completions/agentpolicy`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write `agentpolicy.1` and one page per command (`agentpolicy-check.1`, ...) into
    /// this directory instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
}

pub fn run_completions(args: CompletionsArgs) -> u8 {
    let mut command = Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "agentpolicy",
        &mut std::io::stdout(),
    );
    0
}

pub fn run_man(args: ManArgs) -> u8 {
    let command = Cli::command();
    let written = match &args.output {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(command, dir))
            .map_err(|e| format!("cannot write the manual pages to `{}`: {e}", dir.display())),
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .map_err(|e| format!("cannot render the manual page: {e}"))
                .map(|()| {
                    print!("{}", String::from_utf8_lossy(&page));
                })
        }
    };
    match written {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("error: {message}");
            EXIT_USAGE
        }
    }
}

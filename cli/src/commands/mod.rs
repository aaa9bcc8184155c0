//! Subcommands of the `agentpolicy` binary. Each module owns one command: it reads what
//! it needs, calls the library, prints, and returns the exit code.
//!
//! Exit codes, for every command: 0 success, 1 the policy has errors (or a test failed,
//! or a check found a problem), 2 usage or IO error.

mod audit;
mod audit_compact;
mod build;
mod check;
mod completions;
mod decide;
mod diff;
mod explain;
mod fmt;
mod limits;
mod load;
mod matrix;
mod mcp;
mod output;
mod promote;
mod replay;
mod serve;
mod shadow_report;
mod table_input;
mod test_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code 1: the input has problems the user must fix.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code 2: the command could not run (bad usage, unreadable file).
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "agentpolicy",
    version,
    about = "Policy compiler and verifier for autonomous AI agents",
    long_about = "agentpolicy checks `.agentpolicy` files: what each agent may do, with which \
data, and when a human must decide. It proves safety properties before deploy and compiles \
the policy to a decision table the embedded runtime evaluates on every tool call.",
    after_help = "Exit codes: 0 success; 1 policy errors, failed tests or failed checks; 2 usage or IO error.\n\
Each PATH is one policy: a `.agentpolicy` file, or a directory whose `.agentpolicy` files together form one policy."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and analyse policies; report every problem with its source location.
    Check(check::CheckArgs),
    /// Compare two policies: what NEW allows or escalates that OLD did not, with witnesses.
    Diff(diff::DiffArgs),
    /// Run the policies' `test` blocks through the compiled decision table, with rule coverage.
    Test(test_cmd::TestArgs),
    /// Compile a policy to the decision table the runtime loads; prints its content hash.
    Build(build::BuildArgs),
    /// The access-control matrix of a verified policy (agents x tools, with proofs and a
    /// sign-off block) as Markdown, HTML, CSV or JSON.
    Matrix(matrix::MatrixArgs),
    /// Decide one request against a compiled table: the outcome, the deciding rule, and why.
    Decide(decide::DecideArgs),
    /// Run a recorded trace of tool calls through a real engine; print each decision and a summary.
    Replay(replay::ReplayArgs),
    /// Verify, query or compact an engine's audit log.
    Audit(audit::AuditArgs),
    /// Run the HTTP/JSON decision service over the engine (partial: see docs/serve.md).
    Serve(serve::ServeArgs),
    /// The MCP gateway: decide every tool call an MCP client makes to upstream MCP
    /// servers (`mcp init` writes a starting policy from a server's tools).
    Mcp(mcp::McpArgs),
    /// Evaluate each agent's promotion criteria on an audit log; changes nothing.
    PromoteCheck(promote::PromoteCheckArgs),
    /// Print the documentation page of a diagnostic code (e.g. `agentpolicy explain AP0011`).
    Explain(explain::ExplainArgs),
    /// Rewrite policy files in the canonical layout, keeping every comment; `--check`
    /// only reports files that are not formatted.
    Fmt(fmt::FmtArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output.
    Completions(completions::CompletionsArgs),
    /// Print the manual page (roff) to standard output, or write one page per command to a directory.
    Man(completions::ManArgs),
}

pub fn run(cli: Cli) -> ExitCode {
    let code = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Fmt(args) => fmt::run(args),
        Command::Test(args) => test_cmd::run(args),
        Command::Build(args) => build::run(args),
        Command::Decide(args) => decide::run(args),
        Command::Matrix(args) => matrix::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Audit(args) => audit::run(args),
        Command::PromoteCheck(args) => promote::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Mcp(args) => mcp::run(args),
        Command::Completions(args) => completions::run_completions(args),
        Command::Man(args) => completions::run_man(args),
    };
    ExitCode::from(code)
}

//! `agentpolicy decide TABLE REQUEST.json [--format human|json]`: one decision, with the
//! rule (id and source span) or built-in check that decided it, and why. REQUEST `-` is
//! standard input.
//!
//! TABLE is a table written by `agentpolicy build`, binary or JSON (told apart by the
//! binary form's magic bytes). The request format is in `docs/requests.md`. Exit 0 when a
//! decision was made, whatever it is; 2 when the table or request cannot be read.

use std::path::PathBuf;

use agentpolicy_runtime::wire::{decision_json, load_table, request as request_json};
use agentpolicy_runtime::{Decision, DecisionTable, KeyValueInterner, Mode, decide};

use super::EXIT_USAGE;
use super::limits::read_bounded;
use super::output::Format;

#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    /// A decision table from `agentpolicy build` (binary, or JSON from `--json`).
    pub table: PathBuf,
    /// The request, as JSON (see docs/requests.md); `-` reads it from standard input.
    pub request: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Members of the policy's `from deploy` sets: a JSON object `{"SET": ["a", ...]}`.
    #[arg(long, value_name = "FILE")]
    pub sets: Option<PathBuf>,
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
}

pub fn run(args: DecideArgs) -> u8 {
    match decide_files(&args) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("error: {message}");
            EXIT_USAGE
        }
    }
}

fn decide_files(args: &DecideArgs) -> Result<(), String> {
    let bytes = std::fs::read(&args.table)
        .map_err(|e| format!("cannot read `{}`: {e}", args.table.display()))?;
    let table = load_table(&bytes).map_err(|e| format!("`{}`: {e}", args.table.display()))?;
    let table = super::table_input::with_sets(table, args.sets.as_deref())?;
    let limits = args.limits.limits();
    let text = if args.request.as_os_str() == "-" {
        read_bounded(
            std::io::stdin().lock(),
            limits.request_bytes,
            "the request on standard input",
        )?
    } else {
        let file = std::fs::File::open(&args.request)
            .map_err(|e| format!("cannot read `{}`: {e}", args.request.display()))?;
        read_bounded(
            file,
            limits.request_bytes,
            &format!("the request `{}`", args.request.display()),
        )?
    };
    let json = request_json::parse_limited(&text, &limits)
        .map_err(|e| format!("`{}`: {e}", args.request.display()))?;
    let mut values = KeyValueInterner::default();
    let request = request_json::to_request_limited(&table, &json, &mut values, &limits)
        .map_err(|e| format!("`{}`: {e}", args.request.display()))?;
    let decision = decide(&table, &request);
    let shadow = table
        .agent_id(&json.agent)
        .and_then(|a| table.data().agents.get(a.index()))
        .is_some_and(|a| a.mode == Mode::Shadow);
    match args.format {
        Format::Human => print_human(&table, &decision, shadow),
        Format::Json => {
            let doc = decision_json(&table, &decision, &json.tool, shadow);
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
    }
    Ok(())
}

fn print_human(table: &DecisionTable, decision: &Decision, shadow: bool) {
    println!("{}", decision.explain(table.data()));
    if shadow {
        println!(
            "note: the agent is in shadow mode: the engine logs this outcome and reports allow to the caller"
        );
    }
    let data = table.data();
    let version = data.policy.version.as_deref().unwrap_or("-");
    println!(
        "policy `{}` version {version}, {}",
        data.policy.name,
        table.source_hash()
    );
}

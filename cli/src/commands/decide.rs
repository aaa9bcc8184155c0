//! `agentpolicy decide TABLE REQUEST.json [--format human|json]`: one decision, with the
//! rule (id and source span) or built-in check that decided it, and why.
//!
//! TABLE is a table written by `agentpolicy build`, binary or JSON (told apart by the
//! binary form's magic bytes). The request format is in `docs/requests.md`. Exit 0 when a
//! decision was made, whatever it is; 2 when the table or request cannot be read.

use std::path::PathBuf;

use agentpolicy_runtime::{Decision, DecisionTable, KeyValueInterner, MAGIC, Mode, Slot, decide};

use super::EXIT_USAGE;
use super::output::Format;
use super::request_json;

#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    /// A decision table from `agentpolicy build` (binary, or JSON from `--json`).
    pub table: PathBuf,
    /// The request, as JSON (see docs/requests.md).
    pub request: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Members of the policy's `from deploy` sets: a JSON object `{"SET": ["a", ...]}`.
    #[arg(long, value_name = "FILE")]
    pub sets: Option<PathBuf>,
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
    let text = std::fs::read_to_string(&args.request)
        .map_err(|e| format!("cannot read `{}`: {e}", args.request.display()))?;
    let json =
        request_json::parse(&text).map_err(|e| format!("`{}`: {e}", args.request.display()))?;
    let mut values = KeyValueInterner::default();
    let request = request_json::to_request(&table, &json, &mut values)
        .map_err(|e| format!("`{}`: {e}", args.request.display()))?;
    let decision = decide(&table, &request);
    let shadow = table
        .agent_id(&json.agent)
        .and_then(|a| table.data().agents.get(a.index()))
        .is_some_and(|a| a.mode == Mode::Shadow);
    match args.format {
        Format::Human => print_human(&table, &decision, shadow),
        Format::Json => {
            let doc = to_json(&table, &decision, &json.tool, shadow);
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
    }
    Ok(())
}

pub(super) fn load_table(bytes: &[u8]) -> Result<DecisionTable, String> {
    if bytes.starts_with(&MAGIC) {
        return DecisionTable::from_bytes(bytes).map_err(|e| e.to_string());
    }
    if bytes.trim_ascii_start().starts_with(b"{") {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| "the JSON table is not UTF-8 text".to_string())?;
        return DecisionTable::from_json(text).map_err(|e| e.to_string());
    }
    DecisionTable::from_bytes(bytes).map_err(|e| e.to_string())
}

fn missing_name(table: &DecisionTable, tool: &str, slot: Slot) -> String {
    if slot.is_confidence() {
        return "confidence".to_string();
    }
    table
        .tool_id(tool)
        .and_then(|t| table.data().tools.get(t.index()))
        .and_then(|t| slot.param().and_then(|i| t.params.get(i)))
        .map_or_else(|| format!("argument #{}", slot.0), |p| p.name.clone())
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

fn to_json(
    table: &DecisionTable,
    decision: &Decision,
    tool: &str,
    shadow: bool,
) -> serde_json::Value {
    let data = table.data();
    let rule = decision.rule.and_then(|r| table.rule(r)).map(|r| {
        serde_json::json!({
            "index": decision.rule.map(|i| i.0),
            "id": r.id,
            "kind": r.kind.keyword(),
            "file": data.files.get(r.span.file.index()),
            "line": r.span.line,
            "column": r.span.column,
            "start": r.span.start,
            "end": r.span.end,
        })
    });
    let routes: Vec<serde_json::Value> = decision
        .routes
        .as_slice()
        .iter()
        .filter_map(|r| data.routes.get(r.index()))
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                "notify": r.notify,
                "timeout_ms": r.timeout_ms,
                "timeout_outcome": r.timeout_outcome,
            })
        })
        .collect();
    serde_json::json!({
        "outcome": decision.outcome.keyword(),
        "stage": decision.stage().keyword(),
        "rule": rule,
        "routes": routes,
        "missing": decision.missing.map(|slot| missing_name(table, tool, slot)),
        "why": decision.why.to_string(),
        "explanation": decision.explain(data).to_string(),
        "shadow": shadow,
        "policy": {
            "name": data.policy.name,
            "version": data.policy.version,
            "source_hash": table.source_hash().to_string(),
        },
    })
}

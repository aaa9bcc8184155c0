//! `agentpolicy replay TABLE_OR_POLICY TRACE.jsonl [--format json] [--audit LOG]
//! [--kill-file PATH]`: runs a recorded trace (docs/trace-format.md) through a real
//! engine, with sessions, limits, breakers, escalations and the kill switch, on a clock
//! that follows the trace's `at` times. Prints each decision and a summary: counts per
//! outcome and per agent, and the first denial of each session.
//!
//! Exit 0 when the trace ran and every `expect` held; 1 when an expectation failed (or
//! the policy has errors); 2 when the table, trace or log cannot be read.

use std::collections::BTreeMap;
use std::path::PathBuf;

use agentpolicy_runtime::DecisionTable;
use agentpolicy_runtime::wire::replay::{Entry, ReplayOptions, Summary, replay};
use serde_json::{Value as Json, json};

use super::output::Format;
use super::table_input::load_table_or_policy;
use super::{EXIT_FAILURE, EXIT_USAGE};

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// A table from `agentpolicy build` (binary or JSON), or a policy to compile.
    pub table: PathBuf,
    /// The trace: one tool call or operator step a line (see docs/trace-format.md).
    pub trace: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Write the engine's audit log here (an existing log's chain is continued).
    #[arg(long)]
    pub audit: Option<PathBuf>,
    /// Honour this kill file, read before every line (default: the path in
    /// `AGENTPOLICY_KILL_FILE`, if set).
    #[arg(long)]
    pub kill_file: Option<PathBuf>,
    /// Members of the policy's `from deploy` sets: a JSON object `{"SET": ["a", ...]}`.
    /// The audit log's first record names each set's hash.
    #[arg(long, value_name = "FILE")]
    pub sets: Option<PathBuf>,
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
}

pub fn run(args: ReplayArgs) -> u8 {
    let table = match load_table_or_policy(&args.table).and_then(|t| {
        super::table_input::with_sets(t, args.sets.as_deref()).map_err(|e| {
            eprintln!("error: {e}");
            EXIT_USAGE
        })
    }) {
        Ok(t) => t,
        Err(code) => return code,
    };
    match run_trace(&args, table) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            EXIT_USAGE
        }
    }
}

fn run_trace(args: &ReplayArgs, table: DecisionTable) -> Result<u8, String> {
    let trace_name = args.trace.display().to_string();
    let text = std::fs::read_to_string(&args.trace)
        .map_err(|e| format!("cannot read `{trace_name}`: {e}"))?;
    let options = ReplayOptions {
        audit: args.audit.clone(),
        kill_file: args
            .kill_file
            .clone()
            .or_else(|| std::env::var_os("AGENTPOLICY_KILL_FILE").map(PathBuf::from)),
        limits: args.limits.limits(),
    };
    let replayed = replay(table, &trace_name, &text, &options)?;
    let (table, entries, summary, head) = (
        &replayed.table,
        &replayed.entries,
        &replayed.summary,
        replayed.audit_head,
    );
    match args.format {
        Format::Human => print_human(table, &trace_name, entries, summary, args, head),
        Format::Json => {
            let doc = to_json(table, &trace_name, entries, summary, args, head);
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
    }
    Ok(if summary.failed.is_empty() {
        0
    } else {
        EXIT_FAILURE
    })
}

fn policy_line(table: &DecisionTable) -> String {
    let data = table.data();
    let version = data
        .policy
        .version
        .as_deref()
        .map(|v| format!(" version {v}"))
        .unwrap_or_default();
    format!(
        "policy `{}`{version}, {}",
        data.policy.name,
        table.source_hash()
    )
}

fn counts(map: &BTreeMap<&'static str, usize>) -> String {
    ["allow", "escalate", "deny"]
        .iter()
        .map(|k| format!("{} {k}", map.get(k).copied().unwrap_or(0)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_human(
    table: &DecisionTable,
    trace: &str,
    entries: &[Entry],
    s: &Summary,
    args: &ReplayArgs,
    head: Option<agentpolicy_runtime::audit::Ack>,
) {
    println!("replay {trace} against {}", policy_line(table));
    for e in entries {
        println!("{}", e.human);
    }
    let shadowed = if s.shadowed > 0 {
        format!(" ({} in shadow mode)", s.shadowed)
    } else {
        String::new()
    };
    println!(
        "summary: {} calls: {}{shadowed}",
        s.calls,
        counts(&s.outcomes)
    );
    for (agent, c) in &s.agents {
        println!("  {agent}: {}", counts(c));
    }
    if !s.first_denials.is_empty() {
        println!("first denial per session:");
        for (session, (line, _, why)) in &s.first_denials {
            println!("  {session}: line {line}: {why}");
        }
    }
    if s.checked > 0 {
        println!(
            "expectations: {} checked, {} failed{}",
            s.checked,
            s.failed.len(),
            if s.failed.is_empty() {
                String::new()
            } else {
                format!(
                    " (lines {})",
                    s.failed
                        .iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    if let (Some(path), Some(head)) = (&args.audit, head) {
        println!(
            "audit: {} (head {}:{}; then closed)",
            path.display(),
            head.seq,
            head.hash
        );
    }
}

fn to_json(
    table: &DecisionTable,
    trace: &str,
    entries: &[Entry],
    s: &Summary,
    args: &ReplayArgs,
    head: Option<agentpolicy_runtime::audit::Ack>,
) -> Json {
    let data = table.data();
    json!({
        "trace": trace,
        "policy": {
            "name": data.policy.name,
            "version": data.policy.version,
            "source_hash": table.source_hash().to_string(),
        },
        "steps": entries.iter().map(|e| e.json.clone()).collect::<Vec<_>>(),
        "summary": {
            "calls": s.calls,
            "outcomes": s.outcomes,
            "shadowed": s.shadowed,
            "agents": s.agents,
            "first_denials": s.first_denials.iter().map(|(session, (line, reason, why))| {
                (session.clone(), json!({ "line": line, "reason": reason, "why": why }))
            }).collect::<serde_json::Map<_, _>>(),
            "expectations": { "checked": s.checked, "failed_lines": s.failed },
        },
        "audit": args.audit.as_ref().map(|p| json!({
            "log": p.display().to_string(),
            "head": head.map(|h| format!("{}:{}", h.seq, h.hash)),
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_list_every_outcome() {
        let mut m = BTreeMap::new();
        m.insert("deny", 2);
        assert_eq!(counts(&m), "0 allow, 0 escalate, 2 deny");
    }
}

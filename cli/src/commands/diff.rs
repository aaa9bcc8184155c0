//! `agentpolicy diff OLD NEW`: what NEW treats more permissively than OLD (widening) and
//! less permissively (narrowing), per agent and tool, with a witness request each. Exit 1
//! on widening unless `--accept-widening`.

use std::path::PathBuf;

use agentpolicy::diagnostics::Diagnostic;
use agentpolicy_runtime::DecisionTable;
use agentpolicy_verify::{self as verify, Budget, Change, Config};

use super::output::{Format, use_color};
use super::{EXIT_FAILURE, EXIT_USAGE, load};

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The policy as it was (a file or a directory).
    pub old: PathBuf,
    /// The policy as it would be.
    pub new: PathBuf,
    /// Exit 0 even when NEW is more permissive than OLD (the widening is still printed).
    #[arg(long)]
    pub accept_widening: bool,
    /// Output format (`human` or `json`).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Time limit per solver query, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub timeout_ms: u32,
}

fn compile(path: &std::path::Path) -> Result<(load::LoadedPolicy, DecisionTable), u8> {
    let policy = load::load(path).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_USAGE
    })?;
    let diagnostics = policy.diagnostics();
    let errors: Vec<Diagnostic> = diagnostics.into_iter().filter(|d| d.is_error()).collect();
    if !errors.is_empty() {
        eprint!(
            "{}",
            agentpolicy::render::human(&errors, &policy.sources, use_color())
        );
        eprintln!(
            "error: `{}` has errors; fix them before diffing",
            path.display()
        );
        return Err(EXIT_FAILURE);
    }
    match policy.table() {
        Ok(table) => Ok((policy, table)),
        Err(d) => {
            eprint!(
                "{}",
                agentpolicy::render::human(&d, &policy.sources, use_color())
            );
            Err(EXIT_FAILURE)
        }
    }
}

fn line(c: &Change) -> String {
    format!(
        "  {} calls {}: {} -> {}\n    witness: {}\n",
        c.agent,
        c.tool,
        c.old,
        c.new,
        serde_json::to_string(&c.new_call.to_json()).unwrap_or_default()
    )
}

pub fn run(args: DiffArgs) -> u8 {
    let (old, old_table) = match compile(&args.old) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let (new, new_table) = match compile(&args.new) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let config = Config {
        budget: Budget {
            timeout_ms: Some(args.timeout_ms),
            rlimit: None,
        },
    };
    let report = match verify::diff(
        &old.analysis.model,
        &old_table,
        &new.analysis.model,
        &new_table,
        &config,
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    };
    match args.format {
        Format::Json => {
            let change = |c: &Change| {
                serde_json::json!({
                    "agent": c.agent,
                    "tool": c.tool,
                    "old": c.old.keyword(),
                    "new": c.new.keyword(),
                    "old_decision": c.old_call.to_json(),
                    "new_decision": c.new_call.to_json(),
                })
            };
            let doc = serde_json::json!({
                "widening": report.widening.iter().map(change).collect::<Vec<_>>(),
                "narrowing": report.narrowing.iter().map(change).collect::<Vec<_>>(),
                "unknown": report.unknown.iter().map(|(a, t, r)| serde_json::json!({"agent": a, "tool": t, "reason": r})).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Human => {
            if report.widening.is_empty() {
                println!("no widening: NEW treats no request more permissively than OLD");
            } else {
                println!(
                    "widening ({}): NEW is more permissive for",
                    report.widening.len()
                );
                report.widening.iter().for_each(|c| print!("{}", line(c)));
            }
            if !report.narrowing.is_empty() {
                println!(
                    "narrowing ({}): NEW is stricter for",
                    report.narrowing.len()
                );
                report.narrowing.iter().for_each(|c| print!("{}", line(c)));
            }
            for (a, t, r) in &report.unknown {
                println!("unknown: {a} calls {t}: {r}");
            }
        }
    }
    if !report.unknown.is_empty() || (!report.widening.is_empty() && !args.accept_widening) {
        EXIT_FAILURE
    } else {
        0
    }
}

//! `agentpolicy diff OLD NEW`: what NEW treats more permissively than OLD (widening) and
//! less permissively (narrowing), per agent and tool, with a witness request each. Exit 1
//! on widening unless `--accept-widening`. Every change has a kind (`rule`,
//! `route_timeout`, `mode`, `limit`, ...; JSON `kind`), so a CI gate sees widenings
//! outside the rule stage too.

use std::path::PathBuf;

use agentpolicy::diagnostics::Diagnostic;
use agentpolicy_runtime::DecisionTable;
use agentpolicy_verify::{self as verify, Budget, Change, ChangeKind, Config, DeclChange};

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
    let what = match (&c.kind, &c.detail) {
        (ChangeKind::RouteTimeout, Some(detail)) => format!("escalated; {detail}"),
        _ => format!("{} -> {}", c.old, c.new),
    };
    format!(
        "  {} calls {}: {what}\n    witness: {}\n",
        c.agent,
        c.tool,
        serde_json::to_string(&c.new_call.to_json()).unwrap_or_default()
    )
}

fn decl_line(d: &DeclChange) -> String {
    let witness = match &d.witness {
        Some(w) => match &w.request {
            Some(call) => format!(
                "    witness: {}: {}\n",
                w.trace,
                serde_json::to_string(&call.to_json()).unwrap_or_default()
            ),
            None => format!("    witness: {}\n", w.trace),
        },
        None => "    structural: no single request shows it\n".to_string(),
    };
    format!(
        "  {} [{}]: {}\n{witness}",
        d.subject,
        d.kind.keyword(),
        d.what
    )
}

fn decl_json(d: &DeclChange) -> serde_json::Value {
    serde_json::json!({
        "kind": d.kind.keyword(),
        "subject": d.subject,
        "change": d.what,
        "structural": d.witness.is_none(),
        "witness": d.witness.as_ref().map(|w| serde_json::json!({
            "trace": w.trace,
            "request": w.request.as_ref().map(|c| c.to_json()),
        })),
    })
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
                    "kind": c.kind.keyword(),
                    "detail": c.detail,
                    "agent": c.agent,
                    "tool": c.tool,
                    "old": c.old.keyword(),
                    "new": c.new.keyword(),
                    "old_decision": c.old_call.to_json(),
                    "new_decision": c.new_call.to_json(),
                })
            };
            let decls = |widening: bool| {
                report
                    .declarations
                    .iter()
                    .filter(move |d| d.widening == widening)
                    .map(decl_json)
            };
            let doc = serde_json::json!({
                "widening": report.widening.iter().map(change).chain(decls(true)).collect::<Vec<_>>(),
                "narrowing": report.narrowing.iter().map(change).chain(decls(false)).collect::<Vec<_>>(),
                "unknown": report.unknown.iter().map(|(a, t, r)| serde_json::json!({"agent": a, "tool": t, "reason": r})).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Human => {
            let decls = |widening: bool| -> Vec<&DeclChange> {
                report
                    .declarations
                    .iter()
                    .filter(|d| d.widening == widening)
                    .collect()
            };
            let (wider, stricter) = (decls(true), decls(false));
            if !report.widens() {
                println!("no widening: NEW treats no request more permissively than OLD");
            } else {
                println!(
                    "widening ({}): NEW is more permissive for",
                    report.widening.len() + wider.len()
                );
                report.widening.iter().for_each(|c| print!("{}", line(c)));
                wider.iter().for_each(|d| print!("{}", decl_line(d)));
            }
            if !report.narrowing.is_empty() || !stricter.is_empty() {
                println!(
                    "narrowing ({}): NEW is stricter for",
                    report.narrowing.len() + stricter.len()
                );
                report.narrowing.iter().for_each(|c| print!("{}", line(c)));
                stricter.iter().for_each(|d| print!("{}", decl_line(d)));
            }
            for (a, t, r) in &report.unknown {
                println!("unknown: {a} calls {t}: {r}");
            }
        }
    }
    if !report.unknown.is_empty() || (report.widens() && !args.accept_widening) {
        EXIT_FAILURE
    } else {
        0
    }
}

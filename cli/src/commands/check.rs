//! `agentpolicy check PATH...`: parse and analyse each policy; when the front end is
//! clean, compile it and prove every property on the decision table. Exit 0 only when
//! every property is proved (and nothing else is wrong).

use std::path::PathBuf;

use agentpolicy::diagnostics::Diagnostic;
use agentpolicy::render;
use agentpolicy_verify::{self as verify, Budget, Config, Report, Verdict, VerdictKind};

use super::output::use_color;
use super::{EXIT_FAILURE, EXIT_USAGE, load};

/// `check`'s output formats: the shared ones, and SARIF for code-scanning services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    /// Source snippets with labels, for people.
    Human,
    /// One JSON document on stdout, for tools.
    Json,
    /// SARIF 2.1.0 (GitHub code scanning and the like): one result per diagnostic.
    Sarif,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Policies to check: `.agentpolicy` files or directories (each is one policy).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Human)]
    pub format: CheckFormat,
    /// Treat warnings as errors (exit 1 when there are any).
    #[arg(long)]
    pub deny_warnings: bool,
    /// Exit 0 even when the solver can neither prove nor refute some property (it is
    /// still reported as unknown, never as proved).
    #[arg(long)]
    pub allow_unknown: bool,
    /// Time limit per solver query, in milliseconds; a query that runs out is unknown.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub timeout_ms: u32,
    /// Deterministic resource limit per solver query (Z3's `rlimit`); unlike the time
    /// limit it gives the same answer on every machine.
    #[arg(long, value_name = "UNITS")]
    pub rlimit: Option<u32>,
    /// Only parse and analyse; do not compile or prove.
    #[arg(long)]
    pub no_proofs: bool,
}

/// What one policy came to.
struct Checked {
    path: String,
    name: Option<String>,
    diagnostics: Vec<Diagnostic>,
    report: Option<Report>,
    policy: load::LoadedPolicy,
}

pub fn run(args: CheckArgs) -> u8 {
    let mut usage_error = false;
    let config = Config {
        budget: Budget {
            timeout_ms: Some(args.timeout_ms),
            rlimit: args.rlimit,
        },
    };
    let mut checked = Vec::new();
    for path in &args.paths {
        let policy = match load::load(path) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                usage_error = true;
                continue;
            }
        };
        let mut diagnostics = policy.diagnostics();
        let mut report = None;
        // A clean front end is compiled (what the decision table cannot hold is an error
        // CI must see before deploy), then every property is proved on that table.
        if !diagnostics.iter().any(Diagnostic::is_error) {
            match policy.table() {
                Err(d) => diagnostics.extend(d),
                Ok(table) if !args.no_proofs => {
                    let r = verify::verify(&policy.analysis.model, &table, &config);
                    diagnostics.extend(r.diagnostics());
                    report = Some(r);
                }
                Ok(_) => {}
            }
        }
        checked.push(Checked {
            path: path.display().to_string(),
            name: policy
                .analysis
                .model
                .policy
                .as_ref()
                .map(|p| p.name.clone()),
            diagnostics,
            report,
            policy,
        });
    }
    let mut failed = false;
    let (mut errors, mut warnings, mut unknown) = (0usize, 0usize, 0usize);
    for c in &checked {
        let e = c.diagnostics.iter().filter(|d| d.is_error()).count();
        let u = c
            .report
            .as_ref()
            .map_or(0, |r| r.count(VerdictKind::Unknown));
        let w = c.diagnostics.len() - e;
        errors += e - u;
        unknown += u;
        warnings += w;
        if e - u > 0 || (u > 0 && !args.allow_unknown) || (args.deny_warnings && w > 0) {
            failed = true;
        }
    }
    match args.format {
        CheckFormat::Human => {
            for c in &checked {
                print!(
                    "{}",
                    render::human(&c.diagnostics, &c.policy.sources, use_color())
                );
                if let Some(r) = &c.report {
                    print!("{}", summary(r, &c.policy.sources));
                }
                let e = c.diagnostics.iter().filter(|d| d.is_error()).count();
                let u = c
                    .report
                    .as_ref()
                    .map_or(0, |r| r.count(VerdictKind::Unknown));
                let w = c.diagnostics.len() - e;
                let status = if e - u > 0 || (u > 0 && !args.allow_unknown) {
                    "FAILED"
                } else {
                    "ok"
                };
                let name = c.name.clone().unwrap_or_else(|| "(unnamed)".to_string());
                let proofs = match &c.report {
                    Some(r) => format!(
                        ", {} proved, {} counterexample(s), {u} unknown",
                        r.count(VerdictKind::Proved),
                        r.count(VerdictKind::Counterexample)
                    ),
                    None => String::new(),
                };
                println!(
                    "{status}: {} (policy `{name}`): {} error(s), {w} warning(s){proofs}",
                    c.path,
                    e - u
                );
            }
        }
        CheckFormat::Json => {
            let policies: Vec<serde_json::Value> = checked
                .iter()
                .map(|c| {
                    let e = c.diagnostics.iter().filter(|d| d.is_error()).count();
                    let u = c
                        .report
                        .as_ref()
                        .map_or(0, |r| r.count(VerdictKind::Unknown));
                    serde_json::json!({
                        "path": c.path,
                        "policy": c.name,
                        "errors": e - u,
                        "warnings": c.diagnostics.len() - e,
                        "unknown": u,
                        "diagnostics": render::json(&c.diagnostics, &c.policy.sources),
                        "properties": c.report.as_ref().map(|r| properties_json(r, &c.policy.sources)),
                    })
                })
                .collect();
            let doc = serde_json::json!({
                "policies": policies,
                "errors": errors,
                "warnings": warnings,
                "unknown": unknown,
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        CheckFormat::Sarif => {
            let inputs: Vec<render::SarifInput<'_>> = checked
                .iter()
                .map(|c| render::SarifInput {
                    diagnostics: &c.diagnostics,
                    sources: &c.policy.sources,
                })
                .collect();
            let doc = render::sarif(&inputs, env!("CARGO_PKG_VERSION"));
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
    }
    if usage_error {
        EXIT_USAGE
    } else if failed {
        EXIT_FAILURE
    } else {
        0
    }
}

/// One line per property verdict, with how it was reached.
fn summary(report: &Report, sources: &render::Sources) -> String {
    if report.results.is_empty() {
        return "proofs: none apply (what the agents are granted raises no isolation, write-down, tier ceiling, escalation, threshold or hygiene question, and there is no assert)\n".to_string();
    }
    let mut out = String::from("proofs:\n");
    for r in &report.results {
        let how = match &r.verdict {
            Verdict::Unknown(reason) => format!("({reason})"),
            Verdict::Finding => "(see the warning above)".to_string(),
            _ => r.method.to_string(),
        };
        out.push_str(&format!(
            "  {:<14} {} ({}) {how}\n",
            r.verdict.keyword(),
            r.property.name(),
            r.subject.quoted(sources)
        ));
    }
    let mut assumptions: Vec<&str> = report
        .results
        .iter()
        .flat_map(|r| r.assumptions.iter().copied())
        .collect();
    assumptions.sort_unstable();
    assumptions.dedup();
    for a in assumptions {
        out.push_str(&format!("  assuming {a}\n"));
    }
    out
}

fn properties_json(report: &Report, sources: &render::Sources) -> serde_json::Value {
    serde_json::Value::Array(
        report
            .results
            .iter()
            .map(|r| {
                let mut v = serde_json::json!({
                    "property": r.property.name(),
                    "subject": r.subject.quoted(sources),
                    "verdict": r.verdict.keyword(),
                    "method": r.method.to_string(),
                    "assumptions": r.assumptions,
                });
                match &r.verdict {
                    Verdict::Unknown(reason) => v["reason"] = serde_json::json!(reason),
                    Verdict::Counterexample(c) => v["counterexample"] = c.to_json(),
                    _ => {}
                }
                v
            })
            .collect(),
    )
}

//! `agentpolicy check PATH...`: parse and analyse each policy, print every diagnostic.

use std::path::PathBuf;

use agentpolicy::render;

use super::output::{Format, use_color};
use super::{EXIT_FAILURE, EXIT_USAGE, load};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Policies to check: `.agentpolicy` files or directories (each is one policy).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Treat warnings as errors (exit 1 when there are any).
    #[arg(long)]
    pub deny_warnings: bool,
}

pub fn run(args: CheckArgs) -> u8 {
    let mut failed = false;
    let mut usage_error = false;
    let mut json_policies = Vec::new();
    let (mut errors, mut warnings) = (0usize, 0usize);
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
        // A clean front end is compiled too: what the decision table cannot hold is an
        // error CI must see before deploy.
        if !diagnostics.iter().any(|d| d.is_error())
            && let Err(table_diagnostics) = policy.build_table()
        {
            diagnostics.extend(table_diagnostics);
        }
        let e = diagnostics.iter().filter(|d| d.is_error()).count();
        let w = diagnostics.len() - e;
        errors += e;
        warnings += w;
        if e > 0 || (args.deny_warnings && w > 0) {
            failed = true;
        }
        match args.format {
            Format::Human => {
                print!(
                    "{}",
                    render::human(&diagnostics, &policy.sources, use_color())
                );
                let name = policy
                    .analysis
                    .model
                    .policy
                    .as_ref()
                    .map(|p| p.name.clone())
                    .unwrap_or_else(|| "(unnamed)".to_string());
                let status = if e > 0 { "FAILED" } else { "ok" };
                println!(
                    "{status}: {} (policy `{name}`): {e} error(s), {w} warning(s)",
                    path.display()
                );
            }
            Format::Json => json_policies.push(serde_json::json!({
                "path": path.display().to_string(),
                "policy": policy.analysis.model.policy.as_ref().map(|p| &p.name),
                "errors": e,
                "warnings": w,
                "diagnostics": render::json(&diagnostics, &policy.sources),
            })),
        }
    }
    if args.format == Format::Json {
        let doc = serde_json::json!({ "policies": json_policies, "errors": errors, "warnings": warnings });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    if usage_error {
        EXIT_USAGE
    } else if failed {
        EXIT_FAILURE
    } else {
        0
    }
}

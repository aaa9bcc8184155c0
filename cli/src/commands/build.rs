//! `agentpolicy build PATH -o table.bin [--json]`: compile a policy to the decision table
//! the runtime loads, and print its content hash.

use std::path::PathBuf;

use super::{EXIT_USAGE, load};

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The policy: a `.agentpolicy` file, or a directory whose files form one policy.
    pub path: PathBuf,
    /// Where to write the table. Required for the binary form; with `--json` and no
    /// `-o`, the JSON goes to standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Write the table as JSON, for inspection, instead of the compact binary form.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: BuildArgs) -> u8 {
    if args.output.is_none() && !args.json {
        eprintln!(
            "error: `agentpolicy build` needs `-o FILE` for the binary table\nhelp: add `-o table.bin`, or `--json` to print the table as JSON"
        );
        return EXIT_USAGE;
    }
    let (_, table) = match load::load_and_build(&args.path, "; no table was written") {
        Ok(x) => x,
        Err(code) => return code,
    };
    let bytes = if args.json {
        let mut json = table.to_json();
        json.push('\n');
        json.into_bytes()
    } else {
        table.to_bytes()
    };
    let data = table.data();
    let name = &data.policy.name;
    let version = data
        .policy
        .version
        .as_deref()
        .map(|v| format!(" version {v}"))
        .unwrap_or_default();
    match &args.output {
        Some(out) => {
            if let Err(e) = std::fs::write(out, &bytes) {
                eprintln!("error: cannot write `{}`: {e}", out.display());
                return EXIT_USAGE;
            }
            println!(
                "wrote {} ({} bytes): policy `{name}`{version}, {} agents, {} tools, {} rules",
                out.display(),
                bytes.len(),
                data.agents.len(),
                data.tools.len(),
                data.rules.len()
            );
            println!("source hash: {}", table.source_hash());
            println!("audit retention: {}", retention_summary(data));
        }
        None => {
            print!("{}", String::from_utf8_lossy(&bytes));
            eprintln!("source hash: {}", table.source_hash());
        }
    }
    0
}

/// `retain audit 5y; retain audit for npi 7y`, or that none is set.
pub(crate) fn retention_summary(data: &agentpolicy_runtime::TableData) -> String {
    let r = &data.retention;
    if r.is_empty() {
        return "none (`agentpolicy audit compact` removes nothing)".to_string();
    }
    let mut clauses = Vec::new();
    if r.default.is_some() {
        clauses.push(r.clause_text(None, &data.tiers));
    }
    for i in 0..r.tiers.len() {
        clauses.push(r.clause_text(Some(i), &data.tiers));
    }
    clauses.join("; ")
}

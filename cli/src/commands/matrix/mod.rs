//! `agentpolicy matrix PATH [--format md|html|csv|json] [--output FILE]`: the
//! access-control matrix a regulated team signs off before an agent goes live, computed
//! from the verified decision table (what `build` emits, proved as `check` proves it).
//!
//! A policy with errors gets its diagnostics and no matrix (exit 1). A property that
//! fails or is unknown is shown as such in the matrix, which is still written, and the
//! exit code is 1 (unknown: unless `--allow-unknown`), as for `check`.

use std::path::PathBuf;

use agentpolicy::render;
use agentpolicy_verify::matrix::{self, Format};
use agentpolicy_verify::{self as verify, Budget, Config};

use super::output::use_color;
use super::{EXIT_FAILURE, EXIT_USAGE, load};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MatrixFormat {
    /// Markdown, for a pull request or a wiki page.
    Md,
    /// One self-contained, printable HTML page (A4 landscape).
    Html,
    /// One row per (agent, tool), RFC 4180.
    Csv,
    /// One JSON document (schema `agentpolicy-matrix/1`, docs/matrix.md).
    Json,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 every property proved (hygiene warnings allowed); 1 the policy has errors \
(no matrix), or a property failed or is unknown (the matrix is still written and shows it; \
`--allow-unknown` exits 0 on unknown); 2 usage or IO error."
)]
pub struct MatrixArgs {
    /// The policy: a `.agentpolicy` file, or a directory whose files form one policy.
    pub path: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = MatrixFormat::Md)]
    pub format: MatrixFormat,
    /// Write the matrix to this file instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The date to print in the header (YYYY-MM-DD), e.g. the review meeting; without it the
    /// output carries no date, so the same policy always gives the same bytes.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<String>,
    /// Exit 0 even when a property is unknown (it is still shown as unknown, never as
    /// proved).
    #[arg(long)]
    pub allow_unknown: bool,
    /// Time limit per solver query, in milliseconds; a query that runs out is unknown.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub timeout_ms: u32,
    /// Deterministic resource limit per solver query (Z3's `rlimit`).
    #[arg(long, value_name = "UNITS")]
    pub rlimit: Option<u32>,
}

pub fn run(args: MatrixArgs) -> u8 {
    if let Some(date) = &args.date
        && !is_date(date)
    {
        eprintln!(
            "error: `--date {date}` is not a date\nhelp: write it as YYYY-MM-DD, e.g. `--date 2026-11-25`"
        );
        return EXIT_USAGE;
    }
    let (policy, table) = match load::load_and_build(&args.path, "; no matrix was written") {
        Ok(x) => x,
        Err(code) => return code,
    };
    let diagnostics = policy.diagnostics();
    // Front-end warnings are shown as `check` shows them; they do not stop the matrix.
    if !diagnostics.is_empty() {
        eprint!(
            "{}",
            render::human(&diagnostics, &policy.sources, use_color())
        );
    }
    let config = Config {
        budget: Budget {
            timeout_ms: Some(args.timeout_ms),
            rlimit: args.rlimit,
        },
    };
    let report = verify::verify(&policy.analysis.model, &table, &config);
    let matrix = matrix::compute(&matrix::Inputs {
        model: &policy.analysis.model,
        table: &table,
        report: &report,
        sources: &policy.sources,
        date: args.date.clone(),
    });
    let format = match args.format {
        MatrixFormat::Md => Format::Markdown,
        MatrixFormat::Html => Format::Html,
        MatrixFormat::Csv => Format::Csv,
        MatrixFormat::Json => Format::Json,
    };
    let text = matrix::render(&matrix, format);
    let v = &matrix.verification;
    match &args.output {
        Some(out) => {
            if let Err(e) = std::fs::write(out, text.as_bytes()) {
                eprintln!(
                    "error: cannot write `{}`: {}",
                    out.display(),
                    load::describe_io(&e)
                );
                return EXIT_USAGE;
            }
            println!(
                "wrote {}: policy `{}`, {} agents x {} tools; {} proved, {} failed, {} unknown",
                out.display(),
                matrix.policy.name,
                matrix.agents.len(),
                matrix.tools.len(),
                v.proved,
                v.failed,
                v.unknown
            );
        }
        None => print!("{text}"),
    }
    if v.failed > 0 || (v.unknown > 0 && !args.allow_unknown) {
        let mut parts = Vec::new();
        if v.failed > 0 {
            parts.push(format!(
                "{} failed",
                plural(v.failed, "property", "properties")
            ));
        }
        if v.unknown > 0 {
            parts.push(format!(
                "{} unknown",
                plural(v.unknown, "property is", "properties are")
            ));
        }
        eprintln!(
            "error: {}; the matrix shows which, and must not be signed as proved\nhelp: run `agentpolicy check {}` for the counterexamples and reasons with their source lines",
            parts.join(" and "),
            args.path.display()
        );
        return EXIT_FAILURE;
    }
    0
}

/// `1 property`, `2 properties`.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `YYYY-MM-DD` with a month 01-12 and a day 01-31.
fn is_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let number = |s: &str, len: usize| {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    match parts.as_slice() {
        [y, m, d] => {
            number(y, 4).is_some()
                && number(m, 2).is_some_and(|m| (1..=12).contains(&m))
                && number(d, 2).is_some_and(|d| (1..=31).contains(&d))
        }
        _ => false,
    }
}

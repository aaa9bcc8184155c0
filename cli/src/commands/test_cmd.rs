//! `agentpolicy test PATH...`: run each policy's `test` blocks through its compiled
//! decision table; report pass or fail per test (with a source snippet on failure) and
//! the rules no test exercised.

use std::path::PathBuf;

use agentpolicy::diagnostics::{Code, Diagnostic, Label};
use agentpolicy::policy_test::{TestReport, run_tests};
use agentpolicy::render;

use super::output::{Format, use_color};
use super::{EXIT_FAILURE, EXIT_USAGE, load};

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Policies whose tests to run: `.agentpolicy` files or directories.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Fail (exit 1) when some rule is exercised by no test.
    #[arg(long)]
    pub require_coverage: bool,
    /// Members of the policies' `from deploy` sets: a JSON object `{"SET": ["a", ...]}`.
    /// Without it, a call that tests such a set is denied, as in the engine.
    #[arg(long, value_name = "FILE")]
    pub sets: Option<PathBuf>,
}

pub fn run(args: TestArgs) -> u8 {
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut usage_error = false;
    let mut policy_error = false;
    let mut coverage_gap = false;
    let mut json = Vec::new();
    for path in &args.paths {
        let policy = match load::load(path) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                usage_error = true;
                continue;
            }
        };
        let diagnostics = policy.diagnostics();
        if diagnostics.iter().any(|d| d.is_error()) {
            print!(
                "{}",
                render::human(&diagnostics, &policy.sources, use_color())
            );
            eprintln!(
                "error: {} has errors; fix them before running its tests",
                path.display()
            );
            policy_error = true;
            continue;
        }
        let table = match policy.table() {
            Ok(t) => match super::table_input::with_sets(t, args.sets.as_deref()) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {e}");
                    usage_error = true;
                    continue;
                }
            },
            Err(diags) => {
                print!("{}", render::human(&diags, &policy.sources, use_color()));
                policy_error = true;
                continue;
            }
        };
        let model = &policy.analysis.model;
        let report = run_tests(model, &table);
        passed += report.passed();
        failed += report.failed();
        let uncovered: Vec<_> = report.uncovered().collect();
        if !uncovered.is_empty() {
            coverage_gap = true;
        }
        match args.format {
            Format::Human => print_human(path, &policy, &table, &report),
            Format::Json => json.push(to_json(path, &policy, &table, &report)),
        }
    }
    if args.format == Format::Json {
        let doc = serde_json::json!({ "policies": json, "passed": passed, "failed": failed });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!("{passed} passed, {failed} failed");
    }
    if usage_error {
        EXIT_USAGE
    } else if policy_error || failed > 0 || (args.require_coverage && coverage_gap) {
        EXIT_FAILURE
    } else {
        0
    }
}

fn failure_diagnostic(result: &agentpolicy::policy_test::TestResult) -> Diagnostic {
    let at = result.checked_call.unwrap_or(result.loc);
    let (message, label) = match &result.error {
        Some(error) => (
            format!("test \"{}\" could not run: {error}", result.name),
            "this call".to_string(),
        ),
        None => (
            format!(
                "test \"{}\" expected {}, but the policy decides {}",
                result.name, result.expected, result.actual
            ),
            "the decision of this call".to_string(),
        ),
    };
    Diagnostic::new(Code::TestFailed, message, Label::new(at.file, at.range, label))
        .with_secondary(Label::new(result.loc.file, result.loc.range, "in this test"))
        .with_help("change the rules or the expectation; `agentpolicy decide` shows how a single request is decided")
}

fn print_human(
    path: &std::path::Path,
    policy: &load::LoadedPolicy,
    table: &agentpolicy_runtime::DecisionTable,
    report: &TestReport,
) {
    println!("{}:", path.display());
    for result in &report.results {
        if result.passed {
            println!("  test \"{}\" ... ok", result.name);
        } else {
            println!("  test \"{}\" ... FAILED", result.name);
            print!(
                "{}",
                render::human(&[failure_diagnostic(result)], &policy.sources, use_color())
            );
        }
    }
    let rules = &table.data().rules;
    let uncovered: Vec<_> = report.uncovered().collect();
    println!(
        "  coverage: {} of {} rules decided at least one test call",
        rules.len() - uncovered.len(),
        rules.len()
    );
    for rule in uncovered {
        if let Some(r) = rules.get(rule.index()) {
            let file = table
                .data()
                .files
                .get(r.span.file.index())
                .map(String::as_str)
                .unwrap_or("?");
            println!(
                "    not exercised: {} ({file}:{}:{})",
                r.id, r.span.line, r.span.column
            );
        }
    }
}

fn to_json(
    path: &std::path::Path,
    policy: &load::LoadedPolicy,
    table: &agentpolicy_runtime::DecisionTable,
    report: &TestReport,
) -> serde_json::Value {
    let rules = &table.data().rules;
    let tests: Vec<serde_json::Value> = report
        .results
        .iter()
        .map(|r| {
            let at = r.checked_call.unwrap_or(r.loc);
            serde_json::json!({
                "name": r.name,
                "passed": r.passed,
                "expected": r.expected,
                "actual": r.actual,
                "error": r.error,
                "location": render::position(&Label::new(at.file, at.range, ""), &policy.sources),
            })
        })
        .collect();
    let uncovered: Vec<&str> = report
        .uncovered()
        .filter_map(|i| rules.get(i.index()).map(|r| r.id.as_str()))
        .collect();
    serde_json::json!({
        "path": path.display().to_string(),
        "table_hash": table.source_hash().to_string(),
        "tests": tests,
        "rules": rules.len(),
        "uncovered_rules": uncovered,
    })
}

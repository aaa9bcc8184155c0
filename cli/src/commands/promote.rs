//! `agentpolicy promote-check POLICY AUDIT_LOG`: verifies the log's hash chain, then
//! evaluates each agent's promotion criteria on it and prints the figures and a verdict
//! per agent. It changes nothing: promoting an agent is an edit to the policy that goes
//! through review like any other. Exit codes: 0 the criteria were evaluated (whatever
//! the verdicts), 1 the log fails verification or the policy has errors, 2 usage or IO.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use agentpolicy::lifecycle::{AgentCheck, Verdict, figure, promote_check};
use agentpolicy_runtime::audit::{DecisionEvidence, evidence, verify_with};

use super::output::Format;
use super::{EXIT_FAILURE, EXIT_USAGE, load};

#[derive(Debug, clap::Args)]
pub struct PromoteCheckArgs {
    /// The policy (a `.agentpolicy` file or a directory) that declares stages and criteria.
    pub policy: PathBuf,
    /// The engine's audit log.
    pub log: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub fn run(args: PromoteCheckArgs) -> u8 {
    let policy = match load::load_valid(&args.policy, "") {
        Ok(p) => p,
        Err(code) => return code,
    };
    let decisions = match read_verified(&args.log) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let checks = promote_check(&policy.analysis.model, &decisions);
    match args.format {
        Format::Json => {
            let doc = serde_json::json!({
                "policy": args.policy.display().to_string(),
                "log": args.log.display().to_string(),
                "agents": checks,
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Human => print_checks(&checks),
    }
    0
}

/// The log's decisions, after its hash chain verified; otherwise the exit code after
/// the problems were printed. Records that follow up on a decision the log does not
/// hold (it was cut before them) are counted in a note on stderr.
pub fn read_verified(log: &Path) -> Result<Vec<DecisionEvidence>, u8> {
    let open = || {
        std::fs::File::open(log).map(BufReader::new).map_err(|e| {
            eprintln!("error: cannot read `{}`: {e}", log.display());
            EXIT_USAGE
        })
    };
    let report = verify_with(open()?, None).map_err(|e| {
        eprintln!("error: cannot read `{}`: {e}", log.display());
        EXIT_USAGE
    })?;
    if !report.is_intact() {
        for problem in &report.problems {
            eprintln!("error: {problem}");
        }
        eprintln!(
            "error: `{}` fails verification (`agentpolicy audit verify`); its figures cannot be trusted, so nothing was evaluated",
            log.display()
        );
        return Err(EXIT_FAILURE);
    }
    let evidence = evidence(open()?).map_err(|e| {
        eprintln!("error: cannot read `{}`: {e}", log.display());
        EXIT_USAGE
    })?;
    if evidence.unmatched > 0 {
        eprintln!(
            "note: {} human, result or resolution record(s) name a call whose decision is not in `{}`; they are not counted",
            evidence.unmatched,
            log.display()
        );
    }
    Ok(evidence.decisions)
}

fn print_checks(checks: &[AgentCheck]) {
    for c in checks {
        let Some(stage) = c.stage else {
            println!("agent {}: {}", c.agent, c.verdict.describe());
            continue;
        };
        let Some(next) = c.next else {
            println!("agent {}: stage {stage}: {}", c.agent, c.verdict.describe());
            continue;
        };
        match c.window {
            None => println!(
                "agent {}: stage {stage}: {} (`promote to {next}`)",
                c.agent,
                c.verdict.describe()
            ),
            Some(window) => {
                println!(
                    "agent {}: stage {stage} -> {next}, over the last {window} decisions in stage {stage} ({} in the log)",
                    c.agent, c.available
                );
                for m in &c.criteria {
                    let figure = match m.value {
                        None => "undefined".to_owned(),
                        Some(v) if m.metric == "denials" => v.to_string(),
                        Some(v) => figure(v),
                    };
                    println!(
                        "  {:<28} {:>10}  ({})  {}",
                        m.criterion,
                        figure,
                        m.basis,
                        if m.pass { "pass" } else { "FAIL" }
                    );
                }
                let verdict = match c.verdict {
                    Verdict::Promote => format!("may be promoted to {next}"),
                    Verdict::NotEnoughEvidence => {
                        format!("not enough evidence: {} of {window} decisions", c.measured)
                    }
                    other => format!("stays at {stage}: {}", other.describe()),
                };
                println!("  verdict: {verdict}");
            }
        }
    }
}

//! `agentpolicy audit shadow-report LOG`: how often the humans' recorded actions agreed
//! with the policy's outcome (in shadow mode, the would-be outcome), per agent, per
//! tool and per outcome, and every disagreement. Only decisions with a recorded human
//! action count. The log's hash chain is verified first; a broken log is refused.

use std::collections::BTreeMap;
use std::path::PathBuf;

use agentpolicy::lifecycle::figure;
use agentpolicy_runtime::audit::{DecisionEvidence, format_time};
use serde::Serialize;

use super::output::Format;
use super::promote::read_verified;

#[derive(Debug, clap::Args)]
pub struct ShadowReportArgs {
    pub log: PathBuf,
    /// Only this agent's decisions.
    #[arg(long)]
    pub agent: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
struct Tally {
    compared: u64,
    agreed: u64,
}

impl Tally {
    fn add(&mut self, agrees: bool) {
        self.compared += 1;
        self.agreed += u64::from(agrees);
    }

    fn text(self) -> String {
        format!(
            "{} of {} agree ({})",
            self.agreed,
            self.compared,
            figure((self.agreed * 1_000_000 / self.compared.max(1)) as i64)
        )
    }
}

#[derive(Debug, Serialize)]
struct Disagreement {
    seq: u64,
    time: String,
    session: String,
    call: u64,
    agent: String,
    tool: String,
    policy: &'static str,
    human: &'static str,
    by: Option<String>,
    shadow: bool,
}

pub fn run(args: &ShadowReportArgs) -> u8 {
    let decisions = match read_verified(&args.log) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let compared: Vec<&DecisionEvidence> = decisions
        .iter()
        .filter(|d| d.human.is_some())
        .filter(|d| args.agent.as_ref().is_none_or(|a| &d.agent == a))
        .collect();
    let mut total = Tally::default();
    let mut agents: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut tools: BTreeMap<(&str, &str), Tally> = BTreeMap::new();
    let mut outcomes: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut disagreements = Vec::new();
    for d in &compared {
        let Some((action, by)) = &d.human else {
            continue;
        };
        let agrees = action.outcome() == d.outcome;
        total.add(agrees);
        agents.entry(&d.agent).or_default().add(agrees);
        tools.entry((&d.agent, &d.tool)).or_default().add(agrees);
        outcomes.entry(d.outcome.keyword()).or_default().add(agrees);
        if !agrees {
            disagreements.push(Disagreement {
                seq: d.seq,
                time: format_time(d.time_ms),
                session: d.session.clone(),
                call: d.call,
                agent: d.agent.clone(),
                tool: d.tool.clone(),
                policy: d.outcome.keyword(),
                human: action.keyword(),
                by: by.clone(),
                shadow: d.shadow,
            });
        }
    }
    match args.format {
        Format::Json => {
            let doc = serde_json::json!({
                "log": args.log.display().to_string(),
                "decisions": decisions.len(),
                "compared": total.compared,
                "agreed": total.agreed,
                "agents": agents.iter().map(|(a, t)| serde_json::json!({"agent": a, "compared": t.compared, "agreed": t.agreed})).collect::<Vec<_>>(),
                "tools": tools.iter().map(|((a, tool), t)| serde_json::json!({"agent": a, "tool": tool, "compared": t.compared, "agreed": t.agreed})).collect::<Vec<_>>(),
                "outcomes": outcomes.iter().map(|(o, t)| serde_json::json!({"policy": o, "compared": t.compared, "agreed": t.agreed})).collect::<Vec<_>>(),
                "disagreements": disagreements,
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Human => {
            println!(
                "{}: {} decision(s), {} with a recorded human action",
                args.log.display(),
                decisions.len(),
                total.compared
            );
            if total.compared == 0 {
                println!(
                    "nothing to compare: record human actions with `Engine::record_human` or a trace's `human` field"
                );
                return 0;
            }
            println!("overall: {}", total.text());
            println!("per agent:");
            for (a, t) in &agents {
                println!("  {a:<36} {}", t.text());
            }
            println!("per tool:");
            for ((a, tool), t) in &tools {
                println!("  {:<36} {}", format!("{a} {tool}"), t.text());
            }
            println!("per policy outcome:");
            for (o, t) in &outcomes {
                println!("  {o:<36} {}", t.text());
            }
            println!("disagreements: {}", disagreements.len());
            for d in &disagreements {
                println!(
                    "  #{} {} {}#{} {} {}: policy {}, human {}{}",
                    d.seq,
                    d.time,
                    d.session,
                    d.call,
                    d.agent,
                    d.tool,
                    d.policy,
                    d.human,
                    d.by.as_ref()
                        .map_or(String::new(), |b| format!(" (by {b})"))
                );
            }
        }
    }
    0
}

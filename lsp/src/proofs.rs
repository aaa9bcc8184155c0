//! Proofs in the editor: on save (or the `agentpolicy.verify` command) the server builds
//! the decision table and runs the verifier, as `agentpolicy check` does, and re-proves
//! only what an edit touched.
//!
//! Every property but the asserts is about one agent (`verify::Scope`), so verdicts are
//! cached per agent under a hash of everything that agent's proofs read: its own table
//! cells, model entry and rules (with their source locations, so a cached diagnostic
//! never points at moved text), and the policy-wide data every cell may read (tiers, keys,
//! resources, sinks, routes, tools, thresholds, text constants, files). The asserts may
//! name any agent and are keyed by a hash of the whole model and table. A key that
//! differs, or is missing, re-runs the proof; when in doubt the key includes more, never
//! less. This module is synchronous and protocol-agnostic: the server runs it in a
//! blocking task and maps the compiler diagnostics it returns to the protocol.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use agentpolicy::db::Analysis;
use agentpolicy::diagnostics::Diagnostic;
use agentpolicy::model::Model;
use agentpolicy_runtime::TableData;
use agentpolicy_verify::{self as verify, Config, Scope};
use serde::{Deserialize, Serialize};

use crate::state::PolicyState;

/// The method of the notification the server sends after each proof run.
pub const PROOFS_RUN: &str = "agentpolicy/proofsRun";

/// The command that runs the proofs on request (`workspace/executeCommand`).
pub const VERIFY_COMMAND: &str = "agentpolicy.verify";

/// Verdicts of earlier runs, by what they depend on.
#[derive(Debug, Default)]
pub struct ProofCache {
    /// By agent name: the key of its inputs and the diagnostics its proofs gave.
    agents: HashMap<String, Cached>,
    asserts: Option<Cached>,
}

#[derive(Debug)]
struct Cached {
    key: u64,
    diagnostics: Vec<Diagnostic>,
}

/// What one run did: the `agentpolicy/proofsRun` notification's parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofSummary {
    /// Agents whose properties were proved in this run.
    pub proved_agents: Vec<String>,
    /// Agents whose verdicts came from the cache.
    pub cached_agents: Vec<String>,
    /// Whether the asserts were proved in this run (rather than taken from the cache).
    pub proved_asserts: bool,
    /// How many diagnostics the run produced (proofs and table building).
    pub diagnostics: usize,
    /// Why nothing was proved, if so (front-end errors, a table that cannot be built).
    pub skipped: Option<String>,
}

/// A proof run's summary and its diagnostics.
#[derive(Debug, Clone, Default)]
pub struct ProofRun {
    pub summary: ProofSummary,
    pub diagnostics: Vec<Diagnostic>,
}

impl ProofRun {
    fn skipped(reason: impl Into<String>, diagnostics: Vec<Diagnostic>) -> ProofRun {
        ProofRun {
            summary: ProofSummary {
                diagnostics: diagnostics.len(),
                skipped: Some(reason.into()),
                ..ProofSummary::default()
            },
            diagnostics,
        }
    }
}

/// What a run needs from the state, taken under its lock so the run itself does not
/// hold it.
#[derive(Debug, Clone)]
pub struct ProofInput {
    model: Arc<Model>,
    /// `(path, text)` indexed by file id, as `codegen::build_table` wants them.
    sources: Vec<(String, String)>,
}

/// The input of a run, or why there is none: proofs need a clean front end.
pub fn input(state: &PolicyState, analysis: &Analysis) -> Result<ProofInput, String> {
    if analysis.has_errors() {
        return Err("the policy has errors; fix them to run the proofs".to_string());
    }
    // User file ids are small and dense (a removed file leaves a gap, filled with an
    // empty text); library modules live far above them and declare no rules.
    let len = state
        .files()
        .iter()
        .map(|d| d.id.0 as usize + 1)
        .max()
        .unwrap_or(0);
    let mut sources = vec![(String::new(), String::new()); len];
    for doc in state.files() {
        if let Some(slot) = sources.get_mut(doc.id.0 as usize) {
            let path = doc.uri.as_ref().map(|u| u.as_str().to_string());
            *slot = (path.unwrap_or_default(), state.text(doc).to_string());
        }
    }
    Ok(ProofInput {
        model: analysis.model.clone(),
        sources,
    })
}

/// Builds the table and proves what changed since the cached runs; the diagnostics are
/// every proof's, cached or new.
pub fn prove(input: &ProofInput, cache: &mut ProofCache, config: &Config) -> ProofRun {
    let model = &input.model;
    let table = match agentpolicy::codegen::build_table(model, &input.sources) {
        Ok(table) => table,
        Err(diagnostics) => {
            return ProofRun::skipped("the decision table cannot be built", diagnostics);
        }
    };
    let data = table.data();
    let mut summary = ProofSummary::default();
    let mut diagnostics = Vec::new();
    let shared = shared_key(model, data, config);
    for (a, agent) in model.agents.iter().enumerate() {
        let key = agent_key(shared, model, data, a);
        match cache.agents.get(&agent.name) {
            Some(cached) if cached.key == key => {
                summary.cached_agents.push(agent.name.clone());
            }
            _ => {
                let scope = Scope {
                    agents: Some(vec![a]),
                    asserts: false,
                };
                let report = verify::verify_scoped(model, &table, config, &scope);
                cache.agents.insert(
                    agent.name.clone(),
                    Cached {
                        key,
                        diagnostics: report.diagnostics(),
                    },
                );
                summary.proved_agents.push(agent.name.clone());
            }
        }
        if let Some(cached) = cache.agents.get(&agent.name) {
            diagnostics.extend(cached.diagnostics.iter().cloned());
        }
    }
    cache
        .agents
        .retain(|name, _| model.agents.iter().any(|a| &a.name == name));
    let key = policy_key(model, data, config);
    if cache.asserts.as_ref().is_none_or(|c| c.key != key) {
        let scope = Scope {
            agents: Some(Vec::new()),
            asserts: true,
        };
        let report = verify::verify_scoped(model, &table, config, &scope);
        cache.asserts = Some(Cached {
            key,
            diagnostics: report.diagnostics(),
        });
        summary.proved_asserts = true;
    }
    if let Some(cached) = &cache.asserts {
        diagnostics.extend(cached.diagnostics.iter().cloned());
    }
    summary.diagnostics = diagnostics.len();
    ProofRun {
        summary,
        diagnostics,
    }
}

/// Hashes a value's `Debug` text: every model and table type derives `Debug`, and its
/// text holds every field, locations included.
fn feed(hasher: &mut DefaultHasher, value: &impl Debug) {
    format!("{value:?}").hash(hasher);
}

/// The hash of the policy-wide data any agent's proofs may read, computed once per run.
fn shared_key(model: &Model, data: &TableData, config: &Config) -> u64 {
    let mut h = DefaultHasher::new();
    feed(&mut h, config);
    feed(&mut h, &data.policy);
    feed(&mut h, &data.files);
    feed(&mut h, &data.tiers);
    feed(&mut h, &data.keys);
    feed(&mut h, &data.resources);
    feed(&mut h, &data.sinks);
    feed(&mut h, &data.routes);
    feed(&mut h, &data.texts);
    feed(&mut h, &data.tools);
    feed(&mut h, &model.policy);
    feed(&mut h, &model.tiers);
    feed(&mut h, &model.keys);
    feed(&mut h, &model.resources);
    feed(&mut h, &model.sinks);
    feed(&mut h, &model.tools);
    feed(&mut h, &model.thresholds);
    feed(&mut h, &model.routes);
    h.finish()
}

/// The key of agent `a`'s verdicts: everything its per-agent proofs can read, the
/// policy-wide part as `shared`.
fn agent_key(shared: u64, model: &Model, data: &TableData, a: usize) -> u64 {
    let mut h = DefaultHasher::new();
    shared.hash(&mut h);
    a.hash(&mut h);
    // The agent's own: its entry, its row of cells, its rules.
    feed(&mut h, &data.agents.get(a));
    feed(&mut h, &model.agents.get(a));
    let tools = data.tools.len();
    feed(&mut h, &data.cells.get(a * tools..(a + 1) * tools));
    for (i, rule) in model.rules.iter().enumerate() {
        if rule.agent.index() == a {
            feed(&mut h, rule);
            feed(&mut h, &data.rules.get(i));
        }
    }
    // A declared store (`resource R { from SINK }`) couples the agents' isolation proofs:
    // whether it can carry one key value's data to another session depends on what every
    // agent's sessions can write to it.
    if !model.keys.is_empty() && model.resources.iter().any(|r| r.store.is_some()) {
        feed(&mut h, &data.agents);
        feed(&mut h, &data.cells);
        feed(&mut h, &data.rules);
        feed(&mut h, &model.agents);
        feed(&mut h, &model.rules);
    }
    h.finish()
}

/// The key of the asserts' verdicts: the whole model and table.
fn policy_key(model: &Model, data: &TableData, config: &Config) -> u64 {
    let mut h = DefaultHasher::new();
    feed(&mut h, config);
    feed(&mut h, model);
    feed(&mut h, data);
    h.finish()
}

//! Running a policy's `test` blocks through its compiled decision table.
//!
//! Each test runs in a fresh runtime `Engine` (a manual clock, no audit log): its calls
//! are decided in order in one session per agent, and the expectation is checked
//! against the last call's decision (the policy's decision, which in shadow mode is the
//! would-be outcome). An escalated call is approved, as a human would, so it counts as
//! performed: the session evolves exactly as it would in production. No IO.

use std::sync::Arc;

use agentpolicy_runtime::engine::{Labels, ManualClock, Resolution, SessionId};
use agentpolicy_runtime::{
    ArgValue, Call, Decision, DecisionTable, Engine, EngineConfig, Outcome, RuleIndex,
    SessionOptions, Stage,
};

use crate::model::{AgentId, Expected, Loc, Model, TestCall, TestDef, Value};
use crate::syntax::ast::DenyReason;

/// The result of one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    pub name: String,
    /// The whole `test` block.
    pub loc: Loc,
    /// The call whose decision was checked (the last).
    pub checked_call: Option<Loc>,
    pub passed: bool,
    /// What the test expects, in words (`escalate to ops_leads`).
    pub expected: String,
    /// What the table decided, with the reason and the deciding rule.
    pub actual: String,
    /// Why a call could not even be built (a name the table lacks); the test fails.
    pub error: Option<String>,
}

/// Every test's result, and which rules decided at least one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestReport {
    pub results: Vec<TestResult>,
    /// Indexed by rule: whether some call of some test was decided by that rule.
    pub covered: Vec<bool>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed).count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// Rules no test exercised, by index.
    pub fn uncovered(&self) -> impl Iterator<Item = RuleIndex> + '_ {
        self.covered
            .iter()
            .enumerate()
            .filter(|(_, c)| !**c)
            .map(|(i, _)| RuleIndex(i as u32))
    }
}

/// Runs every test of `model` against `table` (compiled from the same model).
pub fn run_tests(model: &Model, table: &DecisionTable) -> TestReport {
    let mut covered = vec![false; table.data().rules.len()];
    let results = model
        .tests
        .iter()
        .map(|test| run_test(model, table, test, &mut covered))
        .collect();
    TestReport { results, covered }
}

fn run_test(
    model: &Model,
    table: &DecisionTable,
    test: &TestDef,
    covered: &mut [bool],
) -> TestResult {
    let expected = describe_expected(model, &test.expect);
    let result = |checked_call, passed, actual: String, error: Option<String>| TestResult {
        name: test.name.clone(),
        loc: test.loc,
        checked_call,
        passed,
        expected: expected.clone(),
        actual,
        error,
    };
    let config = EngineConfig {
        clock: Arc::new(ManualClock::new(0)),
        shards: 1,
        ..EngineConfig::default()
    };
    let engine = match Engine::new(table.clone(), config) {
        Ok(e) => e,
        Err(e) => return result(None, false, String::new(), Some(e.to_string())),
    };
    let mut sessions: Vec<(AgentId, SessionId)> = Vec::new();
    let mut last: Option<(Decision, Loc)> = None;
    for call in &test.steps {
        let decision = match perform(model, &engine, &mut sessions, call) {
            Ok(d) => d,
            Err(error) => return result(Some(call.loc), false, String::new(), Some(error)),
        };
        mark_covered(table, call, &decision, covered);
        last = Some((decision, call.loc));
    }
    match last {
        None => result(
            None,
            false,
            "no call".to_string(),
            Some("the test makes no call".to_string()),
        ),
        Some((decision, at)) => result(
            Some(at),
            matches(&test.expect, &decision),
            decision.explain(table.data()).to_string(),
            None,
        ),
    }
}

/// Decides one call in its agent's session; approves it if it escalates.
fn perform(
    model: &Model,
    engine: &Engine,
    sessions: &mut Vec<(AgentId, SessionId)>,
    call: &TestCall,
) -> Result<Decision, String> {
    let agent = &model.agents[call.agent.index()].name;
    let session = match sessions.iter().find(|(a, _)| *a == call.agent) {
        Some((_, s)) => *s,
        None => {
            let s = engine
                .open_session(agent, SessionOptions::default())
                .map_err(|e| e.to_string())?;
            sessions.push((call.agent, s));
            s
        }
    };
    let tool = &model.tools[call.tool.index()];
    let lists: Vec<Vec<&str>> = call
        .args
        .iter()
        .map(|v| match v {
            Some(Value::TextList(items)) => items.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        })
        .collect();
    let untrusted: Vec<&str> = call
        .untrusted
        .iter()
        .filter_map(|i| tool.params.get(*i))
        .map(|p| p.name.as_str())
        .collect();
    let args: Vec<(&str, ArgValue<'_>)> = tool
        .params
        .iter()
        .zip(&call.args)
        .zip(&lists)
        .filter_map(|((param, value), list)| {
            let arg = match value.as_ref()? {
                Value::Money(v) => ArgValue::Money(*v),
                Value::Number(v) => ArgValue::Number(*v),
                Value::Duration(v) => ArgValue::Duration(*v),
                Value::Bool(b) => ArgValue::Bool(*b),
                Value::Text(t) => ArgValue::Text(t),
                Value::TextList(_) => ArgValue::TextList(list),
            };
            Some((param.name.as_str(), arg))
        })
        .collect();
    let read_keys = call.on.as_ref().map(|on| key_names(model, &on.keys));
    let write_keys = call.into.as_ref().map(|into| key_names(model, &into.keys));
    let request = Call {
        tool: &tool.name,
        args: &args,
        untrusted: &untrusted,
        confidence: call.confidence,
        read: call
            .on
            .as_ref()
            .zip(read_keys.as_deref())
            .map(|(on, keys)| Labels {
                target: &model.resources[on.resource.index()].name,
                keys,
            }),
        write: call
            .into
            .as_ref()
            .zip(write_keys.as_deref())
            .map(|(into, keys)| Labels {
                target: &model.sinks[into.sink.index()].name,
                keys,
            }),
        reasoning: None,
    };
    let verdict = engine.decide(session, &request);
    if let agentpolicy_runtime::engine::Reason::Request(
        e @ agentpolicy_runtime::RequestError::UnboundSet { .. },
    ) = &verdict.reason
    {
        return Err(format!("the call cannot be decided: {e}"));
    }
    if let Some(escalation) = verdict.escalation {
        engine
            .resolve(escalation, Resolution::Approve, "agentpolicy test")
            .map_err(|e| e.to_string())?;
    }
    Ok(verdict.decision)
}

/// Marks the rules that decided `decision`: the deciding rule, and for an escalation
/// every other escalate rule of the cell that sent it to one of its routes. `decide`
/// escalates to the routes of *all* matching escalate rules, so a rule after the first
/// one decides where the call goes as much as the first does. Which rules matched is
/// read off the routes, conservatively: a rule counts only when no other escalate rule
/// of the cell has its route, so only that rule can have put the route there.
fn mark_covered(table: &DecisionTable, call: &TestCall, decision: &Decision, covered: &mut [bool]) {
    let mut mark = |rule: RuleIndex| {
        if let Some(c) = covered.get_mut(rule.index()) {
            *c = true;
        }
    };
    if let Some(rule) = decision.rule {
        mark(rule);
    }
    if decision.outcome != Outcome::Escalate {
        return;
    }
    let data = table.data();
    // Model agent and tool ids are the table's (codegen keeps model order).
    let cell = data.cell(
        agentpolicy_runtime::AgentId(call.agent.0),
        agentpolicy_runtime::ToolId(call.tool.0),
    );
    let Some(cell) = cell else { return };
    let route_of = |rule: RuleIndex| data.rules.get(rule.index()).and_then(|r| r.route);
    for entry in &cell.escalate {
        let Some(route) = route_of(entry.rule) else {
            continue;
        };
        let sharing = cell
            .escalate
            .iter()
            .filter(|e| route_of(e.rule) == Some(route))
            .count();
        if sharing == 1 && decision.routes.contains(route) {
            mark(entry.rule);
        }
    }
}

fn key_names<'a>(
    model: &'a Model,
    keys: &'a [(crate::model::KeyId, String)],
) -> Vec<(&'a str, &'a str)> {
    keys.iter()
        .map(|(k, v)| (model.keys[k.index()].name.as_str(), v.as_str()))
        .collect()
}

fn matches(expected: &Expected, decision: &Decision) -> bool {
    match expected {
        Expected::Allow => decision.outcome == Outcome::Allow,
        // Model route ids are the table's (codegen keeps model order).
        Expected::Escalate(routes) => {
            decision.outcome == Outcome::Escalate
                && (routes.is_empty()
                    || (routes.len() == decision.routes.len()
                        && routes
                            .iter()
                            .all(|r| decision.routes.contains(agentpolicy_runtime::RouteId(r.0)))))
        }
        Expected::Deny(reason) => {
            decision.outcome == Outcome::Deny
                && match reason {
                    None => true,
                    Some(DenyReason::Flow) => decision.stage() == Stage::Flow,
                    Some(DenyReason::Limit) => decision.stage() == Stage::Limit,
                    Some(DenyReason::Suspended) => decision.stage() == Stage::Suspended,
                    Some(DenyReason::NotGranted) => decision.stage() == Stage::NotGranted,
                    Some(DenyReason::NoRule) => decision.stage() == Stage::NoRule,
                    Some(DenyReason::Rule) => decision.stage() == Stage::Rule,
                }
        }
    }
}

fn describe_expected(model: &Model, expected: &Expected) -> String {
    match expected {
        Expected::Allow => "allow".to_string(),
        Expected::Escalate(routes) if routes.is_empty() => "escalate".to_string(),
        Expected::Escalate(routes) => format!(
            "escalate to {}",
            routes
                .iter()
                .map(|r| model.routes[r.index()].name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Expected::Deny(None) => "deny".to_string(),
        Expected::Deny(Some(reason)) => format!(
            "deny ({})",
            match reason {
                DenyReason::Flow => "flow",
                DenyReason::Limit => "limit",
                DenyReason::Suspended => "suspended",
                DenyReason::NotGranted => "not granted",
                DenyReason::NoRule => "no rule",
                DenyReason::Rule => "rule",
            }
        ),
    }
}

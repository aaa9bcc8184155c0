//! Running a policy's `test` blocks through its compiled decision table.
//!
//! Each test is one session of the runtime: its calls run in order, each a request built
//! by name and answered by `agentpolicy_runtime::decide`, and the expectation is checked
//! against the last call's decision. Between calls the session evolves as the engine's
//! would: a call that is not denied counts as performed (an escalation counts as
//! approved), so its reads raise the session's tier and bind its isolation keys, and it
//! uses one call of each `calls` limit. No IO.

use agentpolicy_runtime::{
    self as rt, ArgValue, Decision, DecisionTable, KeyBindings, KeyValueInterner, Outcome,
    RuleIndex, SessionView, Stage,
};

use crate::model::{Expected, Loc, Model, TestCall, TestDef, Value};
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
    let mut session = SessionState::default();
    let mut last: Option<(Decision, Loc)> = None;
    let expected = describe_expected(model, &test.expect);
    for call in &test.steps {
        let request = match build_request(model, table, call, &mut session) {
            Ok(r) => r,
            Err(error) => {
                return TestResult {
                    name: test.name.clone(),
                    loc: test.loc,
                    checked_call: Some(call.loc),
                    passed: false,
                    expected,
                    actual: String::new(),
                    error: Some(error),
                };
            }
        };
        let decision = rt::decide(table, &request);
        if let Some(rule) = decision.rule
            && let Some(c) = covered.get_mut(rule.index())
        {
            *c = true;
        }
        if decision.outcome != Outcome::Deny {
            session.perform(table, &request);
        }
        last = Some((decision, call.loc));
    }
    let Some((decision, at)) = last else {
        return TestResult {
            name: test.name.clone(),
            loc: test.loc,
            checked_call: None,
            passed: false,
            expected,
            actual: "no call".to_string(),
            error: Some("the test makes no call".to_string()),
        };
    };
    TestResult {
        name: test.name.clone(),
        loc: test.loc,
        checked_call: Some(at),
        passed: matches(&test.expect, &decision),
        expected,
        actual: decision.explain(table.data()).to_string(),
        error: None,
    }
}

/// The session as the tests see it: labels and call counters.
#[derive(Debug, Default)]
struct SessionState {
    tier: Option<rt::TierId>,
    bound: KeyBindings,
    interner: KeyValueInterner,
    usage: [u64; rt::MAX_LIMITS],
}

impl SessionState {
    fn view(&self) -> SessionView {
        SessionView {
            tier: self.tier,
            bound: self.bound,
            usage: self.usage,
            ..SessionView::default()
        }
    }

    /// Applies a performed call: its reads label the session; it uses one call.
    fn perform(&mut self, table: &DecisionTable, request: &rt::Request) {
        let data = table.data();
        let read_tiers: Vec<rt::TierId> = match &request.read {
            Some(access) => {
                for (key, value) in access.keys.iter() {
                    self.bound.set(key, value);
                }
                data.resources
                    .get(access.target.index())
                    .map(|r| r.tier)
                    .into_iter()
                    .collect()
            }
            None => data
                .tools
                .get(request.tool.index())
                .map(|t| {
                    t.reads
                        .iter()
                        .filter_map(|r| data.resources.get(r.index()).map(|r| r.tier))
                        .collect()
                })
                .unwrap_or_default(),
        };
        for tier in read_tiers {
            self.tier = Some(self.tier.map_or(tier, |t| t.max(tier)));
        }
        if let Some(agent) = data.agents.get(request.agent.index()) {
            for (i, limit) in agent.limits.iter().enumerate() {
                if limit.unit == rt::LimitUnit::Calls
                    && let Some(u) = self.usage.get_mut(i)
                {
                    *u += 1;
                }
            }
        }
    }
}

fn build_request(
    model: &Model,
    table: &DecisionTable,
    call: &TestCall,
    session: &mut SessionState,
) -> Result<rt::Request, String> {
    let agent = &model.agents[call.agent.index()].name;
    let tool = &model.tools[call.tool.index()];
    let mut builder = table
        .request(agent, &tool.name)
        .map_err(|e| e.to_string())?;
    for (param, value) in tool.params.iter().zip(&call.args) {
        let Some(value) = value else { continue };
        let arg = match value {
            Value::Money(v) => ArgValue::Money(*v),
            Value::Number(v) => ArgValue::Number(*v),
            Value::Duration(v) => ArgValue::Duration(*v),
            Value::Bool(b) => ArgValue::Bool(*b),
            Value::Text(t) => ArgValue::Text(t),
        };
        builder = builder.arg(&param.name, arg).map_err(|e| e.to_string())?;
    }
    if let Some(c) = call.confidence {
        builder = builder.confidence(c);
    }
    if let Some(on) = &call.on {
        let keys: Vec<(&str, rt::KeyValue)> = on
            .keys
            .iter()
            .map(|(k, v)| {
                (
                    model.keys[k.index()].name.as_str(),
                    session.interner.intern(v),
                )
            })
            .collect();
        builder = builder
            .read(&model.resources[on.resource.index()].name, &keys)
            .map_err(|e| e.to_string())?;
    }
    Ok(builder.session(session.view()).build())
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
                            .all(|r| decision.routes.contains(rt::RouteId(r.0)))))
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

//! A clinic table for engine tests (tiers public < internal < phi, `patient`
//! isolation), plus an engine on a manual clock and a temporary audit log.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentpolicy_runtime::audit::{AuditLog, Durability, Filter, Record, query};
use agentpolicy_runtime::engine::{BreakerSettings, EngineConfig, ManualClock};
use agentpolicy_runtime::*;

use super::fixture::{RuleSpec, cmp, rule, table_from, usd};

pub const PHI: TierId = TierId(2);
pub const PATIENT: KeyId = KeyId(0);

// Tools.
pub const READ_CHART: u32 = 0;
pub const READ_SCHEDULE: u32 = 1;
pub const POST_NOTE: u32 = 2;
pub const WRITE_CHART: u32 = 3;
pub const ORDER_TEST: u32 = 4;
// Agents.
pub const SCRIBE: u32 = 0;
pub const TRIAL: u32 = 1;
pub const BILLER: u32 = 2;
// Routes.
pub const CHARGE_NURSE: u32 = 0;
pub const BILLING_DESK: u32 = 1;

/// Start of every test clock: 2026-01-01T00:00:00Z.
pub const T0: i64 = 1_767_225_600_000;

fn tool(name: &str, params: Vec<Param>, reads: Vec<u32>, writes: Vec<u32>) -> Tool {
    Tool {
        name: name.into(),
        params,
        effects: vec![],
        reads: reads.into_iter().map(ResourceId).collect(),
        writes: writes.into_iter().map(SinkId).collect(),
    }
}

fn text(name: &str) -> Param {
    Param {
        name: name.into(),
        ty: ValueType::Text,
        optional: false,
    }
}

fn base() -> TableData {
    TableData {
        format_version: FORMAT_VERSION,
        source_hash: source_hash(&[("clinic.agentpolicy", "policy clinic")]),
        policy: PolicyInfo {
            name: "clinic".into(),
            version: Some("1".into()),
        },
        files: vec!["clinic.agentpolicy".into()],
        tiers: vec!["public".into(), "internal".into(), "phi".into()],
        keys: vec!["patient".into()],
        resources: vec![
            Resource {
                name: "chart".into(),
                tier: PHI,
                keyed: vec![PATIENT],
            },
            Resource {
                name: "schedule".into(),
                tier: TierId(1),
                keyed: vec![],
            },
        ],
        sinks: vec![
            Sink {
                name: "public_notes".into(),
                clearance: TierId(0),
                keyed: vec![],
            },
            Sink {
                name: "chart_notes".into(),
                clearance: PHI,
                keyed: vec![PATIENT],
            },
        ],
        routes: vec![
            Route {
                name: "charge_nurse".into(),
                notify: Some("pager:charge-nurse".into()),
                timeout_ms: Some(600_000),
                timeout_outcome: Some(TimeoutOutcome::Deny),
            },
            Route {
                name: "billing_desk".into(),
                notify: Some("queue:billing".into()),
                timeout_ms: Some(3_600_000),
                timeout_outcome: Some(TimeoutOutcome::Allow),
            },
        ],
        texts: vec![],
        tools: vec![
            tool("read_chart", vec![], vec![0], vec![]),
            tool("read_schedule", vec![], vec![1], vec![]),
            tool("post_note", vec![text("text")], vec![], vec![0]),
            tool("write_chart", vec![text("text")], vec![], vec![1]),
            tool(
                "order_test",
                vec![Param {
                    name: "cost".into(),
                    ty: ValueType::Money,
                    optional: false,
                }],
                vec![],
                vec![],
            ),
        ],
        agents: vec![
            Agent {
                name: "scribe".into(),
                owner: Some("clinic-ops@example.org".into()),
                mode: Mode::Enforce,
                max_tier: None,
                limits: vec![
                    Limit {
                        count: 100,
                        unit: LimitUnit::Calls,
                        window: LimitWindow::Task,
                    },
                    Limit {
                        count: 20,
                        unit: LimitUnit::Calls,
                        window: LimitWindow::Minute,
                    },
                    Limit {
                        count: 50_000,
                        unit: LimitUnit::Tokens,
                        window: LimitWindow::Task,
                    },
                ],
                breakers: vec![Breaker {
                    metric: BreakerMetric::ErrorRate,
                    op: CmpOp::Gt,
                    value: 200_000,
                    window_ms: 300_000,
                    scope: SuspendScope::Agent,
                }],
            },
            Agent {
                name: "trial".into(),
                owner: None,
                mode: Mode::Shadow,
                max_tier: None,
                limits: vec![],
                breakers: vec![],
            },
            Agent {
                name: "biller".into(),
                owner: None,
                mode: Mode::Enforce,
                max_tier: None,
                limits: vec![],
                breakers: vec![Breaker {
                    metric: BreakerMetric::Calls,
                    op: CmpOp::Gt,
                    value: 5,
                    window_ms: 60_000,
                    scope: SuspendScope::Engine,
                }],
            },
        ],
        rules: vec![],
        cells: vec![],
        ..TableData::default()
    }
}

fn rules() -> Vec<RuleSpec> {
    let over_500 = Some(vec![cmp(0, CmpOp::Gt, usd(500))]);
    vec![
        rule(SCRIBE, RuleKind::Allow, Some(READ_CHART), None, None),
        rule(SCRIBE, RuleKind::Allow, Some(READ_SCHEDULE), None, None),
        rule(SCRIBE, RuleKind::Allow, Some(POST_NOTE), None, None),
        rule(SCRIBE, RuleKind::Allow, Some(WRITE_CHART), None, None),
        rule(
            SCRIBE,
            RuleKind::Escalate,
            Some(ORDER_TEST),
            Some(CHARGE_NURSE),
            over_500.clone(),
        ),
        rule(SCRIBE, RuleKind::Allow, Some(ORDER_TEST), None, None),
        rule(TRIAL, RuleKind::Allow, Some(READ_CHART), None, None),
        rule(TRIAL, RuleKind::Allow, Some(POST_NOTE), None, None),
        rule(
            TRIAL,
            RuleKind::Escalate,
            Some(ORDER_TEST),
            Some(CHARGE_NURSE),
            over_500,
        ),
        rule(BILLER, RuleKind::Allow, Some(READ_SCHEDULE), None, None),
        rule(
            BILLER,
            RuleKind::Escalate,
            Some(ORDER_TEST),
            Some(BILLING_DESK),
            None,
        ),
    ]
}

pub fn clinic() -> DecisionTable {
    table_from(base(), rules())
}

/// The clinic table with other policy text (so another hash) and its agents changed.
pub fn clinic_with(change: impl FnOnce(&mut TableData)) -> DecisionTable {
    let mut data = base();
    change(&mut data);
    table_from(data, rules())
}

pub struct Rig {
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    pub log: Option<PathBuf>,
}

impl Rig {
    /// Every record written so far.
    pub fn records(&self) -> Vec<Record> {
        let path = self.log.as_ref().expect("this rig has an audit log");
        let file = std::fs::File::open(path).expect("open the log");
        query(std::io::BufReader::new(file), &Filter::default())
            .expect("read the log")
            .records
    }
}

/// A fresh directory under the system temp dir, unique to the test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agentpolicy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

pub fn config(clock: &Arc<ManualClock>) -> EngineConfig {
    EngineConfig {
        clock: clock.clone(),
        shards: 4,
        breakers: BreakerSettings {
            min_results: 10,
            cooldown: None,
        },
        ..EngineConfig::default()
    }
}

/// An engine on the clinic table, without an audit log.
pub fn rig() -> Rig {
    rig_with(clinic(), |_| {})
}

pub fn rig_with(table: DecisionTable, change: impl FnOnce(&mut EngineConfig)) -> Rig {
    let clock = Arc::new(ManualClock::new(T0));
    let mut config = config(&clock);
    change(&mut config);
    Rig {
        engine: Engine::new(table, config).expect("start the engine"),
        clock,
        log: None,
    }
}

/// An engine on the clinic table writing an audit log in a fresh directory.
pub fn audited(name: &str, change: impl FnOnce(&mut EngineConfig)) -> Rig {
    let clock = Arc::new(ManualClock::new(T0));
    let path = temp_dir(name).join("audit.jsonl");
    let log = AuditLog::open(&path, Durability::default(), clock.as_ref()).expect("open the log");
    let mut config = config(&clock);
    config.audit = Some(log);
    change(&mut config);
    Rig {
        engine: Engine::new(clinic(), config).expect("start the engine"),
        clock,
        log: Some(path),
    }
}

pub fn session(rig: &Rig, agent: &str) -> engine::SessionId {
    rig.engine
        .open_session(agent, SessionOptions::default())
        .expect("open a session")
}

/// A poll interval short enough for tests that wait on the background thread.
pub const FAST: Duration = Duration::from_millis(20);

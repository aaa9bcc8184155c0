//! A small legal-practice table built directly from runtime types, shared by the
//! runtime's integration test modules and mirroring the example in DESIGN.md.

use agentpolicy_runtime::*;

pub const PUBLIC: TierId = TierId(0);
pub const CONFIDENTIAL: TierId = TierId(2);
pub const PRIVILEGED: TierId = TierId(3);
pub const MATTER: KeyId = KeyId(0);

/// Dollars as cents, the unit of money values.
pub const fn usd(dollars: i64) -> i64 {
    dollars * 100
}

pub struct RuleSpec {
    pub agent: u32,
    pub kind: RuleKind,
    /// `None` is `*`.
    pub tool: Option<u32>,
    pub route: Option<u32>,
    pub code: Option<Vec<Op>>,
}

pub fn rule(
    agent: u32,
    kind: RuleKind,
    tool: Option<u32>,
    route: Option<u32>,
    code: Option<Vec<Op>>,
) -> RuleSpec {
    RuleSpec {
        agent,
        kind,
        tool,
        route,
        code,
    }
}

pub fn cmp(slot: u8, op: CmpOp, value: i64) -> Op {
    Op::Compare {
        slot: Slot(slot),
        op,
        value,
    }
}

/// Lays rules out into cells the way the compiler does: a tool is granted by an allow
/// or escalate naming it; `*` rules join every granted cell; lists keep source order.
pub fn table_with(rules: Vec<RuleSpec>) -> DecisionTable {
    table_from(base(), rules)
}

/// [`table_with`] over any base table (its rules and cells are replaced).
pub fn table_from(mut data: TableData, rules: Vec<RuleSpec>) -> DecisionTable {
    data.rules.clear();
    data.cells.clear();
    for (i, r) in rules.iter().enumerate() {
        data.rules.push(Rule {
            id: format!("r{i}"),
            agent: AgentId(r.agent),
            kind: r.kind,
            target: r.tool.map_or(Target::All, |t| Target::Tool(ToolId(t))),
            route: r.route.map(RouteId),
            span: Span {
                file: FileIndex(0),
                start: i as u32 * 10,
                end: i as u32 * 10 + 5,
                line: i as u32 + 1,
                column: 3,
            },
        });
    }
    for a in 0..data.agents.len() as u32 {
        for t in 0..data.tools.len() as u32 {
            let granted = rules
                .iter()
                .any(|r| r.agent == a && r.kind != RuleKind::Deny && r.tool == Some(t));
            let mut cell = Cell {
                granted,
                ..Cell::default()
            };
            if granted {
                for (i, r) in rules.iter().enumerate() {
                    if r.agent != a || !(r.tool.is_none() || r.tool == Some(t)) {
                        continue;
                    }
                    let entry = Entry {
                        rule: RuleIndex(i as u32),
                        condition: r.code.clone().map(|c| Condition::new(c).unwrap()),
                    };
                    match r.kind {
                        RuleKind::Deny => cell.deny.push(entry),
                        RuleKind::Escalate => cell.escalate.push(entry),
                        RuleKind::Allow => cell.allow.push(entry),
                    }
                }
            }
            data.cells.push(cell);
        }
    }
    DecisionTable::new(data).unwrap()
}

// Tools.
pub const SEARCH_DOCS: u32 = 0;
pub const READ_SETTLEMENT: u32 = 1;
pub const SEND_EMAIL: u32 = 2;
pub const WIRE_FUNDS: u32 = 3;
pub const SAVE_NOTE: u32 = 4;
// Agents.
pub const INTAKE: u32 = 0;
pub const PARTNER: u32 = 1;
// Routes.
pub const OPS: u32 = 0;
pub const LEGAL: u32 = 1;

fn param(name: &str, ty: ValueType, optional: bool) -> Param {
    Param {
        name: name.into(),
        ty,
        optional,
    }
}

fn tool(name: &str, params: Vec<Param>, reads: Vec<u32>, writes: Vec<u32>) -> Tool {
    Tool {
        name: name.into(),
        params,
        effects: vec![],
        reads: reads.into_iter().map(ResourceId).collect(),
        writes: writes.into_iter().map(SinkId).collect(),
    }
}

fn agent(name: &str, max_tier: Option<TierId>, limits: Vec<Limit>) -> Agent {
    Agent {
        name: name.into(),
        owner: Some("ops@acme.example".into()),
        mode: Mode::Enforce,
        max_tier,
        limits,
        breakers: vec![],
    }
}

fn base() -> TableData {
    TableData {
        format_version: FORMAT_VERSION,
        source_hash: source_hash(&[("firm.agentpolicy", "policy acme")]),
        policy: PolicyInfo {
            name: "acme_law".into(),
            version: Some("2026.11".into()),
        },
        files: vec!["firm.agentpolicy".into()],
        tiers: vec![
            "public".into(),
            "internal".into(),
            "confidential".into(),
            "privileged".into(),
        ],
        keys: vec!["matter".into()],
        resources: vec![
            Resource {
                name: "document".into(),
                tier: CONFIDENTIAL,
                keyed: vec![MATTER],
            },
            Resource {
                name: "settlement".into(),
                tier: PRIVILEGED,
                keyed: vec![MATTER],
            },
        ],
        sinks: vec![
            Sink {
                name: "outbound_mail".into(),
                clearance: PUBLIC,
                keyed: vec![],
            },
            Sink {
                name: "matter_notes".into(),
                clearance: CONFIDENTIAL,
                keyed: vec![MATTER],
            },
        ],
        routes: vec![
            Route {
                name: "ops_leads".into(),
                notify: Some("queue:ops-leads".into()),
                timeout_ms: Some(900_000),
                timeout_outcome: Some(TimeoutOutcome::Deny),
            },
            Route {
                name: "legal".into(),
                notify: None,
                timeout_ms: Some(60_000),
                timeout_outcome: Some(TimeoutOutcome::Deny),
            },
        ],
        texts: vec!["ceo@acme.example".into()],
        tools: vec![
            tool("search_docs", vec![], vec![0], vec![]),
            tool("read_settlement", vec![], vec![1], vec![]),
            tool(
                "send_email",
                vec![
                    param("to", ValueType::Text, false),
                    param("cc", ValueType::Text, true),
                    param("amount", ValueType::Money, true),
                ],
                vec![],
                vec![0],
            ),
            tool(
                "wire_funds",
                vec![
                    param("amount", ValueType::Money, false),
                    param("urgent", ValueType::Bool, true),
                ],
                vec![],
                vec![],
            ),
            tool("save_note", vec![], vec![0], vec![1]),
        ],
        agents: vec![
            agent(
                "intake",
                Some(CONFIDENTIAL),
                vec![Limit {
                    count: 100,
                    unit: LimitUnit::Calls,
                    window: LimitWindow::Task,
                }],
            ),
            agent("partner", None, vec![]),
        ],
        rules: vec![],
        cells: vec![],
        ..TableData::default()
    }
}

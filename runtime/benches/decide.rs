//! `decide` on a 1,000-rule table built from runtime types: 10 agents, 100 tools, 100
//! rules per agent (allow / escalate / deny with money thresholds, a text check and a
//! `*` confidence floor), plus a hot cell holding 100 rules of its own.
//!
//! Run: `cargo bench -p agentpolicy-runtime --bench decide`.

use std::hint::black_box;

use agentpolicy_runtime::*;
use criterion::{Criterion, criterion_group, criterion_main};

const AGENTS: u32 = 10;
const TOOLS: u32 = 100;

fn build() -> Result<DecisionTable, InvalidTable> {
    let mut data = TableData {
        format_version: FORMAT_VERSION,
        source_hash: source_hash(&[("bench.agentpolicy", "")]),
        files: vec!["bench.agentpolicy".into()],
        tiers: vec!["public".into(), "confidential".into()],
        keys: vec!["matter".into()],
        resources: vec![Resource {
            name: "document".into(),
            tier: TierId(1),
            keyed: vec![KeyId(0)],
        }],
        routes: vec![Route {
            name: "ops".into(),
            notify: None,
            timeout_ms: Some(60_000),
            timeout_outcome: Some(TimeoutOutcome::Deny),
        }],
        texts: vec!["ceo@acme.example".into()],
        ..TableData::default()
    };
    for t in 0..TOOLS {
        data.tools.push(Tool {
            name: format!("tool{t}"),
            params: vec![
                Param {
                    name: "amount".into(),
                    ty: ValueType::Money,
                    optional: false,
                },
                Param {
                    name: "to".into(),
                    ty: ValueType::Text,
                    optional: true,
                },
            ],
            effects: vec![Effect::Financial],
            reads: vec![ResourceId(0)],
            writes: vec![],
        });
    }
    let cond = |code: Vec<Op>| Condition::new(code).ok();
    for a in 0..AGENTS {
        data.agents.push(Agent {
            name: format!("agent{a}"),
            owner: None,
            mode: Mode::Enforce,
            max_tier: Some(TierId(1)),
            limits: vec![Limit {
                count: 1_000,
                unit: LimitUnit::Calls,
                window: LimitWindow::Task,
            }],
            breakers: vec![],
        });
        // (kind, tool, condition) per rule: 100 rules per agent.
        let mut rules: Vec<(RuleKind, Option<u32>, Option<Condition>)> = Vec::new();
        for t in 0..30 {
            rules.push((
                RuleKind::Allow,
                Some(t),
                cond(vec![Op::Compare {
                    slot: Slot(0),
                    op: CmpOp::Le,
                    value: 10_000,
                }]),
            ));
            rules.push((
                RuleKind::Escalate,
                Some(t),
                cond(vec![Op::Compare {
                    slot: Slot(0),
                    op: CmpOp::Gt,
                    value: 10_000,
                }]),
            ));
        }
        for t in 0..10 {
            rules.push((
                RuleKind::Deny,
                Some(t),
                cond(vec![
                    Op::Compare {
                        slot: Slot(0),
                        op: CmpOp::Gt,
                        value: 1_000_000,
                    },
                    Op::Compare {
                        slot: Slot(1),
                        op: CmpOp::Eq,
                        value: 0,
                    },
                    Op::Or,
                ]),
            ));
        }
        // The hot cell: tool 99 with 10 deny, 10 escalate and 9 allow rules of its own.
        for i in 0..10 {
            rules.push((
                RuleKind::Deny,
                Some(99),
                cond(vec![Op::Compare {
                    slot: Slot(0),
                    op: CmpOp::Eq,
                    value: 7 + i,
                }]),
            ));
            rules.push((
                RuleKind::Escalate,
                Some(99),
                cond(vec![Op::Compare {
                    slot: Slot(0),
                    op: CmpOp::Gt,
                    value: 1_000_000 + i,
                }]),
            ));
        }
        for i in 0..9 {
            rules.push((
                RuleKind::Allow,
                Some(99),
                cond(vec![Op::Compare {
                    slot: Slot(0),
                    op: CmpOp::Le,
                    value: 100 - i,
                }]),
            ));
        }
        rules.push((
            RuleKind::Escalate,
            None,
            cond(vec![Op::Compare {
                slot: Slot::CONFIDENCE,
                op: CmpOp::Lt,
                value: 850_000,
            }]),
        ));
        let first = data.rules.len() as u32;
        for (i, (kind, tool, _)) in rules.iter().enumerate() {
            data.rules.push(Rule {
                id: format!("agent{a}/{}#{i}", kind.keyword()),
                agent: AgentId(a),
                kind: *kind,
                target: tool.map_or(Target::All, |t| Target::Tool(ToolId(t))),
                route: (*kind == RuleKind::Escalate).then_some(RouteId(0)),
                span: Span::default(),
            });
        }
        for t in 0..TOOLS {
            let granted = rules
                .iter()
                .any(|(k, tool, _)| *k != RuleKind::Deny && *tool == Some(t));
            let mut cell = Cell {
                granted,
                ..Cell::default()
            };
            if granted {
                for (i, (kind, tool, condition)) in rules.iter().enumerate() {
                    if tool.is_some_and(|x| x != t) {
                        continue;
                    }
                    let entry = Entry {
                        rule: RuleIndex(first + i as u32),
                        condition: condition.clone(),
                    };
                    match kind {
                        RuleKind::Deny => cell.deny.push(entry),
                        RuleKind::Escalate => cell.escalate.push(entry),
                        RuleKind::Allow => cell.allow.push(entry),
                    }
                }
            }
            data.cells.push(cell);
        }
    }
    DecisionTable::new(data)
}

fn bench(c: &mut Criterion) {
    let Ok(table) = build() else {
        eprintln!("the bench table does not validate");
        return;
    };
    assert_eq!(table.data().rules.len(), 1_000);
    let mut session = SessionView::default();
    session.bound.set(KeyId(0), KeyValue(1));
    session.tier = Some(TierId(1));
    let request = |tool: &str, cents: i64| -> Option<Request> {
        Some(
            table
                .request("agent3", tool)
                .ok()?
                .arg("amount", ArgValue::Money(cents))
                .ok()?
                .arg("to", ArgValue::Text("someone@example.com"))
                .ok()?
                .confidence(900_000)
                .read("document", &[("matter", KeyValue(1))])
                .ok()?
                .session(session)
                .build(),
        )
    };
    let cases = [
        ("allow", request("tool5", 5_000), Outcome::Allow),
        ("escalate", request("tool5", 50_000), Outcome::Escalate),
        ("deny_not_granted", request("tool50", 5_000), Outcome::Deny),
        ("hot_cell_allow", request("tool99", 50), Outcome::Allow),
    ];
    for (name, request, expected) in cases {
        let Some(request) = request else {
            eprintln!("could not build the {name} request");
            continue;
        };
        assert_eq!(decide(&table, &request).outcome, expected, "{name}");
        c.bench_function(&format!("decide/{name}"), |b| {
            b.iter(|| decide(black_box(&table), black_box(&request)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

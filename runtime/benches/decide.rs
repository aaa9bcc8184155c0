//! `decide` on a 1,000-rule table built from runtime types: 10 agents, 100 tools, 100
//! rules per agent (allow / escalate / deny with money thresholds, a text check and a
//! `*` confidence floor), plus a hot cell holding 100 rules of its own; and a payments
//! table whose rule tests a 10,000-member set and a glob (`payee in payees and
//! recipient matches "*@acme.example"`), decided alone and with the request built by
//! name (which runs the set's binary search and the glob once per argument).
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

/// One agent, one tool `pay(payee: text, recipient: text)`, one rule:
/// `allow pay when payee in payees and recipient matches "*@acme.example"`, with a
/// 10,000-member `payees` set.
fn payments() -> Result<DecisionTable, InvalidTable> {
    let mut members: Vec<String> = (0..10_000)
        .map(|i| format!("GB{i:02}NWBK{:014}", i * 7_919))
        .collect();
    members.sort();
    let mut data = TableData {
        format_version: FORMAT_VERSION,
        source_hash: source_hash(&[("payments.agentpolicy", "")]),
        files: vec!["payments.agentpolicy".into()],
        tiers: vec!["public".into()],
        sets: vec![ValueSet {
            name: "payees".into(),
            deploy: false,
            members,
            bound: true,
        }],
        ..TableData::default()
    };
    data.tools.push(Tool {
        name: "pay".into(),
        params: ["payee", "recipient"]
            .into_iter()
            .map(|n| Param {
                name: n.into(),
                ty: ValueType::Text,
                optional: false,
            })
            .collect(),
        effects: vec![Effect::Financial],
        reads: vec![],
        writes: vec![],
    });
    data.text_tests = vec![
        TextTest {
            tool: ToolId(0),
            param: 0,
            kind: TextTestKind::InSet(0),
        },
        TextTest {
            tool: ToolId(0),
            param: 1,
            kind: TextTestKind::Matches("*@acme.example".into()),
        },
    ];
    data.agents.push(Agent {
        name: "clerk".into(),
        owner: None,
        mode: Mode::Enforce,
        max_tier: None,
        limits: vec![],
        breakers: vec![],
    });
    data.rules.push(Rule {
        id: "clerk/allow/pay#1".into(),
        agent: AgentId(0),
        kind: RuleKind::Allow,
        target: Target::Tool(ToolId(0)),
        route: None,
        span: Span::default(),
    });
    data.cells.push(Cell {
        granted: true,
        allow: vec![Entry {
            rule: RuleIndex(0),
            condition: Condition::new(vec![
                Op::Any {
                    slot: Slot(0),
                    bit: 0,
                },
                Op::Any {
                    slot: Slot(1),
                    bit: 0,
                },
                Op::And,
            ])
            .ok(),
        }],
        ..Cell::default()
    });
    DecisionTable::new(data)
}

fn bench_sets(c: &mut Criterion) {
    let Ok(table) = payments() else {
        eprintln!("the payments table does not validate");
        return;
    };
    let member = table.data().sets[0].members[6_789].clone();
    let build = |payee: &str, to: &str| -> Option<Request> {
        Some(
            table
                .request("clerk", "pay")
                .ok()?
                .arg("payee", ArgValue::Text(payee))
                .ok()?
                .arg("recipient", ArgValue::Text(to))
                .ok()?
                .build(),
        )
    };
    let cases = [
        (
            "member",
            member.as_str(),
            "ana.lopez@acme.example",
            Outcome::Allow,
        ),
        (
            "not_member",
            "GB33BUKB20201555555555",
            "ana.lopez@acme.example",
            Outcome::Deny,
        ),
        (
            "glob_miss",
            member.as_str(),
            "ana.lopez@acme.example.evil",
            Outcome::Deny,
        ),
    ];
    for (name, payee, to, expected) in cases {
        let Some(request) = build(payee, to) else {
            eprintln!("could not build the {name} request");
            continue;
        };
        assert_eq!(decide(&table, &request).outcome, expected, "{name}");
        c.bench_function(&format!("decide/set10k_glob/{name}"), |b| {
            b.iter(|| decide(black_box(&table), black_box(&request)))
        });
        c.bench_function(&format!("build_and_decide/set10k_glob/{name}"), |b| {
            b.iter(|| build(black_box(payee), black_box(to)).map(|r| decide(&table, &r).outcome))
        });
    }
}

criterion_group!(benches, bench, bench_sets);
criterion_main!(benches);

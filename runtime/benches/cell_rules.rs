//! `decide` on one (agent, tool) cell holding many threshold rules: half deny rules
//! (`deny pay when amount == $K`, blocked amounts) and half allow rules
//! (`allow pay when amount < $L`, rising limits), at 2 (the baseline), 100, 1,000 and 10,000 rules. The
//! cell's interval tables (`runtime/src/cell_index`) make each list one binary search,
//! so the time should not grow with the number of rules.
//!
//! Run: `cargo bench -p agentpolicy-runtime --bench cell_rules`.

use std::hint::black_box;

use agentpolicy_runtime::*;
use criterion::{Criterion, criterion_group, criterion_main};

/// `indexed: false` writes each condition as `COMPARE and true`, the same test that is
/// not a threshold rule, so the cell is scanned linearly as before the index: the
/// baseline, measured under the same machine load.
fn table(rules: u32, indexed: bool) -> Result<DecisionTable, InvalidTable> {
    let mut data = TableData {
        format_version: FORMAT_VERSION,
        files: vec!["bench.agentpolicy".into()],
        ..TableData::default()
    };
    data.tools.push(Tool {
        name: "pay".into(),
        params: vec![Param {
            name: "amount".into(),
            ty: ValueType::Money,
            optional: false,
        }],
        effects: vec![Effect::Financial],
        reads: vec![],
        writes: vec![],
    });
    data.agents.push(Agent {
        name: "payer".into(),
        owner: None,
        mode: Mode::Enforce,
        max_tier: None,
        limits: vec![],
        breakers: vec![],
    });
    let mut cell = Cell {
        granted: true,
        ..Cell::default()
    };
    for i in 0..rules {
        let deny = i % 2 == 0;
        let (kind, op, value) = if deny {
            (RuleKind::Deny, CmpOp::Eq, 100_000_000 + i64::from(i))
        } else {
            (RuleKind::Allow, CmpOp::Lt, 100 * i64::from(i + 1))
        };
        data.rules.push(Rule {
            id: format!("r{i}"),
            agent: AgentId(0),
            kind,
            target: Target::Tool(ToolId(0)),
            route: None,
            span: Span::default(),
        });
        let entry = Entry {
            rule: RuleIndex(i),
            condition: Condition::new(if indexed {
                vec![Op::Compare {
                    slot: Slot(0),
                    op,
                    value,
                }]
            } else {
                vec![
                    Op::Compare {
                        slot: Slot(0),
                        op,
                        value,
                    },
                    Op::Const(true),
                    Op::And,
                ]
            })
            .ok(),
        };
        if deny {
            cell.deny.push(entry);
        } else {
            cell.allow.push(entry);
        }
    }
    data.cells.push(cell);
    DecisionTable::new(data)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("cell_rules");
    for (rules, indexed) in [
        // The baseline: one deny and one allow rule, scanned (too few to index).
        (2u32, true),
        (100, true),
        (1_000, true),
        (10_000, true),
        (100, false),
        (1_000, false),
        (10_000, false),
    ] {
        let Ok(t) = table(rules, indexed) else {
            continue;
        };
        let kind = match (indexed, rules) {
            (true, 2) => "baseline",
            (true, _) => "indexed",
            (false, _) => "linear",
        };
        let request = |cents: i64| {
            t.request("payer", "pay")
                .and_then(|b| b.arg("amount", ArgValue::Money(cents)))
                .map(RequestBuilder::build)
        };
        let cases = [
            // Allowed by the first allow rule.
            ("first_allow", 50),
            // Allowed by the last allow rule.
            ("last_allow", 100 * i64::from(rules / 2) - 1),
            // A blocked amount: the last deny rule.
            ("last_deny", 100_000_000 + i64::from(rules) - 2),
            // No rule matches: every rule is tested by a linear scan.
            ("no_rule", 200_000_000),
        ];
        for (name, cents) in cases {
            let Ok(r) = request(cents) else {
                continue;
            };
            group.bench_function(format!("{kind}/{rules}/{name}"), |b| {
                b.iter(|| decide(black_box(&t), black_box(&r)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

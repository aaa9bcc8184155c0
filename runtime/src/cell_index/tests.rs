//! The interval tables against the linear scan: random cells of threshold rules mixed
//! with other conditions, random requests with missing values, the same decision.

use proptest::prelude::*;

use crate::decide::{decide, decide_linear};
use crate::*;

/// One entry's condition: mostly thresholds, on three slots, over a small value range
/// so regions and boundaries are hit often.
#[derive(Debug, Clone)]
enum Spec {
    Threshold(u8, CmpOp, i64),
    Always,
    Between(u8, i64, i64),
    Truthy(u8),
    SlotsCompare(u8, u8),
}

fn op() -> impl Strategy<Value = CmpOp> {
    prop::sample::select(vec![
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::Eq,
        CmpOp::Ne,
    ])
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        20 => (0u8..3, op(), -6i64..6).prop_map(|(s, o, v)| Spec::Threshold(s, o, v)),
        1 => Just(Spec::Always),
        1 => (0u8..3, -6i64..6, -6i64..6).prop_map(|(s, a, b)| Spec::Between(s, a, b)),
        1 => (0u8..3).prop_map(Spec::Truthy),
        1 => (0u8..3, 0u8..3).prop_map(|(a, b)| Spec::SlotsCompare(a, b)),
    ]
}

fn condition(spec: &Spec) -> Option<Condition> {
    let cmp = |slot: u8, op, value| Op::Compare {
        slot: Slot(slot),
        op,
        value,
    };
    let code = match *spec {
        Spec::Threshold(s, op, v) => vec![cmp(s, op, v)],
        Spec::Always => return None,
        Spec::Between(s, a, b) => vec![cmp(s, CmpOp::Ge, a), cmp(s, CmpOp::Le, b), Op::And],
        Spec::Truthy(s) => vec![Op::Truthy { slot: Slot(s) }],
        Spec::SlotsCompare(a, b) => vec![Op::CompareSlots {
            left: Slot(a),
            op: CmpOp::Lt,
            right: Slot(b),
        }],
    };
    Condition::new(code).ok()
}

fn table(deny: &[Spec], escalate: &[Spec], allow: &[Spec]) -> DecisionTable {
    let mut data = TableData {
        format_version: FORMAT_VERSION,
        files: vec!["t.agentpolicy".into()],
        ..TableData::default()
    };
    data.tools.push(Tool {
        name: "pay".into(),
        params: ["a", "b", "c"]
            .iter()
            .map(|n| Param {
                name: (*n).into(),
                ty: ValueType::Number,
                optional: true,
            })
            .collect(),
        effects: vec![],
        reads: vec![],
        writes: vec![],
    });
    data.agents.push(Agent {
        name: "agent".into(),
        owner: None,
        mode: Mode::Enforce,
        max_tier: None,
        limits: vec![],
        breakers: vec![],
    });
    data.routes.push(Route {
        name: "ops".into(),
        notify: None,
        timeout_ms: None,
        timeout_outcome: None,
    });
    let mut cell = Cell {
        granted: true,
        ..Cell::default()
    };
    for (kind, specs) in [
        (RuleKind::Deny, deny),
        (RuleKind::Escalate, escalate),
        (RuleKind::Allow, allow),
    ] {
        for s in specs {
            let i = data.rules.len() as u32;
            data.rules.push(Rule {
                id: format!("r{i}"),
                agent: AgentId(0),
                kind,
                target: Target::Tool(ToolId(0)),
                route: (kind == RuleKind::Escalate).then_some(RouteId(0)),
                span: Span::default(),
            });
            let entry = Entry {
                rule: RuleIndex(i),
                condition: condition(s),
            };
            match kind {
                RuleKind::Deny => cell.deny.push(entry),
                RuleKind::Escalate => cell.escalate.push(entry),
                RuleKind::Allow => cell.allow.push(entry),
            }
        }
    }
    data.cells.push(cell);
    DecisionTable::new(data).unwrap()
}

fn request(values: &[Option<i64>]) -> Request {
    let mut r = Request::new(AgentId(0), ToolId(0));
    for (i, v) in values.iter().enumerate() {
        if let Some(v) = v {
            r.set(Slot(i as u8), *v);
        }
    }
    r
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn indexed_decisions_equal_the_linear_scan(
        deny in prop::collection::vec(spec(), 0..48),
        escalate in prop::collection::vec(spec(), 0..3),
        allow in prop::collection::vec(spec(), 1..48),
        requests in prop::collection::vec(
            prop::collection::vec(prop::option::weighted(0.9, -8i64..8), 3),
            1..24,
        ),
    ) {
        let t = table(&deny, &escalate, &allow);
        for values in &requests {
            let r = request(values);
            prop_assert_eq!(decide(&t, &r), decide_linear(&t, &r), "{:?}", values);
        }
    }
}

#[test]
fn a_cell_of_many_thresholds_is_indexed_and_decides_by_the_first_match() {
    // allow when a > i * 10, for i = 0..1000: the first rule that holds is the lowest i.
    let allow: Vec<Spec> = (0..1000)
        .map(|i| Spec::Threshold(0, CmpOp::Gt, i * 10))
        .collect();
    let deny: Vec<Spec> = (0..1000)
        .map(|i| Spec::Threshold(1, CmpOp::Eq, 5_000 + i))
        .collect();
    let t = table(&deny, &[], &allow);
    let ix = t.cell_index(0).unwrap();
    assert!(ix.allow.is_some() && ix.deny.is_some());
    let d = decide(&t, &request(&[Some(55), Some(0), None]));
    assert_eq!((d.outcome, d.rule), (Outcome::Allow, Some(RuleIndex(1000))));
    let d = decide(&t, &request(&[Some(55), Some(5_999), None]));
    assert_eq!((d.outcome, d.rule), (Outcome::Deny, Some(RuleIndex(999))));
    // b missing: the first deny rule matches on the missing value.
    let d = decide(&t, &request(&[Some(55), None, None]));
    assert_eq!(
        (d.outcome, d.rule, d.missing),
        (Outcome::Deny, Some(RuleIndex(0)), Some(Slot(1)))
    );
    let d = decide(&t, &request(&[Some(0), Some(0), None]));
    assert_eq!((d.outcome, d.why), (Outcome::Deny, Why::NoRuleMatched));
    for a in [-1, 0, 1, 9, 10, 11, 9_990, 9_991, i64::MIN, i64::MAX] {
        for b in [None, Some(4_999), Some(5_000), Some(5_500), Some(6_000)] {
            let r = request(&[Some(a), b, None]);
            assert_eq!(decide(&t, &r), decide_linear(&t, &r), "{a} {b:?}");
        }
    }
}

//! `decide` allocates nothing, on every path: counted with a global counting allocator.

use agentpolicy_runtime::*;

use crate::fixture::*;

#[test]
fn decide_does_not_allocate() {
    let table = table_with(vec![
        rule(
            INTAKE,
            RuleKind::Allow,
            Some(WIRE_FUNDS),
            None,
            Some(vec![cmp(0, CmpOp::Le, usd(100))]),
        ),
        rule(
            INTAKE,
            RuleKind::Escalate,
            Some(WIRE_FUNDS),
            Some(OPS),
            Some(vec![cmp(0, CmpOp::Gt, usd(100))]),
        ),
        rule(
            INTAKE,
            RuleKind::Deny,
            Some(WIRE_FUNDS),
            None,
            Some(vec![
                cmp(0, CmpOp::Gt, usd(10_000)),
                cmp(1, CmpOp::Eq, 1),
                Op::Not,
                Op::And,
            ]),
        ),
        rule(
            INTAKE,
            RuleKind::Escalate,
            None,
            Some(LEGAL),
            Some(vec![cmp(16, CmpOp::Lt, 850_000)]),
        ),
        rule(INTAKE, RuleKind::Allow, Some(SEARCH_DOCS), None, None),
        rule(INTAKE, RuleKind::Allow, Some(SAVE_NOTE), None, None),
    ]);
    let mut requests = Vec::new();
    for cents in [usd(50), usd(500), usd(50_000)] {
        for confidence in [None, Some(100_000), Some(900_000)] {
            let mut b = table
                .request("intake", "wire_funds")
                .unwrap()
                .arg("amount", ArgValue::Money(cents))
                .unwrap()
                .arg("urgent", ArgValue::Bool(false))
                .unwrap();
            if let Some(c) = confidence {
                b = b.confidence(c);
            }
            requests.push(b.build());
        }
    }
    requests.push(table.request("intake", "wire_funds").unwrap().build());
    requests.push(table.request("intake", "send_email").unwrap().build());
    let mut session = SessionView::default();
    session.bound.set(MATTER, KeyValue(1));
    requests.push(
        table
            .request("intake", "save_note")
            .unwrap()
            .read("document", &[("matter", KeyValue(2))])
            .unwrap()
            .session(session)
            .build(),
    );
    session.usage[0] = 1_000;
    requests.push(
        table
            .request("intake", "search_docs")
            .unwrap()
            .session(session)
            .build(),
    );
    requests.push(Request::new(AgentId(7), ToolId(0)));

    // The counter is live: one box is one allocation.
    let boxed = allocation_counter::measure(|| {
        std::hint::black_box(Box::new(1u64));
    });
    assert_eq!(boxed.count_total, 1);

    let mut outcomes = Vec::with_capacity(requests.len());
    let info = allocation_counter::measure(|| {
        for r in &requests {
            let d = decide(&table, std::hint::black_box(r));
            outcomes.push(d.outcome);
        }
    });
    assert_eq!(info.count_total, 0, "decide allocated: {info:?}");
    // Every stage was exercised.
    assert!(outcomes.contains(&Outcome::Allow));
    assert!(outcomes.contains(&Outcome::Escalate));
    assert!(outcomes.contains(&Outcome::Deny));
    assert_eq!(outcomes.len(), requests.len());
}

/// The interval tables of a cell with many threshold rules (deny and allow lists of 40)
/// are read without allocating either.
#[test]
fn decide_on_an_indexed_cell_does_not_allocate() {
    let mut rules = Vec::new();
    for i in 0..40 {
        rules.push(rule(
            INTAKE,
            RuleKind::Deny,
            Some(WIRE_FUNDS),
            None,
            Some(vec![cmp(0, CmpOp::Eq, usd(5_000 + i))]),
        ));
        rules.push(rule(
            INTAKE,
            RuleKind::Allow,
            Some(WIRE_FUNDS),
            None,
            Some(vec![cmp(0, CmpOp::Lt, usd(100 * (i + 1)))]),
        ));
    }
    rules.push(rule(
        INTAKE,
        RuleKind::Deny,
        Some(WIRE_FUNDS),
        None,
        Some(vec![
            cmp(1, CmpOp::Eq, 1),
            cmp(0, CmpOp::Gt, usd(1)),
            Op::And,
        ]),
    ));
    let table = table_with(rules);
    let requests: Vec<Request> = [None, Some(usd(50)), Some(usd(5_010)), Some(usd(9_999))]
        .into_iter()
        .map(|amount| {
            let b = table.request("intake", "wire_funds").unwrap();
            match amount {
                Some(a) => b.arg("amount", ArgValue::Money(a)).unwrap(),
                None => b,
            }
            .arg("urgent", ArgValue::Bool(false))
            .unwrap()
            .build()
        })
        .collect();
    let mut outcomes = Vec::with_capacity(requests.len());
    let info = allocation_counter::measure(|| {
        for r in &requests {
            outcomes.push(decide(&table, std::hint::black_box(r)).outcome);
        }
    });
    assert_eq!(info.count_total, 0, "decide allocated: {info:?}");
    assert_eq!(
        outcomes,
        [Outcome::Deny, Outcome::Allow, Outcome::Deny, Outcome::Deny]
    );
}

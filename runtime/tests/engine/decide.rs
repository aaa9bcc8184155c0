//! The fixed decision order, rule precedence, routes, missing values and texts.

use agentpolicy_runtime::*;

use crate::fixture::*;

fn request<'a>(table: &'a DecisionTable, agent: &str, tool: &str) -> RequestBuilder<'a> {
    table.request(agent, tool).unwrap()
}

fn wire_rules() -> Vec<RuleSpec> {
    vec![
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
            Some(vec![cmp(0, CmpOp::Gt, usd(10_000))]),
        ),
        rule(
            INTAKE,
            RuleKind::Escalate,
            None,
            Some(LEGAL),
            Some(vec![cmp(16, CmpOp::Lt, 850_000)]),
        ),
        rule(INTAKE, RuleKind::Allow, Some(SEARCH_DOCS), None, None),
        rule(INTAKE, RuleKind::Deny, Some(SEND_EMAIL), None, None),
    ]
}

#[test]
fn deny_beats_escalate_beats_allow_whatever_the_source_order() {
    let table = table_with(wire_rules());
    let amount = |cents| {
        let r = request(&table, "intake", "wire_funds")
            .arg("amount", ArgValue::Money(cents))
            .unwrap()
            .confidence(900_000)
            .build();
        decide(&table, &r)
    };
    let small = amount(usd(50));
    assert_eq!(
        (small.outcome, small.rule),
        (Outcome::Allow, Some(RuleIndex(0)))
    );
    let mid = amount(usd(500));
    assert_eq!(
        (mid.outcome, mid.rule),
        (Outcome::Escalate, Some(RuleIndex(1)))
    );
    assert_eq!(mid.routes.as_slice(), &[RouteId(OPS)]);
    let large = amount(usd(50_000));
    assert_eq!(
        (large.outcome, large.rule),
        (Outcome::Deny, Some(RuleIndex(2)))
    );
    assert_eq!(large.why, Why::RuleMatched);
    assert_eq!(large.stage(), Stage::Rule);
}

#[test]
fn several_escalations_name_all_routes_in_rule_order_once() {
    let mut rules = wire_rules();
    rules.push(rule(
        INTAKE,
        RuleKind::Escalate,
        Some(WIRE_FUNDS),
        Some(OPS),
        None,
    ));
    let table = table_with(rules);
    let r = request(&table, "intake", "wire_funds")
        .arg("amount", ArgValue::Money(usd(500)))
        .unwrap()
        .confidence(100_000)
        .build();
    let d = decide(&table, &r);
    assert_eq!(d.outcome, Outcome::Escalate);
    assert_eq!(d.rule, Some(RuleIndex(1)));
    assert_eq!(d.routes.as_slice(), &[RouteId(OPS), RouteId(LEGAL)]);
}

#[test]
fn star_rules_apply_only_to_tools_granted_by_name() {
    let table = table_with(wire_rules());
    // save_note is not named by any allow or escalate rule of intake.
    let r = request(&table, "intake", "save_note")
        .confidence(100_000)
        .build();
    assert_eq!(decide(&table, &r).why, Why::NotGranted);
    // search_docs is granted, so the `*` escalation applies to it.
    let r = request(&table, "intake", "search_docs")
        .confidence(100_000)
        .build();
    let d = decide(&table, &r);
    assert_eq!((d.outcome, d.rule), (Outcome::Escalate, Some(RuleIndex(3))));
}

#[test]
fn deny_never_grants() {
    let table = table_with(wire_rules());
    let r = request(&table, "intake", "send_email")
        .arg("to", ArgValue::Text("x@y"))
        .unwrap()
        .build();
    assert_eq!(decide(&table, &r).why, Why::NotGranted);
}

#[test]
fn suspension_comes_first_then_grant_then_limits() {
    let table = table_with(wire_rules());
    let mut session = SessionView {
        agent_suspended: true,
        ..SessionView::default()
    };
    session.usage[0] = 100;
    // Not granted and over the limit, but suspension is checked first.
    let r = request(&table, "intake", "save_note")
        .session(session)
        .build();
    assert_eq!(decide(&table, &r).why, Why::AgentSuspended);
    let engine = SessionView {
        engine_suspended: true,
        ..SessionView::default()
    };
    let r = request(&table, "partner", "wire_funds")
        .session(engine)
        .build();
    assert_eq!(decide(&table, &r).why, Why::EngineSuspended);

    session.agent_suspended = false;
    let r = request(&table, "intake", "save_note")
        .session(session)
        .build();
    assert_eq!(decide(&table, &r).why, Why::NotGranted);
    let r = request(&table, "intake", "search_docs")
        .session(session)
        .build();
    assert_eq!(decide(&table, &r).why, Why::LimitExhausted { limit: 0 });
    session.usage[0] = 99;
    let r = request(&table, "intake", "search_docs")
        .session(session)
        .confidence(900_000)
        .build();
    assert_eq!(decide(&table, &r).outcome, Outcome::Allow);
}

#[test]
fn missing_values_match_deny_and_escalate_but_not_allow() {
    let table = table_with(wire_rules());
    // No amount, no confidence: the deny rule on amount matches (fail safe).
    let r = request(&table, "intake", "wire_funds").build();
    let d = decide(&table, &r);
    assert_eq!(
        (d.outcome, d.rule, d.missing),
        (Outcome::Deny, Some(RuleIndex(2)), Some(Slot(0)))
    );
    assert_eq!(d.why, Why::RuleMatchedOnMissingValue);

    // An amount under every threshold but no confidence: the `*` escalation matches.
    let r = request(&table, "intake", "wire_funds")
        .arg("amount", ArgValue::Money(usd(1)))
        .unwrap()
        .build();
    let d = decide(&table, &r);
    assert_eq!(
        (d.outcome, d.rule, d.missing),
        (
            Outcome::Escalate,
            Some(RuleIndex(3)),
            Some(Slot::CONFIDENCE)
        )
    );

    // An allow rule reading a missing value does not match.
    let table = table_with(vec![rule(
        PARTNER,
        RuleKind::Allow,
        Some(SEND_EMAIL),
        None,
        Some(vec![cmp(2, CmpOp::Lt, usd(10))]),
    )]);
    let r = request(&table, "partner", "send_email")
        .arg("to", ArgValue::Text("a@b"))
        .unwrap()
        .build();
    assert_eq!(decide(&table, &r).why, Why::NoRuleMatched);
    let r = request(&table, "partner", "send_email")
        .arg("to", ArgValue::Text("a@b"))
        .unwrap()
        .arg("amount", ArgValue::Money(usd(5)))
        .unwrap()
        .build();
    assert_eq!(decide(&table, &r).outcome, Outcome::Allow);
}

#[test]
fn texts_compare_by_interned_id() {
    // deny send_email when to == "ceo@acme.example"; escalate when to == cc; allow
    let table = table_with(vec![
        rule(
            PARTNER,
            RuleKind::Deny,
            Some(SEND_EMAIL),
            None,
            Some(vec![cmp(0, CmpOp::Eq, 0)]),
        ),
        rule(
            PARTNER,
            RuleKind::Escalate,
            Some(SEND_EMAIL),
            Some(OPS),
            Some(vec![Op::CompareSlots {
                left: Slot(0),
                op: CmpOp::Eq,
                right: Slot(1),
            }]),
        ),
        rule(PARTNER, RuleKind::Allow, Some(SEND_EMAIL), None, None),
    ]);
    let send = |to: &str, cc: &str| {
        let r = table
            .request("partner", "send_email")
            .unwrap()
            .arg("to", ArgValue::Text(to))
            .unwrap()
            .arg("cc", ArgValue::Text(cc))
            .unwrap()
            .build();
        decide(&table, &r).outcome
    };
    assert_eq!(send("ceo@acme.example", "x"), Outcome::Deny);
    assert_eq!(send("someone@else", "x"), Outcome::Allow);
    // Two equal texts outside the dictionary are equal to each other.
    assert_eq!(send("someone@else", "someone@else"), Outcome::Escalate);
    assert_eq!(send("a", "b"), Outcome::Allow);
}

#[test]
fn builder_refuses_what_the_table_does_not_know() {
    let table = table_with(wire_rules());
    assert_eq!(
        table.request("ghost", "wire_funds").unwrap_err(),
        RequestError::UnknownAgent("ghost".into())
    );
    assert_eq!(
        table.request("intake", "teleport").unwrap_err(),
        RequestError::UnknownTool("teleport".into())
    );
    let b = table.request("intake", "wire_funds").unwrap();
    let err = b.clone().arg("amout", ArgValue::Money(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tool `wire_funds` has no parameter `amout`"
    );
    let err = b.clone().arg("amount", ArgValue::Text("1")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "argument `amount` of tool `wire_funds` is money, but a text was given"
    );
    assert!(b.clone().read("vault", &[]).is_err());
    assert!(b.clone().write("printer", &[]).is_err());
    assert!(b.read("document", &[("client", KeyValue(1))]).is_err());
}

#[test]
fn out_of_range_ids_deny() {
    let table = table_with(wire_rules());
    let d = decide(&table, &Request::new(AgentId(9), ToolId(0)));
    assert_eq!((d.outcome, d.why), (Outcome::Deny, Why::UnknownAgent));
    let d = decide(&table, &Request::new(AgentId(0), ToolId(99)));
    assert_eq!((d.outcome, d.why), (Outcome::Deny, Why::UnknownTool));
}

#[test]
fn explanations_name_rules_routes_and_missing_values() {
    let table = table_with(wire_rules());
    let r = request(&table, "intake", "wire_funds").build();
    let d = decide(&table, &r);
    assert_eq!(
        d.explain(table.data()).to_string(),
        "deny by rule `r2` at firm.agentpolicy:3:3: the rule's condition reads a value the request does not carry, \
         which counts as a match for deny and escalate rules (missing: argument `amount`)"
    );
    let r = request(&table, "intake", "search_docs").build();
    let d = decide(&table, &r);
    assert_eq!(
        d.explain(table.data()).to_string(),
        "escalate to legal by rule `r3` at firm.agentpolicy:4:3: the rule's condition reads a value the request \
         does not carry, which counts as a match for deny and escalate rules (missing: confidence)"
    );
    let r = request(&table, "intake", "read_settlement").build();
    assert_eq!(
        decide(&table, &r).explain(table.data()).to_string(),
        "deny (not granted): no allow or escalate rule grants the tool to the agent"
    );
}

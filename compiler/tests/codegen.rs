//! Code generation on a hand-built model: ids, spans, cells, texts, and the diagnostics
//! for what a decision table cannot hold.

#![cfg(test)]

use agentpolicy::codegen::build_table;
use agentpolicy::diagnostics::{Code, FileId};
use agentpolicy::model::*;
use agentpolicy::syntax::ast::{CompareOp, Mode, RuleKind, TextRange, TimeoutOutcome, TypeName};
use agentpolicy_runtime::{self as rt, ArgValue, Outcome, decide};

const SOURCE: &str = "policy acme version \"1\"\n\
tool wire_funds(amount: money, to: text) { effect financial }\n\
agent intake {\n  allow wire_funds when amount <= $100\n  \
escalate wire_funds to ops when to == \"offshore\"\n  \
escalate * to ops when confidence < 0.85\n}\n";

fn at(needle: &str) -> Loc {
    let start = SOURCE.find(needle).expect("needle in source");
    Loc {
        file: FileId(0),
        range: TextRange::new(start, start + needle.len()),
    }
}

fn konst(value: Value) -> Term {
    Term::Const {
        value,
        threshold: None,
    }
}

fn model() -> Model {
    let param = |name: &str, ty| ParamDef {
        name: name.into(),
        ty,
        optional: false,
        loc: at(name),
    };
    let rule = |id: u32, kind, target, route, condition, text: &str| RuleDef {
        id: RuleId(id),
        agent: AgentId(0),
        kind,
        target,
        route,
        condition,
        loc: at(text),
    };
    Model {
        policy: Some(PolicyInfo {
            name: "acme".into(),
            version: Some("1".into()),
            loc: at("policy"),
        }),
        tiers: vec![TierDef {
            name: "public".into(),
            loc: at("policy"),
        }],
        tools: vec![ToolDef {
            name: "wire_funds".into(),
            params: vec![
                param("amount", TypeName::Money),
                param("to", TypeName::Text),
            ],
            effects: vec![],
            reads: vec![],
            writes: vec![],
            untrusted: false,
            loc: at("tool"),
        }],
        routes: vec![RouteDef {
            name: "ops".into(),
            notify: None,
            timeout_ms: Some(60_000),
            timeout_outcome: Some(TimeoutOutcome::Deny),
            loc: at("agent"),
        }],
        agents: vec![AgentDef {
            name: "intake".into(),
            owner: Some("ops@acme.example".into()),
            purpose: None,
            max_tier: None,
            rules: vec![RuleId(0), RuleId(1), RuleId(2)],
            autonomy: vec![],
            limits: vec![],
            breakers: vec![],
            mode: Mode::Shadow,
            credentials: vec![],
            loc: at("agent"),
            stage: None,
            promotions: vec![],
        }],
        rules: vec![
            rule(
                0,
                RuleKind::Allow,
                RuleTarget::Tool(ToolId(0)),
                None,
                Some(Cond::Compare {
                    left: Term::Arg(0),
                    op: CompareOp::Le,
                    right: konst(Value::Money(10_000)),
                }),
                "allow wire_funds",
            ),
            rule(
                1,
                RuleKind::Escalate,
                RuleTarget::Tool(ToolId(0)),
                Some(RouteId(0)),
                Some(Cond::Compare {
                    left: Term::Arg(1),
                    op: CompareOp::Eq,
                    right: konst(Value::Text("offshore".into())),
                }),
                "escalate wire_funds",
            ),
            rule(
                2,
                RuleKind::Escalate,
                RuleTarget::All,
                Some(RouteId(0)),
                Some(Cond::Compare {
                    left: Term::Confidence,
                    op: CompareOp::Lt,
                    right: konst(Value::Number(850_000)),
                }),
                "escalate *",
            ),
        ],
        ..Model::default()
    }
}

fn sources() -> Vec<(String, String)> {
    vec![("acme.agentpolicy".into(), SOURCE.into())]
}

#[test]
fn rules_get_stable_ids_and_line_columns() {
    let table = build_table(&model(), &sources()).unwrap();
    let data = table.data();
    let ids: Vec<&str> = data.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "intake/allow/wire_funds#1",
            "intake/escalate/wire_funds#1",
            "intake/escalate/*#1"
        ]
    );
    let spans: Vec<(u32, u32)> = data
        .rules
        .iter()
        .map(|r| (r.span.line, r.span.column))
        .collect();
    assert_eq!(spans, [(4, 3), (5, 3), (6, 3)]);
    assert_eq!(data.files, ["acme.agentpolicy"]);
    assert_eq!(data.texts, ["offshore"]);
    assert_eq!(data.agents[0].mode, rt::Mode::Shadow);
    assert_eq!(
        table.source_hash(),
        rt::source_hash(&[("acme.agentpolicy", SOURCE)])
    );
}

#[test]
fn cells_hold_rules_sorted_by_kind_with_star_rules() {
    let table = build_table(&model(), &sources()).unwrap();
    let cell = &table.data().cells[0];
    assert!(cell.granted);
    assert!(cell.deny.is_empty());
    let escalate: Vec<u32> = cell.escalate.iter().map(|e| e.rule.0).collect();
    assert_eq!(escalate, [1, 2]);
    assert_eq!(cell.allow.len(), 1);

    let decide_with = |amount: i64, to: &str, confidence: i64| {
        let request = table
            .request("intake", "wire_funds")
            .unwrap()
            .arg("amount", ArgValue::Money(amount))
            .unwrap()
            .arg("to", ArgValue::Text(to))
            .unwrap()
            .confidence(confidence)
            .build();
        decide(&table, &request)
    };
    assert_eq!(decide_with(5_000, "home", 900_000).outcome, Outcome::Allow);
    assert_eq!(
        decide_with(5_000, "offshore", 900_000).outcome,
        Outcome::Escalate
    );
    let d = decide_with(50_000, "home", 100_000);
    assert_eq!(d.outcome, Outcome::Escalate);
    assert_eq!(
        d.explain(table.data()).to_string(),
        "escalate to ops by rule `intake/escalate/*#1` at acme.agentpolicy:6:3: the rule's condition holds"
    );
}

#[test]
fn too_many_parameters_is_a_diagnostic() {
    let mut model = model();
    let extra = model.tools[0].params[0].clone();
    for i in 0..15 {
        model.tools[0].params.push(ParamDef {
            name: format!("extra{i}"),
            ..extra.clone()
        });
    }
    let diags = build_table(&model, &sources()).unwrap_err();
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code, Code::TableLimitExceeded);
    assert_eq!(
        diags[0].message,
        "tool `wire_funds` has 17 parameters; a decision table holds at most 16 per tool"
    );
    assert!(diags[0].help.is_some());
}

#[test]
fn text_ordering_is_a_type_error() {
    let mut model = model();
    model.rules[1].condition = Some(Cond::Compare {
        left: Term::Arg(1),
        op: CompareOp::Gt,
        right: konst(Value::Text("m".into())),
    });
    let diags = build_table(&model, &sources()).unwrap_err();
    assert_eq!(diags[0].code, Code::TypeMismatch);
    assert_eq!(diags[0].primary.range, at("escalate wire_funds").range);
    assert!(diags[0].message.contains("`==` or `!=`"));
}

#[test]
fn argument_in_a_star_rule_is_refused() {
    let mut model = model();
    model.rules[2].condition = Some(Cond::Truthy(Term::Arg(0)));
    let diags = build_table(&model, &sources()).unwrap_err();
    assert_eq!(diags[0].code, Code::ArgumentInStarRule);
}

#[test]
fn too_many_routes_for_one_decision_is_a_diagnostic() {
    let mut model = model();
    for i in 0..9u32 {
        model.routes.push(RouteDef {
            name: format!("route{i}"),
            ..model.routes[0].clone()
        });
        let id = RuleId(model.rules.len() as u32);
        model.rules.push(RuleDef {
            id,
            route: Some(RouteId(i + 1)),
            condition: None,
            ..model.rules[1].clone()
        });
        model.agents[0].rules.push(id);
    }
    let diags = build_table(&model, &sources()).unwrap_err();
    assert_eq!(diags[0].code, Code::TableLimitExceeded);
    assert!(
        diags[0].message.contains("10 routes"),
        "{}",
        diags[0].message
    );
}

//! Sessions and the flow model through the engine: reads raise the label and bind keys,
//! a second matter or patient is refused, no write-down, state is inspectable.

use agentpolicy_runtime::engine::{Reason, SessionOptions};
use agentpolicy_runtime::*;

use super::clinic::{rig, rig_with, session};
use super::fixture::{INTAKE, SEARCH_DOCS, rule, table_with};

#[test]
fn two_matters_in_one_session_are_denied() {
    let table = table_with(vec![rule(
        INTAKE,
        RuleKind::Allow,
        Some(SEARCH_DOCS),
        None,
        None,
    )]);
    let rig = rig_with(table, |_| {});
    let s = session(&rig, "intake");
    let m1 = [("matter", "M-1")];
    let m2 = [("matter", "M-2")];
    let first = rig
        .engine
        .decide(s, &Call::new("search_docs").reads("document", &m1));
    assert!(first.is_allow(), "{first:?}");
    let again = rig
        .engine
        .decide(s, &Call::new("search_docs").reads("document", &m1));
    assert!(again.is_allow(), "the same matter again is fine");
    let second = rig
        .engine
        .decide(s, &Call::new("search_docs").reads("document", &m2));
    assert_eq!(second.outcome, Outcome::Deny);
    assert_eq!(second.reason_code(), "flow");
    assert!(matches!(second.decision.why, Why::ReadCrossesKey { .. }));
    let state = rig.engine.session(s).unwrap();
    assert_eq!(state.bound, [("matter".to_string(), "M-1".to_string())]);
    assert_eq!(state.tier.as_deref(), Some("confidential"));

    // Another session may read M-2.
    let other = session(&rig, "intake");
    assert!(
        rig.engine
            .decide(other, &Call::new("search_docs").reads("document", &m2))
            .is_allow()
    );
}

#[test]
fn a_phi_read_then_a_write_to_a_public_sink_is_denied() {
    let rig = rig();
    let s = session(&rig, "scribe");
    let p1 = [("patient", "P-1")];
    let note = [("text", ArgValue::Text("follow-up in 2 weeks"))];
    assert!(
        rig.engine
            .decide(s, &Call::new("post_note").args(&note))
            .is_allow(),
        "nothing read yet"
    );
    assert!(
        rig.engine
            .decide(s, &Call::new("read_chart").reads("chart", &p1))
            .is_allow()
    );
    assert_eq!(rig.engine.session(s).unwrap().tier.as_deref(), Some("phi"));

    let leak = rig.engine.decide(s, &Call::new("post_note").args(&note));
    assert_eq!(leak.outcome, Outcome::Deny);
    assert!(
        matches!(leak.decision.why, Why::WriteDown { .. }),
        "{leak:?}"
    );

    // The chart of the same patient is cleared for PHI; another patient's is not.
    let same = rig.engine.decide(
        s,
        &Call::new("write_chart")
            .args(&note)
            .writes("chart_notes", &p1),
    );
    assert!(same.is_allow(), "{same:?}");
    let p2 = [("patient", "P-2")];
    let cross = rig.engine.decide(
        s,
        &Call::new("write_chart")
            .args(&note)
            .writes("chart_notes", &p2),
    );
    assert!(
        matches!(cross.decision.why, Why::WriteCrossesKey { .. }),
        "{cross:?}"
    );
}

#[test]
fn a_session_bound_at_creation_reads_only_its_patient() {
    let rig = rig();
    let s = rig
        .engine
        .open_session(
            "scribe",
            SessionOptions {
                name: Some("visit-7"),
                bind: &[("patient", "P-9")],
                ..SessionOptions::default()
            },
        )
        .unwrap();
    let state = rig.engine.session(s).unwrap();
    assert_eq!(state.name, "visit-7");
    assert_eq!(state.bound, [("patient".to_string(), "P-9".to_string())]);
    assert_eq!(state.tier, None, "bound but unlabelled until it reads");
    let other = rig.engine.decide(
        s,
        &Call::new("read_chart").reads("chart", &[("patient", "P-1")]),
    );
    assert!(matches!(other.decision.why, Why::ReadCrossesKey { .. }));
    let own = rig.engine.decide(
        s,
        &Call::new("read_chart").reads("chart", &[("patient", "P-9")]),
    );
    assert!(own.is_allow());
}

#[test]
fn a_denied_read_does_not_raise_the_label() {
    let rig = rig();
    let s = session(&rig, "scribe");
    let p1 = [("patient", "P-1")];
    rig.engine.kill_agent("scribe", "test").unwrap();
    assert!(
        !rig.engine
            .decide(s, &Call::new("read_chart").reads("chart", &p1))
            .is_allow()
    );
    rig.engine.resume_agent("scribe", "test").unwrap();
    let state = rig.engine.session(s).unwrap();
    assert_eq!(state.tier, None);
    assert!(state.bound.is_empty());
    let note = [("text", ArgValue::Text("hello"))];
    assert!(
        rig.engine
            .decide(s, &Call::new("post_note").args(&note))
            .is_allow()
    );
}

#[test]
fn a_read_without_labels_raises_the_tier_to_every_declared_resource() {
    let rig = rig();
    let s = session(&rig, "scribe");
    assert!(rig.engine.decide(s, &Call::new("read_schedule")).is_allow());
    assert_eq!(
        rig.engine.session(s).unwrap().tier.as_deref(),
        Some("internal")
    );
    let note = [("text", ArgValue::Text("x"))];
    let leak = rig.engine.decide(s, &Call::new("post_note").args(&note));
    assert!(matches!(leak.decision.why, Why::WriteDown { .. }));
}

#[test]
fn bad_calls_and_sessions_are_denied_with_their_reason() {
    let rig = rig();
    let s = session(&rig, "scribe");
    let unknown_tool = rig.engine.decide(s, &Call::new("format_disk"));
    assert_eq!(unknown_tool.decision.why, Why::UnknownTool);
    assert_eq!(unknown_tool.reason_code(), "not_granted");

    let wrong = [("cost", ArgValue::Text("a lot"))];
    let v = rig.engine.decide(s, &Call::new("order_test").args(&wrong));
    assert_eq!(v.reason_code(), "request");
    assert!(matches!(
        v.reason,
        Reason::Request(RequestError::WrongType { .. })
    ));

    let v = rig
        .engine
        .decide(s, &Call::new("read_chart").reads("chart", &[("ward", "3")]));
    assert_eq!(
        v.reason,
        Reason::Request(RequestError::UnknownKey("ward".into()))
    );

    let ghost = engine::SessionId(999);
    let v = rig.engine.decide(ghost, &Call::new("read_schedule"));
    assert_eq!(v.reason_code(), "session");
    assert_eq!(v.call, None);

    rig.engine.close_session(s).unwrap();
    let v = rig.engine.decide(s, &Call::new("read_schedule"));
    assert_eq!(v.reason_code(), "session");
    assert!(rig.engine.session(s).unwrap().closed);
    assert!(matches!(
        rig.engine.open_session("nobody", SessionOptions::default()),
        Err(engine::EngineError::UnknownAgent(_))
    ));
    assert!(matches!(
        rig.engine.open_session(
            "scribe",
            SessionOptions {
                name: None,
                bind: &[("ward", "3")],
                ..SessionOptions::default()
            }
        ),
        Err(engine::EngineError::UnknownKey(_))
    ));
}

#[test]
fn calls_are_numbered_per_session_and_every_verdict_names_the_table() {
    let rig = rig();
    let a = session(&rig, "scribe");
    let b = session(&rig, "scribe");
    let v1 = rig.engine.decide(a, &Call::new("read_schedule"));
    let v2 = rig.engine.decide(a, &Call::new("read_schedule"));
    let w1 = rig.engine.decide(b, &Call::new("read_schedule"));
    assert_eq!(v1.call.unwrap().n, 1);
    assert_eq!(v2.call.unwrap().n, 2);
    assert_eq!(w1.call.unwrap().n, 1);
    for v in [&v1, &v2, &w1] {
        assert_eq!(v.table, rig.engine.table_hash());
    }
    let all = rig.engine.sessions().unwrap();
    assert_eq!(all.iter().map(|s| s.calls).collect::<Vec<_>>(), [2, 1]);
}

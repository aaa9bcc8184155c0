//! Shadow mode: the real outcome is computed and recorded, the caller is told Allow.

use agentpolicy_runtime::audit::RecordKind;
use agentpolicy_runtime::*;

use super::clinic::{audited, rig, session};
use super::fixture::usd;

#[test]
fn shadow_mode_reports_allow_with_the_real_outcome() {
    let rig = audited("shadow", |_| {});
    let s = session(&rig, "trial");
    let cost = [("cost", ArgValue::Money(usd(900)))];
    let v = rig.engine.decide(s, &Call::new("order_test").args(&cost));
    assert!(v.is_allow());
    assert!(v.shadow);
    assert_eq!(
        v.decision.outcome,
        Outcome::Escalate,
        "the would-be outcome"
    );
    assert_eq!(v.escalation, None, "nobody is asked: the caller goes ahead");
    assert!(rig.engine.pending_escalations().unwrap().is_empty());

    let p1 = [("patient", "P-1")];
    let p2 = [("patient", "P-2")];
    assert!(
        rig.engine
            .decide(s, &Call::new("read_chart").reads("chart", &p1))
            .is_allow()
    );
    let cross = rig
        .engine
        .decide(s, &Call::new("read_chart").reads("chart", &p2));
    assert!(cross.is_allow() && cross.shadow);
    assert!(matches!(cross.decision.why, Why::ReadCrossesKey { .. }));
    // The first binding stands: the label records what was really read first.
    let state = rig.engine.session(s).unwrap();
    assert_eq!(state.bound, [("patient".to_string(), "P-1".to_string())]);

    let records: Vec<_> = rig
        .records()
        .into_iter()
        .filter(|r| r.kind == RecordKind::Decision)
        .collect();
    let last = records.last().unwrap();
    assert!(last.shadow);
    assert_eq!(last.outcome, Some(Outcome::Deny));
    assert_eq!(last.reported, Some(Outcome::Allow));
    assert_eq!(last.reason.as_deref(), Some("flow"));
}

#[test]
fn shadow_mode_never_overrides_the_kill_switch() {
    let rig = rig();
    let s = session(&rig, "trial");
    rig.engine.kill_agent("trial", "ops").unwrap();
    let v = rig.engine.decide(s, &Call::new("read_chart"));
    assert_eq!(v.outcome, Outcome::Deny);
    assert!(!v.shadow);
}

#[test]
fn the_mode_can_be_overridden_per_agent() {
    let rig = rig();
    let s = session(&rig, "trial");
    let cost = [("cost", ArgValue::Money(usd(900)))];
    rig.engine
        .set_mode("trial", Some(Mode::Enforce), "ops")
        .unwrap();
    let v = rig.engine.decide(s, &Call::new("order_test").args(&cost));
    assert_eq!(v.outcome, Outcome::Escalate);
    assert!(!v.shadow);
    let scribe = session(&rig, "scribe");
    rig.engine
        .set_mode("scribe", Some(Mode::Shadow), "ops")
        .unwrap();
    // No cost given: the escalate rule matches on the missing value.
    let v = rig.engine.decide(scribe, &Call::new("order_test"));
    assert!(v.shadow && v.is_allow(), "{v:?}");
    assert_eq!(v.decision.outcome, Outcome::Escalate);
    rig.engine.set_mode("scribe", None, "ops").unwrap();
    assert_eq!(
        rig.engine.decide(scribe, &Call::new("order_test")).outcome,
        Outcome::Escalate
    );
}

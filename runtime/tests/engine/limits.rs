//! Limits through the engine, on an exact clock: calls per task, calls per sliding
//! minute, tokens per task from reported results.

use agentpolicy_runtime::engine::CallResult;
use agentpolicy_runtime::*;

use super::clinic::{rig, session};

#[test]
fn the_101st_call_in_a_task_is_denied() {
    let rig = rig();
    let s = session(&rig, "scribe");
    // Three seconds apart, so the 20-per-minute limit never binds.
    for i in 1..=100 {
        let v = rig.engine.decide(s, &Call::new("read_schedule"));
        assert!(v.is_allow(), "call {i}: {v:?}");
        rig.clock.advance(3_000);
    }
    let v = rig.engine.decide(s, &Call::new("read_schedule"));
    assert_eq!(v.outcome, Outcome::Deny);
    assert_eq!(v.decision.why, Why::LimitExhausted { limit: 0 });
    let state = rig.engine.session(s).unwrap();
    assert_eq!(state.limits[0].used, 100);
    assert_eq!(
        state.calls, 101,
        "the denied call is numbered but not counted"
    );

    assert_eq!(rig.engine.start_task(s).unwrap(), 2);
    assert!(rig.engine.decide(s, &Call::new("read_schedule")).is_allow());
    assert_eq!(rig.engine.session(s).unwrap().limits[0].used, 1);
}

#[test]
fn twenty_calls_per_minute_is_a_sliding_window() {
    let rig = rig();
    let s = session(&rig, "scribe");
    for _ in 0..20 {
        assert!(rig.engine.decide(s, &Call::new("read_schedule")).is_allow());
    }
    let v = rig.engine.decide(s, &Call::new("read_schedule"));
    assert_eq!(v.decision.why, Why::LimitExhausted { limit: 1 });
    rig.clock.advance(59_999);
    assert!(!rig.engine.decide(s, &Call::new("read_schedule")).is_allow());
    rig.clock.advance(1);
    assert!(rig.engine.decide(s, &Call::new("read_schedule")).is_allow());
}

#[test]
fn reported_tokens_count_against_the_task_budget() {
    let rig = rig();
    let s = session(&rig, "scribe");
    let v = rig.engine.decide(s, &Call::new("read_schedule"));
    rig.engine
        .report(v.call.unwrap(), CallResult::ok(49_999, 800))
        .unwrap();
    let v = rig.engine.decide(s, &Call::new("read_schedule"));
    assert!(v.is_allow());
    rig.engine
        .report(v.call.unwrap(), CallResult::ok(1, 5))
        .unwrap();
    let v = rig.engine.decide(s, &Call::new("read_schedule"));
    assert_eq!(v.decision.why, Why::LimitExhausted { limit: 2 });
    assert_eq!(rig.engine.session(s).unwrap().limits[2].used, 50_000);
    assert!(matches!(
        rig.engine
            .report(engine::CallRef { session: s, n: 99 }, CallResult::ok(1, 1)),
        Err(engine::EngineError::UnknownCall(_))
    ));
}

#[test]
fn limits_are_per_session() {
    let rig = rig();
    let a = session(&rig, "scribe");
    let b = session(&rig, "scribe");
    for _ in 0..20 {
        assert!(rig.engine.decide(a, &Call::new("read_schedule")).is_allow());
    }
    assert!(!rig.engine.decide(a, &Call::new("read_schedule")).is_allow());
    assert!(rig.engine.decide(b, &Call::new("read_schedule")).is_allow());
}

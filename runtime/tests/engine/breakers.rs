//! Circuit breakers through the engine: the error rate trips exactly above its
//! threshold, suspends the agent (or the engine), and resets by hand or half-open.

use std::time::Duration;

use agentpolicy_runtime::audit::RecordKind;
use agentpolicy_runtime::engine::{BreakerSettings, CallResult};
use agentpolicy_runtime::*;

use super::clinic::{audited, clinic, rig, rig_with, session};

fn call_and_report(rig: &super::clinic::Rig, s: engine::SessionId, ok: bool) -> engine::Verdict {
    let v = rig.engine.decide(s, &Call::new("read_schedule"));
    if let Some(call) = v.call.filter(|_| v.is_allow()) {
        let result = if ok {
            CallResult::ok(10, 5)
        } else {
            CallResult::error(0, 5)
        };
        rig.engine.report(call, result).unwrap();
    }
    v
}

#[test]
fn a_breaker_trips_at_the_stated_error_rate_and_suspends_the_agent() {
    let rig = audited("breaker-trips", |_| {});
    let s = session(&rig, "scribe");
    // `error_rate > 20% over 5m`, judged from 10 results: 2 errors in 10 is 20%, not above.
    for i in 0..10 {
        let v = call_and_report(&rig, s, i >= 2);
        assert!(v.is_allow(), "call {i}");
        rig.clock.advance(1_000);
    }
    assert!(rig.engine.decide(s, &Call::new("read_schedule")).is_allow());
    let v = rig.engine.decide(s, &Call::new("read_schedule"));
    // The 11th result is the third error: 3 in 11 is 27.27% > 20%.
    rig.engine
        .report(v.call.unwrap(), CallResult::error(0, 5))
        .unwrap();
    let blocked = rig.engine.decide(s, &Call::new("read_schedule"));
    assert_eq!(blocked.decision.why, Why::AgentSuspended);
    assert_eq!(blocked.reason_code(), "suspended");
    // A new session of the same agent is suspended too; other agents are not.
    let s2 = session(&rig, "scribe");
    assert_eq!(
        rig.engine
            .decide(s2, &Call::new("read_schedule"))
            .decision
            .why,
        Why::AgentSuspended
    );
    let biller = session(&rig, "biller");
    assert!(
        rig.engine
            .decide(biller, &Call::new("read_schedule"))
            .is_allow()
    );

    let trips: Vec<_> = rig
        .records()
        .into_iter()
        .filter(|r| r.kind == RecordKind::Breaker)
        .collect();
    assert_eq!(trips.len(), 1);
    let detail = trips[0].detail.clone().unwrap();
    assert!(
        detail.contains("error_rate > 20% over 5m then suspend agent")
            && detail.contains("27.2727%"),
        "{detail}"
    );
    assert!(detail.contains("agent `scribe` suspended"), "{detail}");

    rig.engine.reset_breaker("scribe", "ops@clinic").unwrap();
    assert!(rig.engine.decide(s, &Call::new("read_schedule")).is_allow());
}

#[test]
fn a_half_open_breaker_lets_one_probe_through() {
    let rig = rig_with(clinic(), |c| {
        c.breakers = BreakerSettings {
            min_results: 1,
            cooldown: Some(Duration::from_secs(30)),
        };
    });
    let s = session(&rig, "scribe");
    call_and_report(&rig, s, false);
    assert_eq!(
        rig.engine
            .decide(s, &Call::new("read_schedule"))
            .decision
            .why,
        Why::AgentSuspended
    );
    rig.clock.advance(30_000);
    let probe = rig.engine.decide(s, &Call::new("read_schedule"));
    assert!(probe.is_allow(), "the probe runs");
    assert_eq!(
        rig.engine
            .decide(s, &Call::new("read_schedule"))
            .decision
            .why,
        Why::AgentSuspended,
        "only one probe at a time"
    );
    rig.engine
        .report(probe.call.unwrap(), CallResult::error(0, 1))
        .unwrap();
    rig.clock.advance(29_999);
    assert!(
        !rig.engine.decide(s, &Call::new("read_schedule")).is_allow(),
        "re-opened"
    );
    rig.clock.advance(1);
    let probe = rig.engine.decide(s, &Call::new("read_schedule"));
    assert!(probe.is_allow());
    rig.engine
        .report(probe.call.unwrap(), CallResult::ok(1, 1))
        .unwrap();
    for _ in 0..3 {
        assert!(
            rig.engine.decide(s, &Call::new("read_schedule")).is_allow(),
            "closed again"
        );
    }
}

#[test]
fn a_call_rate_breaker_of_engine_scope_suspends_every_agent() {
    let rig = rig();
    let biller = session(&rig, "biller");
    let scribe = session(&rig, "scribe");
    // `calls > 5 over 1m then suspend engine`: the sixth decision trips it.
    for _ in 0..6 {
        assert!(
            rig.engine
                .decide(biller, &Call::new("read_schedule"))
                .is_allow()
        );
    }
    assert_eq!(
        rig.engine
            .decide(scribe, &Call::new("read_schedule"))
            .decision
            .why,
        Why::EngineSuspended
    );
    assert_eq!(
        rig.engine
            .decide(biller, &Call::new("read_schedule"))
            .decision
            .why,
        Why::EngineSuspended
    );
    rig.engine.reset_breaker("biller", "ops").unwrap();
    assert!(
        rig.engine
            .decide(scribe, &Call::new("read_schedule"))
            .is_allow()
    );
}

//! Hot reload: a table swapped in decides the next call, sessions carry over by name,
//! and a session that no longer fits the table is denied (internal).

use std::sync::Arc;

use agentpolicy_runtime::*;

use super::clinic::{clinic, clinic_with, rig, session};

#[test]
fn a_swapped_table_decides_the_next_call_and_sessions_carry_over() {
    let rig = rig();
    let s = session(&rig, "scribe");
    let p1 = [("patient", "P-1")];
    assert!(
        rig.engine
            .decide(s, &Call::new("read_chart").reads("chart", &p1))
            .is_allow()
    );
    let old = rig.engine.table_hash();
    let next = clinic_with(|d| {
        d.source_hash = source_hash(&[("clinic.agentpolicy", "policy clinic version 2")]);
        // Reorder the tiers' storage: names, not ids, carry the label over.
        d.policy.version = Some("2".into());
    });
    let new_hash = next.source_hash();
    assert_eq!(rig.engine.swap_table(next, "deploy").unwrap(), old);
    assert_eq!(rig.engine.table_hash(), new_hash);
    let p2 = [("patient", "P-2")];
    let v = rig
        .engine
        .decide(s, &Call::new("read_chart").reads("chart", &p2));
    assert_eq!(v.table, new_hash);
    assert!(
        matches!(v.decision.why, Why::ReadCrossesKey { .. }),
        "the label survived the swap"
    );
    assert_eq!(rig.engine.session(s).unwrap().tier.as_deref(), Some("phi"));
}

#[test]
fn a_session_whose_agent_is_gone_is_denied_as_internal() {
    let rig = rig();
    let s = session(&rig, "trial");
    let next = clinic_with(|d| {
        d.source_hash = source_hash(&[("clinic.agentpolicy", "no trial")]);
        d.agents[1].name = "pilot".into();
    });
    rig.engine.swap_table(next, "deploy").unwrap();
    let v = rig.engine.decide(s, &Call::new("read_chart"));
    assert_eq!(v.reason_code(), "internal");
    assert!(
        rig.engine
            .session(s)
            .unwrap()
            .broken
            .unwrap()
            .contains("`trial`")
    );
}

#[test]
fn swaps_race_decisions_without_a_wrong_answer() {
    let rig = rig();
    let engine = &rig.engine;
    let a = clinic();
    let b = clinic_with(|d| d.source_hash = source_hash(&[("b", "b")]));
    let hashes = [a.source_hash(), b.source_hash()];
    let tables = Arc::new([a, b]);
    std::thread::scope(|scope| {
        let t = tables.clone();
        scope.spawn(move || {
            for i in 0..200 {
                engine.swap_table(t[i % 2].clone(), "deploy").unwrap();
            }
        });
        let s = engine
            .open_session("biller", SessionOptions::default())
            .unwrap();
        for _ in 0..200 {
            let v = engine.decide(s, &Call::new("read_schedule"));
            assert!(hashes.contains(&v.table));
            engine.reset_breaker("biller", "test").unwrap();
        }
    });
}

//! Lifecycle evidence in the audit log: the triggering context of a session, the
//! reasoning snapshot of a call (redacted and bounded), and what a human did for the
//! same task (`record_human`), joined to its decision by `audit::evidence`.

use agentpolicy_runtime::audit::{HumanAction, RecordKind, evidence, verify};
use agentpolicy_runtime::engine::{
    CallRef, EngineError, MAX_REASONING_BYTES, Redact, Redaction, Resolution, SessionId,
};
use agentpolicy_runtime::*;

use super::clinic::{audited, rig, session};
use super::fixture::usd;

fn open_with_context(rig: &super::clinic::Rig, agent: &str, context: &str) -> SessionId {
    rig.engine
        .open_session(
            agent,
            SessionOptions {
                name: Some("run-1"),
                context: Some(context),
                ..SessionOptions::default()
            },
        )
        .unwrap()
}

#[test]
fn the_triggering_context_is_on_the_sessions_records_and_its_state() {
    let rig = audited("context", |_| {});
    let s = open_with_context(&rig, "scribe", "schedule:nightly-notes");
    let cheap = [("cost", ArgValue::Money(usd(80)))];
    rig.engine.decide(s, &Call::new("order_test").args(&cheap));
    rig.engine.start_task(s).unwrap();
    assert_eq!(
        rig.engine.session(s).unwrap().context.as_deref(),
        Some("schedule:nightly-notes")
    );
    let records = rig.records();
    let with_context: Vec<RecordKind> = records
        .iter()
        .filter(|r| r.context.as_deref() == Some("schedule:nightly-notes"))
        .map(|r| r.kind)
        .collect();
    assert_eq!(
        with_context,
        [
            RecordKind::Session,
            RecordKind::Decision,
            RecordKind::Session
        ]
    );
    // A session opened without one has none.
    let other = session(&rig, "scribe");
    rig.engine
        .decide(other, &Call::new("order_test").args(&cheap));
    let last = rig.records().pop().unwrap();
    assert_eq!(last.kind, RecordKind::Decision);
    assert_eq!(last.context, None);
}

#[test]
fn the_reasoning_snapshot_is_recorded_cut_to_its_limit_and_redacted() {
    let rig = audited("reasoning", |_| {});
    let s = session(&rig, "scribe");
    let cheap = [("cost", ArgValue::Money(usd(80)))];
    let v = rig.engine.decide(
        s,
        &Call::new("order_test")
            .args(&cheap)
            .reasoning("The chart shows a fever; a blood test is routine."),
    );
    assert!(v.is_allow(), "the snapshot never changes the decision");
    // Multi-byte characters straddle the limit: the cut lands on a boundary.
    let long = "é".repeat(MAX_REASONING_BYTES);
    rig.engine
        .decide(s, &Call::new("order_test").args(&cheap).reasoning(&long));
    let decisions: Vec<_> = rig
        .records()
        .into_iter()
        .filter(|r| r.kind == RecordKind::Decision)
        .collect();
    assert_eq!(
        decisions[0].reasoning.as_deref(),
        Some("The chart shows a fever; a blood test is routine.")
    );
    let cut = decisions[1].reasoning.as_deref().unwrap();
    let kept = "é".repeat(MAX_REASONING_BYTES / 2);
    assert_eq!(
        cut,
        format!("{kept}[... {} bytes cut]", long.len() - kept.len())
    );

    for (how, want) in [
        (Redact::Mask, Some("[redacted]".to_owned())),
        (Redact::Omit, None),
        (
            Redact::Hash,
            Some(ContentHash::of(b"secret plan").to_string()),
        ),
    ] {
        let rig = audited("reasoning-redacted", |c| {
            c.redaction = Redaction::default().rule(None, "reasoning", how);
        });
        let s = session(&rig, "scribe");
        rig.engine.decide(
            s,
            &Call::new("order_test")
                .args(&cheap)
                .reasoning("secret plan"),
        );
        let d = rig.records().pop().unwrap();
        assert_eq!(d.kind, RecordKind::Decision);
        assert_eq!(d.reasoning, want, "{how:?}");
        assert!(
            !std::fs::read_to_string(rig.log.as_ref().unwrap())
                .unwrap()
                .contains("secret plan")
        );
    }
}

#[test]
fn a_human_action_is_its_own_record_linked_to_the_decision() {
    let rig = audited("human", |_| {});
    rig.engine
        .set_mode("scribe", Some(Mode::Shadow), "ops")
        .unwrap();
    let s = open_with_context(&rig, "scribe", "user:dr.lee@clinic");
    let dear = [("cost", ArgValue::Money(usd(900)))];
    let v = rig.engine.decide(s, &Call::new("order_test").args(&dear));
    assert!(v.shadow);
    assert_eq!(v.decision.outcome, Outcome::Escalate);
    let call = v.call.unwrap();
    let ack = rig
        .engine
        .record_human(call, HumanAction::Allow, "dr.lee@clinic")
        .unwrap()
        .expect("audited");
    let cheap = [("cost", ArgValue::Money(usd(80)))];
    let v2 = rig.engine.decide(s, &Call::new("order_test").args(&cheap));
    rig.engine
        .record_human(v2.call.unwrap(), HumanAction::Allow, "dr.lee@clinic")
        .unwrap();

    let records = rig.records();
    let h = records.iter().find(|r| r.seq == ack.seq).unwrap();
    assert_eq!(h.kind, RecordKind::Human);
    assert_eq!(h.session.as_deref(), Some("run-1"));
    assert_eq!(h.call, Some(1));
    assert_eq!(h.agent.as_deref(), Some("scribe"));
    assert_eq!(h.human, Some(HumanAction::Allow));
    assert_eq!(h.by.as_deref(), Some("dr.lee@clinic"));
    assert_eq!(h.context.as_deref(), Some("user:dr.lee@clinic"));

    let log = rig.log.as_ref().unwrap();
    let report = verify(std::io::BufReader::new(std::fs::File::open(log).unwrap())).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    let e = evidence(std::io::BufReader::new(std::fs::File::open(log).unwrap())).unwrap();
    assert_eq!(e.decisions.len(), 2);
    assert_eq!(
        e.decisions[0].human_agrees(),
        Some(false),
        "would escalate, human went ahead"
    );
    assert_eq!(e.decisions[1].human_agrees(), Some(true));
    assert!(e.decisions.iter().all(|d| d.shadow));
    assert_eq!(e.unmatched, 0);
}

#[test]
fn a_human_action_for_a_call_never_decided_is_refused() {
    let rig = rig();
    let s = session(&rig, "scribe");
    for n in [0, 1] {
        assert_eq!(
            rig.engine
                .record_human(CallRef { session: s, n }, HumanAction::Deny, "x"),
            Err(EngineError::UnknownCall(CallRef { session: s, n }))
        );
    }
    let ghost = SessionId(99);
    assert_eq!(
        rig.engine.record_human(
            CallRef {
                session: ghost,
                n: 1
            },
            HumanAction::Deny,
            "x"
        ),
        Err(EngineError::UnknownSession(ghost))
    );
    // Without an audit log it is accepted and writes nothing.
    let cheap = [("cost", ArgValue::Money(usd(80)))];
    let v = rig.engine.decide(s, &Call::new("order_test").args(&cheap));
    assert_eq!(
        rig.engine
            .record_human(v.call.unwrap(), HumanAction::Allow, "x"),
        Ok(None)
    );
}

#[test]
fn evidence_joins_results_and_resolutions_to_their_decisions() {
    let rig = audited("evidence", |_| {});
    let s = session(&rig, "scribe");
    let cheap = [("cost", ArgValue::Money(usd(80)))];
    let dear = [("cost", ArgValue::Money(usd(900)))];
    let ok = rig.engine.decide(s, &Call::new("order_test").args(&cheap));
    rig.engine
        .report(ok.call.unwrap(), engine::CallResult::error(10, 5))
        .unwrap();
    let esc = rig.engine.decide(s, &Call::new("order_test").args(&dear));
    rig.engine
        .resolve(esc.escalation.unwrap(), Resolution::Approve, "nurse")
        .unwrap();
    let log = rig.log.as_ref().unwrap();
    let e = evidence(std::io::BufReader::new(std::fs::File::open(log).unwrap())).unwrap();
    assert_eq!(e.decisions.len(), 2);
    assert_eq!(e.decisions[0].result_ok, Some(false));
    assert_eq!(e.decisions[0].resolution, None);
    assert_eq!(e.decisions[1].outcome, Outcome::Escalate);
    assert_eq!(e.decisions[1].resolution.as_deref(), Some("approve"));
    assert_eq!(e.decisions[1].human, None);
}

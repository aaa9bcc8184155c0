//! Escalations: pending calls with their route, notify target and deadline; approval,
//! rejection and timeout, each audited; approval re-checks what may have changed.

use std::sync::{Arc, Mutex};

use agentpolicy_runtime::audit::RecordKind;
use agentpolicy_runtime::engine::{Escalation, Notify, Resolution};
use agentpolicy_runtime::*;

use super::clinic::{T0, audited, clinic, rig, rig_with, session};
use super::fixture::usd;

#[derive(Debug, Default)]
struct Pager {
    sent: Mutex<Vec<(String, Option<Outcome>)>>,
}

impl Notify for Pager {
    fn escalated(&self, e: &Escalation) {
        self.sent.lock().unwrap().push((e.notify.join(","), None));
    }
    fn resolved(&self, e: &Escalation, outcome: Outcome) {
        self.sent
            .lock()
            .unwrap()
            .push((e.notify.join(","), Some(outcome)));
    }
}

#[test]
fn an_escalation_waits_with_its_route_and_is_approved_or_rejected() {
    let pager = Arc::new(Pager::default());
    let notify: Arc<dyn Notify> = pager.clone();
    let rig = rig_with(clinic(), |c| c.notify = Some(notify));
    let s = session(&rig, "scribe");
    let cheap = [("cost", ArgValue::Money(usd(80)))];
    assert!(
        rig.engine
            .decide(s, &Call::new("order_test").args(&cheap))
            .is_allow()
    );
    let dear = [("cost", ArgValue::Money(usd(900)))];
    let v = rig.engine.decide(s, &Call::new("order_test").args(&dear));
    assert_eq!(v.outcome, Outcome::Escalate);
    let id = v.escalation.unwrap();
    let pending = rig.engine.pending_escalations().unwrap();
    assert_eq!(pending.len(), 1);
    let e = &pending[0];
    assert_eq!(e.id, id);
    assert_eq!(e.routes, ["charge_nurse"]);
    assert_eq!(e.notify, ["pager:charge-nurse"]);
    assert_eq!(e.deadline_ms, Some(T0 + 600_000));
    assert_eq!(e.timeout_outcome, Outcome::Deny);
    assert_eq!(e.rule.as_deref(), Some("r4"));
    assert_eq!(rig.engine.session(s).unwrap().pending, [id]);

    let r = rig
        .engine
        .resolve(id, Resolution::Approve, "nurse@clinic")
        .unwrap();
    assert_eq!(r.outcome, Outcome::Allow);
    assert_eq!(r.why, "approved by nurse@clinic");
    assert!(rig.engine.pending_escalations().unwrap().is_empty());
    assert!(matches!(
        rig.engine.resolve(id, Resolution::Approve, "nurse@clinic"),
        Err(engine::EngineError::NoSuchEscalation(_))
    ));

    let v = rig.engine.decide(s, &Call::new("order_test").args(&dear));
    let r = rig
        .engine
        .resolve(v.escalation.unwrap(), Resolution::Reject, "nurse@clinic")
        .unwrap();
    assert_eq!(r.outcome, Outcome::Deny);
    let sent = pager.sent.lock().unwrap().clone();
    assert_eq!(
        sent,
        [
            ("pager:charge-nurse".to_string(), None),
            ("pager:charge-nurse".to_string(), Some(Outcome::Allow)),
            ("pager:charge-nurse".to_string(), None),
            ("pager:charge-nurse".to_string(), Some(Outcome::Deny)),
        ]
    );
}

#[test]
fn escalations_time_out_with_their_routes_outcome() {
    let rig = rig();
    let scribe = session(&rig, "scribe");
    let biller = session(&rig, "biller");
    let dear = [("cost", ArgValue::Money(usd(900)))];
    let nurse = rig
        .engine
        .decide(scribe, &Call::new("order_test").args(&dear));
    let desk = rig
        .engine
        .decide(biller, &Call::new("order_test").args(&dear));
    assert_eq!(desk.outcome, Outcome::Escalate);
    rig.clock.advance(599_999);
    assert!(rig.engine.expire_escalations().is_empty());
    rig.clock.advance(1);
    let expired = rig.engine.expire_escalations();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].escalation.id, nurse.escalation.unwrap());
    assert_eq!(expired[0].resolution, Resolution::TimedOut);
    assert_eq!(expired[0].outcome, Outcome::Deny);
    rig.clock.advance(3_000_000);
    let expired = rig.engine.expire_escalations();
    assert_eq!(expired.len(), 1);
    assert_eq!(
        expired[0].outcome,
        Outcome::Allow,
        "the billing desk's timeout allows"
    );
}

#[test]
fn approval_rechecks_suspension_and_flow() {
    let rig = rig();
    let s = session(&rig, "scribe");
    let dear = [("cost", ArgValue::Money(usd(900)))];
    let v = rig.engine.decide(s, &Call::new("order_test").args(&dear));
    rig.engine.kill_agent("scribe", "ops").unwrap();
    let r = rig
        .engine
        .resolve(v.escalation.unwrap(), Resolution::Approve, "nurse")
        .unwrap();
    assert_eq!(r.outcome, Outcome::Deny);
    assert!(r.why.contains("the agent is suspended"), "{}", r.why);
}

#[test]
fn resolutions_and_closing_a_session_are_audited() {
    let rig = audited("escalation-audit", |_| {});
    let s = session(&rig, "scribe");
    let dear = [("cost", ArgValue::Money(usd(900)))];
    let v = rig.engine.decide(s, &Call::new("order_test").args(&dear));
    let decision = rig
        .records()
        .into_iter()
        .rfind(|r| r.kind == RecordKind::Decision)
        .unwrap();
    let info = decision.escalation.unwrap();
    assert_eq!(info.id, v.escalation.unwrap().to_string());
    assert_eq!(info.notify, ["pager:charge-nurse"]);
    assert_eq!(info.deadline_ms, Some(T0 + 600_000));
    rig.engine.close_session(s).unwrap();
    let records = rig.records();
    let resolution = records
        .iter()
        .find(|r| r.kind == RecordKind::Resolution)
        .unwrap();
    assert_eq!(resolution.resolution.as_deref(), Some("reject"));
    assert_eq!(resolution.by.as_deref(), Some("session closed"));
    assert_eq!(resolution.outcome, Some(Outcome::Deny));
    assert_eq!(records.last().unwrap().detail.as_deref(), Some("closed"));
}

#[test]
fn a_resolvers_reason_is_recorded_after_who_resolved() {
    let rig = audited("escalation-reason", |_| {});
    let s = session(&rig, "scribe");
    let dear = [("cost", ArgValue::Money(usd(900)))];
    let id = rig
        .engine
        .decide(s, &Call::new("order_test").args(&dear))
        .escalation
        .unwrap();
    let r = rig
        .engine
        .resolve_with_reason(
            id,
            Resolution::Reject,
            "nurse@clinic",
            "not ordered by a doctor",
        )
        .unwrap();
    assert_eq!(r.outcome, Outcome::Deny);
    assert_eq!(
        r.why,
        "rejected by nurse@clinic (reason: not ordered by a doctor)"
    );
    let records = rig.records();
    let resolution = records
        .iter()
        .find(|r| r.kind == RecordKind::Resolution)
        .unwrap();
    assert_eq!(resolution.by.as_deref(), Some("nurse@clinic"));
    assert_eq!(
        resolution.why.as_deref(),
        Some("rejected by nurse@clinic (reason: not ordered by a doctor)")
    );
}

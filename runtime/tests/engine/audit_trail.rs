//! What the engine writes to the audit log: every decision with its fields, redacted as
//! configured; results; and a failing log denies the call.

use std::io;
use std::sync::Arc;

use agentpolicy_runtime::audit::{
    AuditLog, Durability, Filter, GENESIS, LogSink, RecordKind, query, verify,
};
use agentpolicy_runtime::engine::{CallResult, ManualClock, Reason, Redact, Redaction};
use agentpolicy_runtime::*;

use super::clinic::{T0, audited, clinic, config, session};
use super::fixture::usd;

#[test]
fn every_decision_is_recorded_with_its_table_session_agent_tool_args_outcome_and_rule() {
    let rig = audited("trail", |c| {
        c.redaction = Redaction::default().rule(Some("post_note"), "text", Redact::Hash);
    });
    let s = session(&rig, "scribe");
    let cost = [("cost", ArgValue::Money(usd(80)))];
    let v = rig
        .engine
        .decide(s, &Call::new("order_test").args(&cost).confidence(900_000));
    let ack = v.audit.expect("acknowledged");
    rig.engine
        .report(v.call.unwrap(), CallResult::ok(321, 45))
        .unwrap();
    let note = [("text", ArgValue::Text("Mrs X is better"))];
    rig.engine.decide(s, &Call::new("post_note").args(&note));

    let records = rig.records();
    let d = records.iter().find(|r| r.seq == ack.seq).unwrap();
    assert_eq!(d.kind, RecordKind::Decision);
    assert_eq!(d.hash, ack.hash);
    assert_eq!(d.table, Some(rig.engine.table_hash()));
    assert_eq!(d.session.as_deref(), Some("s1"));
    assert_eq!(d.agent.as_deref(), Some("scribe"));
    assert_eq!(d.tool.as_deref(), Some("order_test"));
    assert_eq!(d.call, Some(1));
    assert_eq!(d.time_ms, T0);
    assert_eq!(d.time, "2026-01-01T00:00:00.000Z");
    let args = serde_json::Value::Object(d.args.clone().unwrap());
    assert_eq!(
        args,
        serde_json::json!({ "cost": "$80.00", "confidence": "0.9" })
    );
    assert_eq!(d.outcome, Some(Outcome::Allow));
    assert_eq!(d.rule.as_deref(), Some("r5"));
    assert_eq!(d.reason.as_deref(), Some("rule"));
    assert!(d.why.as_deref().unwrap().starts_with("allow by rule `r5`"));

    let result = records
        .iter()
        .find(|r| r.kind == RecordKind::Result)
        .unwrap();
    assert_eq!(result.call, Some(1));
    let reported = result.result.unwrap();
    assert_eq!(
        (reported.ok, reported.tokens, reported.latency_ms),
        (true, 321, 45)
    );

    let note_record = records
        .iter()
        .rfind(|r| r.kind == RecordKind::Decision)
        .unwrap();
    let text = note_record.args.as_ref().unwrap().get("text").unwrap();
    assert_eq!(
        text,
        &serde_json::json!(ContentHash::of(b"Mrs X is better").to_string())
    );
    assert!(
        !std::fs::read_to_string(rig.log.as_ref().unwrap())
            .unwrap()
            .contains("Mrs X")
    );

    let file = std::fs::File::open(rig.log.as_ref().unwrap()).unwrap();
    let report = verify(io::BufReader::new(file)).unwrap();
    assert!(report.is_intact(), "{report:?}");
}

#[test]
fn the_log_closes_sealed_and_queries_filter_it() {
    let rig = audited("trail-query", |_| {});
    let scribe = session(&rig, "scribe");
    let biller = session(&rig, "biller");
    rig.engine.decide(scribe, &Call::new("read_schedule"));
    rig.clock.advance(60_000);
    rig.engine.decide(biller, &Call::new("read_chart"));
    rig.engine.decide(scribe, &Call::new("read_schedule"));
    let path = rig.log.clone().unwrap();
    rig.engine.shutdown().unwrap();

    let report = verify(io::BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
    assert!(report.is_intact() && report.sealed, "{report:?}");

    let read =
        |f: &Filter| query(io::BufReader::new(std::fs::File::open(&path).unwrap()), f).unwrap();
    let denied = read(&Filter {
        outcome: Some(Outcome::Deny),
        ..Filter::default()
    });
    assert_eq!(denied.records.len(), 1);
    assert_eq!(denied.records[0].agent.as_deref(), Some("biller"));
    assert_eq!(denied.records[0].reason.as_deref(), Some("not_granted"));
    let later = read(&Filter {
        agent: Some("scribe".into()),
        kind: Some(RecordKind::Decision),
        since_ms: Some(T0 + 1),
        ..Filter::default()
    });
    assert_eq!(later.records.len(), 1);
    let s2 = read(&Filter {
        session: Some("s2".into()),
        ..Filter::default()
    });
    assert_eq!(s2.records.len(), 2, "opened, and one decision");
}

#[derive(Debug)]
struct BrokenDisk {
    writes_left: usize,
}

impl LogSink for BrokenDisk {
    fn write_all(&mut self, _: &[u8]) -> io::Result<()> {
        if self.writes_left == 0 {
            return Err(io::Error::other("no space left on device"));
        }
        self.writes_left -= 1;
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn an_audit_write_failure_denies_the_call_and_every_later_one() {
    let clock = Arc::new(ManualClock::new(T0));
    let mut config = config(&clock);
    // The engine's start record and the session's record get through, then the disk fails.
    config.audit = Some(AuditLog::with_sink(
        Box::new(BrokenDisk { writes_left: 2 }),
        Durability::default(),
        1,
        GENESIS,
    ));
    let engine = Engine::new(clinic(), config).unwrap();
    let s = engine
        .open_session("scribe", SessionOptions::default())
        .unwrap();
    let v = engine.decide(s, &Call::new("read_schedule"));
    assert_eq!(v.outcome, Outcome::Deny);
    assert_eq!(v.reason_code(), "internal");
    assert!(
        matches!(&v.reason, Reason::Internal(engine::Internal::Audit(e)) if e.contains("no space"))
    );
    let v = engine.decide(s, &Call::new("read_schedule"));
    assert_eq!(v.reason_code(), "internal");
    let dear = [("cost", ArgValue::Money(usd(900)))];
    let v = engine.decide(s, &Call::new("order_test").args(&dear));
    assert_eq!(
        v.outcome,
        Outcome::Deny,
        "an escalation that cannot be recorded is denied"
    );
    assert!(engine.pending_escalations().unwrap().is_empty());
    assert!(
        engine
            .open_session("scribe", SessionOptions::default())
            .is_err()
    );
}

#[test]
fn a_refusal_is_recorded_with_who_what_and_why_and_the_log_still_verifies() {
    let rig = audited("trail-refusal", |_| {});
    let ack = rig
        .engine
        .record_refusal(
            "agent-token-1",
            "POST /v1/kill",
            "role `agent` may not kill",
        )
        .unwrap()
        .expect("acknowledged");
    assert_eq!(rig.engine.audit_failure(), None);
    let records = rig.records();
    let r = records.iter().find(|r| r.seq == ack.seq).unwrap();
    assert_eq!(r.kind, RecordKind::Refusal);
    assert_eq!(r.kind.keyword(), "refusal");
    assert_eq!(r.by.as_deref(), Some("agent-token-1"));
    assert_eq!(
        r.detail.as_deref(),
        Some("refused POST /v1/kill: role `agent` may not kill")
    );
    assert_eq!(r.table, Some(rig.engine.table_hash()));
    let path = rig.log.clone().unwrap();
    rig.engine.shutdown().unwrap();
    let report = verify(io::BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
    assert!(report.is_intact() && report.sealed, "{report:?}");
    let refusals = query(
        io::BufReader::new(std::fs::File::open(&path).unwrap()),
        &Filter {
            kind: Some(RecordKind::Refusal),
            ..Filter::default()
        },
    )
    .unwrap();
    assert_eq!(refusals.records.len(), 1);
}

//! Oversized arguments: refused with a reason that names the argument and the limit
//! (configurable, by the engine and by the request builder, before any test reads the
//! value), audited, and kept bounded in the audit record (prefix, length, SHA-256) so
//! the log stays small and still verifies.

use std::io;

use agentpolicy_runtime::audit::{RecordKind, verify};
use agentpolicy_runtime::engine::{
    MAX_AUDIT_ARG_BYTES, MAX_AUDIT_LIST_ITEMS, Reason, Redact, Redaction,
};
use agentpolicy_runtime::*;

use super::clinic::{audited, session};
use super::fixture::{INTAKE, SEND_EMAIL, rule, table_from};

#[test]
fn an_argument_over_the_limit_is_denied_naming_it_and_audited_bounded() {
    let rig = audited("oversized", |_| {});
    let s = session(&rig, "scribe");
    let huge = "é".repeat(DEFAULT_ARG_BYTES); // twice the limit in bytes
    let args = [("text", ArgValue::Text(&huge))];
    let v = rig.engine.decide(s, &Call::new("post_note").args(&args));
    assert_eq!(v.outcome, Outcome::Deny);
    assert_eq!(
        v.reason,
        Reason::Request(RequestError::ArgumentTooLarge {
            param: "text".into(),
            size: 2 * DEFAULT_ARG_BYTES,
            limit: DEFAULT_ARG_BYTES,
            unit: SizeUnit::Bytes,
        })
    );
    let message = match &v.reason {
        Reason::Request(e) => e.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(
        message.starts_with("argument `text` is 524288 bytes, over the limit of 262144 bytes"),
        "{message}"
    );
    assert_eq!(v.reason_code(), "request");

    // Just under the limit is decided by the policy (scribe may post notes), and the
    // record keeps it bounded.
    let long = "x".repeat(DEFAULT_ARG_BYTES);
    let args = [("text", ArgValue::Text(&long))];
    let ok = rig.engine.decide(s, &Call::new("post_note").args(&args));
    assert_eq!(ok.outcome, Outcome::Allow, "{:?}", ok.reason);

    let records = rig.records();
    let decisions: Vec<_> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Decision)
        .collect();
    assert_eq!(decisions.len(), 2);
    let refused = decisions[0];
    assert_eq!(refused.outcome, Some(Outcome::Deny));
    assert_eq!(refused.reason.as_deref(), Some("request"));
    assert!(refused.why.as_deref().unwrap().contains("over the limit"));
    for (record, whole) in [(refused, huge.as_str()), (decisions[1], long.as_str())] {
        let kept = record.args.as_ref().unwrap()["text"].as_str().unwrap();
        assert!(
            kept.len() < MAX_AUDIT_ARG_BYTES + 200,
            "{} bytes kept",
            kept.len()
        );
        let hash = ContentHash::of(whole.as_bytes()).to_string();
        assert!(
            kept.ends_with(&format!("bytes cut; {} bytes, {hash}]", whole.len())),
            "{kept}"
        );
        assert!(whole.starts_with(kept.split("[... ").next().unwrap()));
    }
    let line_bytes = std::fs::metadata(rig.log.as_ref().unwrap()).unwrap().len();
    assert!(line_bytes < 16 * 1024, "the log is {line_bytes} bytes");
    let file = std::fs::File::open(rig.log.as_ref().unwrap()).unwrap();
    let report = verify(io::BufReader::new(file)).unwrap();
    assert!(report.is_intact(), "{report:?}");
}

#[test]
fn the_limits_are_configurable_and_redaction_still_applies_first() {
    let rig = audited("oversized-config", |c| {
        c.limits = RequestLimits {
            arg_bytes: 10,
            ..RequestLimits::default()
        };
        c.redaction = Redaction::default().rule(None, "text", Redact::Mask);
    });
    let s = session(&rig, "scribe");
    let args = [("text", ArgValue::Text("0123456789"))];
    assert!(
        rig.engine
            .decide(s, &Call::new("post_note").args(&args))
            .is_allow()
    );
    let args = [("text", ArgValue::Text("0123456789A"))];
    let v = rig.engine.decide(s, &Call::new("post_note").args(&args));
    assert!(
        matches!(
            &v.reason,
            Reason::Request(RequestError::ArgumentTooLarge {
                size: 11,
                limit: 10,
                ..
            })
        ),
        "{:?}",
        v.reason
    );
    for r in rig
        .records()
        .iter()
        .filter(|r| r.kind == RecordKind::Decision)
    {
        assert_eq!(r.args.as_ref().unwrap()["text"], "[redacted]");
    }
}

/// A table whose `send_email` takes a list of recipients tested by a glob.
fn list_table() -> DecisionTable {
    let mut data = super::fixture::table_with(vec![]).into_data();
    let tool = &mut data.tools[SEND_EMAIL as usize];
    tool.params[0].ty = ValueType::TextList;
    data.text_tests.push(TextTest {
        tool: ToolId(SEND_EMAIL),
        param: 0,
        kind: TextTestKind::Matches("*@acme.example".into()),
    });
    table_from(
        data,
        vec![rule(
            INTAKE,
            RuleKind::Allow,
            Some(SEND_EMAIL),
            None,
            Some(vec![Op::All {
                slot: Slot(0),
                bit: 0,
            }]),
        )],
    )
}

#[test]
fn a_list_with_too_many_elements_or_bytes_is_refused_by_the_request_builder() {
    let table = list_table();
    let many: Vec<&str> = vec!["a@acme.example"; DEFAULT_LIST_ITEMS + 1];
    let err = table
        .request("intake", "send_email")
        .unwrap()
        .arg("to", ArgValue::TextList(&many))
        .unwrap_err();
    assert_eq!(
        err,
        RequestError::ArgumentTooLarge {
            param: "to".into(),
            size: DEFAULT_LIST_ITEMS + 1,
            limit: DEFAULT_LIST_ITEMS,
            unit: SizeUnit::Elements,
        }
    );
    assert!(
        err.to_string()
            .contains("4097 elements, over the limit of 4096 elements")
    );

    let fits: Vec<&str> = vec!["a@acme.example"; DEFAULT_LIST_ITEMS];
    let request = table
        .request("intake", "send_email")
        .unwrap()
        .arg("to", ArgValue::TextList(&fits))
        .unwrap()
        .build();
    assert_eq!(decide(&table, &request).outcome, Outcome::Allow);

    // Bytes over all elements count, and the limits are the builder's to set.
    let small = RequestLimits {
        arg_bytes: 20,
        ..RequestLimits::default()
    };
    let two = ["a@acme.example", "b@acme.example"];
    let err = table
        .request("intake", "send_email")
        .unwrap()
        .limits(small)
        .arg("to", ArgValue::TextList(&two))
        .unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::ArgumentTooLarge {
                size: 28,
                limit: 20,
                unit: SizeUnit::Bytes,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_long_list_is_kept_bounded_in_the_audit_record() {
    let clock = std::sync::Arc::new(engine::ManualClock::new(super::clinic::T0));
    let path = super::clinic::temp_dir("oversized-list").join("audit.jsonl");
    let log = audit::AuditLog::open(&path, audit::Durability::default(), clock.as_ref()).unwrap();
    let engine = Engine::new(
        list_table(),
        EngineConfig {
            clock,
            audit: Some(log),
            ..EngineConfig::default()
        },
    )
    .unwrap();
    let s = engine
        .open_session("intake", SessionOptions::default())
        .unwrap();
    let owned: Vec<String> = (0..1000).map(|i| format!("user{i}@acme.example")).collect();
    let to: Vec<&str> = owned.iter().map(String::as_str).collect();
    let args = [("to", ArgValue::TextList(&to))];
    assert!(
        engine
            .decide(s, &Call::new("send_email").args(&args))
            .is_allow()
    );
    drop(engine);
    let file = std::fs::File::open(&path).unwrap();
    let records = audit::query(io::BufReader::new(file), &audit::Filter::default())
        .unwrap()
        .records;
    let d = records
        .iter()
        .find(|r| r.kind == RecordKind::Decision)
        .unwrap();
    let kept = d.args.as_ref().unwrap()["to"].as_array().unwrap();
    assert_eq!(kept.len(), MAX_AUDIT_LIST_ITEMS + 1);
    assert_eq!(kept[0], "user0@acme.example");
    let whole = serde_json::to_string(&to).unwrap();
    assert_eq!(
        kept[MAX_AUDIT_LIST_ITEMS],
        format!(
            "[... 936 more elements cut; 1000 elements, {}]",
            ContentHash::of(whole.as_bytes())
        )
    );
    let file = std::fs::File::open(&path).unwrap();
    assert!(verify(io::BufReader::new(file)).unwrap().is_intact());
}

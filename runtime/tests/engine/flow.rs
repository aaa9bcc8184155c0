//! Step 3: tiers, isolation keys, write-down.

use agentpolicy_runtime::*;

use crate::fixture::*;

fn flow_table() -> DecisionTable {
    table_with(vec![
        rule(INTAKE, RuleKind::Allow, Some(SEARCH_DOCS), None, None),
        rule(INTAKE, RuleKind::Allow, Some(READ_SETTLEMENT), None, None),
        rule(INTAKE, RuleKind::Allow, Some(SEND_EMAIL), None, None),
        rule(INTAKE, RuleKind::Allow, Some(SAVE_NOTE), None, None),
        rule(PARTNER, RuleKind::Allow, Some(READ_SETTLEMENT), None, None),
    ])
}

const M1: KeyValue = KeyValue(1);
const M2: KeyValue = KeyValue(2);

fn bound(matter: KeyValue, tier: TierId) -> SessionView {
    let mut s = SessionView {
        tier: Some(tier),
        ..SessionView::default()
    };
    s.bound.set(MATTER, matter);
    s
}

#[test]
fn reads_above_max_tier_are_denied_with_or_without_a_named_resource() {
    let t = flow_table();
    let r = t.request("intake", "read_settlement").unwrap().build();
    assert_eq!(
        decide(&t, &r).why,
        Why::ReadAboveMaxTier {
            resource: ResourceId(1)
        }
    );
    let r = t
        .request("intake", "read_settlement")
        .unwrap()
        .read("settlement", &[("matter", M1)])
        .unwrap()
        .build();
    assert_eq!(
        decide(&t, &r).why,
        Why::ReadAboveMaxTier {
            resource: ResourceId(1)
        }
    );
    // partner has no ceiling.
    let r = t.request("partner", "read_settlement").unwrap().build();
    assert_eq!(decide(&t, &r).outcome, Outcome::Allow);
}

#[test]
fn a_second_matter_never_enters_the_session() {
    let t = flow_table();
    let read = |matter, session| {
        let r = t
            .request("intake", "search_docs")
            .unwrap()
            .read("document", &[("matter", matter)])
            .unwrap()
            .session(session)
            .build();
        decide(&t, &r)
    };
    assert_eq!(read(M1, SessionView::default()).outcome, Outcome::Allow);
    assert_eq!(read(M1, bound(M1, CONFIDENTIAL)).outcome, Outcome::Allow);
    let d = read(M2, bound(M1, CONFIDENTIAL));
    assert_eq!(
        (d.outcome, d.why),
        (
            Outcome::Deny,
            Why::ReadCrossesKey {
                resource: ResourceId(0),
                key: MATTER
            }
        )
    );
    assert_eq!(d.stage(), Stage::Flow);
    assert_eq!(
        d.explain(t.data()).to_string(),
        "deny (flow): the read is for another isolation key value than the session's (resource `document`, key `matter`)"
    );
    // A named read of a keyed resource must say which matter.
    let r = t
        .request("intake", "search_docs")
        .unwrap()
        .read("document", &[])
        .unwrap()
        .build();
    assert_eq!(
        decide(&t, &r).why,
        Why::ReadKeyMissing {
            resource: ResourceId(0),
            key: MATTER
        }
    );
    // A resource the tool does not read.
    let r = t
        .request("intake", "search_docs")
        .unwrap()
        .read("settlement", &[("matter", M1)])
        .unwrap()
        .build();
    assert_eq!(
        decide(&t, &r).why,
        Why::ReadUndeclared {
            resource: ResourceId(1)
        }
    );
}

#[test]
fn no_write_down() {
    let t = flow_table();
    let send = |session| {
        let r = t
            .request("intake", "send_email")
            .unwrap()
            .arg("to", ArgValue::Text("a@b"))
            .unwrap()
            .session(session)
            .build();
        decide(&t, &r)
    };
    assert_eq!(send(SessionView::default()).outcome, Outcome::Allow);
    let public = SessionView {
        tier: Some(PUBLIC),
        ..SessionView::default()
    };
    assert_eq!(send(public).outcome, Outcome::Allow);
    assert_eq!(
        send(bound(M1, CONFIDENTIAL)).why,
        Why::WriteDown { sink: SinkId(0) }
    );
}

#[test]
fn a_call_that_reads_and_writes_checks_the_write_against_what_it_read() {
    let t = flow_table();
    let save = |read_matter, write_matter, session| {
        let r = t
            .request("intake", "save_note")
            .unwrap()
            .read("document", &[("matter", read_matter)])
            .unwrap()
            .write("matter_notes", &[("matter", write_matter)])
            .unwrap()
            .session(session)
            .build();
        decide(&t, &r).why
    };
    assert_eq!(save(M1, M1, SessionView::default()), Why::RuleMatched);
    // The session was unbound, but this call's read binds M1 before its write.
    assert_eq!(
        save(M1, M2, SessionView::default()),
        Why::WriteCrossesKey {
            sink: SinkId(1),
            key: MATTER
        }
    );
    let r = t
        .request("intake", "save_note")
        .unwrap()
        .write("matter_notes", &[])
        .unwrap()
        .build();
    assert_eq!(
        decide(&t, &r).why,
        Why::WriteKeyMissing {
            sink: SinkId(1),
            key: MATTER
        }
    );
    let r = t
        .request("intake", "save_note")
        .unwrap()
        .write("outbound_mail", &[])
        .unwrap()
        .build();
    assert_eq!(decide(&t, &r).why, Why::WriteUndeclared { sink: SinkId(0) });
    // Issue 22: a call that names its read and not the keyed write it makes is denied
    // (fail closed): the write's matter would be checked by nobody.
    let r = t
        .request("intake", "save_note")
        .unwrap()
        .read("document", &[("matter", M1)])
        .unwrap()
        .build();
    assert_eq!(
        decide(&t, &r).why,
        Why::WriteKeyMissing {
            sink: SinkId(1),
            key: MATTER
        }
    );
    // A privileged session may not write confidential notes.
    let r = t
        .request("intake", "save_note")
        .unwrap()
        .session(bound(M1, PRIVILEGED))
        .build();
    assert_eq!(decide(&t, &r).why, Why::WriteDown { sink: SinkId(1) });
}

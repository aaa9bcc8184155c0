//! Tampering with a real engine log: each kind of edit is detected and named.

use std::io;

use agentpolicy_runtime::audit::{Anchor, EditKind, Problem, VerifyReport, verify, verify_with};
use agentpolicy_runtime::*;

use super::clinic::{audited, session};

/// A sealed log of 12 records: start, open, sessions, decisions, close.
fn sample(name: &str) -> (Vec<String>, Anchor) {
    let rig = audited(name, |_| {});
    let s = session(&rig, "scribe");
    for _ in 0..7 {
        rig.engine.decide(s, &Call::new("read_schedule"));
        rig.clock.advance(1_000);
    }
    let head = rig.engine.audit_head().unwrap();
    let path = rig.log.clone().unwrap();
    rig.engine.shutdown().unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 11);
    (
        lines,
        Anchor {
            seq: head.seq,
            hash: head.hash,
        },
    )
}

fn check(lines: &[String]) -> VerifyReport {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    verify(io::Cursor::new(text)).unwrap()
}

#[test]
fn the_untouched_log_is_intact_and_sealed() {
    let (lines, anchor) = sample("tamper-none");
    let report = check(&lines);
    assert!(report.is_intact() && report.sealed, "{report:?}");
    assert_eq!(report.verified_upto, Some(11));
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    assert!(
        verify_with(io::Cursor::new(text), Some(anchor))
            .unwrap()
            .is_intact()
    );
}

#[test]
fn an_edited_record_is_named() {
    let (mut lines, _) = sample("tamper-edit");
    lines[5] = lines[5].replace("\"outcome\":\"allow\"", "\"outcome\":\"deny\"");
    let report = check(&lines);
    assert_eq!(
        report.problems,
        [Problem::Edited {
            line: 6,
            seq: 6,
            how: EditKind::Content
        }]
    );
    assert_eq!(report.verified_upto, Some(5));
    assert!(
        report.problems[0]
            .to_string()
            .contains("record 6 was edited")
    );
}

#[test]
fn an_edited_and_rehashed_record_is_named() {
    let (mut lines, _) = sample("tamper-rehash");
    let edited = lines[5].replace("\"outcome\":\"allow\"", "\"outcome\":\"deny\"");
    let body = format!("{}}}", &edited[..edited.len() - 82]);
    let hash = ContentHash::of(body.as_bytes());
    lines[5] = format!("{},\"hash\":\"{hash}\"}}", &edited[..edited.len() - 82]);
    let report = check(&lines);
    assert_eq!(
        report.problems,
        [Problem::Edited {
            line: 6,
            seq: 6,
            how: EditKind::Rehashed
        }]
    );
}

#[test]
fn a_deleted_record_is_named() {
    let (mut lines, _) = sample("tamper-delete");
    lines.remove(4);
    let report = check(&lines);
    assert_eq!(
        report.problems,
        [Problem::Deleted {
            line: 5,
            from_seq: 5,
            to_seq: 5
        }]
    );
    assert_eq!(
        report.problems[0].to_string(),
        "line 5: record 5 was deleted (the chain jumps over it)"
    );
}

#[test]
fn deleting_the_start_of_the_log_is_named() {
    let (lines, _) = sample("tamper-head");
    let report = check(&lines[3..]);
    assert_eq!(
        report.problems,
        [Problem::Deleted {
            line: 1,
            from_seq: 1,
            to_seq: 3
        }]
    );
    assert_eq!(report.verified_upto, None);
}

#[test]
fn an_inserted_record_is_named() {
    let (mut lines, _) = sample("tamper-insert");
    // A forged copy of record 6 with another outcome, re-hashed, placed after it.
    let forged = lines[5].replace("\"outcome\":\"allow\"", "\"outcome\":\"deny\"");
    let body = format!("{}}}", &forged[..forged.len() - 82]);
    let hash = ContentHash::of(body.as_bytes());
    lines.insert(
        6,
        format!("{},\"hash\":\"{hash}\"}}", &forged[..forged.len() - 82]),
    );
    let report = check(&lines);
    assert_eq!(report.problems, [Problem::Inserted { line: 7, seq: 6 }]);
}

#[test]
fn a_record_appended_after_the_close_is_named() {
    let (mut lines, _) = sample("tamper-append");
    let last = lines[10].clone();
    let prev = last[last.len() - 73..last.len() - 2].to_string();
    let body = format!(
        "{{\"seq\":12,\"time_ms\":0,\"time\":\"1970-01-01T00:00:00.000Z\",\"prev\":\"{prev}\",\"kind\":\"decision\"}}"
    );
    let hash = ContentHash::of(body.as_bytes());
    lines.push(format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1]));
    let report = check(&lines);
    assert_eq!(report.problems, [Problem::Inserted { line: 12, seq: 12 }]);
}

#[test]
fn reordered_records_are_named() {
    let (mut lines, _) = sample("tamper-reorder");
    lines.swap(6, 7);
    let report = check(&lines);
    assert_eq!(
        report.problems,
        [Problem::Reordered {
            line: 8,
            seq: 7,
            after_seq: 8
        }]
    );
}

#[test]
fn a_truncated_log_is_unsealed_and_an_anchor_proves_the_cut() {
    let (lines, anchor) = sample("tamper-truncate");
    let cut = &lines[..8];
    let report = check(cut);
    assert!(report.is_intact(), "a clean cut leaves a valid chain");
    assert!(!report.sealed, "but no close record");
    let text: String = cut.iter().map(|l| format!("{l}\n")).collect();
    let report = verify_with(io::Cursor::new(text), Some(anchor)).unwrap();
    assert_eq!(
        report.problems,
        [Problem::Truncated {
            last_seq: Some(8),
            anchor_seq: 10
        }]
    );
}

#[test]
fn a_torn_tail_is_reported_apart_from_tampering() {
    let (lines, _) = sample("tamper-torn");
    let mut text: String = lines[..9].iter().map(|l| format!("{l}\n")).collect();
    text.push_str(&lines[9][..40]);
    let report = verify(io::Cursor::new(text)).unwrap();
    assert!(report.is_intact());
    assert_eq!(report.verified_upto, Some(9));
    let torn = report.torn_tail.unwrap();
    assert_eq!((torn.line, torn.bytes), (10, 40));
    assert!(torn.to_string().contains("torn tail of 40 bytes"));
}

#[test]
fn a_garbled_line_is_named() {
    let (mut lines, _) = sample("tamper-garble");
    lines[2] = "{\"seq\":3,\"oops\"}".into();
    let report = check(&lines);
    assert!(
        matches!(
            report.problems.as_slice(),
            [
                Problem::Malformed { line: 3, .. },
                Problem::Deleted {
                    line: 4,
                    from_seq: 3,
                    to_seq: 3
                }
            ]
        ),
        "{:?}",
        report.problems
    );
}

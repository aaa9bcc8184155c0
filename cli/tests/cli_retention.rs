//! End-to-end tests of retention: `agentpolicy audit compact` on logs the real engine
//! wrote (through `replay`, whose clock follows the trace's times), then `audit verify`
//! on the result, untouched and tampered with. The policy is
//! `tests/fixtures/ok/retention_clinic.agentpolicy`: every record kept 1 year, records of
//! restricted data 6 years.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

mod support;

use support::{agentpolicy, stdout, temp_dir};

use std::path::{Path, PathBuf};
use std::process::Output;

use agentpolicy_runtime::ContentHash;
use agentpolicy_runtime::audit::{Record, SigningKey};

const POLICY: &str = "tests/fixtures/ok/retention_clinic.agentpolicy";

/// Calls in 2020 (one of them reads a restricted chart) and one in 2025.
const TRACE: &str = r#"{"at":"2020-01-10T09:00:00Z","session":"s1","agent":"assistant","tool":"search_handbook","args":{"query":"hours"},"result":{"ok":true,"tokens":10,"latency_ms":5}}
{"at":"2020-01-10T09:01:00Z","session":"s2","agent":"assistant","tool":"read_chart","args":{"patient_id":"P-1"},"read":{"resource":"charts","keys":{"patient":"P-1"}}}
{"at":"2020-01-10T09:02:00Z","session":"s3","agent":"assistant","tool":"search_handbook","args":{"query":"parking"}}
{"at":"2025-06-01T09:00:00Z","session":"s4","agent":"assistant","tool":"search_handbook","args":{"query":"holidays"}}
"#;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).expect("JSON output")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A directory with the engine's log of [`TRACE`] (`audit.log`, 12 records, closed) and
/// a key pair (`key`, `key.pub`).
fn setup(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    std::fs::write(dir.join("trace.jsonl"), TRACE).expect("write trace");
    let log = dir.join("audit.log");
    let o = agentpolicy(&[
        "replay",
        POLICY,
        path(&dir.join("trace.jsonl")),
        "--audit",
        path(&log),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = agentpolicy(&["audit", "keygen", path(&dir.join("key"))]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    dir
}

fn compact(dir: &Path, now: &str, extra: &[&str]) -> Output {
    let log = dir.join("audit.log");
    let key = dir.join("key");
    let mut args = vec![
        "audit",
        "compact",
        path(&log),
        "--policy",
        POLICY,
        "--now",
        now,
        "--key",
        path(&key),
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    agentpolicy(&args)
}

fn verify(dir: &Path, extra: &[&str]) -> Output {
    let log = dir.join("audit.log");
    let mut args = vec!["audit", "verify", path(&log), "--format", "json"];
    args.extend_from_slice(extra);
    agentpolicy(&args)
}

fn lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("audit.log"))
        .expect("read log")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(dir: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(dir.join("audit.log"), text).expect("write log");
}

fn record(line: &str) -> Record {
    serde_json::from_str(line).expect("a record")
}

/// The line of a record as the writer writes it: its JSON, then its hash over that.
fn line_of(record: &Record) -> String {
    let body = serde_json::to_string(record).expect("serialize");
    let hash = ContentHash::of(body.as_bytes());
    format!(
        "{},\"hash\":\"{hash}\"}}",
        body.strip_suffix('}').expect("an object")
    )
}

/// A line with its hash recomputed, as a forger without the key would do.
fn rehash(line: &str) -> String {
    line_of(&record(line))
}

fn kinds_and_seqs(dir: &Path) -> Vec<(String, u64)> {
    lines(dir)
        .iter()
        .map(|l| {
            let r = record(l);
            (r.kind.keyword().to_owned(), r.seq)
        })
        .collect()
}

fn problems(o: &Output) -> Vec<String> {
    json(o)["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            format!(
                "{}: {}",
                p["kind"].as_str().unwrap_or(""),
                p["message"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn records_carry_the_tier_of_the_data_they_are_about() {
    let dir = setup("tiers");
    let tiers: Vec<(u64, Option<String>)> = lines(&dir)
        .iter()
        .map(|l| record(l))
        .filter(|r| r.kind.keyword() == "decision")
        .map(|r| (r.seq, r.tier))
        .collect();
    assert_eq!(
        tiers,
        [
            (4, Some("public".to_owned())),
            (7, Some("restricted".to_owned())),
            (9, Some("public".to_owned())),
            (11, Some("public".to_owned())),
        ]
    );
    // A session opened bound to a patient names the patient: it is of the charts' tier.
    let bound = dir.join("bound.jsonl");
    std::fs::write(
        &bound,
        r#"{"at":"2020-01-10T10:00:00Z","session":"s5","agent":"assistant","bind":{"patient":"P-2"},"tool":"search_handbook","args":{"query":"x"}}
"#,
    )
    .expect("write trace");
    let log = dir.join("bound.log");
    let o = agentpolicy(&["replay", POLICY, path(&bound), "--audit", path(&log)]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let opened = std::fs::read_to_string(&log)
        .expect("log")
        .lines()
        .map(record)
        .find(|r| r.kind.keyword() == "session")
        .expect("a session record");
    assert_eq!(opened.tier.as_deref(), Some("restricted"));
}

#[test]
fn compaction_keeps_restricted_records_longer_and_the_log_still_verifies() {
    let dir = setup("per-tier");
    // Mid-2024: the 2020 records are past 1 year, the restricted one not past 6.
    let o = compact(&dir, "2024-06-01T00:00:00Z", &[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let report = json(&o);
    assert_eq!(report["removed"], 8, "{report}");
    let runs: Vec<(u64, u64, &str)> = report["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| {
            (
                r["from_seq"].as_u64().expect("from"),
                r["to_seq"].as_u64().expect("to"),
                r["rule"].as_str().expect("rule"),
            )
        })
        .collect();
    assert_eq!(
        runs,
        [(1, 6, "retain audit 1y"), (8, 9, "retain audit 1y")],
        "the restricted decision (7) splits the removed records into two runs"
    );
    assert_eq!(
        kinds_and_seqs(&dir),
        [
            ("checkpoint".to_owned(), 1),
            ("decision".to_owned(), 7),
            ("checkpoint".to_owned(), 8),
            ("session".to_owned(), 10),
            ("decision".to_owned(), 11),
            ("close".to_owned(), 12),
        ]
    );
    let o = verify(&dir, &["--key", path(&dir.join("key.pub"))]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let v = json(&o);
    assert_eq!(v["intact"], true);
    assert_eq!(v["sealed"], true);
    let checkpoints = v["checkpoints"].as_array().expect("checkpoints");
    assert_eq!(checkpoints.len(), 2);
    assert_eq!(checkpoints[0]["signature"], "valid");
    assert_eq!(checkpoints[0]["removed"], 6);
    assert_eq!(checkpoints[0]["kinds"]["session"], 2);
    assert_eq!(checkpoints[0]["time"], "2024-06-01T00:00:00.000Z");

    // The human report names what was removed, when, and by which key.
    let o = agentpolicy(&[
        "audit",
        "verify",
        path(&dir.join("audit.log")),
        "--key",
        path(&dir.join("key.pub")),
    ]);
    let text = stdout(&o);
    assert!(
        text.contains("records 1 to 6 removed at 2024-06-01T00:00:00.000Z under `retain audit 1y`")
            && text.contains("signed by the trusted key"),
        "{text}"
    );

    // Later, past six years: the restricted record goes too, in a third checkpoint.
    let o = compact(&dir, "2026-11-25T00:00:00Z", &[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        json(&o)["runs"][0]["rule"],
        "retain audit for restricted 6y"
    );
    assert_eq!(
        kinds_and_seqs(&dir)
            .iter()
            .map(|(k, s)| format!("{k}:{s}"))
            .collect::<Vec<_>>(),
        [
            "checkpoint:1",
            "checkpoint:7",
            "checkpoint:8",
            "checkpoint:10",
            "close:12"
        ]
    );
    let o = verify(&dir, &["--key", path(&dir.join("key.pub"))]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(json(&o)["checkpoints"].as_array().map(Vec::len), Some(4));
}

#[test]
fn a_head_kept_elsewhere_still_checks_against_a_compacted_log() {
    let dir = setup("anchor");
    let original = lines(&dir);
    let hash_of = |seq: u64| {
        original
            .iter()
            .map(|l| record(l))
            .find(|r| r.seq == seq)
            .expect("record")
            .hash
    };
    let o = compact(&dir, "2024-06-01", &[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // Record 9 ends the second run: its checkpoint holds its hash.
    let head = format!("9:{}", hash_of(9));
    assert_eq!(verify(&dir, &["--head", &head]).status.code(), Some(0));
    let wrong = format!("9:{}", hash_of(8));
    let o = verify(&dir, &["--head", &wrong]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        problems(&o)
            .iter()
            .any(|p| p.contains("differs from the anchor")),
        "{:?}",
        problems(&o)
    );
    // A kept record is checked as before.
    let o = verify(&dir, &["--head", &format!("7:{}", hash_of(6))]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert_eq!(
        verify(&dir, &["--head", &format!("12:{}", hash_of(12))])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn compacting_twice_at_the_same_time_changes_nothing_the_second_time() {
    let dir = setup("idempotent");
    let o = compact(&dir, "2024-06-01", &[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let once = std::fs::read(dir.join("audit.log")).expect("read");
    let o = compact(&dir, "2024-06-01", &[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(json(&o)["removed"], 0);
    assert_eq!(json(&o)["changed"], false);
    assert_eq!(std::fs::read(dir.join("audit.log")).expect("read"), once);
}

#[test]
fn a_dry_run_changes_nothing() {
    let dir = setup("dry-run");
    let before = std::fs::read(dir.join("audit.log")).expect("read");
    let o = agentpolicy(&[
        "audit",
        "compact",
        path(&dir.join("audit.log")),
        "--policy",
        POLICY,
        "--now",
        "2024-06-01",
        "--dry-run",
        "--archive",
        path(&dir.join("archive.jsonl")),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("would remove 8 record(s) in 2 run(s)"),
        "{}",
        stdout(&o)
    );
    assert_eq!(std::fs::read(dir.join("audit.log")).expect("read"), before);
    assert!(!dir.join("archive.jsonl").exists());
}

#[test]
fn the_archive_holds_exactly_the_removed_lines() {
    let dir = setup("archive");
    let original = lines(&dir);
    let archive = dir.join("archive.jsonl");
    let o = compact(&dir, "2024-06-01", &["--archive", path(&archive)]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let archived: Vec<String> = std::fs::read_to_string(&archive)
        .expect("archive")
        .lines()
        .map(str::to_owned)
        .collect();
    let expected: Vec<String> = original
        .iter()
        .filter(|l| [1, 2, 3, 4, 5, 6, 8, 9].contains(&record(l).seq))
        .cloned()
        .collect();
    assert_eq!(archived, expected);
    // Each checkpoint's digest is the SHA-256 of its run's lines.
    let first_run: String = expected.iter().take(6).map(|l| format!("{l}\n")).collect();
    let checkpoint = record(&lines(&dir)[0]);
    assert_eq!(
        checkpoint.checkpoint.expect("checkpoint").digest,
        ContentHash::of(first_run.as_bytes())
    );

    // `verify --archive` finds each run in the archive and checks it against the digest.
    let archive_status = |o: &Output| -> Vec<String> {
        json(o)["checkpoints"]
            .as_array()
            .expect("checkpoints")
            .iter()
            .map(|c| c["archive"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let o = verify(&dir, &["--archive", path(&archive)]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(archive_status(&o), ["matches", "matches"]);
    let changed = std::fs::read_to_string(&archive)
        .expect("archive")
        .replace("\"hours\"", "\"hourz\"");
    std::fs::write(&archive, changed).expect("write archive");
    let o = verify(&dir, &["--archive", path(&archive)]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert_eq!(archive_status(&o), ["differs", "matches"]);
    std::fs::write(&archive, "").expect("empty archive");
    let o = verify(&dir, &["--archive", path(&archive)]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(archive_status(&o), ["missing", "missing"]);
}

#[test]
fn an_edited_checkpoint_is_detected_with_or_without_its_hash_recomputed() {
    let dir = setup("edit-checkpoint");
    let o = compact(&dir, "2024-06-01", &[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let good = lines(&dir);

    // Claim fewer records were removed, leaving the hash as it was.
    let mut edited = good.clone();
    edited[0] = edited[0].replace("\"removed\":6", "\"removed\":5");
    assert_ne!(edited[0], good[0]);
    write_lines(&dir, &edited);
    let o = verify(&dir, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        problems(&o)
            .iter()
            .any(|p| p.starts_with("edited: line 1: record 1 was edited")),
        "{:?}",
        problems(&o)
    );

    // The same edit with the line's hash recomputed: the signature no longer verifies.
    edited[0] = rehash(&edited[0]);
    write_lines(&dir, &edited);
    let o = verify(&dir, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        problems(&o)
            .iter()
            .any(|p| p.contains("signature that does not verify")),
        "{:?}",
        problems(&o)
    );

    // Moving `last_hash` to another record breaks the link to the record after it.
    let mut relinked = good.clone();
    let mut r = record(&relinked[2]);
    if let Some(cp) = r.checkpoint.as_mut() {
        cp.last_hash = ContentHash::of(b"another record");
    }
    relinked[2] = line_of(&r);
    write_lines(&dir, &relinked);
    let o = verify(&dir, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        problems(&o)
            .iter()
            .any(|p| p.starts_with("checkpoint: line 3")),
        "{:?}",
        problems(&o)
    );
}

#[test]
fn a_record_dropped_after_compaction_is_detected() {
    let dir = setup("drop");
    let o = compact(&dir, "2024-06-01", &[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // Drop the restricted decision (record 7), which no checkpoint covers.
    let kept: Vec<String> = lines(&dir)
        .into_iter()
        .filter(|l| record(l).seq != 7 || record(l).kind.keyword() != "decision")
        .collect();
    write_lines(&dir, &kept);
    let o = verify(&dir, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        problems(&o)
            .iter()
            .any(|p| p.starts_with("deleted:") && p.contains("record 7 was deleted")),
        "{:?}",
        problems(&o)
    );
}

#[test]
fn checkpoints_signed_by_another_key_fail_against_the_trusted_key() {
    let dir = setup("wrong-key");
    let o = compact(&dir, "2024-06-01", &[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let other = dir.join("other");
    let o = agentpolicy(&["audit", "keygen", path(&other)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = verify(&dir, &["--key", path(&dir.join("other.pub"))]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        problems(&o)
            .iter()
            .all(|p| p.contains("not by the trusted key")),
        "{:?}",
        problems(&o)
    );
    assert_eq!(problems(&o).len(), 2);
    // The secret key is refused where a public key belongs, with a reason.
    let o = verify(&dir, &["--key", path(&dir.join("key"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("secret key"), "{}", stderr(&o));
}

#[test]
fn a_checkpoint_that_removed_records_too_young_for_its_rule_fails() {
    let dir = setup("too-young");
    let o = compact(&dir, "2024-06-01", &[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // The key holder back-dates the checkpoint to a month after the records and signs
    // it again: the signature is good, the retention is not.
    let key: SigningKey = std::fs::read_to_string(dir.join("key"))
        .expect("key")
        .parse()
        .expect("a key");
    let mut all = lines(&dir);
    let mut r = record(&all[0]);
    r.time_ms = agentpolicy_runtime::audit::parse_time("2020-02-10").expect("time");
    r.time = agentpolicy_runtime::audit::format_time(r.time_ms);
    key.sign(&mut r);
    all[0] = line_of(&r);
    write_lines(&dir, &all);
    let o = verify(&dir, &["--key", path(&dir.join("key.pub"))]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        problems(&o).iter().any(|p| p
            .contains("removed records younger than the retention it cites: `retain audit 1y`")),
        "{:?}",
        problems(&o)
    );
}

#[test]
fn a_log_a_writer_may_still_have_open_is_refused_unless_forced() {
    let dir = setup("open-writer");
    let mut all = lines(&dir);
    assert_eq!(record(all.last().expect("close")).kind.keyword(), "close");
    all.pop();
    write_lines(&dir, &all);
    let before = std::fs::read(dir.join("audit.log")).expect("read");
    let o = compact(&dir, "2024-06-01", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not `close`") && stderr(&o).contains("--force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(dir.join("audit.log")).expect("read"), before);
    let o = compact(&dir, "2024-06-01", &["--force"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = verify(&dir, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn a_log_that_does_not_verify_is_not_compacted() {
    let dir = setup("tampered");
    let mut all = lines(&dir);
    all.remove(4);
    write_lines(&dir, &all);
    let before = std::fs::read(dir.join("audit.log")).expect("read");
    let o = compact(&dir, "2024-06-01", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("does not verify") && stderr(&o).contains("record 5 was deleted"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(dir.join("audit.log")).expect("read"), before);
}

#[test]
fn compaction_needs_a_schedule_and_a_key() {
    let dir = setup("no-schedule");
    let log = dir.join("audit.log");
    let o = agentpolicy(&[
        "audit",
        "compact",
        path(&log),
        "--policy",
        "tests/fixtures/ok/coding_agent.agentpolicy",
        "--now",
        "2024-06-01",
        "--key",
        path(&dir.join("key")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("sets no retention"), "{}", stderr(&o));
    let o = agentpolicy(&[
        "audit",
        "compact",
        path(&log),
        "--policy",
        POLICY,
        "--now",
        "2024-06-01",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("audit keygen"), "{}", stderr(&o));
    // A compiled table carries the schedule as well as the policy does.
    let table = dir.join("clinic.table");
    let o = agentpolicy(&["build", POLICY, "-o", path(&table)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("audit retention: retain audit 1y; retain audit for restricted 6y"),
        "{}",
        stdout(&o)
    );
    let o = agentpolicy(&[
        "audit",
        "compact",
        path(&log),
        "--table",
        path(&table),
        "--now",
        "2024-06-01",
        "--key",
        path(&dir.join("key")),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(json(&o)["removed"], 8);
}

#[test]
fn keygen_never_overwrites_and_keeps_the_secret_private() {
    let dir = setup("keygen");
    let o = agentpolicy(&["audit", "keygen", path(&dir.join("key"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("never overwrites"), "{}", stderr(&o));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the secret key is readable by others");
    }
    let public = std::fs::read_to_string(dir.join("key.pub")).expect("pub");
    assert!(public.starts_with("ed25519:"), "{public}");
}

//! `agentpolicy audit verify LOG` and `agentpolicy audit query LOG --agent … --tool …
//! --outcome … --since … --session …`: read an engine's audit log through the runtime's
//! `audit::verify` and `audit::query`. `audit compact` and `audit keygen` live in
//! `audit_compact.rs`.
//!
//! Several logs (one per replica, `serve --replica-id`): `verify` checks each as its own
//! chain and names the ones that fail; `query` merges their records by time.
//!
//! `verify` exits 0 when no record was edited, deleted, inserted or reordered (a torn
//! tail and a missing close record are reported, not failed: a crash leaves both), 1
//! when something was, 2 when the log cannot be read. `query` exits 0.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use agentpolicy_runtime::Outcome;
use agentpolicy_runtime::audit::{
    Anchor, ArchiveMatch, Filter, LogSource, Merged, Record, RecordKind, SignatureCheck,
    VerifyOptions, VerifyReport, check_distinct, format_time, match_archive, merge_by_time,
    parse_time, query, verify_log,
};

use super::output::Format;
use super::{EXIT_FAILURE, EXIT_USAGE};

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain: name every edited, deleted, inserted or reordered record.
    Verify(VerifyArgs),
    /// Print the records that match every filter given.
    Query(QueryArgs),
    /// Remove records past the policy's retention, leaving signed checkpoints in their
    /// place so the log still verifies.
    Compact(super::audit_compact::CompactArgs),
    /// Make a key pair for signing checkpoints: OUT (secret) and OUT.pub (public).
    Keygen(super::audit_compact::KeygenArgs),
    /// Agreement between recorded human actions and the policy, per agent, tool and
    /// outcome, and the disagreements.
    ShadowReport(super::shadow_report::ShadowReportArgs),
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The audit log (JSON lines); several replicas' logs are each verified as its own
    /// chain (none may be given twice, no two may hold the same replica id).
    #[arg(value_name = "LOG", required = true, num_args = 1..)]
    pub logs: Vec<PathBuf>,
    /// A head kept elsewhere, `SEQ:HASH` (from the engine's audit head): the log must
    /// still hold that record unchanged, which also detects records cut from the end.
    #[arg(long)]
    pub head: Option<Anchor>,
    /// The public key checkpoints must be signed by: a `.pub` file from `audit keygen`,
    /// or `ed25519:HEX`. Without it, signatures are checked only against the key each
    /// checkpoint names, which a forger can replace.
    #[arg(long)]
    pub key: Option<String>,
    /// An archive `audit compact --archive` wrote: each checkpoint's removed records are
    /// looked up in it and checked against the checkpoint's digest.
    #[arg(long)]
    pub archive: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The audit log (JSON lines); several replicas' logs are merged by time (then
    /// replica id, then position), each record naming its replica or log.
    #[arg(value_name = "LOG", required = true, num_args = 1..)]
    pub logs: Vec<PathBuf>,
    #[arg(long)]
    pub agent: Option<String>,
    #[arg(long)]
    pub tool: Option<String>,
    /// allow, escalate or deny (the policy's outcome; in shadow mode the would-be one).
    #[arg(long, value_parser = parse_outcome)]
    pub outcome: Option<Outcome>,
    /// Records at or after this time: RFC 3339 (`2026-11-25T09:00:00Z`), a date, or ms
    /// since the epoch.
    #[arg(long, value_parser = parse_when)]
    pub since: Option<i64>,
    /// Records before this time (same forms as `--since`).
    #[arg(long, value_parser = parse_when)]
    pub until: Option<i64>,
    #[arg(long)]
    pub session: Option<String>,
    /// Record kind: decision, result, resolution, human, breaker, control, session, open,
    /// close, recovered, checkpoint, refusal.
    #[arg(long, value_parser = parse_kind)]
    pub kind: Option<RecordKind>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

fn parse_outcome(s: &str) -> Result<Outcome, String> {
    match s {
        "allow" => Ok(Outcome::Allow),
        "escalate" => Ok(Outcome::Escalate),
        "deny" => Ok(Outcome::Deny),
        _ => Err("expected allow, escalate or deny".into()),
    }
}

fn parse_when(s: &str) -> Result<i64, String> {
    parse_time(s).ok_or_else(|| {
        "expected an RFC 3339 time (2026-11-25T09:00:00Z), a date (2026-11-25) or ms since the epoch".into()
    })
}

fn parse_kind(s: &str) -> Result<RecordKind, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| {
        "expected decision, result, resolution, human, breaker, control, session, open, close, recovered, checkpoint or refusal"
            .into()
    })
}

pub fn run(args: AuditArgs) -> u8 {
    match args.command {
        AuditCommand::Verify(a) => run_verify(&a),
        AuditCommand::Query(a) => run_query(&a),
        AuditCommand::Compact(a) => super::audit_compact::run_compact(&a),
        AuditCommand::Keygen(a) => super::audit_compact::run_keygen(&a),
        AuditCommand::ShadowReport(a) => super::shadow_report::run(&a),
    }
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>, u8> {
    std::fs::File::open(path).map(BufReader::new).map_err(|e| {
        eprintln!("error: cannot read `{}`: {e}", path.display());
        EXIT_USAGE
    })
}

/// Reads each log with `read`, in order; the first that cannot be opened or read is
/// reported (naming it) and ends the command with its exit code.
fn read_each<T, E: std::fmt::Display>(
    logs: &[PathBuf],
    mut read: impl FnMut(BufReader<std::fs::File>) -> Result<T, E>,
) -> Result<Vec<T>, u8> {
    let mut out = Vec::with_capacity(logs.len());
    for log in logs {
        let reader = open(log)?;
        out.push(read(reader).map_err(|e| {
            eprintln!("error: cannot read `{}`: {e}", log.display());
            EXIT_USAGE
        })?);
    }
    Ok(out)
}

/// Canonical paths and replica ids of the logs, checked distinct; `Err` is the exit code.
fn distinct(logs: &[PathBuf], replicas: &[Vec<String>]) -> Result<(), u8> {
    let mut sources = Vec::new();
    for (path, ids) in logs.iter().zip(replicas) {
        let file = std::fs::canonicalize(path).map_err(|e| {
            eprintln!("error: cannot read `{}`: {e}", path.display());
            EXIT_USAGE
        })?;
        sources.push(LogSource {
            name: path.display().to_string(),
            file,
            replicas: ids.clone(),
        });
    }
    check_distinct(&sources).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_USAGE
    })
}

fn run_verify(args: &VerifyArgs) -> u8 {
    if let [log] = args.logs.as_slice() {
        return verify_one(args, log);
    }
    if args.head.is_some() || args.archive.is_some() {
        eprintln!(
            "error: --head and --archive name one log's records; verify that log on its own (`agentpolicy audit verify LOG --head …`)"
        );
        return EXIT_USAGE;
    }
    let key = match args
        .key
        .as_deref()
        .map(super::audit_compact::read_public_key)
    {
        None => None,
        Some(Ok(k)) => Some(k),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let options = VerifyOptions { anchor: None, key };
    let reports = match read_each(&args.logs, |reader| verify_log(reader, &options)) {
        Ok(reports) => reports,
        Err(code) => return code,
    };
    let ids: Vec<Vec<String>> = reports.iter().map(|r| r.replicas.clone()).collect();
    if let Err(code) = distinct(&args.logs, &ids) {
        return code;
    }
    let failed: Vec<String> = args
        .logs
        .iter()
        .zip(&reports)
        .filter(|(_, r)| !r.is_intact())
        .map(|(l, _)| l.display().to_string())
        .collect();
    match args.format {
        Format::Human => {
            for (log, report) in args.logs.iter().zip(&reports) {
                println!("{}: {}", log.display(), replica_words(&report.replicas));
                print_report(log, report, options.key.is_some());
            }
            if failed.is_empty() {
                println!(
                    "ok: all {} logs verified, each its own chain",
                    reports.len()
                );
            } else {
                println!(
                    "FAILED: {} of {} logs: {}",
                    failed.len(),
                    reports.len(),
                    failed.join(", ")
                );
            }
        }
        Format::Json => {
            let doc = serde_json::json!({
                "intact": failed.is_empty(),
                "failed": failed,
                "logs": args.logs.iter().zip(&reports).map(|(log, r)| {
                    let mut v = report_json(r);
                    v["log"] = serde_json::Value::from(log.display().to_string());
                    v
                }).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
    }
    if failed.is_empty() { 0 } else { EXIT_FAILURE }
}

fn replica_words(ids: &[String]) -> String {
    match ids {
        [] => "no replica id".to_owned(),
        [one] => format!("replica `{one}`"),
        many => format!("replicas {}", many.join(", ")),
    }
}

fn verify_one(args: &VerifyArgs, log: &Path) -> u8 {
    let reader = match open(log) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let key = match args
        .key
        .as_deref()
        .map(super::audit_compact::read_public_key)
    {
        None => None,
        Some(Ok(k)) => Some(k),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let options = VerifyOptions {
        anchor: args.head,
        key,
    };
    let report = match verify_log(reader, &options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", log.display());
            return EXIT_USAGE;
        }
    };
    let archive = match &args.archive {
        None => None,
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => Some(
                report
                    .checkpoints
                    .iter()
                    .map(|c| match_archive(&bytes, c.prev, &c.checkpoint))
                    .collect::<Vec<_>>(),
            ),
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", path.display());
                return EXIT_USAGE;
            }
        },
    };
    match args.format {
        Format::Human => {
            print_report(log, &report, options.key.is_some());
            if let Some(matches) = &archive {
                print_archive(&report, matches);
            }
        }
        Format::Json => {
            let mut doc = report_json(&report);
            if let (Some(matches), Some(list)) = (
                &archive,
                doc.get_mut("checkpoints").and_then(|c| c.as_array_mut()),
            ) {
                for (entry, m) in list.iter_mut().zip(matches) {
                    entry["archive"] = serde_json::Value::from(archive_word(*m));
                }
            }
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
    }
    let archive_differs = archive
        .iter()
        .flatten()
        .any(|m| *m == ArchiveMatch::Differs);
    if report.is_intact() && !archive_differs {
        0
    } else {
        EXIT_FAILURE
    }
}

fn print_report(log: &Path, report: &VerifyReport, trusted_key: bool) {
    for problem in &report.problems {
        println!("error: {problem}");
    }
    for c in &report.checkpoints {
        let cp = &c.checkpoint;
        let signed = match c.signature {
            SignatureCheck::Valid if trusted_key => "signed by the trusted key",
            SignatureCheck::Valid => "signature valid for the key it names",
            SignatureCheck::Invalid => "signature INVALID",
            SignatureCheck::OtherKey => "signed by ANOTHER key than the trusted one",
        };
        println!(
            "checkpoint (line {}): records {} to {} removed at {} under `{}` ({} record(s) from {} to {}); {signed}: {}",
            c.line,
            cp.from_seq,
            cp.to_seq,
            format_time(c.time_ms),
            cp.rule,
            cp.removed,
            format_time(cp.oldest_ms),
            format_time(cp.youngest_ms),
            cp.key
        );
    }
    if !report.checkpoints.is_empty() && !trusted_key {
        println!(
            "note: checkpoint signatures were checked against the keys they name; pass --key PUBKEY to require the operator's key"
        );
    }
    if let Some(tail) = &report.torn_tail {
        println!("warning: {tail}");
    }
    let upto = report
        .verified_upto
        .map_or("no record".to_string(), |s| format!("record {s}"));
    if report.is_intact() {
        let head = match (report.last_seq, report.head) {
            (Some(seq), Some(hash)) => format!("; head {seq}:{hash}"),
            _ => String::new(),
        };
        println!(
            "ok: {}: {} records, chain intact up to {upto}{head}",
            log.display(),
            report.records
        );
    } else {
        println!(
            "FAILED: {}: {} problem(s); the chain is intact up to {upto}",
            log.display(),
            report.problems.len()
        );
    }
    if !report.sealed {
        println!(
            "note: the log has no close record at its end: its writer is still running or stopped without closing it, or records were cut from the end; pass --head SEQ:HASH from a copy kept elsewhere to rule out the last"
        );
    }
}

fn archive_word(m: ArchiveMatch) -> &'static str {
    match m {
        ArchiveMatch::Matches => "matches",
        ArchiveMatch::Differs => "differs",
        ArchiveMatch::Missing => "missing",
    }
}

fn print_archive(report: &VerifyReport, matches: &[ArchiveMatch]) {
    for (c, m) in report.checkpoints.iter().zip(matches) {
        let (from, to) = (c.checkpoint.from_seq, c.checkpoint.to_seq);
        match m {
            ArchiveMatch::Matches => println!(
                "archive: records {from} to {to} are in the archive and match the checkpoint's digest"
            ),
            ArchiveMatch::Differs => println!(
                "error: archive: records {from} to {to} are in the archive but do not match the checkpoint's digest: they were changed"
            ),
            ArchiveMatch::Missing => {
                println!("warning: archive: records {from} to {to} are not (all) in the archive")
            }
        }
    }
}

fn report_json(report: &VerifyReport) -> serde_json::Value {
    serde_json::json!({
        "intact": report.is_intact(),
        "sealed": report.sealed,
        "lines": report.lines,
        "records": report.records,
        "first_seq": report.first_seq,
        "last_seq": report.last_seq,
        "head": report.head.map(|h| h.to_string()),
        "verified_upto": report.verified_upto,
        "problems": report.problems.iter().map(|p| serde_json::json!({
            "kind": p.keyword(),
            "line": p.line(),
            "message": p.to_string(),
        })).collect::<Vec<_>>(),
        "replicas": report.replicas,
        "checkpoints": report.checkpoints.iter().map(|c| serde_json::json!({
            "line": c.line,
            "time": format_time(c.time_ms),
            "from_seq": c.checkpoint.from_seq,
            "to_seq": c.checkpoint.to_seq,
            "removed": c.checkpoint.removed,
            "kinds": c.checkpoint.kinds,
            "oldest": format_time(c.checkpoint.oldest_ms),
            "youngest": format_time(c.checkpoint.youngest_ms),
            "rule": c.checkpoint.rule,
            "key": c.checkpoint.key,
            "signature": match c.signature {
                SignatureCheck::Valid => "valid",
                SignatureCheck::Invalid => "invalid",
                SignatureCheck::OtherKey => "other_key",
            },
        })).collect::<Vec<_>>(),
        "torn_tail": report.torn_tail.map(|t| serde_json::json!({
            "line": t.line,
            "offset": t.offset,
            "bytes": t.bytes,
            "message": t.to_string(),
        })),
    })
}

fn run_query(args: &QueryArgs) -> u8 {
    let filter = Filter {
        agent: args.agent.clone(),
        tool: args.tool.clone(),
        outcome: args.outcome,
        since_ms: args.since,
        until_ms: args.until,
        session: args.session.clone(),
        kind: args.kind,
    };
    let results = match read_each(&args.logs, |reader| query(reader, &filter)) {
        Ok(results) => results,
        Err(code) => return code,
    };
    let several = results.len() > 1;
    if several {
        let ids: Vec<Vec<String>> = results.iter().map(|r| r.replicas.clone()).collect();
        if let Err(code) = distinct(&args.logs, &ids) {
            return code;
        }
    }
    let skipped: u64 = results.iter().map(|r| r.skipped_lines).sum();
    let merged = merge_by_time(
        results
            .into_iter()
            .map(|r| {
                let own = match r.replicas.as_slice() {
                    [one] => Some(one.clone()),
                    _ => None,
                };
                (own, r.records)
            })
            .collect(),
    );
    let log_name = |m: &Merged| {
        args.logs
            .get(m.log)
            .map(|l| l.display().to_string())
            .unwrap_or_default()
    };
    match args.format {
        Format::Json => {
            let doc = serde_json::json!({
                "records": merged.iter().map(|m| {
                    let mut v = record_json(&m.record);
                    if several {
                        v["log"] = serde_json::Value::from(log_name(m));
                        if let Some(id) = &m.replica {
                            v["replica"] = serde_json::Value::from(id.clone());
                        }
                    }
                    v
                }).collect::<Vec<_>>(),
                "count": merged.len(),
                "skipped_lines": skipped,
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Human => {
            for m in &merged {
                let from = match (&m.replica, several) {
                    (Some(id), _) => format!("[{id}] "),
                    (None, true) => format!("[{}] ", log_name(m)),
                    (None, false) => String::new(),
                };
                println!("{from}{}", human_line(&m.record));
            }
            println!("{} record(s)", merged.len());
            if skipped > 0 {
                println!(
                    "note: {} line(s) are not records and were skipped; run `agentpolicy audit verify`",
                    skipped
                );
            }
        }
    }
    0
}

fn record_json(r: &Record) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.insert("hash".into(), serde_json::Value::String(r.hash.to_string()));
    }
    v
}

/// `#12 2026-11-25T09:30:00.000Z decision s1 intake send_email#3: escalate to …`.
fn human_line(r: &Record) -> String {
    let mut parts = vec![
        format!("#{}", r.seq),
        r.time.clone(),
        r.kind.keyword().to_owned(),
    ];
    parts.extend(r.session.clone());
    parts.extend(r.agent.clone());
    if let Some(tool) = &r.tool {
        parts.push(match r.call {
            Some(n) => format!("{tool}#{n}"),
            None => tool.clone(),
        });
    }
    // A decision's `why` starts with its outcome; other records say it here.
    if let Some(outcome) = r
        .outcome
        .filter(|_| r.kind != RecordKind::Decision || r.why.is_none())
    {
        parts.push(outcome.keyword().to_owned());
    }
    if r.shadow {
        parts.push("(shadow: reported allow)".to_owned());
    }
    if let Some(action) = r.human {
        parts.push(format!("human {}", action.keyword()));
        parts.extend(r.by.as_ref().map(|b| format!("by {b}")));
    }
    if let Some(context) = &r.context {
        parts.push(format!("[context {context}]"));
    }
    if let Some(res) = &r.result {
        parts.push(format!(
            "result {} tokens={} latency={}ms",
            if res.ok { "ok" } else { "error" },
            res.tokens,
            res.latency_ms
        ));
    }
    let mut line = parts.join(" ");
    if let Some(text) = r.why.as_ref().or(r.detail.as_ref()) {
        line.push_str(": ");
        line.push_str(text);
    }
    if let Some(reasoning) = &r.reasoning {
        // The whole snapshot is in `--format json`; a line shows its start.
        let short: String = reasoning.chars().take(80).collect();
        let more = if short.len() < reasoning.len() {
            "..."
        } else {
            ""
        };
        line.push_str(&format!(" (reasoning: {short}{more})"));
    }
    line
}

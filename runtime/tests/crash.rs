//! Crash test of the audit log. The parent re-runs this binary as a child that decides
//! calls on two threads through a real `Engine` with an audit log and prints each
//! acknowledged record (`ack SEQ HASH`). The parent SIGKILLs it after a random number of
//! acknowledgements (deterministic seeds), then checks that every acknowledged record is
//! in the log with its hash, that the log verifies up to its last complete record, that
//! a torn tail (appended here to stand in for a write cut short by a power loss, since a
//! SIGKILL never splits a single `write`) is reported as such, and that reopening the log
//! cuts the tail and continues the chain.

#![expect(
    clippy::expect_used,
    reason = "a test binary: a failed step is a failed test"
)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use agentpolicy_runtime::audit::{AuditLog, Durability, Filter, query, verify};
use agentpolicy_runtime::engine::{ManualClock, SystemClock};
use agentpolicy_runtime::*;

const CHILD: &str = "AGENTPOLICY_CRASH_CHILD";
const SEEDS: u64 = 8;

fn main() {
    if let Ok(path) = std::env::var(CHILD) {
        child(Path::new(&path));
    }
    let mut failed = Vec::new();
    for seed in 1..=SEEDS {
        match run(seed) {
            Ok(summary) => println!("crash seed {seed}: ok: {summary}"),
            Err(why) => {
                println!("crash seed {seed}: FAILED: {why}");
                failed.push(seed);
            }
        }
    }
    println!(
        "{} passed, {} failed",
        SEEDS as usize - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(1);
    }
}

fn table() -> DecisionTable {
    let mut data = TableData {
        format_version: FORMAT_VERSION,
        source_hash: source_hash(&[("crash.agentpolicy", "policy crash")]),
        files: vec!["crash.agentpolicy".into()],
        ..TableData::default()
    };
    data.tools.push(Tool {
        name: "note".into(),
        params: vec![Param {
            name: "text".into(),
            ty: ValueType::Text,
            optional: false,
        }],
        effects: vec![],
        reads: vec![],
        writes: vec![],
    });
    data.agents.push(Agent {
        name: "worker".into(),
        owner: None,
        mode: Mode::Enforce,
        max_tier: None,
        limits: vec![],
        breakers: vec![],
    });
    data.rules.push(Rule {
        id: "worker/allow/note#1".into(),
        agent: AgentId(0),
        kind: RuleKind::Allow,
        target: Target::Tool(ToolId(0)),
        route: None,
        span: Span::default(),
    });
    data.cells.push(Cell {
        granted: true,
        allow: vec![Entry {
            rule: RuleIndex(0),
            condition: None,
        }],
        ..Cell::default()
    });
    DecisionTable::new(data).expect("a valid table")
}

/// The writer: decides until killed (or 4,000 calls), printing every acknowledgement.
fn child(path: &Path) -> ! {
    let durability = match std::env::var("AGENTPOLICY_CRASH_DURABILITY").as_deref() {
        Ok("buffered") => Durability::OsBuffered {
            fsync_interval: Duration::from_millis(50),
        },
        _ => Durability::default(),
    };
    let log = AuditLog::open(path, durability, &SystemClock).expect("open the log");
    let config = EngineConfig {
        audit: Some(log),
        ..EngineConfig::default()
    };
    let engine = Engine::new(table(), config).expect("start the engine");
    let out = Mutex::new(std::io::stdout());
    let big = "x".repeat(20_000);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                let s = engine
                    .open_session("worker", SessionOptions::default())
                    .expect("open a session");
                for i in 0..2_000 {
                    // Every seventh record is large, so writes vary in size.
                    let text = if i % 7 == 0 { big.as_str() } else { "short" };
                    let args = [("text", ArgValue::Text(text))];
                    let v = engine.decide(s, &Call::new("note").args(&args));
                    if let Some(ack) = v.audit {
                        let mut out = out.lock().expect("stdout lock");
                        writeln!(out, "ack {} {}", ack.seq, ack.hash).expect("write to stdout");
                        out.flush().expect("flush stdout");
                    }
                }
            });
        }
    });
    std::process::exit(0);
}

/// xorshift64*: deterministic kill points per seed.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn run(seed: u64) -> Result<String, String> {
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let kill_after = 1 + next(&mut rng) % 300;
    let durability = if seed.is_multiple_of(2) {
        "buffered"
    } else {
        "fsync"
    };
    let dir: PathBuf =
        std::env::temp_dir().join(format!("agentpolicy-crash-{}-{seed}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("audit.jsonl");

    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .env(CHILD, &path)
        .env("AGENTPOLICY_CRASH_DURABILITY", durability)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the child: {e}"))?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let mut acked: HashMap<u64, String> = HashMap::new();
    let mut lines = BufReader::new(stdout).lines();
    let started = Instant::now();
    let mut killed = false;
    for line in lines.by_ref() {
        let line = line.map_err(|e| e.to_string())?;
        let mut parts = line.split(' ');
        if let (Some("ack"), Some(seq), Some(hash)) = (parts.next(), parts.next(), parts.next()) {
            let seq: u64 = seq.parse().map_err(|_| format!("bad ack line `{line}`"))?;
            acked.insert(seq, hash.to_owned());
        }
        if acked.len() as u64 >= kill_after || started.elapsed() > Duration::from_secs(60) {
            // A little more time for the writers, so kills land at varied points.
            std::thread::sleep(Duration::from_micros(next(&mut rng) % 2_000));
            child.kill().map_err(|e| e.to_string())?;
            killed = true;
            break;
        }
    }
    // Acknowledgements printed before the kill are still in the pipe.
    for line in lines {
        let Ok(line) = line else { break };
        let mut parts = line.split(' ');
        if let (Some("ack"), Some(seq), Some(hash)) = (parts.next(), parts.next(), parts.next())
            && let Ok(seq) = seq.parse()
        {
            acked.insert(seq, hash.to_owned());
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if acked.is_empty() {
        return Err(format!("the child acknowledged nothing (status {status})"));
    }

    let read =
        |p: &Path| -> Result<Vec<u8>, String> { std::fs::read(p).map_err(|e| e.to_string()) };
    check_acked(&path, &acked)?;
    let report = verify(read(&path)?.as_slice()).map_err(|e| e.to_string())?;
    if !report.is_intact() {
        return Err(format!("the log does not verify: {:?}", report.problems));
    }
    if report.verified_upto != report.last_seq {
        return Err(format!(
            "verified up to {:?} of {:?}",
            report.verified_upto, report.last_seq
        ));
    }
    let natural_tear = report.torn_tail.is_some();

    // A write the power loss cut short: part of a next record, without its line end.
    let torn =
        b"{\"seq\":999999,\"time_ms\":1,\"time\":\"1970-01-01T00:00:00.001Z\",\"prev\":\"sha";
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(torn))
        .map_err(|e| e.to_string())?;
    let report = verify(read(&path)?.as_slice()).map_err(|e| e.to_string())?;
    let tail = report.torn_tail.ok_or("the torn tail was not reported")?;
    if !report.is_intact()
        || report.verified_upto != report.last_seq
        || tail.line != report.lines + 1
    {
        return Err(format!("torn tail misreported: {report:?}"));
    }
    let message = tail.to_string();
    if !message.contains("torn tail") || !message.contains("never acknowledged") {
        return Err(format!("unclear torn-tail message: {message}"));
    }

    // The next writer cuts the tail, says so, and continues the chain.
    let clock = ManualClock::new(0);
    let log = AuditLog::open(&path, Durability::default(), &clock).map_err(|e| e.to_string())?;
    log.close(0).map_err(|e| e.to_string())?;
    let report = verify(read(&path)?.as_slice()).map_err(|e| e.to_string())?;
    if !report.is_intact() || !report.sealed || report.torn_tail.is_some() {
        return Err(format!("after reopening: {report:?}"));
    }
    check_acked(&path, &acked)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(format!(
        "{durability}, killed={killed} after {} acks, {} records verified{}",
        acked.len(),
        report.records,
        if natural_tear {
            ", the kill tore the last write"
        } else {
            ""
        }
    ))
}

/// Every acknowledged record is in the log with the hash it was acknowledged with.
fn check_acked(path: &Path, acked: &HashMap<u64, String>) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let records = query(BufReader::new(file), &Filter::default()).map_err(|e| e.to_string())?;
    let in_log: HashMap<u64, String> = records
        .records
        .iter()
        .map(|r| (r.seq, r.hash.to_string()))
        .collect();
    for (seq, hash) in acked {
        match in_log.get(seq) {
            Some(h) if h == hash => {}
            Some(h) => {
                return Err(format!(
                    "record {seq} was acknowledged as {hash} but is {h}"
                ));
            }
            None => return Err(format!("acknowledged record {seq} is missing")),
        }
    }
    Ok(())
}

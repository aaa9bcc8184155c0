//! What the console reads from the audit log: the details of each pending escalation
//! that the engine does not keep in memory (its arguments as the log holds them, after
//! the policy's redaction; the triggering context; the agent's reasoning; the rule's
//! explanation), the latest resolutions (so an operator sees how a call it answered,
//! or one that timed out, came out), each agent's latest breaker trips, and the trail
//! of one session.
//!
//! The log is followed incrementally: each refresh reads only the complete lines
//! appended since the last one. Records are shown, not verified (`agentpolicy audit
//! verify` does that). Must not: write the log, or hold more than the pending
//! escalations' details, [`KEPT_RESOLVED`] resolutions and [`KEPT_TRIPS`] trips per agent.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Map, Value, json};

use agentpolicy_runtime::audit::{Record, RecordKind, format_time};

/// Resolutions kept for the "recently resolved" list.
pub const KEPT_RESOLVED: usize = 50;
/// Breaker trips kept per agent.
pub const KEPT_TRIPS: usize = 3;
/// The most records one session trail answers with (its latest).
pub const TRAIL_RECORDS: usize = 500;

/// What the log says about an escalation when it was raised.
#[derive(Debug, Clone, Default)]
pub struct Raised {
    pub args: Option<Map<String, Value>>,
    pub context: Option<String>,
    pub reasoning: Option<String>,
    /// The decision's explanation.
    pub why: Option<String>,
}

#[derive(Debug, Default)]
struct Followed {
    /// Bytes of the log read so far (always at a line's end).
    offset: u64,
    raised: BTreeMap<String, Raised>,
    resolved: VecDeque<Value>,
    trips: BTreeMap<String, VecDeque<Value>>,
}

/// The audit log as the console follows it.
#[derive(Debug)]
pub struct AuditView {
    path: Option<PathBuf>,
    followed: Mutex<Followed>,
}

impl AuditView {
    pub fn new(path: Option<PathBuf>) -> AuditView {
        AuditView {
            path,
            followed: Mutex::new(Followed::default()),
        }
    }

    /// Whether there is a log to read.
    pub fn available(&self) -> bool {
        self.path.is_some()
    }

    /// Reads what was appended since the last refresh.
    pub fn refresh(&self) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut f = self
            .followed
            .lock()
            .map_err(|_| "the console's audit view is poisoned".to_owned())?;
        let mut file = open(path)?;
        let len = file
            .metadata()
            .map_err(|e| format!("cannot read the audit log: {e}"))?
            .len();
        if len < f.offset {
            // The log was replaced: start over.
            *f = Followed::default();
        }
        file.seek(SeekFrom::Start(f.offset))
            .map_err(|e| format!("cannot read the audit log: {e}"))?;
        let mut reader = BufReader::new(file.take(len - f.offset));
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| format!("cannot read the audit log: {e}"))?;
            // A record still being written is read on a later refresh.
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            f.offset += n as u64;
            if let Ok(r) = serde_json::from_slice::<Record>(&line) {
                f.take(r);
            }
        }
        Ok(())
    }

    /// The details of an escalation raised, by id (`s3:2`).
    pub fn raised(&self, id: &str) -> Option<Raised> {
        self.followed.lock().ok()?.raised.get(id).cloned()
    }

    /// The latest resolutions, newest first, each as JSON.
    pub fn resolved(&self) -> Vec<Value> {
        self.followed
            .lock()
            .map(|f| f.resolved.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// An agent's latest breaker trips, newest first.
    pub fn trips(&self, agent: &str) -> Vec<Value> {
        self.followed
            .lock()
            .ok()
            .and_then(|f| {
                f.trips
                    .get(agent)
                    .map(|t| t.iter().rev().cloned().collect())
            })
            .unwrap_or_default()
    }

    /// The latest [`TRAIL_RECORDS`] records of session number `session`, in log order,
    /// and how many of its records there are in all.
    pub fn trail(&self, session: u64) -> Result<(Vec<Value>, usize), String> {
        let Some(path) = &self.path else {
            return Err(
                "the service runs without an audit log (--audit): there is no trail".into(),
            );
        };
        let reader = BufReader::new(open(path)?);
        let mut kept: VecDeque<Value> = VecDeque::new();
        let mut total = 0usize;
        for line in reader.split(b'\n') {
            let line = line.map_err(|e| format!("cannot read the audit log: {e}"))?;
            let Ok(r) = serde_json::from_slice::<Record>(&line) else {
                continue;
            };
            if r.session_id != Some(session) {
                continue;
            }
            total += 1;
            if kept.len() == TRAIL_RECORDS {
                kept.pop_front();
            }
            kept.push_back(trail_json(&r));
        }
        Ok((kept.into(), total))
    }
}

fn open(path: &Path) -> Result<File, String> {
    File::open(path).map_err(|e| format!("cannot read the audit log `{}`: {e}", path.display()))
}

impl Followed {
    fn take(&mut self, r: Record) {
        match (r.kind, &r.escalation) {
            (RecordKind::Decision, Some(info)) => {
                self.raised.insert(
                    info.id.clone(),
                    Raised {
                        args: r.args.clone(),
                        context: r.context.clone(),
                        reasoning: r.reasoning.clone(),
                        why: r.why.clone(),
                    },
                );
            }
            (RecordKind::Resolution, Some(info)) => {
                self.raised.remove(&info.id);
                if self.resolved.len() == KEPT_RESOLVED {
                    self.resolved.pop_front();
                }
                self.resolved.push_back(json!({
                    "id": info.id,
                    "agent": r.agent,
                    "tool": r.tool,
                    "routes": info.routes,
                    "resolution": r.resolution,
                    "outcome": r.outcome.map(|o| o.keyword()),
                    "by": r.by,
                    "why": r.why,
                    "time": r.time,
                    "time_ms": r.time_ms,
                }));
            }
            (RecordKind::Breaker, _) => {
                let detail = r.detail.as_deref().unwrap_or_default();
                if let Some(agent) = &r.agent
                    && (detail.contains(" tripped at ") || detail.contains(" re-opened"))
                {
                    let trips = self.trips.entry(agent.clone()).or_default();
                    if trips.len() == KEPT_TRIPS {
                        trips.pop_front();
                    }
                    trips.push_back(
                        json!({ "time": r.time, "time_ms": r.time_ms, "detail": detail }),
                    );
                }
            }
            _ => {}
        }
    }
}

/// A record as the session trail shows it: its kind, time and the fields that say what
/// happened.
fn trail_json(r: &Record) -> Value {
    let mut v = json!({
        "seq": r.seq,
        "time": r.time,
        "kind": r.kind.keyword(),
        "hash": r.hash.to_string(),
    });
    let fields: [(&str, Option<Value>); 12] = [
        ("call", r.call.map(Value::from)),
        ("tool", r.tool.clone().map(Value::from)),
        ("outcome", r.outcome.map(|o| Value::from(o.keyword()))),
        ("rule", r.rule.clone().map(Value::from)),
        ("why", r.why.clone().map(Value::from)),
        ("args", r.args.clone().map(Value::Object)),
        ("resolution", r.resolution.clone().map(Value::from)),
        ("by", r.by.clone().map(Value::from)),
        ("detail", r.detail.clone().map(Value::from)),
        ("context", r.context.clone().map(Value::from)),
        ("reasoning", r.reasoning.clone().map(Value::from)),
        ("tier", r.tier.clone().map(Value::from)),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            v[name] = value;
        }
    }
    if let Some(e) = &r.escalation {
        v["escalation"] = json!({
            "id": e.id,
            "routes": e.routes,
            "deadline": e.deadline_ms.map(format_time),
        });
    }
    if let Some(res) = &r.result {
        v["result"] = json!({ "ok": res.ok, "tokens": res.tokens, "latency_ms": res.latency_ms });
    }
    v
}

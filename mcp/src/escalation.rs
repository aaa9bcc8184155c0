//! Escalated calls: how the gateway asks a human and waits. With a client that
//! advertises form elicitation the question goes to the client's user (approve or
//! not); otherwise, or when the user does not answer, the call waits in the gateway's
//! queue until it is resolved through the queue folder (`agentpolicy mcp resolve`) or
//! its route times out with the route's timeout outcome. Every resolution goes through
//! the engine, which audits it.
//!
//! The queue folder holds one `CALL.json` per pending escalation (`s1-3.json` for call
//! 3 of session 1), written when it is raised and removed when it is resolved; an
//! operator answers by creating `CALL.approve` or `CALL.reject` holding
//! `{"by": "...", "reason": "..."}` (what `agentpolicy mcp resolve` writes).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentpolicy_runtime::Outcome;
use agentpolicy_runtime::engine::{CallRef, Engine, Escalation, Notify, Resolution};
use serde_json::{Value, json};

/// How often a waiting call looks at the queue folder and the clock.
const POLL: Duration = Duration::from_millis(50);

/// The outcomes of resolved escalations, kept until their waiting call takes them. The
/// engine tells it about every resolution, whoever made it.
#[derive(Debug, Default)]
pub struct Resolutions {
    done: Mutex<HashMap<CallRef, Outcome>>,
    wake: tokio::sync::Notify,
}

impl Resolutions {
    fn take(&self, id: CallRef) -> Option<Outcome> {
        self.done.lock().ok().and_then(|mut d| d.remove(&id))
    }
}

impl Notify for Resolutions {
    fn escalated(&self, _: &Escalation) {}

    fn resolved(&self, escalation: &Escalation, outcome: Outcome) {
        if let Ok(mut done) = self.done.lock() {
            done.insert(escalation.id, outcome);
        }
        self.wake.notify_waiters();
    }
}

/// The file name stem of a call in the queue folder: `s1-3`.
pub fn queue_stem(id: CallRef) -> String {
    format!("{}-{}", id.session, id.n)
}

/// The answer an operator leaves in the queue folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueAnswer {
    pub resolution: Resolution,
    pub by: String,
    pub reason: Option<String>,
}

/// Writes an operator's answer for `stem` into `dir` (created, then renamed into
/// place, so the gateway never reads half a file).
pub fn write_answer(dir: &Path, stem: &str, answer: &QueueAnswer) -> std::io::Result<PathBuf> {
    let ext = match answer.resolution {
        Resolution::Approve => "approve",
        _ => "reject",
    };
    let path = dir.join(format!("{stem}.{ext}"));
    let tmp = dir.join(format!(".{stem}.{ext}.tmp"));
    let body = json!({ "by": answer.by, "reason": answer.reason });
    std::fs::write(&tmp, body.to_string())?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

fn read_answer(dir: &Path, stem: &str) -> Option<QueueAnswer> {
    for (ext, resolution) in [
        ("reject", Resolution::Reject),
        ("approve", Resolution::Approve),
    ] {
        let path = dir.join(format!("{stem}.{ext}"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            let _ = std::fs::remove_file(&path);
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let by = body
                .get("by")
                .and_then(Value::as_str)
                .unwrap_or("operator")
                .to_owned();
            let reason = body
                .get("reason")
                .and_then(Value::as_str)
                .map(str::to_owned);
            return Some(QueueAnswer {
                resolution,
                by,
                reason,
            });
        }
    }
    None
}

/// A pending escalation in the queue folder, for the operator to read.
pub fn write_pending(dir: &Path, escalation: &Escalation, arguments: &Value) {
    let body = json!({
        "call": escalation.id.to_string(),
        "session": escalation.session,
        "agent": escalation.agent,
        "tool": escalation.tool,
        "arguments": arguments,
        "rule": escalation.rule,
        "routes": escalation.routes,
        "notify": escalation.notify,
        "raised_ms": escalation.raised_ms,
        "deadline_ms": escalation.deadline_ms,
        "timeout_outcome": escalation.timeout_outcome.keyword(),
        "resolve": format!(
            "agentpolicy mcp resolve {} {} approve|reject --by NAME",
            dir.display(),
            queue_stem(escalation.id)
        ),
    });
    let stem = queue_stem(escalation.id);
    let tmp = dir.join(format!(".{stem}.json.tmp"));
    if std::fs::write(&tmp, format!("{body:#}\n")).is_ok() {
        let _ = std::fs::rename(&tmp, dir.join(format!("{stem}.json")));
    }
}

/// Resolves `id` in the engine as `by` answered; the outcome then arrives through
/// [`Resolutions`]. An escalation already resolved (a timeout won the race) is left
/// as it is.
pub fn resolve(engine: &Engine, id: CallRef, answer: &QueueAnswer) {
    let _ = match &answer.reason {
        Some(reason) => engine.resolve_with_reason(id, answer.resolution, &answer.by, reason),
        None => engine.resolve(id, answer.resolution, &answer.by),
    };
}

/// Waits for `id` to be resolved: by a [`Resolutions`] entry (whoever resolved it), an
/// answer in the queue folder, or its deadline (the engine applies the route's
/// timeout outcome). Returns Allow or Deny.
pub async fn wait(
    engine: &Arc<Engine>,
    resolutions: &Resolutions,
    id: CallRef,
    queue: Option<&Path>,
) -> Outcome {
    loop {
        let notified = resolutions.wake.notified();
        if let Some(outcome) = resolutions.take(id) {
            if let Some(dir) = queue {
                let _ = std::fs::remove_file(dir.join(format!("{}.json", queue_stem(id))));
            }
            return outcome;
        }
        if let Some(dir) = queue
            && let Some(answer) = read_answer(dir, &queue_stem(id))
        {
            resolve(engine, id, &answer);
            continue;
        }
        let pending = engine
            .pending_escalations()
            .map(|p| p.iter().any(|e| e.id == id))
            .unwrap_or(false);
        if !pending {
            // Resolved: the engine tells the notifier just after it lets go of its
            // locks, so the outcome may be a moment behind. Without one (cannot happen
            // with the notifier installed) fail closed rather than wait forever.
            for _ in 0..100 {
                if let Some(outcome) = resolutions.take(id) {
                    return outcome;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            return Outcome::Deny;
        }
        engine.expire_escalations();
        let _ = tokio::time::timeout(POLL, notified).await;
    }
}

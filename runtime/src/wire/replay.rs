//! The replay harness (feature `replay`): runs a recorded trace (`docs/trace-format.md`)
//! through a real [`Engine`], with sessions, limits, breakers, escalations, shadow mode
//! and the kill switch, on a [`ManualClock`] that follows the trace's `at` times, and
//! collects each step's outcome (as a line of text and as JSON) and a summary. Printing is
//! the caller's; `agentpolicy replay` prints what this returns.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value as Json, json};

use super::request::{arg_or_list, number, text_lists};
use super::trace::{self, CallLine, OpLine, Step, When};
use crate::audit::{Ack, AuditLog, Durability};
use crate::engine::{
    CallRef, CallResult, KillFile, Labels, ManualClock, Reason, Resolution, Resolved, SessionId,
};
use crate::{
    ArgValue, Call, DecisionTable, Engine, EngineConfig, Outcome, SessionOptions, Verdict,
};

/// Where the replayed engine writes and what it honours.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Write the engine's audit log here (an existing log's chain is continued).
    pub audit: Option<PathBuf>,
    /// Honour this kill file, read before every line.
    pub kill_file: Option<PathBuf>,
    /// Size limits: on each trace line (`request_bytes`), and the engine's on each
    /// call's arguments.
    pub limits: crate::RequestLimits,
}

/// A trace replayed: the table that decided, each step, the summary, and the audit
/// log's head once the engine closed it.
#[derive(Debug)]
pub struct Replayed {
    pub table: Arc<DecisionTable>,
    pub entries: Vec<Entry>,
    pub summary: Summary,
    pub audit_head: Option<Ack>,
}

/// The trace's steps with their line numbers; blank lines and `//` comments are skipped.
/// A line longer than the default [`crate::RequestLimits::request_bytes`] is an error.
pub fn parse_trace(trace_name: &str, text: &str) -> Result<Vec<(usize, Step)>, String> {
    parse_trace_limited(trace_name, text, &crate::RequestLimits::default())
}

/// [`parse_trace`] with the line length limit of `limits`.
pub fn parse_trace_limited(
    trace_name: &str,
    text: &str,
    limits: &crate::RequestLimits,
) -> Result<Vec<(usize, Step)>, String> {
    let mut steps = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with("//") {
            continue;
        }
        limits
            .check_request(line)
            .map_err(|e| format!("{trace_name}:{}: {e}", i + 1))?;
        let step = trace::parse(line).map_err(|e| format!("{trace_name}:{}: {e}", i + 1))?;
        steps.push((i + 1, step));
    }
    Ok(steps)
}

/// Replays the trace `text` (named `trace_name` in messages) against `table`.
pub fn replay(
    table: DecisionTable,
    trace_name: &str,
    text: &str,
    options: &ReplayOptions,
) -> Result<Replayed, String> {
    let steps = parse_trace_limited(trace_name, text, &options.limits)?;
    let mut start = 0;
    for (line, step) in &steps {
        if let Some(at) = step.at()
            && let When::Absolute(ms) =
                trace::when(at).map_err(|e| format!("{trace_name}:{line}: {e}"))?
        {
            start = ms;
            break;
        }
    }
    let clock = Arc::new(ManualClock::new(start));
    let audit = match &options.audit {
        Some(path) => Some(
            AuditLog::open(path, Durability::default(), clock.as_ref())
                .map_err(|e| format!("cannot open the audit log `{}`: {e}", path.display()))?,
        ),
        None => None,
    };
    let kill_file = options.kill_file.clone().map(|path| KillFile {
        path,
        // Replay reads the file before each line itself; the thread is a backstop.
        poll_interval: Duration::from_secs(3600),
    });
    let config = EngineConfig {
        clock: clock.clone(),
        audit,
        kill_file,
        limits: options.limits,
        ..EngineConfig::default()
    };
    let engine = Engine::new(table, config).map_err(|e| format!("cannot start the engine: {e}"))?;
    let table = engine.table().map_err(|e| e.to_string())?;
    let mut run = Run {
        engine,
        table,
        clock,
        sessions: HashMap::new(),
        entries: Vec::new(),
        summary: Summary::default(),
        trace: trace_name,
        awaiting: HashMap::new(),
    };
    for (line, step) in &steps {
        run.step(*line, step, start)?;
    }
    let head = run.engine.audit_head();
    let Run {
        engine,
        table,
        entries,
        summary,
        ..
    } = run;
    engine
        .shutdown()
        .map_err(|e| format!("closing the engine: {e}"))?;
    Ok(Replayed {
        table,
        entries,
        summary,
        audit_head: head,
    })
}

/// What happened on one line: as text, and as JSON (`agentpolicy replay --format json`).
#[derive(Debug, Clone)]
pub struct Entry {
    pub human: String,
    pub json: Json,
}

/// Counts over the whole trace.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Tool calls decided.
    pub calls: usize,
    /// Calls per outcome keyword.
    pub outcomes: BTreeMap<&'static str, usize>,
    /// Calls decided in shadow mode.
    pub shadowed: usize,
    /// Calls per agent and outcome keyword.
    pub agents: BTreeMap<String, BTreeMap<&'static str, usize>>,
    /// Each session's first denial: its line, reason code and explanation.
    pub first_denials: BTreeMap<String, (usize, String, String)>,
    /// Expectations checked.
    pub checked: usize,
    /// Lines whose expectation failed.
    pub failed: Vec<usize>,
}

struct Run<'a> {
    engine: Engine,
    table: Arc<DecisionTable>,
    clock: Arc<ManualClock>,
    sessions: HashMap<String, (SessionId, String)>,
    entries: Vec<Entry>,
    summary: Summary,
    trace: &'a str,
    /// Results of escalated calls, reported once an approval lets the call run.
    awaiting: HashMap<CallRef, trace::ResultJson>,
}

impl Run<'_> {
    fn step(&mut self, line: usize, step: &Step, start: i64) -> Result<(), String> {
        let at = |e: String| format!("{}:{line}: {e}", self.trace);
        if let Some(value) = step.at() {
            let now = match trace::when(value).map_err(at)? {
                When::Offset(ms) => start.saturating_add(ms),
                When::Absolute(ms) => ms,
            };
            if now < self.clock_now() {
                return Err(at("`at` goes back in time".into()));
            }
            self.clock.set(now);
        }
        self.engine
            .poll_kill_file()
            .map_err(|e| at(format!("reading the kill file: {e}")))?;
        for resolved in self.engine.expire_escalations() {
            self.resolved(line, &resolved)?;
        }
        match step {
            Step::Call(c) => self.call(line, c),
            Step::Op(o) => self.op(line, o),
        }
    }

    fn clock_now(&self) -> i64 {
        use crate::engine::Clock;
        self.clock.now_ms()
    }

    fn session(&mut self, line: usize, c: &CallLine) -> Result<SessionId, String> {
        if let Some((id, agent)) = self.sessions.get(&c.session) {
            if *agent != c.agent {
                return Err(format!(
                    "{}:{line}: session `{}` belongs to agent `{agent}`, not `{}`",
                    self.trace, c.session, c.agent
                ));
            }
            if c.context.is_some() {
                return Err(format!(
                    "{}:{line}: session `{}` is already open; `context` belongs on the line that opens it",
                    self.trace, c.session
                ));
            }
            return Ok(*id);
        }
        let bind: Vec<(&str, &str)> = c
            .bind
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let id = self
            .engine
            .open_session(
                &c.agent,
                SessionOptions {
                    name: Some(&c.session),
                    bind: &bind,
                    context: c.context.as_deref(),
                },
            )
            .map_err(|e| {
                format!(
                    "{}:{line}: cannot open session `{}`: {e}",
                    self.trace, c.session
                )
            })?;
        self.sessions
            .insert(c.session.clone(), (id, c.agent.clone()));
        Ok(id)
    }

    fn call(&mut self, line: usize, c: &CallLine) -> Result<(), String> {
        let session = self.session(line, c)?;
        let table = Arc::clone(&self.table);
        let tool = table
            .tool_id(&c.tool)
            .and_then(|t| table.data().tools.get(t.index()));
        let mut args: Vec<(&str, ArgValue<'_>)> = Vec::new();
        let lists = text_lists(&c.args);
        for (name, value) in &c.args {
            let param = tool.and_then(|t| t.params.iter().find(|p| &p.name == name));
            let arg = match param {
                // Passed on so the engine denies the call, naming the parameter.
                None => ArgValue::Text(""),
                Some(p) => {
                    arg_or_list(p.ty, value, lists.get(name.as_str())).map_err(|expected| {
                        format!(
                            "{}:{line}: argument `{name}`: expected {expected}, found {value}",
                            self.trace
                        )
                    })?
                }
            };
            args.push((name.as_str(), arg));
        }
        let read_keys: Vec<(&str, &str)> = c
            .read
            .iter()
            .flat_map(|r| r.keys.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .collect();
        let write_keys: Vec<(&str, &str)> = c
            .write
            .iter()
            .flat_map(|w| w.keys.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .collect();
        let untrusted: Vec<&str> = c.untrusted.iter().map(String::as_str).collect();
        let mut call = Call::new(&c.tool).args(&args).untrusted(&untrusted);
        if let Some(conf) = &c.confidence {
            let millionths = number(conf).map_err(|expected| {
                format!(
                    "{}:{line}: `confidence`: expected {expected}, found {conf}",
                    self.trace
                )
            })?;
            call = call.confidence(millionths);
        }
        call.read = c.read.as_ref().map(|r| Labels {
            target: &r.resource,
            keys: &read_keys,
        });
        call.write = c.write.as_ref().map(|w| Labels {
            target: &w.resource,
            keys: &write_keys,
        });
        call.reasoning = c.reasoning.as_deref();
        let verdict = self.engine.decide(session, &call);
        let mut reported = None;
        if let (Some(result), Some(call_ref), true) = (c.result, verdict.call, verdict.is_allow()) {
            self.engine
                .report(
                    call_ref,
                    CallResult {
                        ok: result.ok,
                        tokens: result.tokens,
                        latency_ms: result.latency_ms,
                    },
                )
                .map_err(|e| format!("{}:{line}: reporting the result: {e}", self.trace))?;
            reported = Some(result.ok);
        }
        if let (Some(result), Some(id)) = (c.result, verdict.escalation) {
            self.awaiting.insert(id, result);
        }
        if let (Some(h), Some(call_ref)) = (&c.human, verdict.call) {
            self.engine
                .record_human(call_ref, h.action, h.by.as_deref().unwrap_or("replay"))
                .map_err(|e| format!("{}:{line}: recording the human action: {e}", self.trace))?;
        }
        self.decided(line, c, &verdict, reported);
        Ok(())
    }

    fn decided(&mut self, line: usize, c: &CallLine, v: &Verdict, reported: Option<bool>) {
        let explanation = explain(&self.table, v);
        let s = &mut self.summary;
        s.calls += 1;
        *s.outcomes.entry(v.outcome.keyword()).or_default() += 1;
        *s.agents
            .entry(c.agent.clone())
            .or_default()
            .entry(v.outcome.keyword())
            .or_default() += 1;
        if v.shadow {
            s.shadowed += 1;
        }
        if v.outcome == Outcome::Deny && !s.first_denials.contains_key(&c.session) {
            s.first_denials.insert(
                c.session.clone(),
                (line, v.reason_code().to_owned(), explanation.clone()),
            );
        }
        let mut mismatch = Vec::new();
        if let Some(want) = c.expect {
            s.checked += 1;
            if want != v.outcome {
                mismatch.push(format!("expected {want}, got {}", v.outcome));
            }
        }
        if let Some(want) = &c.expect_reason {
            if c.expect.is_none() {
                s.checked += 1;
            }
            if want != v.reason_code() {
                mismatch.push(format!("expected reason {want}, got {}", v.reason_code()));
            }
        }
        if !mismatch.is_empty() {
            s.failed.push(line);
        }
        let call = v.call.map_or(String::new(), |c| format!("#{}", c.n));
        let mut human = format!("line {line}: {} {} {}{call}: ", c.session, c.agent, c.tool);
        if v.shadow {
            human.push_str(&format!("allow (shadow; would be: {explanation})"));
        } else {
            human.push_str(&explanation);
        }
        if let Some(id) = v.escalation {
            human.push_str(&format!(" [pending {}]", escalation_name(&c.session, id)));
        }
        if let Some(ok) = reported {
            human.push_str(if ok {
                " [result: ok]"
            } else {
                " [result: error]"
            });
        }
        if let Some(h) = &c.human {
            let agrees = h.action.outcome() == v.decision.outcome;
            human.push_str(&format!(
                " [human: {}, {}]",
                h.action.keyword(),
                if agrees { "agrees" } else { "disagrees" }
            ));
        }
        if !mismatch.is_empty() {
            human.push_str(&format!("\n  MISMATCH: {}", mismatch.join("; ")));
        }
        let mut json = json!({
            "line": line,
            "kind": "call",
            "session": c.session,
            "agent": c.agent,
            "tool": c.tool,
            "call": v.call.map(|c| c.n),
            "outcome": v.outcome.keyword(),
            "decision": v.decision.outcome.keyword(),
            "shadow": v.shadow,
            "reason": v.reason_code(),
            "rule": v.decision.rule.filter(|_| v.reason == Reason::Policy).and_then(|r| self.table.rule(r)).map(|r| r.id.clone()),
            "why": explanation,
            "escalation": v.escalation.map(|id| escalation_name(&c.session, id)),
            "result": reported.map(|ok| if ok { "ok" } else { "error" }),
            "table": v.table.to_string(),
            "audit_seq": v.audit.map(|a| a.seq),
            "expected": c.expect.map(Outcome::keyword),
            "mismatch": (!mismatch.is_empty()).then(|| mismatch.join("; ")),
        });
        if let (Some(h), Some(obj)) = (&c.human, json.as_object_mut()) {
            obj.insert("human".into(), json!(h.action.keyword()));
        }
        self.entries.push(Entry { human, json });
    }

    /// Prints a resolution; an approved call that has a recorded result now runs, so its
    /// result is reported.
    fn resolved(&mut self, line: usize, r: &Resolved) -> Result<(), String> {
        let name = escalation_name(&r.escalation.session, r.escalation.id);
        let mut human = format!(
            "line {line}: {} {name}: {}: {}",
            r.resolution.keyword(),
            r.outcome,
            r.why
        );
        let waiting = self.awaiting.remove(&r.escalation.id);
        if let (Some(result), Outcome::Allow) = (waiting, r.outcome) {
            self.engine
                .report(
                    r.escalation.id,
                    CallResult {
                        ok: result.ok,
                        tokens: result.tokens,
                        latency_ms: result.latency_ms,
                    },
                )
                .map_err(|e| format!("{}:{line}: reporting the result: {e}", self.trace))?;
            human.push_str(if result.ok {
                " [result: ok]"
            } else {
                " [result: error]"
            });
        }
        let json = json!({
            "line": line,
            "kind": "resolution",
            "escalation": name,
            "resolution": r.resolution.keyword(),
            "outcome": r.outcome.keyword(),
            "why": r.why,
        });
        self.entries.push(Entry { human, json });
        Ok(())
    }

    fn event(&mut self, line: usize, op: &OpLine, text: String) {
        let json = json!({ "line": line, "kind": "op", "op": op.op, "detail": text });
        self.entries.push(Entry {
            human: format!("line {line}: {text}"),
            json,
        });
    }

    fn op(&mut self, line: usize, o: &OpLine) -> Result<(), String> {
        let by = o.by.clone().unwrap_or_else(|| "replay".to_owned());
        let err = |e: String| format!("{}:{line}: `{}`: {e}", self.trace, o.op);
        let session = |run: &Self| -> Result<SessionId, String> {
            let name = o.session.as_ref().ok_or("needs a `session`")?;
            run.sessions
                .get(name)
                .map(|(id, _)| *id)
                .ok_or_else(|| format!("no session `{name}` yet"))
        };
        match o.op.as_str() {
            "kill" | "resume" => {
                let kill = o.op == "kill";
                let result = match (&o.agent, kill) {
                    (Some(a), true) => self.engine.kill_agent(a, &by),
                    (Some(a), false) => self.engine.resume_agent(a, &by),
                    (None, true) => self.engine.kill_all(&by),
                    (None, false) => self.engine.resume_all(&by),
                };
                result.map_err(|e| err(e.to_string()))?;
                let whom = o
                    .agent
                    .as_ref()
                    .map_or("every agent".to_owned(), |a| format!("agent {a}"));
                self.event(line, o, format!("{} {whom} (by {by})", o.op));
            }
            "reset_breaker" => {
                let agent = o
                    .agent
                    .as_ref()
                    .ok_or_else(|| err("needs an `agent`".into()))?;
                self.engine
                    .reset_breaker(agent, &by)
                    .map_err(|e| err(e.to_string()))?;
                self.event(
                    line,
                    o,
                    format!("reset the breakers of agent {agent} (by {by})"),
                );
            }
            "new_task" => {
                let id = session(self).map_err(err)?;
                let task = self.engine.start_task(id).map_err(|e| err(e.to_string()))?;
                let name = o.session.clone().unwrap_or_default();
                self.event(line, o, format!("session {name} starts task {task}"));
            }
            "close" => {
                let id = session(self).map_err(err)?;
                self.engine
                    .close_session(id)
                    .map_err(|e| err(e.to_string()))?;
                let name = o.session.clone().unwrap_or_default();
                self.event(line, o, format!("session {name} closed"));
            }
            "approve" | "reject" => {
                let id = session(self).map_err(err)?;
                let call = match o.call {
                    Some(n) => CallRef { session: id, n },
                    None => self
                        .engine
                        .pending_escalations()
                        .map_err(|e| err(e.to_string()))?
                        .into_iter()
                        .find(|e| e.id.session == id)
                        .map(|e| e.id)
                        .ok_or_else(|| err("the session has no pending escalation".into()))?,
                };
                let resolution = if o.op == "approve" {
                    Resolution::Approve
                } else {
                    Resolution::Reject
                };
                let resolved = self
                    .engine
                    .resolve(call, resolution, &by)
                    .map_err(|e| err(e.to_string()))?;
                self.resolved(line, &resolved)?;
            }
            other => {
                return Err(err(format!(
                    "unknown step `{other}`: expected kill, resume, reset_breaker, new_task, close, approve or reject"
                )));
            }
        }
        Ok(())
    }
}

fn escalation_name(session: &str, id: CallRef) -> String {
    format!("{session}#{}", id.n)
}

fn explain(table: &DecisionTable, v: &Verdict) -> String {
    match &v.reason {
        Reason::Policy => v.decision.explain(table.data()).to_string(),
        Reason::Request(e) => format!("deny (request): {e}"),
        Reason::Session(e) => format!("deny (session): {e}"),
        Reason::Internal(e) => format!("deny (internal): {e}"),
    }
}

//! The trace format `agentpolicy replay` reads (documented in `docs/trace-format.md`):
//! JSON lines, each a tool call or an operator step. Parsing only; running is `replay`.

use std::collections::BTreeMap;

use crate::Outcome;
use crate::audit::{HumanAction, parse_time};
use serde::Deserialize;
use serde_json::Value as Json;

/// One line of a trace.
#[derive(Debug)]
pub enum Step {
    Call(Box<CallLine>),
    Op(OpLine),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallLine {
    pub session: String,
    pub agent: String,
    pub tool: String,
    #[serde(default)]
    pub args: BTreeMap<String, Json>,
    #[serde(default)]
    pub confidence: Option<Json>,
    #[serde(default)]
    pub read: Option<Target>,
    #[serde(default)]
    pub write: Option<Target>,
    /// Arguments that came from untrusted content.
    #[serde(default)]
    pub untrusted: Vec<String>,
    /// Keys the session is bound to when this line opens it.
    #[serde(default)]
    pub bind: BTreeMap<String, String>,
    #[serde(default)]
    pub result: Option<ResultJson>,
    #[serde(default)]
    pub at: Option<Json>,
    /// The outcome the caller should get; replay fails (exit 1) when it differs.
    #[serde(default)]
    pub expect: Option<Outcome>,
    /// The reason code the verdict should have (`flow`, `limit`, `suspended`, ...).
    #[serde(default)]
    pub expect_reason: Option<String>,
    /// Who or what started the run, when this line opens the session.
    #[serde(default)]
    pub context: Option<String>,
    /// The agent framework's reasoning snapshot for the call.
    #[serde(default)]
    pub reasoning: Option<String>,
    /// What a human did for the same task (shadow comparison), recorded after the
    /// decision.
    #[serde(default)]
    pub human: Option<HumanLine>,
}

/// `{"action": "allow" | "deny" | "escalate", "by": WHO}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HumanLine {
    pub action: HumanAction,
    #[serde(default)]
    pub by: Option<String>,
}

/// A read or write target and its isolation-key values.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(alias = "sink")]
    pub resource: String,
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultJson {
    pub ok: bool,
    #[serde(default)]
    pub tokens: u64,
    #[serde(default)]
    pub latency_ms: u64,
}

/// An operator step: `kill`, `resume`, `reset_breaker`, `new_task`, `approve`,
/// `reject`, `close`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpLine {
    pub op: String,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub session: Option<String>,
    /// For `approve` / `reject`: the call number in the session; the session's oldest
    /// pending escalation when absent.
    #[serde(default)]
    pub call: Option<u64>,
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub at: Option<Json>,
}

impl Step {
    pub fn at(&self) -> Option<&Json> {
        match self {
            Step::Call(c) => c.at.as_ref(),
            Step::Op(o) => o.at.as_ref(),
        }
    }
}

/// When a line happens: a number is milliseconds since the trace's start, a string an
/// RFC 3339 time. `Err` says what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Offset(i64),
    Absolute(i64),
}

pub fn when(value: &Json) -> Result<When, String> {
    match value {
        Json::Number(n) => n
            .as_i64()
            .map(When::Offset)
            .ok_or_else(|| "`at`: expected whole milliseconds since the trace start".into()),
        Json::String(s) => parse_time(s)
            .map(When::Absolute)
            .ok_or_else(|| format!("`at`: `{s}` is not an RFC 3339 time")),
        _ => Err("`at`: expected milliseconds or an RFC 3339 time".into()),
    }
}

/// Parses one non-blank line.
pub fn parse(line: &str) -> Result<Step, String> {
    let value: Json = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    if value.get("op").is_some() {
        serde_json::from_value(value)
            .map(Step::Op)
            .map_err(|e| format!("not a trace step: {e}"))
    } else {
        serde_json::from_value(value)
            .map(|c| Step::Call(Box::new(c)))
            .map_err(|e| format!("not a trace call: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `at` with an offset other than UTC's was refused by the hand-written parser.
    #[test]
    fn at_takes_any_offset() {
        let utc = when(&Json::String("2026-11-25T09:00:04Z".into()));
        let paris = when(&Json::String("2026-11-25T10:00:04+01:00".into()));
        assert!(matches!(utc, Ok(When::Absolute(_))));
        assert_eq!(utc, paris);
        assert!(when(&Json::String("2026-11-25T10:00:04".into())).is_err());
    }

    #[test]
    fn calls_and_steps() {
        let Ok(Step::Call(c)) = parse(
            r#"{"session":"s1","agent":"intake","tool":"t","args":{"amount":"$5"},"read":{"resource":"document","keys":{"matter":"M-1"}},"result":{"ok":true,"tokens":3},"expect":"allow"}"#,
        ) else {
            panic!("a call")
        };
        assert_eq!(c.expect, Some(Outcome::Allow));
        assert_eq!(
            c.read.unwrap().keys.get("matter").map(String::as_str),
            Some("M-1")
        );
        let Ok(Step::Op(o)) = parse(r#"{"op":"kill","agent":"intake","at":5}"#) else {
            panic!("a step")
        };
        assert_eq!(o.agent.as_deref(), Some("intake"));
        assert!(parse(r#"{"session":"s1"}"#).is_err());
        assert!(parse("nope").is_err());
        assert!(parse(r#"{"session":"s","agent":"a","tool":"t","colour":1}"#).is_err());
    }
}

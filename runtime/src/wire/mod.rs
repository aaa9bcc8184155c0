//! The runtime's wire formats, for everything that reaches the engine from outside Rust
//! (the CLI, an HTTP service, a Python package, an MCP gateway): decision tables as bytes
//! (binary or JSON, told apart by the binary form's magic), requests as JSON
//! ([`request`], `docs/requests.md`), decisions as JSON ([`decision_json`]) and the trace
//! lines `replay` reads ([`trace`], `docs/trace-format.md`). Values inside them are read
//! and written by [`crate::values`].
//!
//! Parsing only: nothing here reads a file or a socket; callers hand in the bytes.

#[cfg(feature = "replay")]
pub mod replay;
pub mod request;
pub mod trace;

use serde_json::{Value as Json, json};

use crate::{Decision, DecisionTable, MAGIC, Slot};

/// A decision table from its bytes: the binary form (it starts with [`MAGIC`]) or the
/// JSON form (it starts with `{`, after whitespace). Every id and condition is validated.
///
/// ```
/// # use agentpolicy_runtime::wire::load_table;
/// assert!(load_table(b"not a table").is_err());
/// assert!(load_table(b"  {\"format_version\": 0}").is_err());
/// ```
pub fn load_table(bytes: &[u8]) -> Result<DecisionTable, String> {
    if bytes.starts_with(&MAGIC) {
        return DecisionTable::from_bytes(bytes).map_err(|e| e.to_string());
    }
    if bytes.trim_ascii_start().starts_with(b"{") {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| "the JSON table is not UTF-8 text".to_string())?;
        return DecisionTable::from_json(text).map_err(|e| e.to_string());
    }
    DecisionTable::from_bytes(bytes).map_err(|e| e.to_string())
}

/// The name of the value a decision found missing: a parameter of `tool`, or
/// `confidence`.
pub fn missing_name(table: &DecisionTable, tool: &str, slot: Slot) -> String {
    if slot.is_confidence() {
        return "confidence".to_string();
    }
    table
        .tool_id(tool)
        .and_then(|t| table.data().tools.get(t.index()))
        .and_then(|t| slot.param().and_then(|i| t.params.get(i)))
        .map_or_else(|| format!("argument #{}", slot.0), |p| p.name.clone())
}

/// A decision as JSON (the format of `agentpolicy decide --format json`, in
/// `docs/requests.md`): the outcome and stage as keywords, the rule with its source
/// position, the routes, the missing value, the reason and explanation, whether the
/// agent is in shadow mode, and which policy decided.
pub fn decision_json(table: &DecisionTable, decision: &Decision, tool: &str, shadow: bool) -> Json {
    let data = table.data();
    let rule = decision.rule.and_then(|r| table.rule(r)).map(|r| {
        json!({
            "index": decision.rule.map(|i| i.0),
            "id": r.id,
            "kind": r.kind.keyword(),
            "file": data.files.get(r.span.file.index()),
            "line": r.span.line,
            "column": r.span.column,
            "start": r.span.start,
            "end": r.span.end,
        })
    });
    let routes: Vec<Json> = decision
        .routes
        .as_slice()
        .iter()
        .filter_map(|r| data.routes.get(r.index()))
        .map(|r| {
            json!({
                "name": r.name,
                "notify": r.notify,
                "timeout_ms": r.timeout_ms,
                "timeout_outcome": r.timeout_outcome,
            })
        })
        .collect();
    json!({
        "outcome": decision.outcome.keyword(),
        "stage": decision.stage().keyword(),
        "rule": rule,
        "routes": routes,
        "missing": decision.missing.map(|slot| missing_name(table, tool, slot)),
        "why": decision.why.to_string(),
        "explanation": decision.explain(data).to_string(),
        "shadow": shadow,
        "policy": {
            "name": data.policy.name,
            "version": data.policy.version,
            "source_hash": table.source_hash().to_string(),
        },
    })
}

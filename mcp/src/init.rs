//! `agentpolicy mcp init`: a starting policy from the tools an MCP server really
//! offers. Every tool is declared with the parameters its JSON schema types allow
//! (`string` → `text`, `number` / `integer` → `number`, `boolean` → `bool`, an array of
//! strings → `list<text>`); effects are guessed from the MCP tool annotations, with the
//! protocol's defaults when a hint is absent (`destructiveHint` and `openWorldHint`
//! default to true), and marked for review; one agent is granted the read-only tools
//! only. Text in, text out: the command line connects and writes the file.

use std::fmt::Write as _;

use serde_json::Value;

use crate::mapping::{param_name, policy_name};

/// The most parameters a tool may declare (the runtime's `MAX_PARAMS`).
const MAX_PARAMS: usize = 16;

/// One tool as `init` sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct InitTool {
    /// The policy name (namespaced when there are several upstreams).
    pub name: String,
    pub mcp_name: String,
    pub description: Option<String>,
    pub input_schema: Value,
    pub read_only: Option<bool>,
    pub destructive: Option<bool>,
    pub open_world: Option<bool>,
}

fn param_type(schema: &Value) -> Option<&'static str> {
    let ty = match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(ts)) => {
            let non_null: Vec<&str> = ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect();
            (non_null.len() == 1).then(|| non_null[0])
        }
        _ => None,
    }?;
    match ty {
        "string" => Some("text"),
        "number" | "integer" => Some("number"),
        "boolean" => Some("bool"),
        "array" => (schema
            .get("items")
            .and_then(|i| i.get("type"))
            .and_then(Value::as_str)
            == Some("string"))
        .then_some("list<text>"),
        _ => None,
    }
}

/// The policy text for `tools`, named after the server.
pub fn starting_policy(server: &str, command: &str, tools: &[InitTool]) -> String {
    let mut out = String::new();
    let policy = policy_name(&format!("mcp_{server}"));
    let _ = writeln!(
        out,
        "// A starting policy written by `agentpolicy mcp init` from the tools of"
    );
    let _ = writeln!(out, "//   {command}");
    let _ = writeln!(
        out,
        "// Effects are guessed from the server's tool annotations (readOnlyHint,"
    );
    let _ = writeln!(
        out,
        "// destructiveHint, openWorldHint; absent hints take the protocol's defaults)."
    );
    let _ = writeln!(
        out,
        "// Review every line marked REVIEW before deploying it."
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "policy {policy} version \"0.1\"");
    let _ = writeln!(out);
    for tool in tools {
        if let Some(d) = &tool.description {
            let first = d.lines().next().unwrap_or("").trim();
            let first: String = first.chars().take(100).collect();
            if !first.is_empty() {
                let _ = writeln!(out, "// {}: {first}", tool.mcp_name);
            }
        }
        let required: Vec<&str> = tool
            .input_schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut params = Vec::new();
        let mut skipped = Vec::new();
        if let Some(props) = tool
            .input_schema
            .get("properties")
            .and_then(Value::as_object)
        {
            for (arg, schema) in props {
                match param_type(schema) {
                    Some(ty) if params.len() < MAX_PARAMS => {
                        let optional = if required.contains(&arg.as_str()) {
                            ""
                        } else {
                            "?"
                        };
                        params.push(format!("{}: {ty}{optional}", param_name(arg)));
                    }
                    _ => skipped.push(arg.clone()),
                }
            }
        }
        if !skipped.is_empty() {
            let _ = writeln!(
                out,
                "// not declared (no policy type fits, or more than {MAX_PARAMS}): {}",
                skipped.join(", ")
            );
        }
        let read_only = tool.read_only == Some(true);
        let mut effects = vec![if read_only { "read" } else { "write" }];
        let mut why = vec![if read_only {
            "readOnlyHint"
        } else {
            "not readOnlyHint"
        }];
        if !read_only && tool.destructive != Some(false) {
            effects.push("irreversible");
            why.push("destructiveHint");
        }
        let open_world = tool.open_world != Some(false);
        if open_world {
            effects.push("external");
            why.push("openWorldHint");
        }
        let untrusted = if open_world { "  untrusted" } else { "" };
        let _ = writeln!(
            out,
            "tool {}({}) {{ effect {}{untrusted} }}  // REVIEW: guessed from {}",
            tool.name,
            params.join(", "),
            effects.join(", "),
            why.join(", ")
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "// REVIEW: who answers escalations, and what a timeout decides."
    );
    let _ = writeln!(
        out,
        "escalation reviewers {{ notify \"queue:reviewers\"  timeout 15m then deny }}"
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "// Granted the read-only tools only; grant others (or escalate them) after review."
    );
    let _ = writeln!(out, "agent assistant {{");
    let _ = writeln!(out, "  owner \"REVIEW@example.invalid\"");
    let granted: Vec<&InitTool> = tools.iter().filter(|t| t.read_only == Some(true)).collect();
    for t in &granted {
        let _ = writeln!(out, "  allow {}", t.name);
    }
    if granted.is_empty() {
        let _ = writeln!(
            out,
            "  // no tool says readOnlyHint: nothing is granted yet"
        );
    }
    let _ = writeln!(out, "  limit 200 calls per task");
    let _ = writeln!(out, "}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn effects_follow_the_annotations() {
        let tools = [
            InitTool {
                name: "read_file".into(),
                mcp_name: "read_file".into(),
                description: Some("Read a file.\nMore.".into()),
                input_schema: json!({"type": "object", "properties": {"path": {"type": "string"}, "head": {"type": "number"}, "opts": {"type": "object"}}, "required": ["path"]}),
                read_only: Some(true),
                destructive: None,
                open_world: Some(false),
            },
            InitTool {
                name: "write_file".into(),
                mcp_name: "write-file".into(),
                description: None,
                input_schema: json!({"type": "object", "properties": {"path": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}}}),
                read_only: None,
                destructive: None,
                open_world: None,
            },
        ];
        let text = starting_policy("fs", "npx server", &tools);
        assert!(
            text.contains("tool read_file(path: text, head: number?) { effect read }"),
            "{text}"
        );
        assert!(text.contains("// not declared (no policy type fits, or more than 16): opts"));
        assert!(text.contains("tool write_file(path: text?, tags: list<text>?) { effect write, irreversible, external  untrusted }"), "{text}");
        assert!(text.contains("  allow read_file\n"));
        assert!(!text.contains("allow write_file"));
        assert!(text.contains("policy mcp_fs version"));
    }
}

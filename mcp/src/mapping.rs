//! The mapping from MCP tools to policy tools, checked once at start-up: an MCP tool
//! `NAME` of the only upstream is the policy tool `NAME`, and of upstream `fs` among
//! several the policy tool `fs__NAME` (characters a policy name cannot hold become `_`);
//! a JSON argument is the policy parameter of the same name. Every tool the upstreams
//! offer must be declared by the policy, and every parameter the policy declares must be
//! an argument of the tool whose JSON schema type fits the declared type.
//!
//! Pure data in, data out: no IO, no engine. The gateway builds a [`ToolMap`] before it
//! accepts its client.

use std::collections::BTreeMap;
use std::fmt;

use agentpolicy_runtime::DecisionTable;
use agentpolicy_runtime::ValueType;
use serde_json::{Map, Value};

/// The policy words a declared name cannot be (the grammar's `keyword` rule).
const KEYWORDS: &[&str] = &[
    "policy",
    "version",
    "use",
    "tiers",
    "isolate",
    "resource",
    "sink",
    "tool",
    "threshold",
    "escalation",
    "agent",
    "assert",
    "test",
    "tier",
    "keyed",
    "clearance",
    "effect",
    "reads",
    "writes",
    "notify",
    "timeout",
    "then",
    "owner",
    "purpose",
    "max",
    "allow",
    "escalate",
    "deny",
    "to",
    "when",
    "limit",
    "per",
    "breaker",
    "over",
    "suspend",
    "mode",
    "shadow",
    "enforce",
    "credential",
    "expires",
    "autonomy",
    "because",
    "and",
    "or",
    "not",
    "never",
    "calls",
    "every",
    "escalates",
    "no",
    "flow",
    "from",
    "expect",
    "with",
    "on",
    "into",
    "true",
    "false",
    "set",
    "untrusted",
    "matches",
    "in",
    "all",
    "any",
    "stage",
    "promote",
    "retain",
];

/// The characters a policy name can hold kept, anything else `_`; a leading digit (or
/// nothing at all) gets a `_` before it.
fn sanitize(mcp: &str) -> String {
    let mut name: String = mcp
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// A policy name for an MCP name: ASCII letters, digits and `_` kept, anything else
/// `_`; a leading digit gets a `_` before it, a reserved word a `_` after it.
///
/// ```
/// use agentpolicy_mcp::mapping::policy_name;
/// assert_eq!(policy_name("read-file"), "read_file");
/// assert_eq!(policy_name("test"), "test_");
/// assert_eq!(policy_name("2fa.check"), "_2fa_check");
/// ```
pub fn policy_name(mcp: &str) -> String {
    let mut name = sanitize(mcp);
    if KEYWORDS.contains(&name.as_str()) {
        name.push('_');
    }
    name
}

/// A parameter name for a JSON argument name. Parameter names may be reserved words
/// (`to`, `from`), so only the characters change, and `confidence` (the caller's
/// reported confidence in the language) becomes `confidence_`.
pub fn param_name(mcp: &str) -> String {
    let name = sanitize(mcp);
    if name == "confidence" {
        "confidence_".to_owned()
    } else {
        name
    }
}

/// The policy tool name of an MCP tool: namespaced by its upstream when there are
/// several.
pub fn mapped_tool_name(upstream: Option<&str>, tool: &str) -> String {
    match upstream {
        None => policy_name(tool),
        Some(up) => format!("{}__{}", sanitize(up), sanitize(tool)),
    }
}

/// One MCP tool as an upstream offers it.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferedTool {
    /// Which upstream (its index in the gateway's list).
    pub upstream: usize,
    /// The upstream's name for namespacing; `None` when it is the only one.
    pub namespace: Option<String>,
    /// The tool's name at the upstream.
    pub name: String,
    /// The `inputSchema` object.
    pub input_schema: Map<String, Value>,
}

/// A tool as the gateway shows and forwards it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedTool {
    pub upstream: usize,
    /// The name at the upstream.
    pub upstream_name: String,
    /// The name the client sees and the policy declares.
    pub name: String,
    /// The parameters the policy declares, with their JSON argument names.
    pub params: Vec<MappedParam>,
}

/// A policy parameter and the JSON argument that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedParam {
    pub policy: String,
    pub arg: String,
    pub ty: ValueType,
}

/// The whole mapping: client-visible name → tool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolMap {
    pub tools: BTreeMap<String, MappedTool>,
}

/// A problem found at start-up; all are reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingError {
    /// An upstream offers a tool the policy does not declare.
    Undeclared { mcp: String, policy: String },
    /// The policy declares a parameter the tool's schema does not have.
    MissingArgument { tool: String, param: String },
    /// The schema's type does not fit the declared type.
    TypeMismatch {
        tool: String,
        param: String,
        declared: &'static str,
        schema: String,
    },
    /// Two MCP tools map to one policy name.
    Collision { policy: String },
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MappingError::Undeclared { mcp, policy } => write!(
                f,
                "MCP tool `{mcp}` is not declared by the policy: declare `tool {policy}(...)` \
                 (`agentpolicy mcp init` writes declarations from the server's tools)"
            ),
            MappingError::MissingArgument { tool, param } => write!(
                f,
                "tool `{tool}`: the policy declares parameter `{param}`, but the MCP tool's \
                 input schema has no such argument"
            ),
            MappingError::TypeMismatch {
                tool,
                param,
                declared,
                schema,
            } => write!(
                f,
                "tool `{tool}`: parameter `{param}` is declared `{declared}`, but the MCP \
                 tool's input schema says {schema}"
            ),
            MappingError::Collision { policy } => write!(
                f,
                "two MCP tools map to the policy name `{policy}`: rename one upstream"
            ),
        }
    }
}

/// The JSON schema types a value of `ty` may arrive as.
fn accepted_types(ty: ValueType) -> &'static [&'static str] {
    match ty {
        ValueType::Text => &["string"],
        ValueType::Money => &["number", "integer", "string"],
        ValueType::Number => &["number", "integer"],
        ValueType::Percent => &["number", "integer", "string"],
        ValueType::Duration => &["string", "integer", "number"],
        ValueType::Bool => &["boolean"],
        ValueType::TextList => &["array"],
    }
}

/// The non-null types a schema names (through `type`, or the branches of `anyOf` /
/// `oneOf`); empty when it says nothing about types.
fn schema_types(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match schema.get("type") {
        Some(Value::String(t)) => out.push(t.clone()),
        Some(Value::Array(ts)) => {
            out.extend(ts.iter().filter_map(|t| t.as_str().map(str::to_owned)))
        }
        _ => {}
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = schema.get(key) {
            for b in branches {
                out.extend(schema_types(b));
            }
        }
    }
    out.retain(|t| t != "null");
    out
}

/// Why a property's schema does not fit `ty`, or `None` when it fits (a schema that
/// names no type fits: the runtime's parsers check each value when it comes).
pub fn type_misfit(ty: ValueType, schema: &Value) -> Option<String> {
    let types = schema_types(schema);
    let accepted = accepted_types(ty);
    let bad: Vec<&String> = types
        .iter()
        .filter(|t| !accepted.contains(&t.as_str()))
        .collect();
    if !bad.is_empty() {
        return Some(format!("type {}", quote_list(&types)));
    }
    if ty == ValueType::TextList {
        let items = schema_types(schema.get("items").unwrap_or(&Value::Null));
        if items.iter().any(|t| t != "string") {
            return Some(format!("an array of {}", quote_list(&items)));
        }
    }
    None
}

fn quote_list(types: &[String]) -> String {
    let quoted: Vec<String> = types.iter().map(|t| format!("\"{t}\"")).collect();
    quoted.join(" or ")
}

/// Checks every offered tool against the table and builds the mapping; every problem
/// at once when there are any.
pub fn build(table: &DecisionTable, offered: &[OfferedTool]) -> Result<ToolMap, Vec<MappingError>> {
    let mut errors = Vec::new();
    let mut map = ToolMap::default();
    for tool in offered {
        let name = mapped_tool_name(tool.namespace.as_deref(), &tool.name);
        let Some(declared) = table
            .tool_id(&name)
            .and_then(|id| table.data().tools.get(id.index()))
        else {
            errors.push(MappingError::Undeclared {
                mcp: display_name(tool),
                policy: name,
            });
            continue;
        };
        let properties = tool
            .input_schema
            .get("properties")
            .and_then(Value::as_object);
        let mut params = Vec::new();
        for p in &declared.params {
            let arg = properties.and_then(|props| {
                props
                    .iter()
                    .find(|(arg, _)| param_name(arg) == p.name)
                    .map(|(arg, schema)| (arg.clone(), schema))
            });
            match arg {
                None => errors.push(MappingError::MissingArgument {
                    tool: name.clone(),
                    param: p.name.clone(),
                }),
                Some((arg, schema)) => {
                    if let Some(schema) = type_misfit(p.ty, schema) {
                        errors.push(MappingError::TypeMismatch {
                            tool: name.clone(),
                            param: p.name.clone(),
                            declared: p.ty.keyword(),
                            schema,
                        });
                    }
                    params.push(MappedParam {
                        policy: p.name.clone(),
                        arg,
                        ty: p.ty,
                    });
                }
            }
        }
        let mapped = MappedTool {
            upstream: tool.upstream,
            upstream_name: tool.name.clone(),
            name: name.clone(),
            params,
        };
        if map.tools.insert(name.clone(), mapped).is_some() {
            errors.push(MappingError::Collision { policy: name });
        }
    }
    if errors.is_empty() {
        Ok(map)
    } else {
        Err(errors)
    }
}

fn display_name(tool: &OfferedTool) -> String {
    match &tool.namespace {
        Some(ns) => format!("{} (upstream `{ns}`)", tool.name),
        None => tool.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_become_policy_names() {
        assert_eq!(policy_name("read_text_file"), "read_text_file");
        assert_eq!(policy_name("read-file"), "read_file");
        assert_eq!(policy_name("tool"), "tool_");
        assert_eq!(policy_name(""), "_");
        assert_eq!(param_name("confidence"), "confidence_");
        assert_eq!(param_name("to"), "to");
        assert_eq!(param_name("dry-run"), "dry_run");
        assert_eq!(mapped_tool_name(Some("fs"), "write_file"), "fs__write_file");
        assert_eq!(mapped_tool_name(None, "write_file"), "write_file");
    }

    #[test]
    fn schema_types_fit_declared_types() {
        assert_eq!(
            type_misfit(ValueType::Text, &json!({"type": "string"})),
            None
        );
        assert_eq!(
            type_misfit(ValueType::Text, &json!({"type": "integer"})),
            Some("type \"integer\"".to_owned())
        );
        assert_eq!(
            type_misfit(ValueType::Money, &json!({"type": "number"})),
            None
        );
        assert_eq!(
            type_misfit(ValueType::Bool, &json!({"type": ["boolean", "null"]})),
            None
        );
        assert_eq!(
            type_misfit(
                ValueType::TextList,
                &json!({"type": "array", "items": {"type": "string"}})
            ),
            None
        );
        assert_eq!(
            type_misfit(
                ValueType::TextList,
                &json!({"type": "array", "items": {"type": "number"}})
            ),
            Some("an array of \"number\"".to_owned())
        );
        assert_eq!(
            type_misfit(
                ValueType::Number,
                &json!({"anyOf": [{"type": "string"}, {"type": "null"}]})
            ),
            Some("type \"string\"".to_owned())
        );
        assert_eq!(type_misfit(ValueType::Number, &json!({})), None);
    }
}

//! Rendering diagnostics for people (ariadne: source snippets with labels) and for
//! machines (JSON with file, line, column and byte ranges). Returns strings; printing
//! and colour decisions are the caller's.

use serde::Serialize;

use crate::diagnostics::{Diagnostic, FileId, Label, Severity};
use crate::line_index::LineIndex;

/// The texts diagnostics point into, indexed by `FileId`.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Vec<(String, String)>,
}

impl Sources {
    pub fn new(files: Vec<(String, String)>) -> Self {
        Sources { files }
    }

    pub fn get(&self, id: FileId) -> Option<(&str, &str)> {
        self.files
            .get(id.0 as usize)
            .map(|(p, t)| (p.as_str(), t.as_str()))
    }

    /// Every file as `(path, text)`, indexed by `FileId`.
    pub fn files(&self) -> &[(String, String)] {
        &self.files
    }

    pub fn path(&self, id: FileId) -> &str {
        self.get(id).map(|(p, _)| p).unwrap_or("<unknown>")
    }
}

/// Renders diagnostics as ariadne reports, one after another.
pub fn human(diagnostics: &[Diagnostic], sources: &Sources, color: bool) -> String {
    let mut out = Vec::new();
    let cache_sources: Vec<(String, String)> = sources.files.clone();
    for d in diagnostics {
        let kind = match d.severity {
            Severity::Error => ariadne::ReportKind::Error,
            Severity::Warning => ariadne::ReportKind::Warning,
        };
        let span = |l: &Label| {
            let len = sources.get(l.file).map(|(_, t)| t.len()).unwrap_or(0);
            let start = (l.range.start as usize).min(len);
            let end = (l.range.end as usize).clamp(start, len);
            (sources.path(l.file).to_string(), start..end)
        };
        let config = ariadne::Config::default()
            .with_color(color)
            .with_index_type(ariadne::IndexType::Byte);
        let primary_color = match d.severity {
            Severity::Error => ariadne::Color::Red,
            Severity::Warning => ariadne::Color::Yellow,
        };
        let mut report = ariadne::Report::build(kind, span(&d.primary))
            .with_config(config)
            .with_code(d.code.as_str())
            .with_message(&d.message)
            .with_label(
                ariadne::Label::new(span(&d.primary))
                    .with_message(&d.primary.message)
                    .with_color(primary_color)
                    .with_order(0),
            );
        for (i, l) in d.secondary.iter().enumerate() {
            report = report.with_label(
                ariadne::Label::new(span(l))
                    .with_message(&l.message)
                    .with_color(ariadne::Color::Blue)
                    .with_order(i as i32 + 1),
            );
        }
        if let Some(help) = &d.help {
            report = report.with_help(help);
        }
        if let Some(cex) = &d.counterexample {
            report = report.with_note(format!("counterexample:\n{cex}"));
        }
        report = report.with_note(format!(
            "see `agentpolicy explain {}` for what this means and how to fix it",
            d.code
        ));
        let written = report
            .finish()
            .write(ariadne::sources(cache_sources.clone()), &mut out);
        if written.is_err() {
            // Fall back to a plain line rather than lose the diagnostic.
            out.extend_from_slice(plain(d, sources).as_bytes());
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line per diagnostic: `path:line:col: error[AP0001]: message`.
pub fn plain(d: &Diagnostic, sources: &Sources) -> String {
    let at = position(&d.primary, sources);
    let severity = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    format!(
        "{}:{}:{}: {severity}[{}]: {}\n",
        at.file, at.line, at.column, d.code, d.message
    )
}

/// A label resolved to a file path and 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Position {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
    pub start_byte: u32,
    pub end_byte: u32,
}

pub fn position(label: &Label, sources: &Sources) -> Position {
    let (path, text) = sources.get(label.file).unwrap_or(("<unknown>", ""));
    let index = LineIndex::new(text);
    let start = index.line_col(text, label.range.start);
    let end = index.line_col(text, label.range.end);
    Position {
        file: path.to_string(),
        line: start.line + 1,
        column: start.col + 1,
        end_line: end.line + 1,
        end_column: end.col + 1,
        start_byte: label.range.start,
        end_byte: label.range.end,
    }
}

#[derive(Debug, Serialize)]
struct JsonLabel {
    #[serde(flatten)]
    position: Position,
    message: String,
}

#[derive(Debug, Serialize)]
struct JsonDiagnostic<'a> {
    code: &'static str,
    severity: Severity,
    title: &'static str,
    message: &'a str,
    primary: JsonLabel,
    secondary: Vec<JsonLabel>,
    help: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counterexample: Option<serde_json::Value>,
}

/// Diagnostics as a JSON array, stable field order.
pub fn json(diagnostics: &[Diagnostic], sources: &Sources) -> serde_json::Value {
    let label = |l: &Label| JsonLabel {
        position: position(l, sources),
        message: l.message.clone(),
    };
    let items: Vec<JsonDiagnostic<'_>> = diagnostics
        .iter()
        .map(|d| JsonDiagnostic {
            code: d.code.as_str(),
            severity: d.severity,
            title: d.code.title(),
            message: &d.message,
            primary: label(&d.primary),
            secondary: d.secondary.iter().map(label).collect(),
            help: d.help.as_deref(),
            counterexample: d
                .counterexample
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok()),
        })
        .collect();
    serde_json::to_value(items).unwrap_or(serde_json::Value::Null)
}

/// One policy's diagnostics for [`sarif`].
#[derive(Debug, Clone, Copy)]
pub struct SarifInput<'a> {
    pub diagnostics: &'a [Diagnostic],
    pub sources: &'a Sources,
}

/// A SARIF 2.1.0 log (one run, every policy's results) for code-scanning services:
/// `ruleId` is the diagnostic code, every result has a physical location.
pub fn sarif(policies: &[SarifInput<'_>], tool_version: &str) -> serde_json::Value {
    use serde_json::json;
    let mut used: Vec<crate::diagnostics::Code> = policies
        .iter()
        .flat_map(|p| p.diagnostics.iter().map(|d| d.code))
        .collect();
    used.sort();
    used.dedup();
    let rules: Vec<serde_json::Value> = used
        .iter()
        .map(|c| {
            let meaning = crate::explain::page(*c).and_then(what_it_means);
            let help = match &meaning {
                Some(m) => format!(
                    "{m}\n\nThe whole page: `agentpolicy explain {}`.",
                    c.as_str()
                ),
                None => format!("See `agentpolicy explain {}`.", c.as_str()),
            };
            let mut rule = json!({
                "id": c.as_str(),
                "name": c.title(),
                "shortDescription": { "text": c.title() },
                "defaultConfiguration": { "level": level(c.severity()) },
                "help": { "text": help },
                "helpUri": format!("{DOCS_URL}/diagnostics/{}.md", c.as_str()),
            });
            if let Some(m) = meaning {
                rule["fullDescription"] = json!({ "text": m });
            }
            rule
        })
        .collect();
    let location = |l: &Label, sources: &Sources| {
        let p = position(l, sources);
        json!({
            "physicalLocation": {
                "artifactLocation": artifact_location(&p.file),
                "region": {
                    "startLine": p.line,
                    "startColumn": p.column,
                    "endLine": p.end_line,
                    "endColumn": p.end_column,
                    "byteOffset": p.start_byte,
                    "byteLength": p.end_byte.saturating_sub(p.start_byte),
                },
            },
            "message": { "text": l.message },
        })
    };
    let mut results = Vec::new();
    for policy in policies {
        for d in policy.diagnostics {
            let mut message = d.message.clone();
            if let Some(help) = &d.help {
                message.push_str("\nhelp: ");
                message.push_str(help);
            }
            let mut result = json!({
                "ruleId": d.code.as_str(),
                "level": level(d.severity),
                "message": { "text": message },
                "locations": [location(&d.primary, policy.sources)],
                "relatedLocations": d
                    .secondary
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        let mut v = location(l, policy.sources);
                        v["id"] = json!(i + 1);
                        v
                    })
                    .collect::<Vec<_>>(),
            });
            if let Some(cex) = d
                .counterexample
                .as_deref()
                .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
            {
                result["properties"] = json!({ "counterexample": cex });
            }
            results.push(result);
        }
    }
    json!({
        "$schema": "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "agentpolicy",
                "version": tool_version,
                "rules": rules,
            }},
            "originalUriBaseIds": {
                STDLIB_BASE: {
                    "description": { "text": "the agentpolicy standard library, built into the binary (`stdlib/` in its sources)" },
                },
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

/// Where the documentation lives, for each rule's `helpUri`: the project's repository
/// (there is no public URL yet; this is the name it is published under, the same one the
/// editor extension's manifest names).
pub const DOCS_URL: &str = "https://github.com/agentpolicy/agentpolicy/blob/main/docs";

/// The `uriBaseId` of standard-library files, which have no path on disk.
const STDLIB_BASE: &str = "AGENTPOLICY_STDLIB";

/// A SARIF `artifactLocation` for a file as `check` names it: a relative or absolute path
/// made a valid URI reference (`/` separators, reserved and non-ASCII bytes
/// percent-encoded), and a standard-library module (`<stdlib>/legal.agentpolicy`) made
/// relative to the [`STDLIB_BASE`] base id.
fn artifact_location(file: &str) -> serde_json::Value {
    match file.strip_prefix("<stdlib>/") {
        Some(module) => serde_json::json!({ "uri": uri_path(module), "uriBaseId": STDLIB_BASE }),
        None => serde_json::json!({ "uri": uri_path(&file.replace('\\', "/")) }),
    }
}

/// Percent-encodes what may not stand in the path of a URI reference (RFC 3986), and `:`
/// so that `C:/policy` is not read as a scheme.
fn uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'/'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'@'
            );
        if keep {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The first paragraph under "What it means" of a diagnostic's docs page, on one line.
fn what_it_means(page: &str) -> Option<String> {
    let start = page.find("## What it means")? + "## What it means".len();
    let paragraph = page[start..].trim_start().split("\n\n").next()?;
    let text = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty() && !text.starts_with('#')).then_some(text)
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

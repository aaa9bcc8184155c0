//! The compiler's diagnostics as `textDocument/publishDiagnostics` payloads.
//!
//! One compiler `Diagnostic` becomes one protocol diagnostic on its primary label's file:
//! code, severity, message with the help line, secondary labels as related information,
//! and, when the client configured a docs base URL, a link to the code's docs page.
//! Every user file gets a list, empty ones included, so fixed problems disappear. A
//! failed proof's counterexample (the request, or the session's calls, as JSON) is
//! appended to the message and given as `data.counterexample`.

use std::collections::HashMap;
use std::str::FromStr;

use agentpolicy::diagnostics::{Code, Diagnostic, Severity};
use tower_lsp_server::ls_types::{
    self as lsp, CodeDescription, DiagnosticRelatedInformation, DiagnosticSeverity, DiagnosticTag,
    NumberOrString, Uri,
};

use agentpolicy::db::Analysis;

use crate::state::PolicyState;

/// Diagnostics for one document, ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct FileDiagnostics {
    pub uri: Uri,
    pub version: Option<i32>,
    pub diagnostics: Vec<lsp::Diagnostic>,
}

/// The `source` field of every diagnostic.
pub const SOURCE: &str = "agentpolicy";

/// Diagnostics for every user file (empty lists included) and for any library module
/// that has some. `docs_base` is a URL such that `{docs_base}/AP0011.md` is a code's page.
pub fn collect(
    state: &PolicyState,
    analysis: &Analysis,
    docs_base: Option<&str>,
) -> Vec<FileDiagnostics> {
    let mut out: Vec<FileDiagnostics> = state
        .files()
        .iter()
        .filter_map(|doc| {
            Some(FileDiagnostics {
                uri: doc.uri.clone()?,
                version: doc.version,
                diagnostics: Vec::new(),
            })
        })
        .collect();
    for d in &analysis.diagnostics {
        let Some(doc) = state.document(d.primary.file) else {
            continue;
        };
        let Some(uri) = doc.uri.clone() else {
            continue;
        };
        let mapped = to_lsp(state, d, docs_base);
        match out.iter_mut().find(|f| f.uri == uri) {
            Some(f) => f.diagnostics.push(mapped),
            None => out.push(FileDiagnostics {
                uri,
                version: doc.version,
                diagnostics: vec![mapped],
            }),
        }
    }
    out
}

/// One compiler diagnostic in protocol form.
pub fn to_lsp(state: &PolicyState, d: &Diagnostic, docs_base: Option<&str>) -> lsp::Diagnostic {
    let range = state
        .document(d.primary.file)
        .map(|doc| state.view(doc).range(d.primary.range))
        .unwrap_or_default();
    let mut message = d.message.clone();
    if let Some(help) = &d.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    let data = d.counterexample.as_ref().map(|json| {
        message.push_str("\ncounterexample: ");
        message.push_str(json);
        let value = serde_json::from_str::<serde_json::Value>(json)
            .unwrap_or_else(|_| serde_json::Value::String(json.clone()));
        serde_json::json!({ "counterexample": value })
    });
    let related: Vec<DiagnosticRelatedInformation> = d
        .secondary
        .iter()
        .filter_map(|label| {
            Some(DiagnosticRelatedInformation {
                location: state.location(agentpolicy::model::Loc {
                    file: label.file,
                    range: label.range,
                })?,
                message: label.message.clone(),
            })
        })
        .collect();
    let code_description = docs_base.and_then(|base| {
        let href = format!("{}/{}.md", base.trim_end_matches('/'), d.code.as_str());
        Uri::from_str(&href)
            .ok()
            .map(|href| CodeDescription { href })
    });
    lsp::Diagnostic {
        range,
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.as_str().to_string())),
        code_description,
        source: Some(SOURCE.to_string()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        // A `deny` that can never decide anything is dead code: editors fade it.
        tags: (d.code == Code::UngrantedDeny).then(|| vec![DiagnosticTag::UNNECESSARY]),
        data,
    }
}

/// Compiler diagnostics (a proof run's) in protocol form, by the URI of their file.
pub fn by_file(
    state: &PolicyState,
    diagnostics: &[Diagnostic],
    docs_base: Option<&str>,
) -> HashMap<Uri, Vec<lsp::Diagnostic>> {
    let mut out: HashMap<Uri, Vec<lsp::Diagnostic>> = HashMap::new();
    for d in diagnostics {
        let Some(uri) = state
            .document(d.primary.file)
            .and_then(|doc| doc.uri.clone())
        else {
            continue;
        };
        out.entry(uri)
            .or_default()
            .push(to_lsp(state, d, docs_base));
    }
    out
}

/// Adds `proofs` to the front end's lists: a file with proof diagnostics but no list yet
/// (a library module) gets one.
pub fn merge(
    state: &PolicyState,
    batch: &mut Vec<FileDiagnostics>,
    proofs: &HashMap<Uri, Vec<lsp::Diagnostic>>,
) {
    for (uri, diagnostics) in proofs {
        match batch.iter_mut().find(|f| &f.uri == uri) {
            Some(f) => f.diagnostics.extend(diagnostics.iter().cloned()),
            None => batch.push(FileDiagnostics {
                uri: uri.clone(),
                version: state.document_by_uri(uri).and_then(|d| d.version),
                diagnostics: diagnostics.clone(),
            }),
        }
    }
}

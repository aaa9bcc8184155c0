//! The signed access-control matrix of the policy in force, as the console shows it: the
//! HTML page `agentpolicy matrix POLICY --format html` wrote (the service links no
//! verifier, so it serves the page it is given with `serve --matrix FILE`, it does not
//! make one). The page names its policy's source hash in a
//! `<meta name="agentpolicy-source-hash">` tag; it is served only while that is the
//! source hash of the table in force, so after a reload to another policy the console
//! says the matrix is stale instead of showing one that signs something else.
//!
//! Must not: serve a matrix of another table than the one in force, run a script of the
//! page (its Content-Security-Policy allows its inline style sheet and nothing else), or
//! serve it to anyone without a console session.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::Shared;

/// The largest matrix page accepted, in bytes.
pub const MAX_MATRIX_BYTES: usize = 16 * 1024 * 1024;

/// The meta tag that names the matrix's source hash.
const HASH_META: &str = r#"<meta name="agentpolicy-source-hash" content=""#;

/// The policy of the matrix page: its one inline style sheet, no script, nothing else.
const MATRIX_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// A matrix page and the source hash it signs.
#[derive(Debug, Clone)]
pub struct SignedMatrix {
    source_hash: String,
    html: String,
}

impl SignedMatrix {
    /// Reads the page `agentpolicy matrix --format html` wrote; an error says what is
    /// wrong with it.
    pub fn from_html(html: String) -> Result<SignedMatrix, String> {
        if html.len() > MAX_MATRIX_BYTES {
            return Err(format!(
                "the matrix page is {} bytes, more than the {MAX_MATRIX_BYTES} accepted",
                html.len()
            ));
        }
        let Some(start) = html.find(HASH_META).map(|i| i + HASH_META.len()) else {
            return Err(
                "not a matrix page of `agentpolicy matrix --format html`: it names no source hash (no `<meta name=\"agentpolicy-source-hash\">`); make it again with this version".into(),
            );
        };
        let source_hash: String = html[start..].chars().take_while(|c| *c != '"').collect();
        let well_formed = source_hash
            .strip_prefix("sha256:")
            .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if !well_formed {
            return Err(format!(
                "the matrix page's source hash `{source_hash}` is not of the form `sha256:` and 64 hex digits"
            ));
        }
        Ok(SignedMatrix { source_hash, html })
    }

    /// The source hash of the policy the matrix signs (`sha256:...`).
    pub fn source_hash(&self) -> &str {
        &self.source_hash
    }
}

/// Whether the matrix given at start signs the table in force.
pub(crate) fn current(app: &crate::App) -> bool {
    let Some(matrix) = app.console.matrix.get() else {
        return false;
    };
    app.engine
        .table()
        .is_ok_and(|t| t.source_hash().to_string() == matrix.source_hash)
}

/// `GET /console/matrix`: the page, to anyone with a console session (operators and
/// auditors); the login form otherwise.
pub(super) async fn page(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if app
        .console_session(&headers, "GET /console/matrix")
        .is_err()
    {
        return super::redirect("/console/login");
    }
    let Some(matrix) = app.console.matrix.get() else {
        return super::html(
            StatusCode::NOT_FOUND,
            super::notice(
                "No matrix",
                "This service was started without a signed matrix (`serve --matrix FILE`, the page `agentpolicy matrix POLICY --format html` writes).",
            ),
        );
    };
    if !current(&app) {
        let in_force = app
            .engine
            .table()
            .map(|t| t.source_hash().to_string())
            .unwrap_or_default();
        return super::html(
            StatusCode::CONFLICT,
            super::notice(
                "The matrix is stale",
                &format!(
                    "The matrix given at start signs source hash {}; the table in force (reloaded since) has {in_force}. Make the matrix of the policy in force and restart with it.",
                    matrix.source_hash
                ),
            ),
        );
    }
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        matrix.html.clone(),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(MATRIX_CSP),
    );
    response
}

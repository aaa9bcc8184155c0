//! What goes over the wire besides the engine's own formats: JSON error bodies with a
//! stable code and a message that names the field, bodies read under the size limit and
//! parsed strictly (unknown fields are errors), and the mapping of engine errors to
//! statuses. Bad input is always a 4xx; only the engine's internal faults are a 5xx.

use axum::body::{Body, to_bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

use agentpolicy_runtime::engine::EngineError;

/// A refusal or failure, as the JSON body `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({ "error": { "code": self.code, "message": self.message } })),
        )
            .into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let message = e.to_string();
        match e {
            EngineError::UnknownAgent(_) | EngineError::UnknownKey(_) => {
                ApiError::bad_request(message)
            }
            EngineError::UnknownSession(_)
            | EngineError::UnknownCall(_)
            | EngineError::NoSuchEscalation(_) => ApiError::not_found(message),
            EngineError::SessionClosed(_) => {
                ApiError::new(StatusCode::CONFLICT, "session_closed", message)
            }
            EngineError::Internal(agentpolicy_runtime::engine::Internal::State(_)) => {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "state_unavailable",
                    message,
                )
            }
            EngineError::Internal(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
            }
        }
    }
}

/// How long a client may take to send its body; a slower one gets 408.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads a body of at most `limit` bytes, sent within [`BODY_TIMEOUT`], and parses it
/// as `T` (empty means `{}`).
pub async fn json_body<T: DeserializeOwned>(body: Body, limit: usize) -> Result<T, ApiError> {
    let read = tokio::time::timeout(BODY_TIMEOUT, to_bytes(body, limit))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the request body did not arrive within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            )
        })?;
    let bytes = read.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {limit} bytes (or was cut off)"),
        )
    })?;
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    serde_json::from_slice(text)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// A path parameter, read after the caller was authenticated (the extractor itself
/// never refuses, so an unauthenticated caller learns nothing from a malformed path).
pub fn path<T>(extracted: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    extracted
        .map(|Path(t)| t)
        .map_err(|e| ApiError::bad_request(format!("the path: {e}")))
}

/// The query string, read after the caller was authenticated.
pub fn query<T>(extracted: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    extracted
        .map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request(format!("the query string: {e}")))
}

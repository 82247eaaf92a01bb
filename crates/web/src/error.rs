//! Errors of the HTTP layer: every failed API request answers with a status code and a JSON
//! body `{"error": kind, "message": text}` that says what was wrong.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// Why the web server could not run.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Serving on the listener failed.
    #[error("the web server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A failed API request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "bad_request",
            message: message.into(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "not_found",
            message: message.into(),
        }
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "unavailable",
            message: message.into(),
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "internal",
            message: message.into(),
        }
    }
}

impl ApiError {
    /// A failure of this server or its database rather than of the request.
    pub(crate) fn is_server_error(&self) -> bool {
        self.status.is_server_error()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, message = %self.message, "web request failed");
        }
        let body = Body {
            error: self.kind,
            message: &self.message,
        };
        (self.status, crate::no_store(), Json(body)).into_response()
    }
}

//! Errors as HTTP answers: a status and a JSON body `{error, kind, detail}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lobster_vector::{Error, ErrorKind};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in one sentence.
    pub error: String,
    /// A stable name: `invalid_input`, `not_found`, `unavailable`, `too_large`,
    /// `overloaded`, `not_ready`, `timeout`, `unauthorized`, ...
    pub kind: String,
    /// The error and its causes.
    pub detail: String,
}

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Seconds a client should wait before retrying (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &str, error: impl Into<String>) -> Self {
        let error = error.into();
        Self {
            status,
            body: ErrorBody {
                detail: error.clone(),
                error,
                kind: kind.to_string(),
            },
            retry_after: None,
        }
    }

    pub fn bad_request(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", error)
    }

    pub fn too_large(error: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", error)
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

/// The status an error of `kind` answers with.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Unavailable | ErrorKind::Locked => StatusCode::CONFLICT,
        ErrorKind::NotAvailable => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Unauthorized => StatusCode::BAD_GATEWAY,
        ErrorKind::Interrupted => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let kind = e.kind();
        Self {
            status: status_of(kind),
            body: ErrorBody {
                error: e.to_string(),
                kind: kind.as_str().to_string(),
                detail: e.chain(),
            },
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

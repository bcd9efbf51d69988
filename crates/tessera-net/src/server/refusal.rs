//! Why an upload is refused: a stable reason, an HTTP status, a JSON body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Why an upload is refused: each kind names its stable `error` reason and HTTP status and
/// renders its own JSON response `{"error": reason, "message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A required header is missing or malformed (400).
    #[error("{0}")]
    MissingHeader(String),
    /// The device is not in the registry or has no key (401).
    #[error("{0}")]
    UnknownDevice(String),
    /// The timestamp is older than the skew window (401).
    #[error("{0}")]
    StaleTimestamp(String),
    /// The timestamp is ahead of the skew window (401).
    #[error("{0}")]
    FutureTimestamp(String),
    /// The server is at its in-flight body budget: retry after the `Retry-After` seconds (503).
    #[error("{0}")]
    Busy(String),
    /// The body arrived slower than the configured rate (408).
    #[error("{0}")]
    Timeout(String),
    /// The body is over the limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// The body could not be read (400).
    #[error("{0}")]
    BodyError(String),
    /// The signature does not match (401).
    #[error("signature does not match device key, timestamp and body")]
    BadSignature,
    /// The same signed request again (409).
    #[error("this signed request was already received")]
    Replayed,
    /// The body is not a raw trace (422).
    #[error("{0}")]
    NotATrace(String),
    /// The lake could not store it (500).
    #[error("{0}")]
    StorageError(String),
    /// Anything else (500).
    #[error("{0}")]
    Internal(String),
}

impl Refusal {
    /// The stable reason, as in the JSON `error` field and the metrics label.
    ///
    /// ```
    /// assert_eq!(tessera_net::server::Refusal::Replayed.reason(), "replayed");
    /// ```
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::MissingHeader(_) => "missing_header",
            Refusal::UnknownDevice(_) => "unknown_device",
            Refusal::StaleTimestamp(_) => "stale_timestamp",
            Refusal::FutureTimestamp(_) => "future_timestamp",
            Refusal::Busy(_) => "busy",
            Refusal::Timeout(_) => "timeout",
            Refusal::TooLarge(_) => "too_large",
            Refusal::BodyError(_) => "body_error",
            Refusal::BadSignature => "bad_signature",
            Refusal::Replayed => "replayed",
            Refusal::NotATrace(_) => "not_a_trace",
            Refusal::StorageError(_) => "storage_error",
            Refusal::Internal(_) => "internal",
        }
    }

    /// The HTTP status.
    ///
    /// ```
    /// assert_eq!(tessera_net::server::Refusal::Replayed.status().as_u16(), 409);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::MissingHeader(_) | Refusal::BodyError(_) => StatusCode::BAD_REQUEST,
            Refusal::UnknownDevice(_)
            | Refusal::StaleTimestamp(_)
            | Refusal::FutureTimestamp(_)
            | Refusal::BadSignature => StatusCode::UNAUTHORIZED,
            Refusal::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Replayed => StatusCode::CONFLICT,
            Refusal::NotATrace(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Refusal::StorageError(_) | Refusal::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({"error": self.reason(), "message": self.to_string()});
        let mut r = (self.status(), Json(body)).into_response();
        match self {
            Refusal::Busy(_) => {
                r.headers_mut()
                    .insert("retry-after", axum::http::HeaderValue::from_static("1"));
            }
            // The rest of a slow body is not read: the connection cannot be reused.
            Refusal::Timeout(_) => {
                r.headers_mut()
                    .insert("connection", axum::http::HeaderValue::from_static("close"));
            }
            _ => {}
        }
        r
    }
}

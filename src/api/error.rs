//! The REST error type: every refusal is a JSON body `{"detail": "..."}` with the right
//! 4xx/5xx status, so handlers can use `?` on tool results.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::tools::ToolError;

/// An HTTP error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
    field: Option<&'static str>,
    retry_after: Option<u64>,
    challenge: Option<&'static str>,
}

impl ApiError {
    /// An error with a status and a message.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            field: None,
            retry_after: None,
            challenge: None,
        }
    }

    /// 401 with a `WWW-Authenticate: Bearer` challenge.
    pub fn unauthorized(detail: impl Into<String>, invalid_token: bool) -> Self {
        Self {
            challenge: Some(if invalid_token {
                "Bearer realm=\"sandgraph\", error=\"invalid_token\""
            } else {
                "Bearer realm=\"sandgraph\""
            }),
            ..Self::new(StatusCode::UNAUTHORIZED, detail)
        }
    }

    /// 429 with `Retry-After` (whole seconds, at least 1).
    pub fn rate_limited(wait: std::time::Duration, detail: impl Into<String>) -> Self {
        Self {
            retry_after: Some(wait.as_secs_f64().ceil().max(1.0) as u64),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, detail)
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// 404 for an unknown path.
    pub fn not_found(path: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("no such endpoint: {path}"))
    }
}

impl From<ToolError> for ApiError {
    fn from(err: ToolError) -> Self {
        match err {
            ToolError::Invalid { field, detail } => Self {
                field: Some(field),
                ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
            },
            ToolError::TooLarge { detail } => Self::new(StatusCode::PAYLOAD_TOO_LARGE, detail),
            ToolError::Forbidden { detail } => Self::new(StatusCode::FORBIDDEN, detail),
            ToolError::NotFound { detail } => Self::new(StatusCode::NOT_FOUND, detail),
            ToolError::QuotaExceeded { detail } => {
                Self::new(StatusCode::INSUFFICIENT_STORAGE, detail)
            }
            ToolError::Cancelled { .. } => Self::new(
                StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
                "the call was cancelled",
            ),
            ToolError::Unreadable { status, detail } => Self::new(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                detail,
            ),
            ToolError::RateLimited {
                retry_after_seconds,
            } => Self {
                retry_after: Some(retry_after_seconds),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
            },
            ToolError::Busy { detail } => Self {
                retry_after: Some(1),
                ..Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
            },
            ToolError::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "tool failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log",
                )
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if let Some(timed_out) = super::serve::is_body_timeout(&rejection) {
            return Self::new(StatusCode::REQUEST_TIMEOUT, timed_out.to_string());
        }
        let status = rejection.status();
        let detail = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                "expected a JSON body with `Content-Type: application/json`".to_owned()
            }
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
                "request body is larger than the server accepts".to_owned()
            }
            _ => rejection.body_text(),
        };
        Self::new(status, detail)
    }
}

/// The body of every error response (REST), as `/openapi.json` describes it.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do about it.
    pub detail: String,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            detail: self.detail,
            field: self.field,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

//! The REST API: one axum route per tool with the JSON contract of the platform we
//! replace, plus `/health`, and the MCP streamable-HTTP service mounted at `/mcp`.
//! Handlers only adapt: parse, call `tools::*`, serialise.

mod error;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::Uri;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub use error::ApiError;

use crate::mcp;
use crate::tools::{self, Tools};

/// A JSON body whose rejections become [`ApiError`]s (`{"detail": ...}`), not axum's
/// plain-text defaults.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state)
            .await
            .map_err(|e: JsonRejection| ApiError::from(e))?;
        Ok(ApiJson(value))
    }
}

/// Build the whole HTTP application.
pub fn router(tools: Tools) -> Router {
    // JSON escaping can double a source text; leave room for the other fields.
    let body_limit = tools.config.max_code_bytes * 2 + 64 * 1024;
    let mcp_service = mcp::streamable_http_service(tools.clone());
    Router::new()
        .route("/execute_code", post(execute_code))
        .route("/health", get(health))
        .nest_service("/mcp", mcp_service)
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(tools)
}

async fn execute_code(
    State(tools): State<Tools>,
    ApiJson(request): ApiJson<tools::execute::ExecuteRequest>,
) -> Result<Json<tools::execute::ExecuteResponse>, ApiError> {
    Ok(Json(tools::execute::execute_code(&tools, request).await?))
}

async fn health(State(tools): State<Tools>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "service": "sandgraph",
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "neo4j": "not configured",
        "sandbox": tools.sandbox.status(),
    }))
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

//! The REST API: one axum route per tool with the JSON contract of the platform we
//! replace, plus `/health`, and the MCP streamable-HTTP service mounted at `/mcp`.
//! Handlers only adapt: parse, call `tools::*`, serialise.

mod error;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Request, State};
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
    // JSON escaping can double a source text and `run_tests` carries two; bodies up to
    // this size are read whole, so an oversize `code` gets a 413 naming the field.
    let body_limit = tools.config.max_code_bytes * 4 + (1 << 20);
    let mcp_service = mcp::streamable_http_service(tools.clone());
    Router::new()
        .route("/execute_code", post(execute_code))
        .route("/lint_code", post(lint_code))
        .route("/run_tests", post(run_tests))
        .route("/generate_code", post(generate_code))
        .route("/prompts", get(list_prompts))
        .route("/prompts/{slug}", get(get_prompt))
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

async fn lint_code(
    State(tools): State<Tools>,
    ApiJson(request): ApiJson<tools::lint::LintRequest>,
) -> Result<Json<tools::lint::LintResponse>, ApiError> {
    Ok(Json(tools::lint::lint_code(&tools, request).await?))
}

async fn run_tests(
    State(tools): State<Tools>,
    ApiJson(request): ApiJson<tools::test::RunTestsRequest>,
) -> Result<Json<tools::test::RunTestsResponse>, ApiError> {
    Ok(Json(tools::test::run_tests(&tools, request).await?))
}

async fn generate_code(
    State(tools): State<Tools>,
    ApiJson(request): ApiJson<tools::generate::GenerateRequest>,
) -> Result<Json<tools::generate::GenerateResponse>, ApiError> {
    Ok(Json(tools::generate::generate_code(&tools, request).await?))
}

async fn list_prompts() -> Json<Vec<tools::prompts::PromptSummary>> {
    Json(tools::prompts::list())
}

async fn get_prompt(
    State(tools): State<Tools>,
    Path(slug): Path<String>,
) -> Result<Json<tools::prompts::Prompt>, ApiError> {
    tools::prompts::get(&slug, &tools.config.sandbox.limits)
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                format!("no prompt named {slug:?}; GET /prompts lists them"),
            )
        })
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

//! The REST API: one axum route per tool with the JSON contract of the platform we
//! replace, `/prompts`, `/health`, and the MCP streamable-HTTP service mounted at
//! `/mcp`. A middleware authenticates every request except the open ones; handlers only
//! adapt: parse, call `tools::*`, serialise.

mod error;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub use error::ApiError;

use crate::audit::{AuditEvent, CallContext, Transport};
use crate::auth::{Endpoint, Role};
use crate::mcp;
use crate::tools::{self, Tools};

/// Request ids are echoed back in this header (and taken from it when the client sends one).
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Paths anyone may call: liveness and readiness probes and Prometheus scraping must work
/// without credentials, and reveal no user data.
const OPEN_PATHS: &[&str] = &["/health", "/health/ready", "/metrics"];

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
        .route("/graph_upsert", post(graph_upsert))
        .route("/graph_query", post(graph_query))
        .route("/execution_history", get(execution_history))
        .route("/executions/{id}", get(get_execution))
        .route("/code_stats/{hash}", get(code_stats))
        .route("/audit_log", get(audit_log))
        .route("/admin/tokens", get(list_tokens).post(create_token))
        .route("/admin/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/health", get(health))
        .route("/health/ready", get(ready))
        .route("/metrics", get(prometheus_metrics))
        .route("/metrics/graph", get(graph_metrics))
        .nest_service("/mcp", mcp_service)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(tools.clone(), authenticate))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(tools)
}

/// The request id a client sent, if it is a sane token; otherwise a new one.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Authenticate the bearer token (except on open paths), attach the [`CallContext`]
/// and echo the request id.
async fn authenticate(State(tools): State<Tools>, mut request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let id = request_id(&request);
    let transport = if path == "/mcp" || path.starts_with("/mcp/") {
        Transport::McpHttp
    } else {
        Transport::Rest
    };
    let mut response = if OPEN_PATHS.contains(&path.as_str()) {
        next.run(request).await
    } else {
        let token = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let caller = match &token {
            None => Err(ApiError::unauthorized(
                "missing bearer token: send `Authorization: Bearer <token>`",
                false,
            )),
            Some(token) => match tools.tokens.authenticate(token) {
                Ok(Some(caller)) => Ok(caller),
                Ok(None) => Err(ApiError::unauthorized("invalid or revoked token", true)),
                Err(err) => {
                    tracing::error!(error = format!("{err:#}"), "token lookup failed");
                    Err(ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal error; see the server log",
                    ))
                }
            },
        };
        match caller {
            Ok(caller) => {
                let ctx = CallContext {
                    caller,
                    transport,
                    request_id: id.clone(),
                    started,
                };
                request.extensions_mut().insert(ctx);
                next.run(request).await
            }
            Err(error) => {
                let reason = if token.is_some() {
                    "invalid token"
                } else {
                    "missing token"
                };
                let label = if token.is_some() {
                    "invalid"
                } else {
                    "missing"
                };
                metrics::counter!("sandgraph_auth_failures_total", "reason" => label).increment(1);
                tools
                    .audit
                    .record(AuditEvent::unauthenticated(&path, transport, &id, reason));
                error.into_response()
            }
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    observe(
        &tools,
        &method,
        &path,
        &id,
        response.status(),
        started.elapsed(),
    );
    response
}

/// The route family of a path, for metric labels (ids and slugs would explode them).
fn route_label(path: &str) -> String {
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    format!("/{first}")
}

/// One log line and the HTTP metrics per request. Never logs bodies, code or tokens.
fn observe(
    tools: &Tools,
    method: &axum::http::Method,
    path: &str,
    id: &str,
    status: StatusCode,
    took: std::time::Duration,
) {
    let route = route_label(path);
    metrics::counter!("sandgraph_http_requests_total", "route" => route.clone(), "status" => status.as_u16().to_string()).increment(1);
    metrics::histogram!("sandgraph_http_request_duration_seconds", "route" => route)
        .record(took.as_secs_f64());
    let millis = took.as_secs_f64() * 1000.0;
    if took >= tools.config.slow_request {
        tracing::warn!(request_id = %id, %method, path, status = status.as_u16(), duration_ms = millis, "slow request");
    } else {
        tracing::info!(request_id = %id, %method, path, status = status.as_u16(), duration_ms = millis, "request");
    }
}

async fn execute_code(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
    ApiJson(request): ApiJson<tools::execute::ExecuteRequest>,
) -> Result<Json<tools::execute::ExecuteResponse>, ApiError> {
    Ok(Json(
        tools::execute::execute_code(&tools, &ctx, request).await?,
    ))
}

async fn lint_code(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
    ApiJson(request): ApiJson<tools::lint::LintRequest>,
) -> Result<Json<tools::lint::LintResponse>, ApiError> {
    Ok(Json(tools::lint::lint_code(&tools, &ctx, request).await?))
}

async fn run_tests(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
    ApiJson(request): ApiJson<tools::test::RunTestsRequest>,
) -> Result<Json<tools::test::RunTestsResponse>, ApiError> {
    Ok(Json(tools::test::run_tests(&tools, &ctx, request).await?))
}

async fn generate_code(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
    ApiJson(request): ApiJson<tools::generate::GenerateRequest>,
) -> Result<Json<tools::generate::GenerateResponse>, ApiError> {
    Ok(Json(
        tools::generate::generate_code(&tools, &ctx, request).await?,
    ))
}

async fn list_prompts(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
) -> Result<Json<Vec<tools::prompts::PromptSummary>>, ApiError> {
    tools.admit(&ctx, Endpoint::Prompts)?;
    Ok(Json(tools::prompts::list()))
}

async fn get_prompt(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
    Path(slug): Path<String>,
) -> Result<Json<tools::prompts::Prompt>, ApiError> {
    tools.admit(&ctx, Endpoint::Prompts)?;
    tools::prompts::get(&slug, &tools.config.sandbox.limits)
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no prompt named {slug:?}; GET /prompts lists them"),
            )
        })
}

async fn graph_upsert(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
    ApiJson(request): ApiJson<tools::graph::GraphUpsertRequest>,
) -> Result<Json<tools::graph::GraphUpsertResponse>, ApiError> {
    Ok(Json(
        tools::graph::graph_upsert(&tools, &ctx, request).await?,
    ))
}

async fn graph_query(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
    ApiJson(request): ApiJson<tools::graph::GraphQueryRequest>,
) -> Result<Json<tools::graph::GraphQueryResponse>, ApiError> {
    Ok(Json(
        tools::graph::graph_query(&tools, &ctx, request).await?,
    ))
}

/// Query-string filters whose rejections become 422 JSON.
fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::from(crate::tools::ToolError::invalid("query", e.body_text())))
}

async fn execution_history(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
    filter: Result<Query<crate::store::HistoryFilter>, QueryRejection>,
) -> Result<Json<crate::store::Page<crate::store::ExecutionRecord>>, ApiError> {
    let filter = query(filter)?;
    Ok(Json(
        tools::history::execution_history(&tools, &ctx, filter).await?,
    ))
}

async fn get_execution(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
    Path(id): Path<String>,
) -> Result<Json<crate::store::ExecutionRecord>, ApiError> {
    let request = tools::history::GetExecutionRequest { id: id.clone() };
    tools::history::get_execution(&tools, &ctx, request)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no execution with id {id:?}"),
            )
        })
}

async fn code_stats(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
    Path(code_hash): Path<String>,
) -> Result<Json<crate::store::CodeStats>, ApiError> {
    let request = tools::history::CodeStatsRequest { code_hash };
    Ok(Json(
        tools::history::code_stats(&tools, &ctx, request).await?,
    ))
}

async fn audit_log(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
    filter: Result<Query<crate::store::AuditFilter>, QueryRejection>,
) -> Result<Json<crate::store::Page<crate::audit::AuditEvent>>, ApiError> {
    let filter = query(filter)?;
    Ok(Json(tools::history::audit_log(&tools, &ctx, filter).await?))
}

async fn list_tokens(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
) -> Result<Json<Vec<crate::auth::TokenInfo>>, ApiError> {
    tools.admit(&ctx, Endpoint::Tokens)?;
    Ok(Json(tools.tokens.list().map_err(internal)?))
}

/// `POST /admin/tokens` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    role: String,
    name: String,
}

async fn create_token(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
    ApiJson(request): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    tools.admit(&ctx, Endpoint::Tokens)?;
    let role = Role::parse(&request.role).ok_or_else(|| {
        ApiError::from(crate::tools::ToolError::invalid(
            "role",
            format!(
                "unknown role {:?}; use agent, developer or admin",
                request.role
            ),
        ))
    })?;
    if request.name.is_empty() || request.name.len() > 100 {
        return Err(
            crate::tools::ToolError::invalid("name", "name must be 1 to 100 characters").into(),
        );
    }
    let (info, token) = tools.tokens.create(&request.name, role).map_err(internal)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": token, "info": info })),
    ))
}

async fn revoke_token(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    tools.admit(&ctx, Endpoint::Tokens)?;
    if tools.tokens.revoke(&id).map_err(internal)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no active token with id {id:?}"),
        ))
    }
}

fn internal(err: anyhow::Error) -> ApiError {
    ApiError::from(crate::tools::ToolError::Internal(err))
}

async fn health(State(tools): State<Tools>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "service": "sandgraph",
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "neo4j": if tools.config.neo4j.is_some() { "configured" } else { "not configured" },
        "store": {
            "backend": tools.history.backend(),
            "outbox_depth": tools.store.outbox_depth(),
            "outbox_limit": tools.store.outbox_limit(),
        },
        "sandbox": tools.sandbox.status(),
        "cache": tools.cache.stats(),
    }))
}

/// Readiness: the guest is loaded (it is, or the server would not run), the store takes
/// writes, and Neo4j answers or the outbox is below 80% of its bound.
async fn ready(State(tools): State<Tools>) -> (StatusCode, Json<Value>) {
    let store_ok = matches!(
        tokio::time::timeout(
            std::time::Duration::from_secs(2),
            tools.store.append(Vec::new())
        )
        .await,
        Ok(Ok(()))
    );
    let depth = tools.store.outbox_depth();
    let limit = tools.store.outbox_limit();
    let outbox_ok = depth * 10 < limit * 8;
    let neo4j = match &tools.neo4j {
        Some(neo4j) => Some(neo4j.ping().await),
        None => None,
    };
    let ready = store_ok && (neo4j.unwrap_or(true) || outbox_ok);
    let mut warnings = Vec::new();
    if neo4j == Some(false) {
        warnings.push(format!(
            "Neo4j unreachable; {depth} records waiting in the outbox (bound {limit})"
        ));
    }
    if !outbox_ok {
        warnings.push(format!("outbox at {depth} of {limit} records"));
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "ready": ready,
            "checks": {
                "guest_loaded": true,
                "store_writable": store_ok,
                "neo4j_reachable": neo4j,
                "outbox_depth": depth,
                "outbox_limit": limit,
                "outbox_within_bounds": outbox_ok,
            },
            "warnings": warnings,
        })),
    )
}

/// Prometheus exposition; scrape-time values (cache, outbox, breaker) are set here.
async fn prometheus_metrics(State(tools): State<Tools>) -> Response {
    let Some(handle) = &tools.metrics else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "metrics are not enabled in this process",
        )
        .into_response();
    };
    let cache = tools.cache.stats();
    metrics::counter!("sandgraph_cache_hits_total").absolute(cache.hits);
    metrics::counter!("sandgraph_cache_misses_total").absolute(cache.misses);
    metrics::counter!("sandgraph_cache_evictions_total").absolute(cache.evictions);
    metrics::counter!("sandgraph_cache_expirations_total").absolute(cache.expirations);
    metrics::gauge!("sandgraph_cache_entries").set(cache.entries as f64);
    metrics::gauge!("sandgraph_cache_bytes").set(cache.bytes as f64);
    let lookups = cache.hits + cache.misses;
    metrics::gauge!("sandgraph_cache_hit_ratio").set(if lookups == 0 {
        0.0
    } else {
        cache.hits as f64 / lookups as f64
    });
    metrics::gauge!("sandgraph_outbox_depth").set(tools.store.outbox_depth() as f64);
    metrics::gauge!("sandgraph_outbox_limit").set(tools.store.outbox_limit() as f64);
    if let Some(neo4j) = &tools.neo4j {
        let open = neo4j.breaker_state() == crate::store::neo4j::BreakerState::Open;
        metrics::gauge!("sandgraph_neo4j_circuit_open").set(if open { 1.0 } else { 0.0 });
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// The old platform's JSON graph counts for the knowledge graph (never the record),
/// from Neo4j's count store (no graph scans).
async fn graph_metrics(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
) -> Result<Json<Value>, ApiError> {
    tools.admit(&ctx, Endpoint::GraphQuery)?;
    let Some(neo4j) = &tools.neo4j else {
        return Err(crate::tools::ToolError::invalid(
            "store",
            "graph metrics need Neo4j: start the server with NEO4J_URI",
        )
        .into());
    };
    let counts = neo4j.knowledge_graph_counts().await.map_err(|e| {
        ApiError::from(crate::tools::ToolError::Busy {
            detail: format!("Neo4j unavailable: {e:#}"),
        })
    })?;
    let (nodes, rels) = (counts.nodes as f64, counts.relationships as f64);
    Ok(Json(json!({
        "node_count": counts.nodes,
        "relationship_count": counts.relationships,
        "labels": counts.labels,
        "relationship_types": counts.relationship_types,
        "average_degree": if nodes == 0.0 { 0.0 } else { 2.0 * rels / nodes },
    })))
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

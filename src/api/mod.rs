//! The REST API: one route per registered tool (generated from its `ToolSpec`, with the
//! JSON contract of the platform we replace), `/prompts`, `/health`, and the MCP
//! streamable-HTTP service mounted at `/mcp`. A middleware authenticates every request
//! except the open ones; handlers only adapt: read the arguments, hand them to the one
//! pipeline (`crate::call`), serialise.

mod error;
mod health;
pub mod openapi;
mod serve;
pub mod strangers;

use std::sync::Arc;

use axum::extract::{FromRequest, Path, RawPathParams, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

pub use error::ApiError;
pub use serve::{BodyTimedOut, HttpLimits, PROBE_CONNECTIONS, serve};

use crate::audit::{CallContext, Transport};
use crate::auth::{Cached, Endpoint};
use crate::call::{self, Args, DynTool, RestMethod};
use crate::mcp;
use crate::tools::{self, ToolError, Tools, registry};

/// Request ids are echoed back in this header (and taken from it when the client sends one).
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Paths anyone may call: liveness and readiness probes and Prometheus scraping must work
/// without credentials, and reveal no user data.
/// The API's own description is open too (it holds no user data).
const OPEN_PATHS: &[&str] = &["/health", "/health/ready", "/metrics", "/openapi.json"];

/// Build the whole HTTP application, and the ledger of its failed authentications (to
/// flush once more after the last connection has closed).
pub fn router(tools: Tools) -> (Router, Arc<strangers::Strangers>) {
    // Bodies up to this size are read whole, so an oversize `code` or file gets a 413
    // naming the field.
    let body_limit = tools.config.body_limit();
    let mcp_service = mcp::streamable_http_service(tools.clone());
    let strangers = Arc::new(strangers::Strangers::new(
        crate::rate_limit::parse_quota(&tools.config.rate_limits.unauthenticated)
            .unwrap_or_else(|_| governor::Quota::per_second(std::num::NonZeroU32::MIN)),
    ));
    spawn_strangers_flush(&tools, strangers.clone());
    let router = tool_routes(Router::new())
        .route(
            "/workspaces/{workspace_id}/files/{*path}",
            get(download_file),
        )
        .merge(crate::ui::routes())
        .route("/prompts", get(list_prompts))
        .route("/prompts/{slug}", get(get_prompt))
        .route("/health", get(health::health))
        .route("/health/ready", get(ready))
        .route("/metrics", get(prometheus_metrics))
        .route("/metrics/graph", get(graph_metrics))
        .route("/openapi.json", get(openapi_json))
        .nest_service("/mcp", mcp_service)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(tools.clone(), authenticate))
        .layer(Extension(strangers.clone()))
        .layer(Extension(Arc::new(health::Neo4jProbe::default())))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(tools);
    (router, strangers)
}

/// Write the folded authentication failures to the audit log once per window, and a
/// last time when the server drains.
fn spawn_strangers_flush(tools: &Tools, strangers: Arc<strangers::Strangers>) {
    let (audit, shutdown) = (tools.audit.clone(), tools.shutdown.clone());
    let window =
        std::time::Duration::from_millis(tools.config.rate_limits.unauthenticated_window_ms);
    tools.shutdown.spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(window) => strangers.flush(&*audit),
                () = shutdown.begun() => {
                    strangers.flush(&*audit);
                    return;
                }
            }
        }
    });
}

/// The request id a client sent, if it is a sane token; otherwise a new one.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// Authenticate the bearer token (except on open paths), attach the [`CallContext`]
/// and echo the request id.
async fn authenticate(State(tools): State<Tools>, mut request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let id = request_id(&request);
    let route = route_label(&request);
    let transport = if path == "/mcp" || path.starts_with("/mcp/") {
        Transport::McpHttp
    } else {
        Transport::Rest
    };
    // The console and the docs authenticate by their own cookie (or not at all).
    let mut response = if OPEN_PATHS.contains(&path.as_str()) || crate::ui::is_console_path(&path) {
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
            Some(token) => match lookup(&tools, token).await {
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
                    cancel: tools.shutdown.run_token(),
                };
                request.extensions_mut().insert(ctx);
                next.run(request).await
            }
            Err(error) if error.status() == StatusCode::UNAUTHORIZED => {
                let (failure, label) = if token.is_some() {
                    (strangers::Failure::Invalid, "invalid")
                } else {
                    (strangers::Failure::Missing, "missing")
                };
                metrics::counter!("sandgraph_auth_failures_total", "reason" => label).increment(1);
                // Counted per source and audited folded (one event per source and
                // window), never one durable write per request.
                let source = request
                    .extensions()
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
                let strangers = request.extensions().get::<Arc<strangers::Strangers>>();
                match strangers.map(|s| s.failed(source, route, transport, failure)) {
                    Some(Err(wait)) => ApiError::rate_limited(
                        wait,
                        "too many requests failed authentication from this address; wait before retrying",
                    )
                    .into_response(),
                    _ => error.into_response(),
                }
            }
            Err(error) => error.into_response(),
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    observe(
        &tools,
        &method,
        &path,
        route,
        &id,
        response.status(),
        started.elapsed(),
    );
    response
}

/// The caller of a bearer token: from the memory copy of active tokens when it is
/// current (no database read), otherwise from the database, off the async workers.
async fn lookup(tools: &Tools, token: &str) -> anyhow::Result<Option<crate::auth::Caller>> {
    match tools.tokens.cached(token) {
        Cached::Valid(caller) => Ok(Some(caller)),
        Cached::Invalid => Ok(None),
        Cached::Unknown => {
            let (tokens, token) = (tools.tokens.clone(), token.to_owned());
            tokio::task::spawn_blocking(move || tokens.authenticate(&token))
                .await
                .map_err(|e| anyhow::anyhow!("token lookup task: {e}"))?
        }
    }
}

/// The metric label of a request: the route it matched (`/executions/{id}`), never the
/// path a client sent, so a stranger requesting random paths adds no series.
fn route_label(request: &Request) -> &'static str {
    let Some(matched) = request.extensions().get::<axum::extract::MatchedPath>() else {
        return "unmatched";
    };
    let matched = matched.as_str();
    if matched == "/mcp" || matched.starts_with("/mcp/") {
        return "/mcp";
    }
    // Interned: the set of routes is fixed at start-up.
    static ROUTES: std::sync::OnceLock<std::sync::Mutex<std::collections::BTreeSet<&'static str>>> =
        std::sync::OnceLock::new();
    let mut routes = ROUTES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(route) = routes.get(matched) {
        return route;
    }
    let route: &'static str = Box::leak(matched.to_owned().into_boxed_str());
    routes.insert(route);
    route
}

/// One log line and the HTTP metrics per request. Never logs bodies, code or tokens.
fn observe(
    tools: &Tools,
    method: &axum::http::Method,
    path: &str,
    route: &'static str,
    id: &str,
    status: StatusCode,
    took: std::time::Duration,
) {
    metrics::counter!("sandgraph_http_requests_total", "route" => route, "status" => status.as_u16().to_string()).increment(1);
    metrics::histogram!("sandgraph_http_request_duration_seconds", "route" => route)
        .record(took.as_secs_f64());
    let millis = took.as_secs_f64() * 1000.0;
    if took >= tools.config.slow_request {
        tracing::warn!(request_id = %id, %method, path, status = status.as_u16(), duration_ms = millis, "slow request");
    } else {
        tracing::info!(request_id = %id, %method, path, status = status.as_u16(), duration_ms = millis, "request");
    }
}

/// One route per registered tool, generated from its [`ToolSpec`]: the handler only
/// turns the HTTP request into [`Args`] and the pipeline's answer into a response.
fn tool_routes(mut router: Router<Tools>) -> Router<Tools> {
    let mut by_path: std::collections::BTreeMap<&'static str, MethodRouter<Tools>> =
        std::collections::BTreeMap::new();
    for tool in registry::all() {
        let spec = tool.spec();
        let handler = move |State(tools): State<Tools>,
                            Extension(ctx): Extension<CallContext>,
                            params: RawPathParams,
                            request: Request| {
            let tool = tool.clone();
            let params: Vec<(String, String)> = params
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            async move { rest_call(tools, ctx, tool, params, request).await }
        };
        let method = match spec.rest.method {
            RestMethod::Post => axum::routing::post(handler),
            RestMethod::Get => get(handler),
            RestMethod::Delete => axum::routing::delete(handler),
        };
        let merged = match by_path.remove(spec.rest.path) {
            Some(existing) => existing.merge(method),
            None => method,
        };
        by_path.insert(spec.rest.path, merged);
    }
    for (path, method) in by_path {
        router = router.route(path, method);
    }
    router
}

/// Read a tool call's arguments from the request and run it through [`call`].
async fn rest_call(
    tools: Tools,
    ctx: CallContext,
    tool: Arc<dyn DynTool>,
    params: Vec<(String, String)>,
    request: Request,
) -> Response {
    let spec = tool.spec();
    let args = match spec.rest.method {
        RestMethod::Post => match Json::<Value>::from_request(request, &()).await {
            Ok(Json(value)) => with_path_params(value, params),
            Err(rejection) => {
                let error = ApiError::from(rejection);
                Args::Unreadable(ToolError::Unreadable {
                    status: error.status().as_u16(),
                    detail: error.detail().to_owned(),
                })
            }
        },
        RestMethod::Get | RestMethod::Delete => {
            let mut query = request.uri().query().unwrap_or_default().to_owned();
            for (name, value) in params {
                if !query.is_empty() {
                    query.push('&');
                }
                query.push_str(&serde_urlencoded::to_string([(name, value)]).unwrap_or_default());
            }
            Args::Query(query)
        }
    };
    // The call runs in its own task so that it is always recorded; if the client goes
    // away, hyper drops this future, the guard fires `cancel`, and the run stops within
    // an epoch tick and is recorded as `cancelled`.
    let guard = ctx.cancel.clone().drop_guard();
    let task = tokio::spawn(async move {
        tool.call(&tools, &ctx, args, call::Rendering::JsonOnly)
            .await
    });
    let result = task.await.unwrap_or_else(|e| {
        Err(ToolError::Internal(anyhow::anyhow!(
            "tool task failed: {e}"
        )))
    });
    drop(guard.disarm());
    match result {
        Ok(called) => {
            let status = StatusCode::from_u16(spec.rest.status).unwrap_or(StatusCode::OK);
            if status == StatusCode::NO_CONTENT {
                status.into_response()
            } else {
                (status, Json(called.body)).into_response()
            }
        }
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// A POST body with the route's path parameters added (`/workspaces/{workspace_id}/files`
/// names the workspace in the path); a body naming a different value is refused.
fn with_path_params(body: Value, params: Vec<(String, String)>) -> Args {
    if params.is_empty() {
        return Args::Json(body);
    }
    let mut object = match body {
        Value::Object(object) => object,
        Value::Null => Default::default(),
        other => return Args::Json(other),
    };
    for (name, value) in params {
        match object.get(&name) {
            Some(given) if given.as_str() != Some(value.as_str()) => {
                return Args::Unreadable(ToolError::Unreadable {
                    status: 422,
                    detail: format!("{name} in the path and in the body differ"),
                });
            }
            _ => {
                object.insert(name, Value::String(value));
            }
        }
    }
    Args::Json(Value::Object(object))
}

/// `GET /workspaces/{workspace_id}/files/{*path}`: a workspace file's bytes, for its
/// owner only (anyone else gets 404), audited as one workspaces call. Served as an
/// attachment that browsers must not sniff or run: the bytes are whatever a guest wrote.
async fn download_file(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
    Path((workspace_id, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let parsed = crate::workspace::WorkspacePath::parse(&path);
    let (file, bytes) = call::audited(
        &tools,
        &ctx,
        Endpoint::Workspaces,
        "download_file",
        tools::workspace::read_for_download(&tools, &ctx, &workspace_id, parsed),
    )
    .await?;
    let name = file.path.rsplit('/').next().unwrap_or("file").to_owned();
    let disposition = format!(
        "attachment; filename*=UTF-8''{}",
        crate::workspace::WorkspacePath::parse(&name)
            .map(|p| p.encoded())
            .unwrap_or_else(|_| "file".to_owned())
    );
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    let mime = HeaderValue::from_str(&file.mime)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, mime);
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    if let Ok(value) = HeaderValue::from_str(&file.sha256) {
        headers.insert(HeaderName::from_static("x-content-sha256"), value);
    }
    Ok(response)
}

async fn list_prompts(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
) -> Result<Json<Vec<tools::prompts::PromptSummary>>, ApiError> {
    let prompts = call::audited(&tools, &ctx, Endpoint::Prompts, "list_prompts", async {
        Ok(tools::prompts::list())
    })
    .await?;
    Ok(Json(prompts))
}

async fn get_prompt(
    State(tools): State<Tools>,
    Extension(ctx): Extension<CallContext>,
    Path(slug): Path<String>,
) -> Result<Json<tools::prompts::Prompt>, ApiError> {
    let prompt = call::audited(&tools, &ctx, Endpoint::Prompts, "get_prompt", async {
        tools::prompts::get(&slug, &tools.config).ok_or_else(|| ToolError::NotFound {
            detail: format!("no prompt named {slug:?}; GET /prompts lists them"),
        })
    })
    .await?;
    Ok(Json(prompt))
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
    metrics::gauge!("sandgraph_sandbox_slots")
        .set(tools.sandbox.status().max_concurrent_runs as f64);
    metrics::gauge!("sandgraph_outbox_depth").set(tools.store.outbox_depth() as f64);
    let store = tools.store.clone();
    let oldest = tokio::task::spawn_blocking(move || store.outbox_oldest_ts())
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    let age = oldest.map_or(0.0, |ts| {
        ((chrono::Utc::now().timestamp_millis() - ts).max(0)) as f64 / 1000.0
    });
    metrics::gauge!("sandgraph_outbox_oldest_age_seconds").set(age);
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
    let work = async {
        let Some(neo4j) = &tools.neo4j else {
            return Err(ToolError::invalid(
                "store",
                "graph metrics need Neo4j: start the server with NEO4J_URI",
            ));
        };
        let counts = neo4j
            .knowledge_graph_counts()
            .await
            .map_err(|e| ToolError::Busy {
                detail: format!("Neo4j unavailable: {e:#}"),
            })?;
        let (nodes, rels) = (counts.nodes as f64, counts.relationships as f64);
        Ok(json!({
            "node_count": counts.nodes,
            "relationship_count": counts.relationships,
            "labels": counts.labels,
            "relationship_types": counts.relationship_types,
            "average_degree": if nodes == 0.0 { 0.0 } else { 2.0 * rels / nodes },
        }))
    };
    let body = call::audited(&tools, &ctx, Endpoint::GraphQuery, "graph_metrics", work).await?;
    Ok(Json(body))
}

async fn openapi_json() -> Json<&'static Value> {
    Json(openapi::document())
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

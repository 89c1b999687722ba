//! Audit events: every access decision (allowed, denied, rate-limited) and every cache
//! hit becomes an [`AuditEvent`] handed to an [`AuditSink`]. The store writes them
//! durably; [`LogAuditSink`] only logs them.

use serde::{Deserialize, Serialize};

use crate::auth::{Caller, Role};

/// Which transport a call came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// The REST API.
    Rest,
    /// MCP over streamable HTTP.
    McpHttp,
    /// MCP over stdio.
    McpStdio,
    /// The web console (`/ui`).
    Console,
    /// sandgraph itself (the retention sweep).
    Internal,
}

/// Who made a call, how, and its request id: passed from the transport to the tools.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The authenticated caller.
    pub caller: Caller,
    /// The transport.
    pub transport: Transport,
    /// Request id (echoed in `X-Request-Id` on REST).
    pub request_id: String,
    /// When the call arrived (for latency metrics).
    pub started: std::time::Instant,
    /// Fires when the caller goes away or cancels (MCP `notifications/cancelled`, a
    /// closed response stream, a REST client that disconnects): the run stops.
    pub cancel: crate::sandbox::CancellationToken,
}

impl CallContext {
    /// A context for `caller` on `transport` with a fresh request id.
    pub fn new(caller: Caller, transport: Transport) -> Self {
        Self {
            caller,
            transport,
            request_id: uuid::Uuid::now_v7().to_string(),
            started: std::time::Instant::now(),
            cancel: crate::sandbox::CancellationToken::new(),
        }
    }
}

/// The kind of decision an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditDecision {
    /// The call was admitted.
    Allowed,
    /// No or an invalid token (HTTP 401).
    Unauthenticated,
    /// The caller's role lacks the right (HTTP 403).
    Forbidden,
    /// Over the caller's rate limit (HTTP 429).
    RateLimited,
    /// Answered from the result cache (or shared from an identical call in flight).
    CacheHit,
}

/// One audit event.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEvent {
    /// Event id.
    pub id: String,
    /// RFC 3339 time.
    pub at: String,
    /// Milliseconds since the Unix epoch.
    pub ts: i64,
    /// Request id of the call.
    pub request_id: String,
    /// Caller id (`anonymous` when unauthenticated).
    pub caller_id: String,
    /// Caller name.
    pub caller_name: String,
    /// Caller role, if known.
    pub role: Option<Role>,
    /// Endpoint or tool name.
    pub endpoint: String,
    /// Transport.
    pub transport: Transport,
    /// The decision.
    pub decision: AuditDecision,
    /// For admitted calls: the result's outcome (`ok`, `error`, `timeout`, ...) or
    /// `refused` when the input was rejected.
    pub outcome: Option<String>,
    /// Extra detail (never a token or code).
    pub detail: Option<String>,
    /// From the call's arrival to its outcome, in milliseconds (absent on events written
    /// before sandgraph recorded it).
    #[serde(default)]
    pub duration_ms: Option<f64>,
}

/// Current time as (RFC 3339, epoch milliseconds).
pub fn now() -> (String, i64) {
    let now = chrono::Utc::now();
    (now.to_rfc3339(), now.timestamp_millis())
}

impl AuditEvent {
    /// An event for an identified call.
    pub fn new(
        ctx: &CallContext,
        endpoint: &str,
        decision: AuditDecision,
        detail: Option<String>,
    ) -> Self {
        let (at, ts) = now();
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            at,
            ts,
            request_id: ctx.request_id.clone(),
            caller_id: ctx.caller.id.clone(),
            caller_name: ctx.caller.name.clone(),
            role: Some(ctx.caller.role),
            endpoint: endpoint.to_owned(),
            transport: ctx.transport,
            decision,
            outcome: None,
            detail,
            duration_ms: Some(ctx.started.elapsed().as_secs_f64() * 1000.0),
        }
    }

    /// An event for a call with no valid token.
    pub fn unauthenticated(
        endpoint: &str,
        transport: Transport,
        request_id: &str,
        detail: &str,
    ) -> Self {
        let (at, ts) = now();
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            at,
            ts,
            request_id: request_id.to_owned(),
            caller_id: "anonymous".to_owned(),
            caller_name: "anonymous".to_owned(),
            role: None,
            endpoint: endpoint.to_owned(),
            transport,
            decision: AuditDecision::Unauthenticated,
            outcome: None,
            detail: Some(detail.to_owned()),
            duration_ms: None,
        }
    }
}

/// Where audit events go.
pub trait AuditSink: Send + Sync {
    /// Record one event. Must not block for long: called on the request path.
    fn record(&self, event: AuditEvent);
}

/// Logs events at debug level (the default until a store is attached).
pub struct LogAuditSink;

impl AuditSink for LogAuditSink {
    fn record(&self, event: AuditEvent) {
        tracing::debug!(
            caller = %event.caller_id,
            endpoint = %event.endpoint,
            decision = ?event.decision,
            "audit"
        );
    }
}

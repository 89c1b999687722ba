//! History and audit queries: `execution_history`, `get_execution`, `code_stats`
//! (developer and up) and `audit_log` (admin). The same answers from either backend.
//! Each is audited after its query ran, with the query's real outcome.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ToolError, Tools};
use crate::audit::{AuditEvent, CallContext};
use crate::auth::Endpoint;
use crate::call::{Hints, RestMethod, RestRoute, Tool, ToolResponse, ToolSpec};
use crate::store::{
    AuditFilter, CodeStats, ExecutionDetail, ExecutionRecord, HistoryFilter, Page, QueryError,
};

impl From<QueryError> for ToolError {
    fn from(err: QueryError) -> Self {
        match err {
            QueryError::Invalid(detail) => ToolError::invalid("filter", detail),
            QueryError::Unavailable(err) => ToolError::Busy {
                detail: format!("history store unavailable: {err:#}"),
            },
        }
    }
}

impl<T> ToolResponse for Page<T> {}
impl ToolResponse for ExecutionDetail {}
impl ToolResponse for CodeStats {}

/// Arguments of `get_execution`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetExecutionRequest {
    /// The record id (the `id` a tool returned).
    pub id: String,
}

/// Arguments of `code_stats`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeStatsRequest {
    /// SHA-256 (hex) of the code, as tools return in `code_hash`.
    pub code_hash: String,
}

/// `execution_history`.
pub struct ExecutionHistory;

/// Name, role, hints and route of `execution_history`.
pub static EXECUTION_HISTORY_SPEC: ToolSpec = ToolSpec {
    name: "execution_history",
    title: "Execution history",
    description: "List recorded tool runs, newest first (developer role or higher). Filters: \
caller, tool, language, code_hash, outcome, since/until (RFC 3339); limit 1-200 (default 50); pass \
next_cursor as cursor for the next page.",
    endpoint: Endpoint::History,
    hints: Hints::READ_ONLY,
    rest: RestRoute {
        method: RestMethod::Get,
        path: "/execution_history",
        status: 200,
    },
};

#[async_trait::async_trait]
impl Tool for ExecutionHistory {
    type Request = HistoryFilter;
    type Response = Page<ExecutionRecord>;

    fn spec(&self) -> &'static ToolSpec {
        &EXECUTION_HISTORY_SPEC
    }

    async fn run(
        &self,
        tools: &Tools,
        _ctx: &CallContext,
        filter: HistoryFilter,
    ) -> Result<Page<ExecutionRecord>, ToolError> {
        Ok(tools.history.execution_history(&filter).await?)
    }
}

/// `get_execution`.
pub struct GetExecution;

/// Name, role, hints and route of `get_execution`.
pub static GET_EXECUTION_SPEC: ToolSpec = ToolSpec {
    name: "get_execution",
    title: "One recorded run",
    description: "Fetch one recorded run by its id, with the source text it ran in `code` \
(when the server keeps source: see `source_kept`) (developer role or higher).",
    endpoint: Endpoint::History,
    hints: Hints::READ_ONLY,
    rest: RestRoute {
        method: RestMethod::Get,
        path: "/executions/{id}",
        status: 200,
    },
};

#[async_trait::async_trait]
impl Tool for GetExecution {
    type Request = GetExecutionRequest;
    type Response = ExecutionDetail;

    fn spec(&self) -> &'static ToolSpec {
        &GET_EXECUTION_SPEC
    }

    async fn run(
        &self,
        tools: &Tools,
        _ctx: &CallContext,
        request: GetExecutionRequest,
    ) -> Result<ExecutionDetail, ToolError> {
        tools
            .history
            .get_execution(&request.id)
            .await?
            .ok_or_else(|| ToolError::NotFound {
                detail: format!("no execution with id {:?}", request.id),
            })
    }
}

/// `code_stats`.
pub struct CodeStatsTool;

/// Name, role, hints and route of `code_stats`.
pub static CODE_STATS_SPEC: ToolSpec = ToolSpec {
    name: "code_stats",
    title: "Statistics of a code hash",
    description: "How often a code hash ran, by how many callers, its failure rate and median \
duration (developer role or higher).",
    endpoint: Endpoint::History,
    hints: Hints::READ_ONLY,
    rest: RestRoute {
        method: RestMethod::Get,
        path: "/code_stats/{code_hash}",
        status: 200,
    },
};

#[async_trait::async_trait]
impl Tool for CodeStatsTool {
    type Request = CodeStatsRequest;
    type Response = CodeStats;

    fn spec(&self) -> &'static ToolSpec {
        &CODE_STATS_SPEC
    }

    async fn run(
        &self,
        tools: &Tools,
        _ctx: &CallContext,
        request: CodeStatsRequest,
    ) -> Result<CodeStats, ToolError> {
        if request.code_hash.len() != 64
            || !request.code_hash.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(ToolError::invalid(
                "code_hash",
                "code_hash must be 64 hex characters (SHA-256)",
            ));
        }
        Ok(tools
            .history
            .code_stats(&request.code_hash.to_ascii_lowercase())
            .await?)
    }
}

/// `audit_log`.
pub struct AuditLog;

/// Name, role, hints and route of `audit_log`.
pub static AUDIT_LOG_SPEC: ToolSpec = ToolSpec {
    name: "audit_log",
    title: "Audit log",
    description: "Audit events, newest first (admin only): who called what, allowed, denied, \
rate-limited or served from cache, and how it ended. Filters: caller, event_type, endpoint, \
outcome, request_id, since/until.",
    endpoint: Endpoint::AuditLog,
    hints: Hints::READ_ONLY,
    rest: RestRoute {
        method: RestMethod::Get,
        path: "/audit_log",
        status: 200,
    },
};

#[async_trait::async_trait]
impl Tool for AuditLog {
    type Request = AuditFilter;
    type Response = Page<AuditEvent>;

    fn spec(&self) -> &'static ToolSpec {
        &AUDIT_LOG_SPEC
    }

    async fn run(
        &self,
        tools: &Tools,
        _ctx: &CallContext,
        filter: AuditFilter,
    ) -> Result<Page<AuditEvent>, ToolError> {
        Ok(tools.history.audit_log(&filter).await?)
    }
}

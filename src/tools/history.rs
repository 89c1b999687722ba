//! History and audit queries: `execution_history`, `get_execution`, `code_stats`
//! (developer and up) and `audit_log` (admin). The same answers from either backend.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ToolError, Tools};
use crate::audit::{AuditDecision, AuditEvent, CallContext};
use crate::auth::Endpoint;
use crate::store::{
    AuditFilter, CodeStats, ExecutionRecord, HistoryFilter, Page, QueryError, Record,
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

fn admit(
    tools: &Tools,
    ctx: &CallContext,
    endpoint: Endpoint,
    name: &str,
) -> Result<(), ToolError> {
    tools.admit(ctx, endpoint)?;
    let mut event = AuditEvent::new(ctx, name, AuditDecision::Allowed, None);
    event.outcome = Some("ok".to_owned());
    tools.store.append_later(vec![Record::Audit(event)]);
    Ok(())
}

/// Records, newest first, filtered and paginated.
pub async fn execution_history(
    tools: &Tools,
    ctx: &CallContext,
    filter: HistoryFilter,
) -> Result<Page<ExecutionRecord>, ToolError> {
    admit(tools, ctx, Endpoint::History, "execution_history")?;
    Ok(tools.history.execution_history(&filter).await?)
}

/// One record by id (404 if unknown).
pub async fn get_execution(
    tools: &Tools,
    ctx: &CallContext,
    request: GetExecutionRequest,
) -> Result<Option<ExecutionRecord>, ToolError> {
    admit(tools, ctx, Endpoint::History, "get_execution")?;
    Ok(tools.history.get_execution(&request.id).await?)
}

/// Runs, callers, failure rate and median duration of one code hash.
pub async fn code_stats(
    tools: &Tools,
    ctx: &CallContext,
    request: CodeStatsRequest,
) -> Result<CodeStats, ToolError> {
    admit(tools, ctx, Endpoint::History, "code_stats")?;
    if request.code_hash.len() != 64 || !request.code_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
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

/// Audit events, newest first, filtered and paginated (admin only).
pub async fn audit_log(
    tools: &Tools,
    ctx: &CallContext,
    filter: AuditFilter,
) -> Result<Page<AuditEvent>, ToolError> {
    admit(tools, ctx, Endpoint::AuditLog, "audit_log")?;
    Ok(tools.history.audit_log(&filter).await?)
}

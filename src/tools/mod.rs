//! The tools, one file each. A tool implements [`crate::call::Tool`]: it takes a typed
//! request, validates it, runs it (usually in the sandbox) and returns a typed response
//! or a [`ToolError`]; [`crate::call`] runs every call through the same stages and
//! [`registry`] lists the tools. Tools know nothing about HTTP or MCP.

pub mod execute;
pub mod generate;
pub mod graph;
pub mod graph_schema;
pub mod history;
pub mod lint;
pub mod lint_summary;
pub mod packages;
pub mod prompts;
pub mod registry;
pub mod test;
pub mod tokens;
pub mod workspace;

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::audit::{AuditSink, CallContext};
use crate::auth::{Endpoint, TokenStore};
use crate::cache::{CacheKey, Provenance, ResultCache};
use crate::call::ToolResponse;
use crate::config::Config;
use crate::rate_limit::RateLimits;
use crate::sandbox::{ExitReason, LimitTooHigh, Sandbox, SandboxError};
use crate::store::neo4j::Neo4jStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{ExecutionRecord, HistoryStore, clip};

/// A result the cache can hold.
#[derive(Debug, Clone)]
pub enum CachedResult {
    /// `execute_code`
    Execute(execute::ExecuteResponse),
    /// `lint_code`
    Lint(lint::LintResponse),
    /// `run_tests`
    Tests(test::RunTestsResponse),
}

/// Shared state every tool call gets; cheap to clone.
#[derive(Clone)]
pub struct Tools {
    /// The sandbox all code runs in.
    pub sandbox: Sandbox,
    /// The server configuration.
    pub config: Arc<Config>,
    /// Bearer tokens.
    pub tokens: Arc<TokenStore>,
    /// Per-caller rate limits.
    pub rate_limits: Arc<RateLimits>,
    /// The result cache.
    pub cache: Arc<ResultCache<CachedResult>>,
    /// Where access decisions go.
    pub audit: Arc<dyn AuditSink>,
    /// The embedded database: durable records (history or outbox).
    pub store: Arc<SqliteStore>,
    /// Where history and audit queries are answered.
    pub history: Arc<dyn HistoryStore>,
    /// Neo4j, when configured (graph tools need it).
    pub neo4j: Option<Arc<Neo4jStore>>,
    /// Renders `/metrics` (absent in processes that did not install a recorder).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The process's shutdown (each call's run token is a child of its runs token).
    pub shutdown: crate::shutdown::Shutdown,
    /// Workspaces: directories behind handles, with their metadata.
    pub workspaces: Arc<crate::workspace::Workspaces>,
    /// ruff's workers (`lint_code` for Python), started on first use.
    pub ruff: Arc<crate::ruff::Ruff>,
}

impl Tools {
    /// Bundle the parts every tool needs.
    pub fn new(
        sandbox: Sandbox,
        config: Arc<Config>,
        tokens: Arc<TokenStore>,
        store: Arc<SqliteStore>,
        history: Arc<dyn HistoryStore>,
        neo4j: Option<Arc<Neo4jStore>>,
    ) -> anyhow::Result<Self> {
        let workspace_store = Arc::new(crate::store::workspaces::SqliteWorkspaceStore::open(
            &config.database_path(),
        )?);
        let workspaces = Arc::new(crate::workspace::Workspaces::open(
            config.workspaces_dir(),
            workspace_store,
            config.workspaces.clone(),
        )?);
        Ok(Self {
            ruff: Arc::new(crate::ruff::Ruff::new(config.ruff_binary())?),
            workspaces,
            metrics: None,
            shutdown: crate::shutdown::Shutdown::new(),
            neo4j,
            audit: store.clone(),
            store,
            history,
            rate_limits: Arc::new(RateLimits::new(&config.rate_limits)?),
            cache: Arc::new(ResultCache::new(&config.cache)),
            sandbox,
            config,
            tokens,
        })
    }

    /// Use `shutdown` for this process's drain.
    pub fn with_shutdown(mut self, shutdown: crate::shutdown::Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Attach the Prometheus handle that renders `/metrics`.
    pub fn with_metrics(mut self, handle: metrics_exporter_prometheus::PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// Run `compute` through the result cache unless `use_cache` is false. Results whose
    /// `exit_reason` is `timeout` are never stored (they depend on machine load); every
    /// other finished result is deterministic for its key and is stored.
    pub(crate) async fn cached<Fut>(
        &self,
        _ctx: &CallContext,
        endpoint: Endpoint,
        use_cache: bool,
        key_inputs: &impl serde::Serialize,
        compute: impl FnOnce() -> Fut,
    ) -> Result<(CachedResult, bool), ToolError>
    where
        Fut: std::future::Future<Output = Result<CachedResult, ToolError>>,
    {
        if !use_cache {
            return compute().await.map(|r| (r, false));
        }
        let key = CacheKey::of(&(endpoint.name(), self.sandbox.build_id(), key_inputs));
        let (result, provenance) = self
            .cache
            .get_or_compute(key, admit_to_cache, compute)
            .await?;
        // The call's single audit event (decision `cache_hit`) is written by `remember`.
        Ok((result, provenance == Provenance::Cached))
    }

    /// Refuse source text over the configured size limit.
    pub(crate) fn check_size(&self, field: &'static str, text: &str) -> Result<(), ToolError> {
        let limit = self.config.max_code_bytes;
        if text.len() > limit {
            return Err(ToolError::TooLarge {
                detail: format!(
                    "`{field}` is {} bytes; the limit is {limit} bytes",
                    text.len()
                ),
            });
        }
        Ok(())
    }
}

/// A record with the call's identity filled in and the tool-specific parts empty.
pub(crate) fn base_record(ctx: &CallContext, tool: &str, id: &str) -> ExecutionRecord {
    let (created_at, ts) = crate::audit::now();
    ExecutionRecord {
        id: id.to_owned(),
        ts,
        created_at,
        tool: tool.to_owned(),
        caller_id: ctx.caller.id.clone(),
        caller_name: ctx.caller.name.clone(),
        role: ctx.caller.role.as_str().to_owned(),
        transport: serde_json::to_value(ctx.transport)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        request_id: ctx.request_id.clone(),
        language: None,
        code_hash: None,
        outcome: "ok".to_owned(),
        return_code: None,
        duration_seconds: 0.0,
        cached: false,
        limits: None,
        stdout: None,
        stderr: None,
        source_kept: None,
    }
}

/// The snake_case name of an exit reason.
pub(crate) fn reason_name(reason: ExitReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl ToolResponse for execute::ExecuteResponse {
    fn render(&self) -> Option<String> {
        let mut text = execute::render_run(
            self.exit_reason,
            self.return_code,
            self.duration_seconds,
            self.cached,
            &self.stdout,
            &self.stderr,
        );
        self.output.render(&mut text);
        Some(text)
    }

    fn audit_detail(&self) -> Option<String> {
        self.output.audit_detail()
    }

    fn attachments(&mut self) -> Vec<crate::call::Attachment> {
        self.output.attachments()
    }

    fn record(&self, ctx: &CallContext, tool: &str) -> Option<ExecutionRecord> {
        Some(ExecutionRecord {
            language: Some(self.language.as_str().to_owned()),
            code_hash: Some(self.code_hash.clone()),
            outcome: reason_name(self.exit_reason),
            return_code: Some(self.return_code.into()),
            duration_seconds: self.duration_seconds,
            cached: self.cached,
            limits: serde_json::to_string(&self.limits).ok(),
            stdout: Some(clip(&self.stdout)),
            stderr: Some(clip(&self.stderr)),
            ..base_record(ctx, tool, &self.id)
        })
    }
}

impl ToolResponse for lint::LintResponse {
    fn render(&self) -> Option<String> {
        let mut text = match &self.syntax_error {
            Some(error) => format!(
                "syntax error: {}\n",
                serde_json::to_string(error).unwrap_or_default()
            ),
            None => format!("{} diagnostics\n", self.diagnostics.len()),
        };
        if !self.linter_output.is_empty() {
            text.push_str(&self.linter_output);
            if !self.linter_output.ends_with('\n') {
                text.push('\n');
            }
        }
        Some(text)
    }

    fn record(&self, ctx: &CallContext, tool: &str) -> Option<ExecutionRecord> {
        Some(ExecutionRecord {
            language: Some(self.language.as_str().to_owned()),
            code_hash: Some(self.code_hash.clone()),
            outcome: if self.syntax_error.is_some() {
                "error"
            } else {
                "ok"
            }
            .to_owned(),
            return_code: Some(self.linter_exit_code.into()),
            duration_seconds: self.duration_seconds,
            cached: self.cached,
            stdout: Some(clip(&self.linter_output)),
            ..base_record(ctx, tool, &self.id)
        })
    }
}

impl ToolResponse for test::RunTestsResponse {
    fn render(&self) -> Option<String> {
        let summary = serde_json::to_string(&self.summary).unwrap_or_default();
        let mut text = format!(
            "summary: {summary}\n{}",
            execute::render_run(
                self.exit_reason,
                self.return_code,
                self.duration_seconds,
                self.cached,
                &self.stdout,
                &self.stderr,
            )
        );
        self.output.render(&mut text);
        Some(text)
    }

    fn audit_detail(&self) -> Option<String> {
        self.output.audit_detail()
    }

    fn attachments(&mut self) -> Vec<crate::call::Attachment> {
        self.output.attachments()
    }

    fn record(&self, ctx: &CallContext, tool: &str) -> Option<ExecutionRecord> {
        Some(ExecutionRecord {
            language: Some(self.language.as_str().to_owned()),
            code_hash: Some(self.code_hash.clone()),
            outcome: reason_name(self.exit_reason),
            return_code: Some(self.return_code.into()),
            duration_seconds: self.duration_seconds,
            cached: self.cached,
            limits: serde_json::to_string(&self.limits).ok(),
            stdout: Some(clip(&self.stdout)),
            stderr: Some(clip(&self.stderr)),
            ..base_record(ctx, tool, &self.id)
        })
    }
}

impl ToolResponse for generate::GenerateResponse {
    fn record(&self, ctx: &CallContext, tool: &str) -> Option<ExecutionRecord> {
        Some(ExecutionRecord {
            language: Some(self.language.clone()),
            code_hash: Some(self.code_hash.clone()),
            stdout: Some(clip(&self.output)),
            ..base_record(ctx, tool, &self.id)
        })
    }
}

/// Whether a result may be cached, and its size in bytes.
fn admit_to_cache(result: &CachedResult) -> Option<usize> {
    let (reason, bytes) = match result {
        CachedResult::Execute(r) => (r.exit_reason, serde_json::to_vec(r).map(|v| v.len())),
        CachedResult::Lint(r) => (ExitReason::Ok, serde_json::to_vec(r).map(|v| v.len())),
        CachedResult::Tests(r) => (r.exit_reason, serde_json::to_vec(r).map(|v| v.len())),
    };
    if matches!(reason, ExitReason::Timeout | ExitReason::Cancelled) {
        return None;
    }
    bytes.ok()
}

/// Why a tool call was refused or failed. Each variant maps to one HTTP status and to an
/// MCP tool error with the same message.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// A field is missing, malformed or out of range (HTTP 422).
    #[error("{detail}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong and what is accepted.
        detail: String,
    },
    /// An input is larger than the server accepts (HTTP 413).
    #[error("{detail}")]
    TooLarge {
        /// Which input and the limit.
        detail: String,
    },
    /// The caller's role lacks the right (HTTP 403).
    #[error("{detail}")]
    Forbidden {
        /// Which role is needed.
        detail: String,
    },
    /// The caller is over its rate limit for this endpoint (HTTP 429).
    #[error("Rate limit exceeded; retry in {retry_after_seconds} s")]
    RateLimited {
        /// Seconds until the next call is allowed.
        retry_after_seconds: u64,
    },
    /// The server is saturated; retry (HTTP 503).
    #[error("{detail}")]
    Busy {
        /// Why.
        detail: String,
    },
    /// The transport could not read the request (malformed JSON, wrong content type,
    /// oversize body): its own status (400, 413, 415, 422).
    #[error("{detail}")]
    Unreadable {
        /// The HTTP status.
        status: u16,
        /// What was wrong.
        detail: String,
    },
    /// The caller cancelled the call (or went away); the run, if one started, is
    /// recorded with `exit_reason: cancelled` (HTTP 499, a status nobody reads).
    #[error("the call was cancelled")]
    Cancelled {
        /// The record of the stopped run, if a run started.
        record: Option<Box<ExecutionRecord>>,
    },
    /// A quota (a workspace's bytes or files, the caller's workspaces) or the global
    /// disk cap would be exceeded (HTTP 507).
    #[error("{detail}")]
    QuotaExceeded {
        /// Which limit, where things stand, and what to do.
        detail: String,
    },
    /// The thing asked for does not exist (HTTP 404).
    #[error("{detail}")]
    NotFound {
        /// What was not found.
        detail: String,
    },
    /// A server-side failure (HTTP 500); details are logged, not returned.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl ToolError {
    /// The call's outcome in its audit event.
    pub fn outcome(&self) -> &'static str {
        match self {
            ToolError::Invalid { .. }
            | ToolError::TooLarge { .. }
            | ToolError::Forbidden { .. }
            | ToolError::NotFound { .. }
            | ToolError::QuotaExceeded { .. }
            | ToolError::Unreadable { .. }
            | ToolError::RateLimited { .. } => "refused",
            ToolError::Busy { .. } => "unavailable",
            ToolError::Cancelled { .. } => "cancelled",
            ToolError::Internal(_) => "error",
        }
    }

    /// A 422 for `field`.
    pub fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        ToolError::Invalid {
            field,
            detail: detail.into(),
        }
    }
}

impl From<SandboxError> for ToolError {
    fn from(err: SandboxError) -> Self {
        match err {
            SandboxError::Busy { .. } => ToolError::Busy {
                detail: err.to_string(),
            },
            SandboxError::Cancelled => ToolError::Cancelled { record: None },
            SandboxError::Internal(err) => ToolError::Internal(err),
        }
    }
}

impl From<LimitTooHigh> for ToolError {
    fn from(err: LimitTooHigh) -> Self {
        ToolError::invalid("limits", err.to_string())
    }
}

/// Hex SHA-256 of a code text: how history and stats identify "the same code".
pub fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// A new record id.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

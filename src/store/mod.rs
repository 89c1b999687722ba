//! Memory of every run. Each tool call's audit event and result record are committed to
//! the embedded SQLite database before the response is sent. With no Neo4j configured,
//! SQLite is the history store; with `NEO4J_URI` set, records go to a durable outbox
//! that [`shipper`] moves into Neo4j in idempotent batches, and history is read from Neo4j.

pub mod graph_schema;
pub mod neo4j;
pub mod retention;
pub mod shipper;
pub mod sqlite;
pub mod workspaces;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;

/// Longest stdout/stderr kept in a record.
pub const RECORD_OUTPUT_BYTES: usize = 4096;

/// One tool call's result, as remembered.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExecutionRecord {
    /// The response id.
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub ts: i64,
    /// RFC 3339 time.
    pub created_at: String,
    /// Tool name (`execute_code`, `lint_code`, `run_tests`, `generate_code`, `graph_upsert`).
    pub tool: String,
    /// Caller id.
    pub caller_id: String,
    /// Caller name.
    pub caller_name: String,
    /// Caller role.
    pub role: String,
    /// Transport (`rest`, `mcp_http`, `mcp_stdio`).
    pub transport: String,
    /// Request id.
    pub request_id: String,
    /// Language, if any.
    pub language: Option<String>,
    /// SHA-256 of the code, if any.
    pub code_hash: Option<String>,
    /// `ok`, `error`, `timeout`, `memory_limit`, `output_limit`, `file_quota`.
    pub outcome: String,
    /// Exit/return code, if any.
    pub return_code: Option<i64>,
    /// Run time in seconds.
    pub duration_seconds: f64,
    /// Whether the answer came from the cache.
    pub cached: bool,
    /// Limits (JSON), if any.
    pub limits: Option<String>,
    /// Start of stdout (at most 4 KiB).
    pub stdout: Option<String>,
    /// Start of stderr (at most 4 KiB).
    pub stderr: Option<String>,
    /// Whether the source text behind `code_hash` is kept (`true`: `get_execution` and
    /// `sandgraph://code/{hash}` return it; `false`: this server does not keep source,
    /// `SANDGRAPH_STORE_SOURCE=false`). Absent on records without source text and on
    /// records written before sandgraph kept it.
    #[serde(default)]
    pub source_kept: Option<bool>,
}

/// The source text behind a code hash, stored once per hash.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StoredCode {
    /// SHA-256 (hex) as the records carry it in `code_hash`.
    pub hash: String,
    /// The code (for `run_tests` with separate tests: the module under test; for
    /// `generate_code`: the template; for `graph_query`: the Cypher).
    pub source: String,
    /// `run_tests`' separate test file, if there was one (the hash covers both).
    #[serde(default)]
    pub tests: Option<String>,
    /// Bytes of `source` plus `tests`.
    pub bytes: u64,
    /// The language it was run as, if any.
    #[serde(default)]
    pub language: Option<String>,
}

impl StoredCode {
    /// The code of a record with `hash` and `language`.
    pub fn new(
        hash: String,
        language: Option<String>,
        source: String,
        tests: Option<String>,
    ) -> Self {
        let bytes = (source.len() + tests.as_ref().map_or(0, String::len)) as u64;
        Self {
            hash,
            source,
            tests,
            bytes,
            language,
        }
    }
}

/// One recorded run with the source text it ran (`get_execution`).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExecutionDetail {
    /// The record.
    #[serde(flatten)]
    pub record: ExecutionRecord,
    /// The source behind `code_hash`, when kept (see `source_kept`).
    pub code: Option<StoredCode>,
}

/// Cut `text` to at most [`RECORD_OUTPUT_BYTES`] on a character boundary.
pub fn clip(text: &str) -> String {
    if text.len() <= RECORD_OUTPUT_BYTES {
        return text.to_owned();
    }
    let mut end = RECORD_OUTPUT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// A record to persist.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", content = "record", rename_all = "snake_case")]
pub enum Record {
    /// A tool result.
    Execution(ExecutionRecord),
    /// An access decision.
    Audit(AuditEvent),
    /// The source text behind a hash (written with the first record that has it).
    Code(StoredCode),
}

/// Filters for `execution_history`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryFilter {
    /// Only this caller id.
    pub caller: Option<String>,
    /// Only this tool.
    pub tool: Option<String>,
    /// Only this language.
    pub language: Option<String>,
    /// Only this code hash.
    pub code_hash: Option<String>,
    /// Only this outcome (`ok`, `error`, `timeout`, ...).
    pub outcome: Option<String>,
    /// Not before this RFC 3339 time.
    pub since: Option<String>,
    /// Before this RFC 3339 time.
    pub until: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Filters for `audit_log`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// Only this caller id.
    pub caller: Option<String>,
    /// Only this decision (`allowed`, `cache_hit`, `forbidden`, `rate_limited`, `unauthenticated`).
    pub event_type: Option<String>,
    /// Only this endpoint/tool.
    pub endpoint: Option<String>,
    /// Only this outcome (for allowed calls: the result's outcome, or `refused`).
    pub outcome: Option<String>,
    /// Only the events of this request (the `request_id` a record carries).
    pub request_id: Option<String>,
    /// Not before this RFC 3339 time.
    pub since: Option<String>,
    /// Before this RFC 3339 time.
    pub until: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of results, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Statistics about one code hash.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CodeStats {
    /// The hash.
    pub code_hash: String,
    /// Records with this hash.
    pub runs: u64,
    /// Distinct callers.
    pub callers: u64,
    /// Records whose outcome is not `ok`.
    pub failures: u64,
    /// failures / runs (0 when no runs).
    pub failure_rate: f64,
    /// Median duration in seconds (None when no runs).
    pub p50_duration_seconds: Option<f64>,
    /// First record time.
    pub first_seen: Option<String>,
    /// Last record time.
    pub last_seen: Option<String>,
}

/// A resolved query window and page, shared by both backends.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub limit: u32,
    /// Keyset: items strictly older than (ts, id).
    pub before: Option<(i64, String)>,
}

/// Why a history query was refused.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Bad filter value (HTTP 422).
    #[error("{0}")]
    Invalid(String),
    /// The backend failed (HTTP 503).
    #[error("history store unavailable: {0:#}")]
    Unavailable(anyhow::Error),
}

fn parse_time(field: &str, value: &Option<String>) -> Result<Option<i64>, QueryError> {
    value
        .as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.timestamp_millis())
                .map_err(|e| QueryError::Invalid(format!("{field} must be an RFC 3339 time: {e}")))
        })
        .transpose()
}

impl Window {
    pub(crate) fn new(
        since: &Option<String>,
        until: &Option<String>,
        limit: Option<u32>,
        cursor: &Option<String>,
    ) -> Result<Self, QueryError> {
        let limit = limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(QueryError::Invalid(
                "limit must be between 1 and 200".into(),
            ));
        }
        let before = cursor
            .as_deref()
            .map(|c| {
                c.split_once(':')
                    .and_then(|(ts, id)| Some((ts.parse::<i64>().ok()?, id.to_owned())))
                    .ok_or_else(|| {
                        QueryError::Invalid("cursor is not one this server issued".into())
                    })
            })
            .transpose()?;
        Ok(Self {
            since_ms: parse_time("since", since)?,
            until_ms: parse_time("until", until)?,
            limit,
            before,
        })
    }

    /// The cursor for the page after one ending with (ts, id), if the page was full.
    pub(crate) fn next_cursor(&self, count: usize, last: Option<(i64, &str)>) -> Option<String> {
        (count == self.limit as usize)
            .then_some(last)
            .flatten()
            .map(|(ts, id)| format!("{ts}:{id}"))
    }
}

/// Reads of history and audit, answered the same way by both backends.
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Newest-first, filtered, paginated records.
    async fn execution_history(
        &self,
        filter: &HistoryFilter,
    ) -> Result<Page<ExecutionRecord>, QueryError>;
    /// One record by id, with its source text if kept.
    async fn get_execution(&self, id: &str) -> Result<Option<ExecutionDetail>, QueryError>;
    /// The source text stored for a code hash.
    async fn get_code(&self, hash: &str) -> Result<Option<StoredCode>, QueryError>;
    /// Up to `limit` record ids starting with `prefix` (the newest when it is empty),
    /// for MCP completions.
    async fn complete_execution_ids(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, QueryError>;
    /// Up to `limit` stored code hashes starting with `prefix`, for MCP completions.
    async fn complete_code_hashes(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, QueryError>;
    /// Statistics for a code hash.
    async fn code_stats(&self, code_hash: &str) -> Result<CodeStats, QueryError>;
    /// Newest-first, filtered, paginated audit events.
    async fn audit_log(&self, filter: &AuditFilter) -> Result<Page<AuditEvent>, QueryError>;
    /// Delete what is older than `cutoffs` in transactions of at most `batch` rows, then
    /// the source texts no record references; how many of each went.
    async fn delete_expired(
        &self,
        cutoffs: retention::Cutoffs,
        batch: usize,
    ) -> Result<retention::Swept, QueryError>;
    /// `embedded` or `neo4j`.
    fn backend(&self) -> &'static str;
}

/// Open the stores the configuration asks for: the embedded SQLite history, or (with
/// `NEO4J_URI`) an outbox in SQLite shipped to Neo4j, which answers history queries.
#[allow(clippy::type_complexity)]
pub async fn open(
    config: &crate::config::Config,
    shutdown: &crate::shutdown::Shutdown,
) -> anyhow::Result<(
    std::sync::Arc<sqlite::SqliteStore>,
    std::sync::Arc<dyn HistoryStore>,
    Option<std::sync::Arc<neo4j::Neo4jStore>>,
)> {
    use sqlite::{Destination, SqliteStore};
    let path = config.database_path();
    let Some(settings) = &config.neo4j else {
        let store = SqliteStore::open(&path, Destination::History, config.outbox_limit)?;
        retention::spawn(
            store.clone(),
            store.clone(),
            config.history_retention_days,
            config.audit_retention_days,
            shutdown.clone(),
        );
        return Ok((store.clone(), store, None));
    };
    let store = SqliteStore::open(&path, Destination::Outbox, config.outbox_limit)?;
    let neo4j = std::sync::Arc::new(neo4j::Neo4jStore::connect(settings)?);
    // Neo4j may be down at start: serve anyway (records wait in the outbox) and apply
    // the schema as soon as it answers.
    let schema_target = neo4j.clone();
    let schema_shutdown = shutdown.clone();
    shutdown.spawn(async move {
        let mut wait = std::time::Duration::from_millis(200);
        loop {
            if schema_shutdown.is_begun() {
                return;
            }
            match schema_target.apply_schema().await {
                Ok(()) => {
                    tracing::info!("Neo4j schema applied");
                    break;
                }
                Err(err) => {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "Neo4j not ready; retrying schema"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = schema_shutdown.begun() => return,
                    }
                    wait = (wait * 2).min(std::time::Duration::from_secs(10));
                }
            }
        }
    });
    let stats = std::sync::Arc::new(shipper::ShipperStats::default());
    shipper::spawn(store.clone(), neo4j.clone(), stats, shutdown.clone());
    retention::spawn(
        neo4j.clone(),
        store.clone(),
        config.history_retention_days,
        config.audit_retention_days,
        shutdown.clone(),
    );
    Ok((store, neo4j.clone(), Some(neo4j)))
}

/// Run a blocking call (SQLite) without stalling an async worker: on the multi-threaded
/// runtime the worker hands its other tasks to the rest of the pool first
/// (`block_in_place`); elsewhere (a current-thread runtime in a test) it just runs.
pub fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Median of unsorted values.
pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

//! The embedded SQLite store (WAL, synchronous commits). One writer thread group-commits
//! whatever requests are waiting, so many concurrent calls share one fsync; a reader
//! connection answers history queries. In Neo4j mode the same writer fills the outbox.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use anyhow::Context as _;
use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use tokio::sync::oneshot;

use super::{
    AuditFilter, CodeStats, ExecutionDetail, ExecutionRecord, HistoryFilter, HistoryStore, Page,
    QueryError, Record, StoredCode, Window, median,
};
use crate::audit::AuditEvent;

/// Where committed records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The local history tables (no Neo4j configured).
    History,
    /// The outbox, for the shipper to move into Neo4j.
    Outbox,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY, ts INTEGER NOT NULL, caller_id TEXT NOT NULL, tool TEXT NOT NULL,
    language TEXT, code_hash TEXT, outcome TEXT NOT NULL, duration_seconds REAL NOT NULL,
    body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS executions_ts ON executions (ts, id);
CREATE INDEX IF NOT EXISTS executions_caller_ts ON executions (caller_id, ts, id);
CREATE INDEX IF NOT EXISTS executions_code_ts ON executions (code_hash, ts, id);
CREATE INDEX IF NOT EXISTS executions_tool_ts ON executions (tool, ts, id);
CREATE TABLE IF NOT EXISTS audit_events (
    id TEXT PRIMARY KEY, ts INTEGER NOT NULL, caller_id TEXT NOT NULL, endpoint TEXT NOT NULL,
    decision TEXT NOT NULL, outcome TEXT, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_ts ON audit_events (ts, id);
CREATE INDEX IF NOT EXISTS audit_caller_ts ON audit_events (caller_id, ts, id);
CREATE INDEX IF NOT EXISTS audit_decision_ts ON audit_events (decision, ts, id);
CREATE TABLE IF NOT EXISTS code (
    hash TEXT PRIMARY KEY, ts INTEGER NOT NULL, language TEXT, bytes INTEGER NOT NULL,
    source TEXT NOT NULL, tests TEXT);
CREATE INDEX IF NOT EXISTS code_ts ON code (ts);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
";

/// Bytes of outbox records read for one Neo4j transaction (at least one record).
const OUTBOX_BATCH_BYTES: usize = 8 << 20;

/// Bring a database written by an older sandgraph up to [`SCHEMA`]: audit events gained
/// a `request_id` column (the audit trail of one call), filled from the stored bodies.
fn migrate(connection: &Connection) -> anyhow::Result<()> {
    let has_request_id: bool = connection
        .prepare("SELECT 1 FROM pragma_table_info('audit_events') WHERE name = 'request_id'")?
        .exists([])?;
    if !has_request_id {
        connection.execute_batch(
            "BEGIN IMMEDIATE;
             ALTER TABLE audit_events ADD COLUMN request_id TEXT;
             UPDATE audit_events SET request_id = json_extract(body, '$.request_id');
             COMMIT;",
        )?;
    }
    connection.execute_batch(
        "CREATE INDEX IF NOT EXISTS audit_request ON audit_events (request_id, ts, id);",
    )?;
    Ok(())
}

struct Job {
    records: Vec<Record>,
    reply: Option<oneshot::Sender<Result<(), String>>>,
}

/// Why records could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The outbox holds its maximum; Neo4j has been unreachable too long.
    #[error("the history outbox is full ({0} records waiting for Neo4j); retry later")]
    OutboxFull(u64),
    /// The database failed.
    #[error("could not commit the record: {0}")]
    Failed(String),
}

/// The embedded store.
pub struct SqliteStore {
    writer: Mutex<mpsc::Sender<Job>>,
    reader: Mutex<Connection>,
    destination: Destination,
    outbox_limit: u64,
    outbox_depth: Arc<AtomicU64>,
    recent_code: Mutex<lru::LruCache<String, std::time::Instant>>,
    path: std::path::PathBuf,
}

/// Code hashes whose source this process committed lately are not written again (the
/// store keeps one copy per hash anyway; this saves re-sending the text with every
/// repeated run). An entry is trusted for an hour, far below the shortest retention
/// period (a day), so a hash seen here still has a live record and its text was not
/// swept as unreferenced.
const RECENT_CODE_ENTRIES: usize = 10_000;
const RECENT_CODE_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

fn open_connection(path: &Path) -> anyhow::Result<Connection> {
    let connection =
        Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    connection.execute_batch(SCHEMA)?;
    migrate(&connection)?;
    // Every acknowledged call must survive a crash: full fsync at each (group) commit.
    connection.execute_batch("PRAGMA synchronous = FULL;")?;
    Ok(connection)
}

fn insert(
    tx: &rusqlite::Transaction<'_>,
    destination: Destination,
    record: &Record,
) -> rusqlite::Result<()> {
    // Statements are prepared once per connection and reused (`prepare_cached`): parsing
    // the SQL again for every record cost more than the insert itself.
    match (destination, record) {
        (Destination::Outbox, _) => {
            let body = serde_json::to_string(record).unwrap_or_default();
            tx.prepare_cached("INSERT INTO outbox (body) VALUES (?1)")?
                .execute(params![body])?;
        }
        (Destination::History, Record::Execution(r)) => {
            let body = serde_json::to_string(r).unwrap_or_default();
            tx.prepare_cached(
                "INSERT OR IGNORE INTO executions (id, ts, caller_id, tool, language, code_hash, outcome, duration_seconds, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![r.id, r.ts, r.caller_id, r.tool, r.language, r.code_hash, r.outcome, r.duration_seconds, body])?;
        }
        (Destination::History, Record::Code(c)) => {
            // Once per hash: the first record that carries a hash writes its text.
            tx.prepare_cached(
                "INSERT OR IGNORE INTO code (hash, ts, language, bytes, source, tests)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                c.hash,
                crate::audit::now().1,
                c.language,
                c.bytes as i64,
                c.source,
                c.tests
            ])?;
        }
        (Destination::History, Record::Audit(e)) => {
            let body = serde_json::to_string(e).unwrap_or_default();
            let decision = serde_json::to_value(e.decision)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned));
            tx.prepare_cached(
                "INSERT OR IGNORE INTO audit_events (id, ts, caller_id, endpoint, decision, outcome, body, request_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![e.id, e.ts, e.caller_id, e.endpoint, decision, e.outcome, body, e.request_id])?;
        }
    }
    Ok(())
}

/// The writer thread: take every job waiting, commit them in one transaction, answer all.
fn writer_loop(
    mut connection: Connection,
    destination: Destination,
    jobs: mpsc::Receiver<Job>,
    depth: Arc<AtomicU64>,
) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < 512 {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let result = (|| -> rusqlite::Result<u64> {
            let tx = connection.transaction()?;
            let mut count = 0;
            for job in &batch {
                for record in &job.records {
                    insert(&tx, destination, record)?;
                    count += 1;
                }
            }
            tx.commit()?;
            Ok(count)
        })();
        let reply = match result {
            Ok(count) => {
                if destination == Destination::Outbox {
                    depth.fetch_add(count, Ordering::AcqRel);
                }
                Ok(())
            }
            Err(err) => {
                tracing::error!(error = %err, "committing records failed");
                Err(err.to_string())
            }
        };
        for job in batch {
            if let Some(tx) = job.reply {
                let _ = tx.send(reply.clone());
            }
        }
    }
}

impl SqliteStore {
    /// Open the database at `path`, start the writer thread.
    pub fn open(
        path: &Path,
        destination: Destination,
        outbox_limit: u64,
    ) -> anyhow::Result<Arc<Self>> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let write_connection = open_connection(path)?;
        let reader = open_connection(path)?;
        let depth: u64 =
            reader.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))? as u64;
        let outbox_depth = Arc::new(AtomicU64::new(depth));
        let (sender, receiver) = mpsc::channel();
        let thread_depth = outbox_depth.clone();
        std::thread::Builder::new()
            .name("sandgraph-store-writer".into())
            .spawn(move || writer_loop(write_connection, destination, receiver, thread_depth))?;
        Ok(Arc::new(Self {
            writer: Mutex::new(sender),
            reader: Mutex::new(reader),
            destination,
            outbox_limit,
            outbox_depth,
            path: path.to_owned(),
            recent_code: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(RECENT_CODE_ENTRIES)
                    .unwrap_or(std::num::NonZeroUsize::MIN),
            )),
        }))
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, job: Job) -> Result<(), AppendError> {
        self.writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .map_err(|_| AppendError::Failed("the store writer stopped".into()))
    }

    /// Commit `records` durably; returns once they are on disk.
    pub async fn append(&self, records: Vec<Record>) -> Result<(), AppendError> {
        if self.destination == Destination::Outbox {
            let depth = self.outbox_depth.load(Ordering::Acquire);
            if depth + records.len() as u64 > self.outbox_limit {
                return Err(AppendError::OutboxFull(depth));
            }
        }
        let (tx, rx) = oneshot::channel();
        self.send(Job {
            records,
            reply: Some(tx),
        })?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(AppendError::Failed(err)),
            Err(_) => Err(AppendError::Failed("the store writer stopped".into())),
        }
    }

    /// Queue `records` for the next commit without waiting (denials: nothing ran).
    pub fn append_later(&self, records: Vec<Record>) {
        if let Err(err) = self.send(Job {
            records,
            reply: None,
        }) {
            tracing::error!(error = %err, "dropping audit records");
        }
    }

    /// Whether this process committed the source of `hash` within the last hour.
    pub fn code_recently_stored(&self, hash: &str) -> bool {
        let mut recent = self.recent_code.lock().unwrap_or_else(|e| e.into_inner());
        match recent.get(hash) {
            Some(at) if at.elapsed() < RECENT_CODE_TTL => true,
            Some(_) => {
                recent.pop(hash);
                false
            }
            None => false,
        }
    }

    /// Note that the source of `hash` was committed.
    pub fn remember_code(&self, hash: String) {
        self.recent_code
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(hash, std::time::Instant::now());
    }

    /// Forget every hash noted (after retention deleted source texts).
    pub fn forget_recent_code(&self) {
        self.recent_code
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Records waiting in the outbox.
    pub fn outbox_depth(&self) -> u64 {
        self.outbox_depth.load(Ordering::Acquire)
    }

    /// The outbox's bound.
    pub fn outbox_limit(&self) -> u64 {
        self.outbox_limit
    }

    /// The oldest `limit` outbox records with their sequence numbers, stopping early
    /// once they hold [`OUTBOX_BATCH_BYTES`] (source texts can be large).
    pub fn outbox_batch(&self, limit: usize) -> anyhow::Result<Vec<(i64, Record)>> {
        let connection = self.reader();
        let mut statement =
            connection.prepare_cached("SELECT seq, body FROM outbox ORDER BY seq LIMIT ?1")?;
        let rows = statement.query_map(params![limit as i64], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })?;
        let (mut out, mut bytes) = (Vec::new(), 0usize);
        for row in rows {
            if bytes >= OUTBOX_BATCH_BYTES {
                break;
            }
            let (seq, body) = row?;
            bytes += body.len();
            match serde_json::from_str(&body) {
                Ok(record) => out.push((seq, record)),
                Err(err) => tracing::error!(seq, error = %err, "unreadable outbox record skipped"),
            }
        }
        Ok(out)
    }

    /// When the oldest record waiting in the outbox was made (epoch milliseconds), if
    /// any waits (blocking: off the async workers).
    pub fn outbox_oldest_ts(&self) -> anyhow::Result<Option<i64>> {
        // A source text carries no time of its own; it is committed with (just before)
        // the record that uses it, so the first timed record among the oldest few is
        // the oldest.
        let connection = self.reader();
        let mut statement =
            connection.prepare_cached("SELECT body FROM outbox ORDER BY seq LIMIT 4")?;
        let bodies = statement.query_map([], |row| row.get::<_, String>(0))?;
        for body in bodies {
            let ts = match serde_json::from_str::<Record>(&body?) {
                Ok(Record::Execution(execution)) => Some(execution.ts),
                Ok(Record::Audit(event)) => Some(event.ts),
                Ok(Record::Code(_)) | Err(_) => None,
            };
            if ts.is_some() {
                return Ok(ts);
            }
        }
        Ok(None)
    }

    /// Forget outbox records up to and including `seq` (after Neo4j committed them).
    pub fn outbox_delete_through(&self, seq: i64) -> anyhow::Result<()> {
        let deleted = self
            .reader()
            .execute("DELETE FROM outbox WHERE seq <= ?1", params![seq])?;
        self.outbox_depth
            .fetch_sub(deleted as u64, Ordering::AcqRel);
        Ok(())
    }

    fn query_page<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        mut conditions: Vec<String>,
        mut values: Vec<SqlValue>,
        window: &Window,
        key: impl Fn(&T) -> (i64, String),
    ) -> Result<Page<T>, QueryError> {
        if let Some(since) = window.since_ms {
            conditions.push("ts >= ?".into());
            values.push(SqlValue::Integer(since));
        }
        if let Some(until) = window.until_ms {
            conditions.push("ts < ?".into());
            values.push(SqlValue::Integer(until));
        }
        if let Some((ts, id)) = &window.before {
            conditions.push("(ts < ? OR (ts = ? AND id < ?))".into());
            values.extend([
                SqlValue::Integer(*ts),
                SqlValue::Integer(*ts),
                SqlValue::Text(id.clone()),
            ]);
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT body FROM {table} {filter} ORDER BY ts DESC, id DESC LIMIT {}",
            window.limit
        );
        let connection = self.reader();
        let mut statement = connection.prepare_cached(&sql).map_err(unavailable)?;
        let rows = statement
            .query_map(params_from_iter(values), |row| row.get::<_, String>(0))
            .map_err(unavailable)?;
        let mut items = Vec::new();
        for row in rows {
            let body = row.map_err(unavailable)?;
            items.push(serde_json::from_str::<T>(&body).map_err(unavailable)?);
        }
        let last = items.last().map(&key);
        let next_cursor = window.next_cursor(
            items.len(),
            last.as_ref().map(|(ts, id)| (*ts, id.as_str())),
        );
        Ok(Page { items, next_cursor })
    }
}

impl crate::audit::AuditSink for SqliteStore {
    fn record(&self, event: AuditEvent) {
        self.append_later(vec![Record::Audit(event)]);
    }
}

fn unavailable(err: impl Into<anyhow::Error>) -> QueryError {
    QueryError::Unavailable(err.into())
}

fn eq(
    conditions: &mut Vec<String>,
    values: &mut Vec<SqlValue>,
    column: &str,
    value: &Option<String>,
) {
    if let Some(v) = value {
        conditions.push(format!("{column} = ?"));
        values.push(SqlValue::Text(v.clone()));
    }
}

/// Retention on its own connection, one bounded transaction per batch with a pause
/// between, so the writer thread waits at most one batch for the lock.
fn delete_expired_now(
    path: &Path,
    cutoffs: super::retention::Cutoffs,
    batch: usize,
) -> Result<super::retention::Swept, QueryError> {
    let connection = open_connection(path).map_err(QueryError::Unavailable)?;
    let mut swept = super::retention::Swept::default();
    let drain = |sql: &str, before: i64| -> Result<u64, QueryError> {
        let mut total = 0;
        loop {
            let deleted = connection
                .execute(sql, params![before, batch as i64])
                .map_err(unavailable)? as u64;
            total += deleted;
            if deleted < batch as u64 {
                return Ok(total);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    if let Some(before) = cutoffs.executions_before {
        swept.executions = drain(
            "DELETE FROM executions WHERE rowid IN
             (SELECT rowid FROM executions WHERE ts < ?1 LIMIT ?2)",
            before,
        )?;
        // A text whose every record is gone. (A text and its first record are committed
        // together, so none is ever briefly unreferenced.)
        swept.code = drain(
            "DELETE FROM code WHERE hash IN
             (SELECT c.hash FROM code c WHERE ?1 IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.code_hash = c.hash) LIMIT ?2)",
            before,
        )?;
    }
    if let Some(before) = cutoffs.audit_before {
        swept.audit_events = drain(
            "DELETE FROM audit_events WHERE rowid IN
             (SELECT rowid FROM audit_events WHERE ts < ?1 LIMIT ?2)",
            before,
        )?;
    }
    Ok(swept)
}

/// The history reads, synchronous; [`HistoryStore`] runs them off the async workers.
impl SqliteStore {
    fn execution_history_now(
        &self,
        filter: &HistoryFilter,
    ) -> Result<Page<ExecutionRecord>, QueryError> {
        let window = Window::new(&filter.since, &filter.until, filter.limit, &filter.cursor)?;
        let (mut conditions, mut values) = (Vec::new(), Vec::new());
        eq(&mut conditions, &mut values, "caller_id", &filter.caller);
        eq(&mut conditions, &mut values, "tool", &filter.tool);
        eq(&mut conditions, &mut values, "language", &filter.language);
        eq(&mut conditions, &mut values, "code_hash", &filter.code_hash);
        eq(&mut conditions, &mut values, "outcome", &filter.outcome);
        self.query_page(
            "executions",
            conditions,
            values,
            &window,
            |r: &ExecutionRecord| (r.ts, r.id.clone()),
        )
    }

    fn get_execution_now(&self, id: &str) -> Result<Option<ExecutionDetail>, QueryError> {
        let connection = self.reader();
        let row: Option<(String, Option<String>)> = connection
            .query_row(
                "SELECT e.body, c.hash FROM executions e LEFT JOIN code c ON c.hash = e.code_hash
                 WHERE e.id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(unavailable)?;
        drop(connection);
        let Some((body, hash)) = row else {
            return Ok(None);
        };
        let record: ExecutionRecord = serde_json::from_str(&body).map_err(unavailable)?;
        let code = match hash {
            Some(hash) => self.get_code_now(&hash)?,
            None => None,
        };
        Ok(Some(ExecutionDetail { record, code }))
    }

    fn get_code_now(&self, hash: &str) -> Result<Option<StoredCode>, QueryError> {
        self.reader()
            .prepare_cached("SELECT hash, language, bytes, source, tests FROM code WHERE hash = ?1")
            .and_then(|mut statement| {
                statement
                    .query_row(params![hash], |r| {
                        Ok(StoredCode {
                            hash: r.get(0)?,
                            language: r.get(1)?,
                            bytes: r.get::<_, i64>(2)? as u64,
                            source: r.get(3)?,
                            tests: r.get(4)?,
                        })
                    })
                    .optional()
            })
            .map_err(unavailable)
    }

    /// Keys of `table.column` starting with `prefix` (a range scan of its index), or the
    /// newest ones when `prefix` is empty.
    fn complete_now(
        &self,
        table: &str,
        column: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let connection = self.reader();
        let (sql, values) = if prefix.is_empty() {
            (
                format!("SELECT {column} FROM {table} ORDER BY ts DESC LIMIT {limit}"),
                Vec::new(),
            )
        } else {
            // `>= prefix AND < prefix + U+10FFFF` is the index-friendly `LIKE 'prefix%'`.
            (
                format!(
                    "SELECT {column} FROM {table} WHERE {column} >= ?1 AND {column} < ?2 ORDER BY {column} LIMIT {limit}"
                ),
                vec![
                    SqlValue::Text(prefix.to_owned()),
                    SqlValue::Text(format!("{prefix}\u{10FFFF}")),
                ],
            )
        };
        let mut statement = connection.prepare_cached(&sql).map_err(unavailable)?;
        let rows = statement
            .query_map(params_from_iter(values), |r| r.get::<_, String>(0))
            .map_err(unavailable)?;
        rows.collect::<Result<_, _>>().map_err(unavailable)
    }

    fn code_stats_now(&self, code_hash: &str) -> Result<CodeStats, QueryError> {
        let connection = self.reader();
        let mut statement = connection
            .prepare_cached("SELECT caller_id, outcome, duration_seconds, ts, body FROM executions WHERE code_hash = ?1 ORDER BY ts")
            .map_err(unavailable)?;
        let rows = statement
            .query_map(params![code_hash], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, f64>(2)?,
                    row.get::<_, String>(4)?,
                ))
            })
            .map_err(unavailable)?;
        let mut callers = std::collections::HashSet::new();
        let (mut runs, mut failures, mut durations) = (0u64, 0u64, Vec::new());
        let (mut first, mut last) = (None, None);
        for row in rows {
            let (caller, outcome, duration, body) = row.map_err(unavailable)?;
            runs += 1;
            callers.insert(caller);
            if outcome != "ok" {
                failures += 1;
            }
            durations.push(duration);
            let created = serde_json::from_str::<ExecutionRecord>(&body)
                .map(|r| r.created_at)
                .ok();
            if first.is_none() {
                first = created.clone();
            }
            last = created;
        }
        Ok(CodeStats {
            code_hash: code_hash.to_owned(),
            runs,
            callers: callers.len() as u64,
            failures,
            failure_rate: if runs == 0 {
                0.0
            } else {
                failures as f64 / runs as f64
            },
            p50_duration_seconds: median(durations),
            first_seen: first,
            last_seen: last,
        })
    }

    fn audit_log_now(&self, filter: &AuditFilter) -> Result<Page<AuditEvent>, QueryError> {
        let window = Window::new(&filter.since, &filter.until, filter.limit, &filter.cursor)?;
        let (mut conditions, mut values) = (Vec::new(), Vec::new());
        eq(&mut conditions, &mut values, "caller_id", &filter.caller);
        eq(&mut conditions, &mut values, "decision", &filter.event_type);
        eq(&mut conditions, &mut values, "endpoint", &filter.endpoint);
        eq(&mut conditions, &mut values, "outcome", &filter.outcome);
        eq(
            &mut conditions,
            &mut values,
            "request_id",
            &filter.request_id,
        );
        self.query_page(
            "audit_events",
            conditions,
            values,
            &window,
            |e: &AuditEvent| (e.ts, e.id.clone()),
        )
    }
}

#[async_trait]
impl HistoryStore for SqliteStore {
    async fn execution_history(
        &self,
        filter: &HistoryFilter,
    ) -> Result<Page<ExecutionRecord>, QueryError> {
        super::blocking(|| self.execution_history_now(filter))
    }

    async fn get_execution(&self, id: &str) -> Result<Option<ExecutionDetail>, QueryError> {
        super::blocking(|| self.get_execution_now(id))
    }

    async fn get_code(&self, hash: &str) -> Result<Option<StoredCode>, QueryError> {
        super::blocking(|| self.get_code_now(hash))
    }

    async fn complete_execution_ids(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        super::blocking(|| self.complete_now("executions", "id", prefix, limit))
    }

    async fn complete_code_hashes(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        super::blocking(|| self.complete_now("code", "hash", prefix, limit))
    }

    async fn code_stats(&self, code_hash: &str) -> Result<CodeStats, QueryError> {
        super::blocking(|| self.code_stats_now(code_hash))
    }

    async fn audit_log(&self, filter: &AuditFilter) -> Result<Page<AuditEvent>, QueryError> {
        super::blocking(|| self.audit_log_now(filter))
    }

    async fn delete_expired(
        &self,
        cutoffs: super::retention::Cutoffs,
        batch: usize,
    ) -> Result<super::retention::Swept, QueryError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || delete_expired_now(&path, cutoffs, batch))
            .await
            .map_err(unavailable)?
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }
}

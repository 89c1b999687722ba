//! The embedded SQLite store (WAL, synchronous commits). One writer thread group-commits
//! whatever requests are waiting, so many concurrent calls share one fsync; a reader
//! connection answers history queries. In Neo4j mode the same writer fills the outbox.
//!
//! On the embedded store a call's records are first committed to the `journal` table,
//! one row per call (an append to one B-tree: a few pages per commit), and acknowledged;
//! the same writer thread then moves journal rows into the indexed history tables in
//! large batches ([`DRAIN_AT`] calls, or when the writer is idle), where the cost of
//! touching every index is shared by hundreds of records instead of paid per commit.
//! A history read first waits for the journal to be drained, so a caller reads every
//! call acknowledged before its read began.

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
CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY, body TEXT NOT NULL);
";

/// Journal rows (calls) that make the writer move some into the history tables even
/// while requests keep arriving: a bigger batch shares each index page among more
/// records, a smaller one keeps the pause it puts on the commits behind it short.
const DRAIN_AT: usize = 128;

/// Journal rows moved in one transaction when the writer is idle or a reader waits.
const DRAIN_MAX: usize = 4096;

/// How long the writer waits for another request before it drains the journal.
const DRAIN_IDLE: std::time::Duration = std::time::Duration::from_millis(2);

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

enum Job {
    /// Commit records (one call's); answer when they are durable.
    Append {
        records: Vec<Record>,
        reply: Option<oneshot::Sender<Result<(), String>>>,
    },
    /// Move every journal row into the history tables, then answer.
    Drain(mpsc::Sender<()>),
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
    /// Journal rows committed and not yet in the history tables (embedded store).
    journal_pending: Arc<AtomicU64>,
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

/// One call's records, as the writer received them.
type Append = (Vec<Record>, Option<oneshot::Sender<Result<(), String>>>);

/// The writer thread: take every job waiting, commit them in one transaction, answer
/// all. On the embedded store (journal), move the journal into the history tables when
/// it holds [`DRAIN_AT`] calls, when no request came for [`DRAIN_IDLE`], when a reader
/// asks, and before the thread ends.
fn writer_loop(
    mut connection: Connection,
    destination: Destination,
    jobs: mpsc::Receiver<Job>,
    depth: Arc<AtomicU64>,
    pending: Arc<AtomicU64>,
) {
    let journal = destination == Destination::History;
    // After a failed drain, the next try waits (the error is logged once per try).
    let mut drain_after = std::time::Instant::now();
    let mut drain = |connection: &mut Connection, force: bool, slice: Option<usize>| {
        if !force && std::time::Instant::now() < drain_after {
            return;
        }
        if let Err(err) = drain_journal(connection, &pending, slice) {
            tracing::error!(error = %err, "moving the journal into the history tables failed; retrying in 1 s");
            drain_after = std::time::Instant::now() + std::time::Duration::from_secs(1);
        }
    };
    // Rows a crash left are moved first, on either destination: a data directory the
    // embedded store used may be reopened with Neo4j configured, and its acknowledged
    // calls belong in the local history tables either way (not stranded in the journal).
    if pending.load(Ordering::Acquire) > 0 {
        drain(&mut connection, true, None);
    }
    loop {
        let first = if journal && pending.load(Ordering::Acquire) > 0 {
            match jobs.recv_timeout(DRAIN_IDLE) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    drain(&mut connection, false, None);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match jobs.recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        };
        let (mut appends, mut readers): (Vec<Append>, Vec<mpsc::Sender<()>>) =
            (Vec::new(), Vec::new());
        let mut take = |job: Job| match job {
            Job::Append { records, reply } => appends.push((records, reply)),
            Job::Drain(reader) => readers.push(reader),
        };
        take(first);
        for _ in 0..511 {
            match jobs.try_recv() {
                Ok(job) => take(job),
                Err(_) => break,
            }
        }
        let appended = appends.len();
        if !appends.is_empty() {
            let result = commit(&mut connection, destination, &appends);
            let reply = match result {
                Ok(count) => {
                    match destination {
                        Destination::Outbox => depth.fetch_add(count, Ordering::AcqRel),
                        Destination::History => {
                            pending.fetch_add(appends.len() as u64, Ordering::AcqRel)
                        }
                    };
                    Ok(())
                }
                Err(err) => {
                    tracing::error!(error = %err, "committing records failed");
                    Err(err.to_string())
                }
            };
            for (_, answer) in appends {
                if let Some(tx) = answer {
                    let _ = tx.send(reply.clone());
                }
            }
        }
        if journal && pending.load(Ordering::Acquire) > 0 {
            if !readers.is_empty() {
                drain(&mut connection, true, None);
            } else if pending.load(Ordering::Acquire) >= DRAIN_AT as u64 {
                // One slice, then back to the requests; at least twice what just
                // arrived, so draining keeps ahead of any arrival rate.
                drain(&mut connection, false, Some(DRAIN_AT.max(2 * appended)));
            }
        }
        for reader in readers {
            let _ = reader.send(());
        }
    }
    if journal && pending.load(Ordering::Acquire) > 0 {
        drain(&mut connection, true, None);
    }
}

/// Commit the calls' records in one transaction: a journal row per call (embedded
/// store) or an outbox row per record (Neo4j). Returns the number of records.
fn commit(
    connection: &mut Connection,
    destination: Destination,
    appends: &[Append],
) -> rusqlite::Result<u64> {
    let tx = connection.transaction()?;
    let mut count = 0;
    for (records, _) in appends {
        match destination {
            Destination::History => {
                let body = serde_json::to_string(records).unwrap_or_default();
                tx.prepare_cached("INSERT INTO journal (body) VALUES (?1)")?
                    .execute(params![body])?;
            }
            Destination::Outbox => {
                for record in records {
                    insert(&tx, destination, record)?;
                }
            }
        }
        count += records.len() as u64;
    }
    tx.commit()?;
    Ok(count)
}

/// Move journal rows into the history tables, whole calls at a time (a source text and
/// the record that first uses it always land together), oldest first: `slice` rows in
/// one transaction, or (None) until none is left.
fn drain_journal(
    connection: &mut Connection,
    pending: &AtomicU64,
    slice: Option<usize>,
) -> rusqlite::Result<()> {
    let limit = slice.unwrap_or(DRAIN_MAX).min(DRAIN_MAX);
    loop {
        let tx = connection.transaction()?;
        let mut rows = Vec::new();
        {
            let mut statement =
                tx.prepare_cached("SELECT seq, body FROM journal ORDER BY seq LIMIT ?1")?;
            let mut query = statement.query(params![limit as i64])?;
            let mut bytes = 0usize;
            while bytes < OUTBOX_BATCH_BYTES
                && let Some(row) = query.next()?
            {
                let (seq, body) = (row.get::<_, i64>(0)?, row.get::<_, String>(1)?);
                bytes += body.len();
                rows.push((seq, body));
            }
        }
        let Some(&(last, _)) = rows.last() else {
            tx.commit()?;
            pending.store(0, Ordering::Release);
            return Ok(());
        };
        for (seq, body) in &rows {
            match serde_json::from_str::<Vec<Record>>(body) {
                Ok(records) => {
                    for record in &records {
                        insert(&tx, Destination::History, record)?;
                    }
                }
                Err(err) => tracing::error!(seq, error = %err, "unreadable journal row skipped"),
            }
        }
        tx.prepare_cached("DELETE FROM journal WHERE seq <= ?1")?
            .execute(params![last])?;
        tx.commit()?;
        let moved = rows.len() as u64;
        let _ = pending.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            Some(n.saturating_sub(moved))
        });
        if slice.is_some() || (rows.len() < limit && pending.load(Ordering::Acquire) == 0) {
            return Ok(());
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
        let journaled: u64 =
            reader.query_row("SELECT COUNT(*) FROM journal", [], |r| r.get::<_, i64>(0))? as u64;
        let journal_pending = Arc::new(AtomicU64::new(journaled));
        let (sender, receiver) = mpsc::channel();
        let (thread_depth, thread_pending) = (outbox_depth.clone(), journal_pending.clone());
        std::thread::Builder::new()
            .name("sandgraph-store-writer".into())
            .spawn(move || {
                writer_loop(
                    write_connection,
                    destination,
                    receiver,
                    thread_depth,
                    thread_pending,
                )
            })?;
        Ok(Arc::new(Self {
            writer: Mutex::new(sender),
            reader: Mutex::new(reader),
            destination,
            outbox_limit,
            outbox_depth,
            journal_pending,
            path: path.to_owned(),
            recent_code: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(RECENT_CODE_ENTRIES)
                    .unwrap_or(std::num::NonZeroUsize::MIN),
            )),
        }))
    }

    /// Wait until every call acknowledged so far is in the history tables (blocking;
    /// immediate when the journal is empty).
    fn settle(&self) {
        if self.journal_pending.load(Ordering::Acquire) > 0 {
            let (tx, rx) = mpsc::channel();
            if self.send(Job::Drain(tx)).is_ok() {
                let _ = rx.recv();
            }
        }
    }

    /// The reader connection, after [`Self::settle`]: a read sees every call
    /// acknowledged before it began.
    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.settle();
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
        self.send(Job::Append {
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
        if let Err(err) = self.send(Job::Append {
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
        // What was acknowledged before the sweep is swept like the rest.
        super::blocking(|| self.settle());
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || delete_expired_now(&path, cutoffs, batch))
            .await
            .map_err(unavailable)?
    }

    fn backend(&self) -> &'static str {
        "embedded"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditDecision, Transport};
    use crate::store::ExecutionRecord;

    fn execution(i: u64, code_hash: &str) -> ExecutionRecord {
        let ts = 1_700_000_000_000 + i as i64;
        ExecutionRecord {
            id: format!("exec-{i:06}"),
            ts,
            created_at: "2023-11-14T22:13:20Z".into(),
            tool: "execute_code".into(),
            caller_id: "caller-1".into(),
            caller_name: "one".into(),
            role: "agent".into(),
            transport: "rest".into(),
            request_id: format!("req-{i}"),
            language: Some("python".into()),
            code_hash: Some(code_hash.into()),
            outcome: "ok".into(),
            return_code: Some(0),
            duration_seconds: 0.001,
            cached: false,
            limits: None,
            stdout: Some(format!("{i}\n")),
            stderr: Some(String::new()),
            source_kept: Some(true),
        }
    }

    fn audit(i: u64) -> AuditEvent {
        AuditEvent {
            id: format!("audit-{i:06}"),
            at: "2023-11-14T22:13:20Z".into(),
            ts: 1_700_000_000_000 + i as i64,
            request_id: format!("req-{i}"),
            caller_id: "caller-1".into(),
            caller_name: "one".into(),
            role: Some(crate::auth::Role::Agent),
            endpoint: "execute_code".into(),
            transport: Transport::Rest,
            decision: AuditDecision::Allowed,
            outcome: Some("ok".into()),
            detail: None,
            duration_ms: Some(1.0),
        }
    }

    /// One call's records, as the call path commits them (a new code's text first).
    fn call(i: u64) -> Vec<Record> {
        let hash = format!("{i:064x}");
        vec![
            Record::Audit(audit(i)),
            Record::Code(StoredCode::new(
                hash.clone(),
                Some("python".into()),
                format!("print({i})"),
                None,
            )),
            Record::Execution(execution(i, &hash)),
        ]
    }

    fn raw_count(path: &Path, table: &str) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    fn all(limit: u32) -> HistoryFilter {
        HistoryFilter {
            limit: Some(limit),
            ..HistoryFilter::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_sees_every_call_acknowledged_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db"), Destination::History, 0).unwrap();
        for round in 0..5u64 {
            // Fewer calls than make the writer drain on its own, read at once.
            let calls = 1 + round * 7;
            let mut tasks = Vec::new();
            for j in 0..calls {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    store.append(call(round * 100 + j)).await.unwrap()
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            let page = store.execution_history(&all(200)).await.unwrap();
            let expected: u64 = (0..=round).map(|r| 1 + r * 7).sum();
            assert_eq!(page.items.len() as u64, expected, "round {round}");
            let events = store
                .audit_log(&AuditFilter {
                    limit: Some(200),
                    ..AuditFilter::default()
                })
                .await
                .unwrap();
            assert_eq!(events.items.len() as u64, expected, "round {round}");
            let last = round * 100 + calls - 1;
            let detail = store
                .get_execution(&format!("exec-{last:06}"))
                .await
                .unwrap()
                .expect("the last acknowledged call is readable at once");
            assert_eq!(detail.code.unwrap().source, format!("print({last})"));
        }
        assert_eq!(store.journal_pending.load(Ordering::Acquire), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_drains_the_journal_without_readers_under_load_and_when_idle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = SqliteStore::open(&path, Destination::History, 0).unwrap();
        // More than DRAIN_AT calls from 8 callers at once: slices are drained between
        // commits, the rest when the writer goes idle.
        let mut tasks = Vec::new();
        for worker in 0..8u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for j in 0..100u64 {
                    store.append(call(worker * 1000 + j)).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while raw_count(&path, "journal") > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "journal never drained"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(raw_count(&path, "executions"), 800);
        assert_eq!(raw_count(&path, "audit_events"), 800);
        assert_eq!(raw_count(&path, "code"), 800);
        assert_eq!(store.journal_pending.load(Ordering::Acquire), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn journal_rows_left_by_a_crash_are_moved_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        // A process that died after acknowledging calls, before moving them: journal
        // rows only, one of them unreadable (it is skipped, the others are not lost).
        drop(open_connection(&path).unwrap());
        {
            let connection = Connection::open(&path).unwrap();
            for i in 0..30u64 {
                let body = serde_json::to_string(&call(i)).unwrap();
                connection
                    .execute("INSERT INTO journal (body) VALUES (?1)", params![body])
                    .unwrap();
            }
            connection
                .execute("INSERT INTO journal (body) VALUES ('not json')", [])
                .unwrap();
        }
        let store = SqliteStore::open(&path, Destination::History, 0).unwrap();
        assert_eq!(store.journal_pending.load(Ordering::Acquire), 31);
        let page = store.execution_history(&all(100)).await.unwrap();
        assert_eq!(page.items.len(), 30);
        assert_eq!(page.items[0].id, "exec-000029", "newest first");
        assert_eq!(raw_count(&path, "journal"), 0);
        assert_eq!(raw_count(&path, "code"), 30);
        // Moving is idempotent: a row moved twice (a crash between the move and its
        // commit cannot do that, but a repeated id is ignored anyway) adds nothing.
        store.append(call(5)).await.unwrap();
        assert_eq!(
            store
                .execution_history(&all(100))
                .await
                .unwrap()
                .items
                .len(),
            30
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_committed_when_the_store_closes_are_moved_before_its_writer_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = SqliteStore::open(&path, Destination::History, 0).unwrap();
        for i in 0..20u64 {
            store.append(call(i)).await.unwrap();
        }
        drop(store);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while raw_count(&path, "journal") > 0 || raw_count(&path, "executions") < 20 {
            assert!(std::time::Instant::now() < deadline, "not moved at close");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn journal_rows_are_moved_when_the_directory_is_reopened_with_neo4j() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(open_connection(&path).unwrap());
        {
            let connection = Connection::open(&path).unwrap();
            for i in 0..3u64 {
                let body = serde_json::to_string(&call(i)).unwrap();
                connection
                    .execute("INSERT INTO journal (body) VALUES (?1)", params![body])
                    .unwrap();
            }
        }
        let store = SqliteStore::open(&path, Destination::Outbox, 1000).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while raw_count(&path, "journal") > 0 {
            assert!(std::time::Instant::now() < deadline, "journal stranded");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(raw_count(&path, "executions"), 3);
        assert_eq!(
            store.outbox_depth(),
            0,
            "old calls are not shipped as new ones"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_outbox_destination_keeps_one_row_per_record_and_no_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = SqliteStore::open(&path, Destination::Outbox, 1000).unwrap();
        store.append(call(1)).await.unwrap();
        assert_eq!(store.outbox_depth(), 3);
        assert_eq!(raw_count(&path, "outbox"), 3);
        assert_eq!(raw_count(&path, "journal"), 0);
        let batch = store.outbox_batch(10).unwrap();
        assert_eq!(batch.len(), 3);
    }
}

//! Workspace metadata: who owns each workspace, when it was last used (its expiry is
//! `last_used + ttl`), its quotas, what it holds and what a call in progress has
//! reserved of the global disk cap. The content lives under the data dir
//! ([`crate::workspace`]); this is the part a second replica (or a live session) must be
//! able to find, so it sits behind [`WorkspaceStore`]. [`SqliteWorkspaceStore`] is the
//! embedded implementation, in the same database file as the rest of the embedded store.

use std::path::Path;
use std::sync::Mutex;

use anyhow::Context as _;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// One workspace's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceMeta {
    /// The handle (`ws_` + 32 hex digits: 128 random bits).
    pub id: String,
    /// The caller id that created it; the only caller that may use it.
    pub owner: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// Last use (any call naming it), milliseconds since the Unix epoch.
    pub last_used_ms: i64,
    /// Idle time after which it expires, in milliseconds.
    pub ttl_ms: i64,
    /// Most bytes its files may hold.
    pub quota_bytes: u64,
    /// Most entries (files, directories, links) it may hold.
    pub max_files: u64,
    /// Bytes its files hold (as of its last call).
    pub used_bytes: u64,
    /// Entries it holds (as of its last call).
    pub used_files: u64,
}

impl WorkspaceMeta {
    /// When it expires unless used again, milliseconds since the Unix epoch.
    pub fn expires_ms(&self) -> i64 {
        self.last_used_ms.saturating_add(self.ttl_ms)
    }

    /// Whether it has expired at `now_ms`.
    pub fn expired_at(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_ms()
    }
}

/// What [`WorkspaceStore::create`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The workspace exists now.
    Yes,
    /// The owner already has this many live workspaces (the cap).
    OverCap(u64),
}

/// A call's hold on a workspace: its metadata, and how many bytes of the global disk
/// cap are reserved for it until [`WorkspaceStore::release`].
#[derive(Debug, Clone)]
pub struct Reservation {
    /// The workspace as of the start of the call.
    pub meta: WorkspaceMeta,
    /// Bytes the call may add (within both its workspace quota and the global cap).
    pub granted_bytes: u64,
    /// Whether the global cap, not the workspace quota, limited the grant.
    pub disk_limited: bool,
}

/// Where workspace metadata lives. Every method is one atomic step, so concurrent
/// calls (and, with a shared backend, replicas) cannot overrun a cap between a check and
/// its update.
#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    /// Insert `meta` unless its owner already has `max_live` live workspaces at `now_ms`.
    async fn create(
        &self,
        meta: &WorkspaceMeta,
        max_live: u64,
        now_ms: i64,
    ) -> anyhow::Result<Created>;
    /// The metadata of `id`, expired or not.
    async fn get(&self, id: &str) -> anyhow::Result<Option<WorkspaceMeta>>;
    /// Mark `id` used at `now_ms` and reserve up to `want_bytes` for a call, within the
    /// workspace's quota and `disk_cap` (bytes held and reserved by every workspace).
    /// `None` if `id` does not exist.
    async fn reserve(
        &self,
        id: &str,
        want_bytes: u64,
        disk_cap: u64,
        now_ms: i64,
    ) -> anyhow::Result<Option<Reservation>>;
    /// End a call: record what `id` holds now, drop its reservation, mark it used.
    /// Whether `id` still exists (it may have been deleted meanwhile).
    async fn release(
        &self,
        id: &str,
        used_bytes: u64,
        used_files: u64,
        now_ms: i64,
    ) -> anyhow::Result<bool>;
    /// Forget `id`; whether it existed.
    async fn remove(&self, id: &str) -> anyhow::Result<bool>;
    /// Up to `limit` ids expired at `now_ms`.
    async fn expired(&self, now_ms: i64, limit: u32) -> anyhow::Result<Vec<String>>;
    /// Every id (to find content left without metadata).
    async fn ids(&self) -> anyhow::Result<Vec<String>>;
    /// Drop every reservation (at start-up: no call of this process is in flight).
    async fn clear_reservations(&self) -> anyhow::Result<()>;
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS workspaces (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_ms INTEGER NOT NULL,
    last_used_ms INTEGER NOT NULL, ttl_ms INTEGER NOT NULL, quota_bytes INTEGER NOT NULL,
    max_files INTEGER NOT NULL, used_bytes INTEGER NOT NULL DEFAULT 0,
    used_files INTEGER NOT NULL DEFAULT 0, reserved_bytes INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS workspaces_owner ON workspaces (owner);
CREATE INDEX IF NOT EXISTS workspaces_expiry ON workspaces (last_used_ms);
";

/// Workspace metadata in the embedded SQLite database.
///
/// Durability: creating and removing a workspace commit with a full fsync; the per-call
/// updates (last use, usage, reservations) commit without one (WAL, `synchronous =
/// NORMAL`): they survive a process crash, and after a power loss at worst the last
/// moments of use are lost (a workspace expires slightly early; usage is recounted by
/// its next call).
pub struct SqliteWorkspaceStore {
    connection: Mutex<Connection>,
}

const COLUMNS: &str = "id, owner, created_ms, last_used_ms, ttl_ms, quota_bytes, max_files, \
used_bytes, used_files";

fn meta_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<WorkspaceMeta> {
    Ok(WorkspaceMeta {
        id: row.get(0)?,
        owner: row.get(1)?,
        created_ms: row.get(2)?,
        last_used_ms: row.get(3)?,
        ttl_ms: row.get(4)?,
        quota_bytes: row.get::<_, i64>(5)?.max(0) as u64,
        max_files: row.get::<_, i64>(6)?.max(0) as u64,
        used_bytes: row.get::<_, i64>(7)?.max(0) as u64,
        used_files: row.get::<_, i64>(8)?.max(0) as u64,
    })
}

fn sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl SqliteWorkspaceStore {
    /// Open (creating if needed) the workspace table in the database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let connection =
            Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        connection.busy_timeout(std::time::Duration::from_secs(10))?;
        connection.execute_batch(SCHEMA)?;
        connection.execute_batch("PRAGMA synchronous = NORMAL;")?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    fn with<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        super::blocking(|| {
            let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
            work(&mut connection)
        })
    }

    /// Run `work` in a transaction committed with a full fsync.
    fn durably<T>(
        connection: &mut Connection,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        connection.execute_batch("PRAGMA synchronous = FULL;")?;
        let result = (|| {
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = work(&tx)?;
            tx.commit()?;
            Ok(value)
        })();
        connection.execute_batch("PRAGMA synchronous = NORMAL;")?;
        result
    }
}

#[async_trait]
impl WorkspaceStore for SqliteWorkspaceStore {
    async fn create(
        &self,
        meta: &WorkspaceMeta,
        max_live: u64,
        now_ms: i64,
    ) -> anyhow::Result<Created> {
        self.with(|connection| {
            Self::durably(connection, |tx| {
                let live: i64 = tx
                    .prepare_cached(
                        "SELECT count(*) FROM workspaces WHERE owner = ?1 AND last_used_ms + ttl_ms > ?2",
                    )?
                    .query_row(params![meta.owner, now_ms], |row| row.get(0))?;
                let live = live.max(0) as u64;
                if live >= max_live {
                    return Ok(Created::OverCap(live));
                }
                tx.prepare_cached(&format!(
                    "INSERT INTO workspaces ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ))?
                .execute(params![
                    meta.id,
                    meta.owner,
                    meta.created_ms,
                    meta.last_used_ms,
                    meta.ttl_ms,
                    sql_int(meta.quota_bytes),
                    sql_int(meta.max_files),
                    sql_int(meta.used_bytes),
                    sql_int(meta.used_files),
                ])?;
                Ok(Created::Yes)
            })
        })
    }

    async fn get(&self, id: &str) -> anyhow::Result<Option<WorkspaceMeta>> {
        self.with(|connection| {
            Ok(connection
                .prepare_cached(&format!("SELECT {COLUMNS} FROM workspaces WHERE id = ?1"))?
                .query_row(params![id], meta_from_row)
                .optional()?)
        })
    }

    async fn reserve(
        &self,
        id: &str,
        want_bytes: u64,
        disk_cap: u64,
        now_ms: i64,
    ) -> anyhow::Result<Option<Reservation>> {
        self.with(|connection| {
            // Immediate: it reads then writes, and a deferred transaction that other
            // connections wrote under would fail with SQLITE_BUSY instead of waiting.
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(meta) = tx
                .prepare_cached(&format!("SELECT {COLUMNS} FROM workspaces WHERE id = ?1"))?
                .query_row(params![id], meta_from_row)
                .optional()?
            else {
                return Ok(None);
            };
            // Everything held or reserved by the other workspaces, plus what this one holds.
            let others: i64 = tx
                .prepare_cached(
                    "SELECT coalesce(sum(used_bytes + reserved_bytes), 0) FROM workspaces WHERE id != ?1",
                )?
                .query_row(params![id], |row| row.get(0))?;
            let disk_free = disk_cap
                .saturating_sub(others.max(0) as u64)
                .saturating_sub(meta.used_bytes);
            let quota_free = meta.quota_bytes.saturating_sub(meta.used_bytes);
            let granted = want_bytes.min(quota_free).min(disk_free);
            tx.prepare_cached(
                "UPDATE workspaces SET reserved_bytes = ?2, last_used_ms = max(last_used_ms, ?3) WHERE id = ?1",
            )?
            .execute(params![id, sql_int(granted), now_ms])?;
            tx.commit()?;
            Ok(Some(Reservation {
                meta: WorkspaceMeta {
                    last_used_ms: meta.last_used_ms.max(now_ms),
                    ..meta
                },
                granted_bytes: granted,
                disk_limited: disk_free < quota_free.min(want_bytes),
            }))
        })
    }

    async fn release(
        &self,
        id: &str,
        used_bytes: u64,
        used_files: u64,
        now_ms: i64,
    ) -> anyhow::Result<bool> {
        self.with(|connection| {
            let changed = connection
                .prepare_cached(
                    "UPDATE workspaces SET used_bytes = ?2, used_files = ?3, reserved_bytes = 0,
                     last_used_ms = max(last_used_ms, ?4) WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    sql_int(used_bytes),
                    sql_int(used_files),
                    now_ms
                ])?;
            Ok(changed > 0)
        })
    }

    async fn remove(&self, id: &str) -> anyhow::Result<bool> {
        self.with(|connection| {
            Self::durably(connection, |tx| {
                let removed = tx
                    .prepare_cached("DELETE FROM workspaces WHERE id = ?1")?
                    .execute(params![id])?;
                Ok(removed > 0)
            })
        })
    }

    async fn expired(&self, now_ms: i64, limit: u32) -> anyhow::Result<Vec<String>> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT id FROM workspaces WHERE last_used_ms + ttl_ms <= ?1 ORDER BY last_used_ms LIMIT ?2",
            )?;
            let ids = statement
                .query_map(params![now_ms, limit], |row| row.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(ids)
        })
    }

    async fn ids(&self) -> anyhow::Result<Vec<String>> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached("SELECT id FROM workspaces")?;
            let ids = statement
                .query_map([], |row| row.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(ids)
        })
    }

    async fn clear_reservations(&self) -> anyhow::Result<()> {
        self.with(|connection| {
            connection.execute(
                "UPDATE workspaces SET reserved_bytes = 0 WHERE reserved_bytes != 0",
                [],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, owner: &str, now: i64) -> WorkspaceMeta {
        WorkspaceMeta {
            id: id.to_owned(),
            owner: owner.to_owned(),
            created_ms: now,
            last_used_ms: now,
            ttl_ms: 1000,
            quota_bytes: 100,
            max_files: 10,
            used_bytes: 0,
            used_files: 0,
        }
    }

    fn store() -> (tempfile::TempDir, SqliteWorkspaceStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteWorkspaceStore::open(&dir.path().join("db.sqlite")).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn the_per_owner_cap_counts_only_live_workspaces() {
        let (_dir, store) = store();
        assert_eq!(
            store.create(&meta("a", "o", 0), 2, 0).await.unwrap(),
            Created::Yes
        );
        assert_eq!(
            store.create(&meta("b", "o", 0), 2, 0).await.unwrap(),
            Created::Yes
        );
        assert_eq!(
            store.create(&meta("c", "o", 0), 2, 0).await.unwrap(),
            Created::OverCap(2)
        );
        assert_eq!(
            store.create(&meta("c", "other", 0), 2, 0).await.unwrap(),
            Created::Yes
        );
        // Once the first two have expired, the owner may create again.
        assert_eq!(
            store.create(&meta("d", "o", 1000), 2, 1000).await.unwrap(),
            Created::Yes
        );
        let mut expired = store.expired(1000, 10).await.unwrap();
        expired.sort();
        assert_eq!(expired, vec!["a", "b", "c"]);
    }

    #[tokio::test]
    async fn reservations_respect_the_quota_and_the_global_cap() {
        let (_dir, store) = store();
        store.create(&meta("a", "o", 0), 9, 0).await.unwrap();
        store.create(&meta("b", "o", 0), 9, 0).await.unwrap();
        let a = store.reserve("a", 1000, 150, 1).await.unwrap().unwrap();
        assert_eq!((a.granted_bytes, a.disk_limited), (100, false));
        // a holds a reservation of 100: only 50 of the 150 remain for b.
        let b = store.reserve("b", 1000, 150, 1).await.unwrap().unwrap();
        assert_eq!((b.granted_bytes, b.disk_limited), (50, true));
        assert!(store.release("a", 30, 2, 2).await.unwrap());
        let b = store.reserve("b", 1000, 150, 3).await.unwrap().unwrap();
        assert_eq!(b.granted_bytes, 100);
        let a = store.get("a").await.unwrap().unwrap();
        assert_eq!((a.used_bytes, a.used_files, a.last_used_ms), (30, 2, 2));
        assert!(store.remove("a").await.unwrap());
        assert!(!store.release("a", 0, 0, 4).await.unwrap());
        assert!(store.reserve("a", 1, 150, 4).await.unwrap().is_none());
    }
}

//! Who is calling and what they may do: opaque bearer tokens stored only as SHA-256
//! hashes in the embedded database, three roles, and the table of which role each
//! endpoint needs. Transports authenticate here; tools never see tokens.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a caller may do. Ordered: each role has every right of the ones before it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Run the tools (execute, lint, test, generate, graph query).
    Agent,
    /// Agent + execution history and graph writes.
    Developer,
    /// Everything, including the audit log and token management.
    Admin,
}

impl Role {
    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Developer => "developer",
            Role::Admin => "admin",
        }
    }

    /// Parse a role name.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "agent" => Some(Role::Agent),
            "developer" => Some(Role::Developer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Every endpoint that needs a caller, with the role it requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `execute_code`
    ExecuteCode,
    /// `lint_code`
    LintCode,
    /// `run_tests`
    RunTests,
    /// `generate_code`
    GenerateCode,
    /// `graph_query`
    GraphQuery,
    /// `graph_upsert`
    GraphUpsert,
    /// `execution_history`, `get_execution`, `code_stats`
    History,
    /// `audit_log`
    AuditLog,
    /// prompts and resources
    Prompts,
    /// token management (`/admin/tokens`)
    Tokens,
    /// workspaces and their files (`create_workspace`, `write_file`, ..., resource reads
    /// and downloads)
    Workspaces,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 11] = [
        Endpoint::ExecuteCode,
        Endpoint::LintCode,
        Endpoint::RunTests,
        Endpoint::GenerateCode,
        Endpoint::GraphQuery,
        Endpoint::GraphUpsert,
        Endpoint::History,
        Endpoint::AuditLog,
        Endpoint::Prompts,
        Endpoint::Tokens,
        Endpoint::Workspaces,
    ];

    /// The name used in config keys, metrics and audit events.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::ExecuteCode => "execute_code",
            Endpoint::LintCode => "lint_code",
            Endpoint::RunTests => "run_tests",
            Endpoint::GenerateCode => "generate_code",
            Endpoint::GraphQuery => "graph_query",
            Endpoint::GraphUpsert => "graph_upsert",
            Endpoint::History => "history",
            Endpoint::AuditLog => "audit_log",
            Endpoint::Prompts => "prompts",
            Endpoint::Tokens => "tokens",
            Endpoint::Workspaces => "workspaces",
        }
    }

    /// The least role allowed to call it.
    pub fn required_role(self) -> Role {
        match self {
            Endpoint::ExecuteCode
            | Endpoint::LintCode
            | Endpoint::RunTests
            | Endpoint::GenerateCode
            | Endpoint::GraphQuery
            | Endpoint::Prompts
            | Endpoint::Workspaces => Role::Agent,
            Endpoint::GraphUpsert | Endpoint::History => Role::Developer,
            Endpoint::AuditLog | Endpoint::Tokens => Role::Admin,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caller {
    /// Stable id (the token id; `local` for stdio).
    pub id: String,
    /// Human name given at token creation.
    pub name: String,
    /// Its role.
    pub role: Role,
}

impl Caller {
    /// The caller of `sandgraph mcp` on stdio: the local user, who started the process.
    pub fn local_user() -> Self {
        let name = std::env::var("USER").unwrap_or_else(|_| "local".to_owned());
        Caller {
            id: "local".to_owned(),
            name,
            role: Role::Admin,
        }
    }

    /// Whether the caller's role allows `endpoint`.
    pub fn may(&self, endpoint: Endpoint) -> bool {
        self.role >= endpoint.required_role()
    }
}

/// A token's listing (never its secret).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TokenInfo {
    /// Token id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Revocation time, if revoked.
    pub revoked_at: Option<String>,
}

/// Tokens, stored as SHA-256 hashes in SQLite, with every active one also held in
/// memory so that authenticating a request costs no database read and no thread
/// hand-off ([`TokenStore::cached`]).
///
/// The memory copy is never stale when it answers: every change made through a
/// `TokenStore` (this server's `create_token`/`revoke_token`, or `sandgraph token ...` in
/// another process) rewrites a small *change stamp* file next to the database, and
/// [`TokenStore::cached`] compares the file's identity (inode, size, mtime: one `stat`;
/// every change makes it longer)
/// with the one the copy was loaded at. If they differ, the caller reloads off the async
/// workers ([`TokenStore::authenticate`]), so a token revoked by the CLI is refused on
/// the very next request. A periodic reload ([`TokenStore::reload`], every
/// `SANDGRAPH_TOKEN_RELOAD_MS`) also catches edits that bypass `TokenStore` (e.g. the
/// `sqlite3` shell).
pub struct TokenStore {
    connection: Mutex<Connection>,
    stamp_path: PathBuf,
    /// `None` when the memory copy is off (`SANDGRAPH_TOKEN_RELOAD_MS=0`).
    active: Option<RwLock<Active>>,
}

/// The active tokens as of `stamp`.
struct Active {
    stamp: Option<Stamp>,
    by_hash: HashMap<[u8; 32], Caller>,
}

/// A change stamp file's identity.
type Stamp = (u64, u64, i64, i64);

fn stamp_of(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.ino(), meta.len(), meta.mtime(), meta.mtime_nsec()))
}

/// The stamp file is replaced by a fresh one past this size (about 30,000 changes).
const STAMP_ROTATE_BYTES: u64 = 1 << 20;

/// What the memory copy says about a presented token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// A valid token's caller.
    Valid(Caller),
    /// Not a valid token (unknown or revoked).
    Invalid,
    /// Tokens changed since the copy was loaded (or the copy is off): ask
    /// [`TokenStore::authenticate`], off the async workers.
    Unknown,
}

impl Cached {
    /// The answer, if the memory copy could give one.
    fn answer(self) -> Option<Option<Caller>> {
        match self {
            Cached::Valid(caller) => Some(Some(caller)),
            Cached::Invalid => Some(None),
            Cached::Unknown => None,
        }
    }
}

/// Prefix of every token we mint (makes leaked tokens easy to grep for).
const TOKEN_PREFIX: &str = "sg_";

fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenStore {
    /// Open (creating if needed) the token table in the database at `path`, with the
    /// memory copy of active tokens on.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        Self::open_with(path, true)
    }

    /// [`Self::open`]; `in_memory: false` reads the database on every check.
    pub fn open_with(path: &Path, in_memory: bool) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let connection =
            Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS tokens (
                 id TEXT PRIMARY KEY,
                 name TEXT NOT NULL,
                 role TEXT NOT NULL,
                 hash BLOB NOT NULL UNIQUE,
                 created_at TEXT NOT NULL,
                 revoked_at TEXT
             );",
        )?;
        let mut stamp_path = path.as_os_str().to_owned();
        stamp_path.push(".tokens-changed");
        let store = Self {
            connection: Mutex::new(connection),
            stamp_path: PathBuf::from(stamp_path),
            active: in_memory.then(|| {
                RwLock::new(Active {
                    stamp: None,
                    by_hash: HashMap::new(),
                })
            }),
        };
        store.reload()?;
        Ok(store)
    }

    /// What the memory copy says about `token`: no database read, one `stat`.
    pub fn cached(&self, token: &str) -> Cached {
        let Some(active) = &self.active else {
            return Cached::Unknown;
        };
        let now = stamp_of(&self.stamp_path);
        let active = active.read().unwrap_or_else(|e| e.into_inner());
        if now != active.stamp {
            return Cached::Unknown;
        }
        // A lookup by SHA-256 of a 256-bit secret: timing tells an attacker nothing
        // about a valid token's hash that could help guess the token.
        match active.by_hash.get(&hash_token(token)) {
            Some(caller) => Cached::Valid(caller.clone()),
            None => Cached::Invalid,
        }
    }

    /// Reload the memory copy from the database (blocking; off the async workers).
    pub fn reload(&self) -> anyhow::Result<()> {
        let Some(active) = &self.active else {
            return Ok(());
        };
        // The stamp first: a change after this read makes the copy stale again.
        let stamp = stamp_of(&self.stamp_path);
        let by_hash = {
            let connection = self.lock();
            let mut statement = connection.prepare_cached(
                "SELECT id, name, role, hash FROM tokens WHERE revoked_at IS NULL",
            )?;
            let rows = statement.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Vec<u8>>(3)?,
                ))
            })?;
            let mut by_hash = HashMap::new();
            for row in rows {
                let (id, name, role, hash) = row?;
                let (Some(role), Ok(hash)) = (Role::parse(&role), <[u8; 32]>::try_from(hash))
                else {
                    continue;
                };
                by_hash.insert(hash, Caller { id, name, role });
            }
            by_hash
        };
        *active.write().unwrap_or_else(|e| e.into_inner()) = Active { stamp, by_hash };
        Ok(())
    }

    /// Tell every process holding a memory copy (this one included) that tokens changed:
    /// append a line to the stamp file, so its size grows with every change (its mtime
    /// alone is too coarse to tell two quick changes apart). Past [`STAMP_ROTATE_BYTES`]
    /// it is replaced by a fresh file (a new inode).
    fn changed(&self) -> anyhow::Result<()> {
        use std::io::Write as _;
        let line = format!("{}\n", chrono::Utc::now().to_rfc3339());
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stamp_path)
            .with_context(|| format!("opening {}", self.stamp_path.display()))?;
        file.write_all(line.as_bytes())
            .with_context(|| format!("writing {}", self.stamp_path.display()))?;
        if file.metadata().map(|m| m.len()).unwrap_or(0) > STAMP_ROTATE_BYTES {
            let mut fresh = self.stamp_path.as_os_str().to_owned();
            fresh.push(format!(".{}", uuid::Uuid::new_v4().simple()));
            let fresh = PathBuf::from(fresh);
            std::fs::write(&fresh, line)?;
            std::fs::rename(&fresh, &self.stamp_path)?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Mint a new random token (256 bits); returns its listing and the secret, which is
    /// not stored and cannot be shown again.
    pub fn create(&self, name: &str, role: Role) -> anyhow::Result<(TokenInfo, String)> {
        let secret: [u8; 32] = rand::random();
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
        let info = self.insert(name, role, &token)?;
        Ok((info, token))
    }

    /// Make sure `token` exists as an admin token (the `SANDGRAPH_ADMIN_TOKEN` bootstrap).
    pub fn ensure(&self, name: &str, role: Role, token: &str) -> anyhow::Result<()> {
        let exists: Option<String> = self
            .lock()
            .query_row(
                "SELECT id FROM tokens WHERE hash = ?1",
                params![hash_token(token).as_slice()],
                |row| row.get(0),
            )
            .optional()?;
        if exists.is_none() {
            self.insert(name, role, token)?;
        }
        Ok(())
    }

    fn insert(&self, name: &str, role: Role, token: &str) -> anyhow::Result<TokenInfo> {
        let info = TokenInfo {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            name: name.to_owned(),
            role,
            created_at: chrono::Utc::now().to_rfc3339(),
            revoked_at: None,
        };
        self.lock().execute(
            "INSERT INTO tokens (id, name, role, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                info.id,
                info.name,
                role.as_str(),
                hash_token(token).as_slice(),
                info.created_at
            ],
        )?;
        self.changed()?;
        Ok(info)
    }

    /// Whether any token (revoked or not) exists.
    pub fn is_empty(&self) -> anyhow::Result<bool> {
        let count: i64 = self
            .lock()
            .query_row("SELECT COUNT(*) FROM tokens", [], |row| row.get(0))?;
        Ok(count == 0)
    }

    /// Every token, newest first.
    pub fn list(&self) -> anyhow::Result<Vec<TokenInfo>> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT id, name, role, created_at, revoked_at FROM tokens ORDER BY created_at DESC",
        )?;
        let rows = statement.query_map([], |row| {
            let role: String = row.get(2)?;
            Ok(TokenInfo {
                id: row.get(0)?,
                name: row.get(1)?,
                role: Role::parse(&role).unwrap_or(Role::Agent),
                created_at: row.get(3)?,
                revoked_at: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revoke a token by id; false if no such active token.
    pub fn revoke(&self, id: &str) -> anyhow::Result<bool> {
        let changed = self.lock().execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, chrono::Utc::now().to_rfc3339()],
        )?;
        if changed == 1 {
            self.changed()?;
        }
        Ok(changed == 1)
    }

    /// The caller a presented token belongs to, if it is valid and not revoked
    /// (blocking: reloads a stale memory copy, or reads the database when it is off).
    pub fn authenticate(&self, token: &str) -> anyhow::Result<Option<Caller>> {
        if self.active.is_some() {
            if let Some(answer) = self.cached(token).answer() {
                return Ok(answer);
            }
            self.reload()?;
            // Still unknown only if tokens changed again while reloading: then the
            // database decides.
            if let Some(answer) = self.cached(token).answer() {
                return Ok(answer);
            }
        }
        self.authenticate_in_database(token)
    }

    fn authenticate_in_database(&self, token: &str) -> anyhow::Result<Option<Caller>> {
        let presented = hash_token(token);
        let row: Option<(String, String, String, Vec<u8>)> = self
            .lock()
            .query_row(
                "SELECT id, name, role, hash FROM tokens WHERE hash = ?1 AND revoked_at IS NULL",
                params![presented.as_slice()],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .optional()?;
        // The index lookup finds the row; the constant-time comparison is what decides.
        Ok(row.and_then(|(id, name, role, stored)| {
            let equal: bool = stored.as_slice().ct_eq(presented.as_slice()).into();
            let role = Role::parse(&role)?;
            equal.then_some(Caller { id, name, role })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_endpoints_need_the_documented_role() {
        let agent = Caller {
            id: "a".into(),
            name: "a".into(),
            role: Role::Agent,
        };
        assert!(agent.may(Endpoint::ExecuteCode));
        assert!(!agent.may(Endpoint::History));
        assert!(!agent.may(Endpoint::AuditLog));
        assert!(Role::Admin > Role::Developer && Role::Developer > Role::Agent);
    }

    #[test]
    fn tokens_are_hashed_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(&dir.path().join("db")).unwrap();
        let (info, token) = store.create("ci", Role::Developer).unwrap();
        assert!(token.starts_with("sg_") && token.len() == 3 + 64);
        let caller = store.authenticate(&token).unwrap().unwrap();
        assert_eq!(caller.role, Role::Developer);
        assert!(store.authenticate("sg_wrong").unwrap().is_none());
        // Only the hash is stored.
        let raw: Vec<u8> = store
            .lock()
            .query_row("SELECT hash FROM tokens", [], |r| r.get(0))
            .unwrap();
        assert_ne!(raw, token.as_bytes());
        assert!(store.revoke(&info.id).unwrap());
        assert!(store.authenticate(&token).unwrap().is_none());
    }

    #[test]
    fn the_memory_copy_sees_changes_made_by_another_process_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let server = TokenStore::open(&db).unwrap();
        // `sandgraph token ...` in another process: its own store on the same file.
        let cli = TokenStore::open(&db).unwrap();
        let (info, token) = cli.create("ci", Role::Agent).unwrap();
        assert_eq!(
            server.cached(&token),
            Cached::Unknown,
            "a change must be noticed"
        );
        let caller = server.authenticate(&token).unwrap().unwrap();
        assert_eq!(caller.id, info.id);
        // Reloaded: now answered from memory, and wrong tokens too.
        assert_eq!(server.cached(&token), Cached::Valid(caller));
        assert_eq!(server.cached("sg_wrong"), Cached::Invalid);
        assert!(cli.revoke(&info.id).unwrap());
        assert_eq!(server.cached(&token), Cached::Unknown);
        assert_eq!(server.authenticate(&token).unwrap(), None);
        assert_eq!(server.cached(&token), Cached::Invalid);
    }

    #[test]
    fn edits_that_bypass_the_store_are_caught_by_the_reload() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let server = TokenStore::open(&db).unwrap();
        let (_, token) = server.create("ci", Role::Agent).unwrap();
        assert!(server.authenticate(&token).unwrap().is_some());
        let shell = Connection::open(&db).unwrap();
        shell
            .execute("UPDATE tokens SET revoked_at = 'now'", [])
            .unwrap();
        // Not signalled: the memory copy still has it until the backstop reload.
        assert!(matches!(server.cached(&token), Cached::Valid(_)));
        server.reload().unwrap();
        assert_eq!(server.cached(&token), Cached::Invalid);
        assert_eq!(server.authenticate(&token).unwrap(), None);
    }

    #[test]
    fn without_the_memory_copy_every_check_reads_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let server = TokenStore::open_with(&db, false).unwrap();
        let (info, token) = server.create("ci", Role::Agent).unwrap();
        assert_eq!(server.cached(&token), Cached::Unknown);
        assert!(server.authenticate(&token).unwrap().is_some());
        Connection::open(&db)
            .unwrap()
            .execute(
                "UPDATE tokens SET revoked_at = 'now' WHERE id = ?1",
                [&info.id],
            )
            .unwrap();
        assert_eq!(server.authenticate(&token).unwrap(), None);
    }
}

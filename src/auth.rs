//! Who is calling and what they may do: opaque bearer tokens stored only as SHA-256
//! hashes in the embedded database, three roles, and the table of which role each
//! endpoint needs. Transports authenticate here; tools never see tokens.

use std::path::Path;
use std::sync::Mutex;

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

/// Tokens, stored as SHA-256 hashes in SQLite. Every check reads the database, so a
/// token revoked by `sandgraph token revoke` in another process is refused at once.
pub struct TokenStore {
    connection: Mutex<Connection>,
}

/// Prefix of every token we mint (makes leaked tokens easy to grep for).
const TOKEN_PREFIX: &str = "sg_";

fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenStore {
    /// Open (creating if needed) the token table in the database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
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
        Ok(Self {
            connection: Mutex::new(connection),
        })
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
        Ok(changed == 1)
    }

    /// The caller a presented token belongs to, if it is valid and not revoked.
    pub fn authenticate(&self, token: &str) -> anyhow::Result<Option<Caller>> {
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
}

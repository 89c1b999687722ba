//! Configuration: defaults < an optional TOML file < environment variables, parsed once
//! at start-up into typed structs. `sandgraph --help` and `docs/operations.md` list every
//! setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use crate::sandbox::{LimitCeilings, SandboxConfig, default_guest_dir};

/// Everything the server needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server (REST + MCP at `/mcp`) listens on.
    pub bind: SocketAddr,
    /// Where the embedded store, the compiled-guest cache and scratch dirs live.
    pub data_dir: PathBuf,
    /// Directory of the built guests (`make guest` writes `build/guest`).
    pub guest_dir: PathBuf,
    /// Where compiled guests are cached (default: `<data_dir>/compiled`). Sharing it
    /// between servers of the same build skips the 5-10 s first-start compile.
    pub compiled_cache_dir: Option<PathBuf>,
    /// Largest `code` (and other source fields) accepted, in bytes; larger is a 413.
    pub max_code_bytes: usize,
    /// Host names (optionally `host:port`) the MCP endpoint accepts in `Host`; protects
    /// a locally running server from DNS rebinding. Loopback names are always allowed.
    pub allowed_hosts: Vec<String>,
    /// Browser origins (`scheme://host[:port]`, `:*` for any port) the MCP endpoint
    /// accepts in `Origin`; a request from any other origin gets 403. Loopback origins
    /// are always allowed; requests without `Origin` (non-browser clients) pass.
    pub allowed_origins: Vec<String>,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    /// Sandbox concurrency and limits.
    pub sandbox: SandboxSettings,
    /// A bootstrap admin token (for scripts and compose); created if missing.
    #[serde(skip)]
    pub admin_token: Option<String>,
    /// Per-endpoint request rates, per caller.
    pub rate_limits: RateLimitSettings,
    /// The result cache.
    pub cache: CacheSettings,
    /// Most records the Neo4j outbox may hold before calls are refused with 503.
    pub outbox_limit: u64,
    /// Neo4j connection; `None` means the embedded store.
    pub neo4j: Option<Neo4jSettings>,
    /// Requests slower than this are logged at warn level.
    #[serde(with = "millis")]
    pub slow_request: Duration,
}

mod millis {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// How to reach Neo4j.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Neo4jSettings {
    /// `bolt://host:7687` or `neo4j://...`.
    pub uri: String,
    /// User name.
    #[serde(default)]
    pub user: String,
    /// Password.
    #[serde(default)]
    pub password: String,
    /// Database name (default: the server's default database).
    #[serde(default)]
    pub database: Option<String>,
}

/// Rate limits: `"N/second"`, `"N/minute"` or `"N/hour"`, optionally `" burst M"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Applies to every endpoint without its own entry.
    pub default: String,
    /// Per-endpoint overrides, keyed by endpoint name (`execute_code`, ...).
    pub endpoints: std::collections::BTreeMap<String, String>,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            default: "600/minute burst 100".to_owned(),
            endpoints: std::collections::BTreeMap::new(),
        }
    }
}

/// Result-cache bounds (defaults from the platform we replace: 1000 entries, 3600 s).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Most entries kept.
    pub max_entries: usize,
    /// Most bytes (serialized results) kept.
    pub max_bytes: usize,
    /// Seconds an entry stays valid.
    pub ttl_seconds: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            max_entries: 1000,
            max_bytes: 64 << 20,
            ttl_seconds: 3600,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// Sandbox settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxSettings {
    /// Runs executing at once; further runs wait for a slot.
    pub max_concurrent_runs: usize,
    /// How long a run waits for a slot before the caller gets a 503.
    pub queue_timeout_ms: u64,
    /// Per-run defaults and the ceilings callers cannot exceed.
    pub limits: LimitCeilings,
    /// Take instances from wasmtime's pooling allocator (reset in place between runs)
    /// instead of mapping fresh memory per run. Faster; reserves address space (not
    /// memory) for `max_concurrent_runs` instances up front.
    pub pooling: bool,
    /// With pooling, how many bytes of each finished run's memory stay resident to be
    /// reset in place for the next run (the rest goes back to the kernel). After a
    /// burst of N concurrent runs, up to N times this (or what the runs dirtied, if
    /// less) stays resident.
    pub pool_keep_resident_bytes: u64,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        Self {
            max_concurrent_runs: 64,
            queue_timeout_ms: 30_000,
            limits: LimitCeilings::default(),
            pooling: true,
            pool_keep_resident_bytes: 16 << 20,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir: PathBuf::from("data"),
            guest_dir: default_guest_dir(),
            compiled_cache_dir: None,
            max_code_bytes: 256 * 1024,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            log_format: LogFormat::Text,
            sandbox: SandboxSettings::default(),
            admin_token: None,
            rate_limits: RateLimitSettings::default(),
            cache: CacheSettings::default(),
            outbox_limit: 1_000_000,
            neo4j: None,
            slow_request: Duration::from_secs(1),
        }
    }
}

impl Config {
    /// Load defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => Config::default(),
        };
        config.apply_env(|key| std::env::var(key).ok())?;
        Ok(config)
    }

    /// Override fields from environment variables (read through `var`, for tests).
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        fn parse<T: std::str::FromStr>(key: &str, value: String) -> anyhow::Result<T>
        where
            T::Err: std::fmt::Display,
        {
            value
                .parse()
                .map_err(|e| anyhow::anyhow!("{key}={value:?} is not valid: {e}"))
        }
        if let Some(v) = var("SANDGRAPH_BIND") {
            self.bind = parse("SANDGRAPH_BIND", v)?;
        }
        if let Some(v) = var("SANDGRAPH_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = var("SANDGRAPH_GUEST_DIR") {
            self.guest_dir = PathBuf::from(v);
        }
        if let Some(v) = var("SANDGRAPH_MAX_CODE_BYTES") {
            self.max_code_bytes = parse("SANDGRAPH_MAX_CODE_BYTES", v)?;
        }
        if let Some(v) = var("SANDGRAPH_ALLOWED_HOSTS") {
            self.allowed_hosts = v
                .split(',')
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .collect();
        }
        if let Some(v) = var("SANDGRAPH_ALLOWED_ORIGINS") {
            self.allowed_origins = v
                .split(',')
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .collect();
        }
        if let Some(v) = var("SANDGRAPH_LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    anyhow::bail!("SANDGRAPH_LOG_FORMAT={other:?} is not valid: use text or json")
                }
            };
        }
        if let Some(v) = var("SANDGRAPH_MAX_CONCURRENT_RUNS") {
            self.sandbox.max_concurrent_runs = parse("SANDGRAPH_MAX_CONCURRENT_RUNS", v)?;
        }
        if let Some(v) = var("SANDGRAPH_POOLING") {
            self.sandbox.pooling = parse("SANDGRAPH_POOLING", v)?;
        }
        if let Some(v) = var("SANDGRAPH_POOL_KEEP_RESIDENT_BYTES") {
            self.sandbox.pool_keep_resident_bytes = parse("SANDGRAPH_POOL_KEEP_RESIDENT_BYTES", v)?;
        }
        if let Some(v) = var("SANDGRAPH_ADMIN_TOKEN") {
            if v.len() < 16 {
                anyhow::bail!("SANDGRAPH_ADMIN_TOKEN must be at least 16 characters");
            }
            self.admin_token = Some(v);
        }
        if let Some(v) = var("SANDGRAPH_RATE_LIMIT") {
            self.rate_limits.default = v;
        }
        for endpoint in crate::auth::Endpoint::ALL {
            let key = format!(
                "SANDGRAPH_RATE_LIMIT_{}",
                endpoint.name().to_ascii_uppercase()
            );
            if let Some(v) = var(&key) {
                self.rate_limits
                    .endpoints
                    .insert(endpoint.name().to_owned(), v);
            }
        }
        if let Some(v) = var("SANDGRAPH_CACHE_MAX_ENTRIES") {
            self.cache.max_entries = parse("SANDGRAPH_CACHE_MAX_ENTRIES", v)?;
        }
        if let Some(v) = var("SANDGRAPH_CACHE_MAX_BYTES") {
            self.cache.max_bytes = parse("SANDGRAPH_CACHE_MAX_BYTES", v)?;
        }
        if let Some(v) = var("SANDGRAPH_CACHE_TTL_SECONDS") {
            self.cache.ttl_seconds = parse("SANDGRAPH_CACHE_TTL_SECONDS", v)?;
        }
        if let Some(v) = var("SANDGRAPH_SLOW_REQUEST_MS") {
            self.slow_request = Duration::from_millis(parse("SANDGRAPH_SLOW_REQUEST_MS", v)?);
        }
        if let Some(v) = var("SANDGRAPH_OUTBOX_LIMIT") {
            self.outbox_limit = parse("SANDGRAPH_OUTBOX_LIMIT", v)?;
        }
        if let Some(uri) = var("NEO4J_URI").filter(|u| !u.is_empty()) {
            self.neo4j = Some(Neo4jSettings {
                uri,
                user: var("NEO4J_USER").unwrap_or_else(|| "neo4j".to_owned()),
                password: var("NEO4J_PASSWORD").unwrap_or_default(),
                database: var("NEO4J_DATABASE").filter(|d| !d.is_empty()),
            });
        }
        if let Some(v) = var("SANDGRAPH_COMPILED_CACHE_DIR") {
            self.compiled_cache_dir = Some(PathBuf::from(v));
        }
        Ok(())
    }

    /// The embedded SQLite database (tokens, outbox, embedded history).
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("sandgraph.db")
    }

    /// The sandbox's start-up settings derived from this config.
    pub fn sandbox_config(&self) -> SandboxConfig {
        SandboxConfig {
            guest_dir: self.guest_dir.clone(),
            cache_dir: self
                .compiled_cache_dir
                .clone()
                .unwrap_or_else(|| self.data_dir.join("compiled")),
            scratch_dir: self.data_dir.join("scratch"),
            max_concurrent_runs: self.sandbox.max_concurrent_runs,
            queue_timeout: Duration::from_millis(self.sandbox.queue_timeout_ms),
            pooling: self.sandbox.pooling,
            pool_keep_resident_bytes: usize::try_from(self.sandbox.pool_keep_resident_bytes)
                .unwrap_or(usize::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_env(pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
        let mut config = Config::default();
        config.apply_env(|key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        })?;
        Ok(config)
    }

    #[test]
    fn pooling_is_on_by_default_and_can_be_turned_off() {
        let default = with_env(&[]).unwrap().sandbox_config();
        assert!(default.pooling);
        assert_eq!(default.pool_keep_resident_bytes, 16 << 20);

        let off = with_env(&[
            ("SANDGRAPH_POOLING", "false"),
            ("SANDGRAPH_POOL_KEEP_RESIDENT_BYTES", "1048576"),
        ])
        .unwrap()
        .sandbox_config();
        assert!(!off.pooling);
        assert_eq!(off.pool_keep_resident_bytes, 1 << 20);
    }

    #[test]
    fn a_bad_pooling_value_names_the_variable() {
        let err = with_env(&[("SANDGRAPH_POOLING", "maybe")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("SANDGRAPH_POOLING=\"maybe\" is not valid"),
            "{err}"
        );
    }
}

//! Configuration: defaults < an optional TOML file < environment variables, parsed once
//! at start-up into typed structs. Every environment variable is one entry of
//! [`SETTINGS`], from which parsing, `sandgraph --help` and `docs/configuration.md` come.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use crate::sandbox::{LimitCeilings, SandboxConfig, default_guest_dir};
use crate::workspace::WorkspaceSettings;

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
    /// Limits of the HTTP listener (slow clients, connection and request floods).
    pub http: HttpSettings,
    /// How often the memory copy of active tokens is reloaded from the database as a
    /// backstop (changes made through sandgraph are seen at once); zero turns the copy
    /// off (every request reads the database).
    pub token_reload: Duration,
    /// Workspace TTL, quotas and housekeeping.
    pub workspaces: WorkspaceSettings,
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
    /// On SIGTERM, how long in-flight calls may finish before their runs are cancelled.
    #[serde(with = "millis")]
    pub shutdown_grace: Duration,
    /// Keep the source text of every run (code, tests, templates, queries) with its
    /// record, once per hash. Off: records keep only the hash and say so.
    pub store_source: bool,
    /// Days execution records (and source texts no record uses any more) are kept;
    /// 0 keeps them forever.
    pub history_retention_days: u32,
    /// Days audit events are kept; 0 keeps them forever.
    pub audit_retention_days: u32,
    /// What lints Python code for `lint_code`.
    pub linter: Linter,
    /// The ruff binary (default: `<guest_dir>/ruff`, which `make guest` installs).
    pub ruff: Option<PathBuf>,
}

/// The Python linter behind `lint_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Linter {
    /// ruff, as persistent `ruff server` workers on the host (parses, never runs code).
    Ruff,
    /// pyflakes + pycodestyle + mccabe inside the Python guest (flake8's codes and
    /// messages), for deployments that run no native process besides the server.
    Guest,
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
    /// Requests failing authentication, per source address; past it they are answered
    /// 429 instead of 401.
    pub unauthenticated: String,
    /// Authentication failures are audited as one event per source address per this
    /// many milliseconds.
    pub unauthenticated_window_ms: u64,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            default: "600/minute burst 100".to_owned(),
            endpoints: std::collections::BTreeMap::new(),
            unauthenticated: "5/second burst 20".to_owned(),
            unauthenticated_window_ms: 60_000,
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

/// Limits of the HTTP listener (see `api::serve`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Time a client has to send a request's head; also the longest a kept-alive
    /// connection may sit idle between requests.
    pub header_timeout_ms: u64,
    /// Time a client has to send a whole request body (plus a second per 64 KiB it
    /// declares).
    pub body_timeout_ms: u64,
    /// Longest a response write may make no progress (a client that stops reading).
    pub write_timeout_ms: u64,
    /// Most open connections; a new one past it is answered 503 and closed.
    pub max_connections: usize,
    /// Most requests served at once (a streamed response counts until it ends); past
    /// it a request is answered 503.
    pub max_in_flight: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        let limits = crate::api::HttpLimits::default();
        Self {
            header_timeout_ms: limits.header_timeout.as_millis() as u64,
            body_timeout_ms: limits.body_timeout.as_millis() as u64,
            write_timeout_ms: limits.write_timeout.as_millis() as u64,
            max_connections: limits.max_connections,
            max_in_flight: limits.max_in_flight,
        }
    }
}

impl HttpSettings {
    /// The listener's limits.
    pub fn limits(&self) -> crate::api::HttpLimits {
        crate::api::HttpLimits {
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            write_timeout: Duration::from_millis(self.write_timeout_ms),
            max_connections: self.max_connections,
            max_in_flight: self.max_in_flight,
        }
    }
}

/// Sandbox settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxSettings {
    /// Runs executing at once; further runs wait for a slot.
    pub max_concurrent_runs: usize,
    /// Runs one caller may execute at once (further ones wait behind its own).
    pub max_runs_per_caller: usize,
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
    /// Threads that run guests, apart from the ones serving connections (0 = one per
    /// core).
    pub guest_threads: usize,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        Self {
            max_concurrent_runs: 64,
            max_runs_per_caller: 16,
            queue_timeout_ms: 30_000,
            limits: LimitCeilings::default(),
            pooling: true,
            pool_keep_resident_bytes: 16 << 20,
            guest_threads: 0,
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
            http: HttpSettings::default(),
            token_reload: Duration::from_secs(10),
            workspaces: WorkspaceSettings::default(),
            admin_token: None,
            rate_limits: RateLimitSettings::default(),
            cache: CacheSettings::default(),
            outbox_limit: 1_000_000,
            neo4j: None,
            slow_request: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
            store_source: true,
            history_retention_days: 90,
            audit_retention_days: 365,
            linter: Linter::Ruff,
            ruff: None,
        }
    }
}

impl Config {
    /// The ruff binary `lint_code` runs.
    pub fn ruff_binary(&self) -> PathBuf {
        self.ruff
            .clone()
            .unwrap_or_else(|| self.guest_dir.join("ruff"))
    }

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
        config.validate()?;
        Ok(config)
    }

    /// The checks the environment's values get, for values from a config file too (a
    /// zero limit or a rate that does not parse is refused at start, not discovered
    /// later or silently replaced).
    pub fn validate(&self) -> anyhow::Result<()> {
        let http = &self.http;
        for (key, value) in [
            ("http.header_timeout_ms", http.header_timeout_ms),
            ("http.body_timeout_ms", http.body_timeout_ms),
            ("http.write_timeout_ms", http.write_timeout_ms),
            ("http.max_connections", http.max_connections as u64),
            ("http.max_in_flight", http.max_in_flight as u64),
            (
                "sandbox.max_runs_per_caller",
                self.sandbox.max_runs_per_caller as u64,
            ),
            (
                "rate_limits.unauthenticated_window_ms",
                self.rate_limits.unauthenticated_window_ms,
            ),
        ] {
            positive(key, value)?;
        }
        let limits = &self.rate_limits;
        crate::rate_limit::parse_quota(&limits.unauthenticated)
            .with_context(|| "rate_limits.unauthenticated".to_owned())?;
        crate::rate_limit::RateLimits::new(limits).context("rate_limits")?;
        Ok(())
    }

    /// Override fields from environment variables (read through `var`, for tests):
    /// every entry of [`SETTINGS`], in order.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        for setting in SETTINGS {
            match setting.apply {
                Apply::One(apply) => {
                    if let Some(value) = var(setting.env) {
                        apply(self, setting.env, value)?;
                    }
                }
                Apply::PerEndpoint(apply) => {
                    for endpoint in crate::auth::Endpoint::ALL {
                        let key = setting
                            .env
                            .replace("<ENDPOINT>", &endpoint.name().to_ascii_uppercase());
                        if let Some(value) = var(&key) {
                            apply(self, endpoint.name(), value)?;
                        }
                    }
                }
                Apply::Elsewhere => {}
            }
        }
        Ok(())
    }

    /// The embedded SQLite database (tokens, outbox, embedded history).
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("sandgraph.db")
    }

    /// Where workspaces live.
    pub fn workspaces_dir(&self) -> PathBuf {
        self.data_dir.join("workspaces")
    }

    /// Largest request body read whole: JSON escaping can double a source text and
    /// `run_tests` carries two; a file in base64 is 4/3 of its size.
    pub fn body_limit(&self) -> usize {
        let code = self.max_code_bytes.saturating_mul(4);
        let file = usize::try_from(self.workspaces.max_file_bytes)
            .unwrap_or(usize::MAX)
            .saturating_mul(4)
            / 3;
        code.max(file).saturating_add(1 << 20)
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
            max_runs_per_caller: self.sandbox.max_runs_per_caller,
            queue_timeout: Duration::from_millis(self.sandbox.queue_timeout_ms),
            pooling: self.sandbox.pooling,
            pool_keep_resident_bytes: usize::try_from(self.sandbox.pool_keep_resident_bytes)
                .unwrap_or(usize::MAX),
            guest_threads: self.sandbox.guest_threads,
        }
    }
}

/// One setting: its environment variable, default, meaning, and how it applies.
pub struct Setting {
    /// The environment variable (`<ENDPOINT>` stands for each endpoint's name).
    pub env: &'static str,
    /// The default, as text.
    pub default: &'static str,
    /// What it does.
    pub doc: &'static str,
    apply: Apply,
}

enum Apply {
    One(fn(&mut Config, &str, String) -> anyhow::Result<()>),
    PerEndpoint(fn(&mut Config, &str, String) -> anyhow::Result<()>),
    /// Read by another part (clap, the log filter); listed for --help and the docs.
    Elsewhere,
}

/// `value`, refused when zero (a limit of zero would refuse everything).
fn positive<T: Default + PartialEq>(key: &str, value: T) -> anyhow::Result<T> {
    if value == T::default() {
        anyhow::bail!("{key} must be greater than 0");
    }
    Ok(value)
}

fn parse<T: std::str::FromStr>(key: &str, value: String) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e| anyhow::anyhow!("{key}={value:?} is not valid: {e}"))
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .collect()
}

fn neo4j_settings(config: &mut Config) -> Option<&mut Neo4jSettings> {
    config.neo4j.as_mut()
}

/// Every setting sandgraph reads, once: `apply_env`, `sandgraph --help` and
/// `docs/configuration.md` (`sandgraph settings --markdown`) all come from this table.
pub static SETTINGS: &[Setting] = &[
    Setting {
        env: "SANDGRAPH_CONFIG",
        default: "(none)",
        doc: "TOML configuration file (also --config); the environment overrides it",
        apply: Apply::Elsewhere,
    },
    Setting {
        env: "SANDGRAPH_BIND",
        default: "127.0.0.1:8000",
        doc: "listen address of `sandgraph serve` (also --bind)",
        apply: Apply::One(|c, k, v| {
            c.bind = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_DATA_DIR",
        default: "./data",
        doc: "data directory: the embedded database (tokens, outbox, history, workspace metadata), compiled guests, scratch dirs, workspaces",
        apply: Apply::One(|c, _, v| {
            c.data_dir = PathBuf::from(v);
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_GUEST_DIR",
        default: "./build/guest",
        doc: "the built guests (`make guest` writes them)",
        apply: Apply::One(|c, _, v| {
            c.guest_dir = PathBuf::from(v);
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_GUEST_REQUIREMENTS",
        default: "(none)",
        doc: "read by `make guest` (sandbox/build.sh), not by the server: an extra hash-pinned requirements file of pure-Python packages built into the Python guest beside the curated set; a wheel with native code or a package that does not import in the guest fails the build naming it (docs/packages.md); `list_packages` shows what was built",
        apply: Apply::Elsewhere,
    },
    Setting {
        env: "SANDGRAPH_COMPILED_CACHE_DIR",
        default: "<data>/compiled",
        doc: "compiled-guest cache (share it between servers of one build to skip the first-start compile)",
        apply: Apply::One(|c, _, v| {
            c.compiled_cache_dir = Some(PathBuf::from(v));
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_MAX_CODE_BYTES",
        default: "262144",
        doc: "largest accepted source text (`code`, `tests`, templates, Cypher); larger is a 413",
        apply: Apply::One(|c, k, v| {
            c.max_code_bytes = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_MAX_CONCURRENT_RUNS",
        default: "64",
        doc: "sandbox runs at once; more wait for a slot (30 s, then 503)",
        apply: Apply::One(|c, k, v| {
            c.sandbox.max_concurrent_runs = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_MAX_RUNS_PER_CALLER",
        default: "16",
        doc: "sandbox runs one caller may have at once; its further runs wait behind its own, and a freed slot goes to the waiting caller running the fewest, so one caller's flood never queues in front of everyone else",
        apply: Apply::One(|c, k, v| {
            c.sandbox.max_runs_per_caller = positive(k, parse(k, v)?)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_GUEST_THREADS",
        default: "0",
        doc: "threads that run guests, apart from the ones serving connections (0 = one per core)",
        apply: Apply::One(|c, k, v| {
            c.sandbox.guest_threads = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_POOLING",
        default: "true",
        doc: "take instances from wasmtime's pooling allocator, reset in place between runs",
        apply: Apply::One(|c, k, v| {
            c.sandbox.pooling = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_POOL_KEEP_RESIDENT_BYTES",
        default: "16777216",
        doc: "with pooling, bytes of each finished run's memory kept resident and reset in place",
        apply: Apply::One(|c, k, v| {
            c.sandbox.pool_keep_resident_bytes = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_WORKSPACE_TTL_SECONDS",
        default: "1800",
        doc: "idle time after which a workspace expires (every call naming it extends it)",
        apply: Apply::One(|c, k, v| {
            c.workspaces.ttl_seconds = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_WORKSPACE_QUOTA_BYTES",
        default: "67108864",
        doc: "most bytes one workspace's files may hold; a write past it fails (a run sees `OSError: Disk quota exceeded`, a tool call 507)",
        apply: Apply::One(|c, k, v| {
            c.workspaces.quota_bytes = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_WORKSPACE_MAX_FILES",
        default: "1000",
        doc: "most entries (files, directories, links) one workspace may hold",
        apply: Apply::One(|c, k, v| {
            c.workspaces.max_files = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_WORKSPACES_PER_CALLER",
        default: "8",
        doc: "most live workspaces one caller may have",
        apply: Apply::One(|c, k, v| {
            c.workspaces.per_caller = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_WORKSPACES_DISK_BYTES",
        default: "4294967296",
        doc: "most bytes all workspaces together may hold; past it writes fail with 507",
        apply: Apply::One(|c, k, v| {
            c.workspaces.disk_bytes = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_WORKSPACE_SWEEP_MS",
        default: "60000",
        doc: "how often expired workspaces are removed",
        apply: Apply::One(|c, k, v| {
            c.workspaces.sweep_interval_ms = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_MAX_FILE_BYTES",
        default: "8388608",
        doc: "largest file passed in a tool call (`files`, `write_file`) or returned by `read_file`; downloads and resource reads may be up to a workspace's quota",
        apply: Apply::One(|c, k, v| {
            c.workspaces.max_file_bytes = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_INLINE_TEXT_BYTES",
        default: "4096",
        doc: "text files a run wrote up to this size come back inline in its result",
        apply: Apply::One(|c, k, v| {
            c.workspaces.inline_text_bytes = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_IMAGE_MAX_BYTES",
        default: "2097152",
        doc: "largest picture (after SVG rendering) a run's result returns as MCP image content",
        apply: Apply::One(|c, k, v| {
            c.workspaces.image_max_bytes = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_IMAGES_PER_RESULT",
        default: "4",
        doc: "most pictures one result returns as MCP image content",
        apply: Apply::One(|c, k, v| {
            c.workspaces.images_per_result = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_ALLOWED_HOSTS",
        default: "(loopback only)",
        doc: "extra Host names accepted at /mcp, comma-separated (DNS-rebinding protection)",
        apply: Apply::One(|c, _, v| {
            c.allowed_hosts = list(&v);
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_ALLOWED_ORIGINS",
        default: "(loopback only)",
        doc: "extra browser Origins accepted at /mcp, comma-separated (`https://app.example:443`, `:*` = any port); others get 403",
        apply: Apply::One(|c, _, v| {
            c.allowed_origins = list(&v);
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_LOG_FORMAT",
        default: "text",
        doc: "log lines as `text` or `json`",
        apply: Apply::One(|c, k, v| {
            c.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => anyhow::bail!("{k}={other:?} is not valid: use text or json"),
            };
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_SLOW_REQUEST_MS",
        default: "1000",
        doc: "requests slower than this are logged at warn level",
        apply: Apply::One(|c, k, v| {
            c.slow_request = Duration::from_millis(parse(k, v)?);
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_HTTP_HEADER_TIMEOUT_MS",
        default: "10000",
        doc: "time a client has to send a request's head; also the longest a kept-alive connection may idle between requests (slow or silent clients are disconnected)",
        apply: Apply::One(|c, k, v| {
            c.http.header_timeout_ms = positive(k, parse(k, v)?)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_HTTP_BODY_TIMEOUT_MS",
        default: "30000",
        doc: "time a client has to send a whole request body, from the request's start, plus one second per 64 KiB of its declared length (up to 256 s more); past it the call is answered 408",
        apply: Apply::One(|c, k, v| {
            c.http.body_timeout_ms = positive(k, parse(k, v)?)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_HTTP_WRITE_TIMEOUT_MS",
        default: "30000",
        doc: "longest a response write may make no progress (a client that stops reading, e.g. one pipelining requests it never reads the answers to); past it the connection is closed",
        apply: Apply::One(|c, k, v| {
            c.http.write_timeout_ms = positive(k, parse(k, v)?)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_MAX_CONNECTIONS",
        default: "1024",
        doc: "most open HTTP connections; a new one past it is answered 503 with Retry-After and closed",
        apply: Apply::One(|c, k, v| {
            c.http.max_connections = positive(k, parse(k, v)?)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_MAX_IN_FLIGHT",
        default: "512",
        doc: "most HTTP requests served at once (an MCP stream counts until it ends); past it a request is answered 503 with Retry-After",
        apply: Apply::One(|c, k, v| {
            c.http.max_in_flight = positive(k, parse(k, v)?)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_SHUTDOWN_GRACE_MS",
        default: "10000",
        doc: "on SIGTERM, how long in-flight calls may finish before their runs are cancelled (and recorded as cancelled)",
        apply: Apply::One(|c, k, v| {
            c.shutdown_grace = Duration::from_millis(parse(k, v)?);
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_TOKEN_RELOAD_MS",
        default: "10000",
        doc: "active tokens are held in memory (changes through the API or `sandgraph token` are seen on the next request); this backstop reload also catches direct database edits; 0 = no memory copy, read the database per request",
        apply: Apply::One(|c, k, v| {
            c.token_reload = Duration::from_millis(parse(k, v)?);
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_LINTER",
        default: "ruff",
        doc: "what lints Python for `lint_code`: `ruff` (ruff's rules, codes and messages; persistent `ruff server` workers on the host, which parse the code and never run it) or `guest` (pyflakes + pycodestyle + mccabe inside the Python guest, flake8's codes)",
        apply: Apply::One(|c, k, v| {
            c.linter = match v.as_str() {
                "ruff" => Linter::Ruff,
                "guest" => Linter::Guest,
                other => anyhow::bail!("{k}={other:?} is not valid: use ruff or guest"),
            };
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_RUFF",
        default: "<guest dir>/ruff",
        doc: "the ruff binary `lint_code` runs as `ruff server` (`make guest` installs the pinned one beside the guests)",
        apply: Apply::One(|c, _, v| {
            c.ruff = Some(PathBuf::from(v));
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_STORE_SOURCE",
        default: "true",
        doc: "keep the source text of every run (code, tests, templates, Cypher) with its record, once per hash; `false` keeps only the hash and the record says `source_kept: false`",
        apply: Apply::One(|c, k, v| {
            c.store_source = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_HISTORY_RETENTION_DAYS",
        default: "90",
        doc: "days execution records are kept (with source texts no kept record uses); older ones are deleted in batches, and each sweep is audited; 0 keeps them forever",
        apply: Apply::One(|c, k, v| {
            c.history_retention_days = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_AUDIT_RETENTION_DAYS",
        default: "365",
        doc: "days audit events are kept (longer than history by default); 0 keeps them forever",
        apply: Apply::One(|c, k, v| {
            c.audit_retention_days = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_ADMIN_TOKEN",
        default: "(none)",
        doc: "bootstrap admin token (at least 16 characters), created if missing; without it the first start prints a new one",
        apply: Apply::One(|c, k, v| {
            if v.len() < 16 {
                anyhow::bail!("{k} must be at least 16 characters");
            }
            c.admin_token = Some(v);
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_RATE_LIMIT",
        default: "600/minute burst 100",
        doc: "default per-caller rate of every endpoint (`N/second|minute|hour [burst M]`)",
        apply: Apply::One(|c, _, v| {
            c.rate_limits.default = v;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_RATE_LIMIT_<ENDPOINT>",
        default: "(the default rate)",
        doc: "per-endpoint rate, e.g. SANDGRAPH_RATE_LIMIT_EXECUTE_CODE; endpoints: execute_code, lint_code, run_tests, generate_code, graph_query, graph_upsert, history, audit_log, prompts, tokens, workspaces",
        apply: Apply::PerEndpoint(|c, endpoint, v| {
            c.rate_limits.endpoints.insert(endpoint.to_owned(), v);
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_RATE_LIMIT_UNAUTHENTICATED",
        default: "5/second burst 20",
        doc: "requests that fail authentication (missing or wrong token), per source address; past it they are answered 429 with Retry-After instead of 401. Failures are audited folded: one event per source and minute with counts",
        apply: Apply::One(|c, k, v| {
            crate::rate_limit::parse_quota(&v).map_err(|e| anyhow::anyhow!("{k}: {e}"))?;
            c.rate_limits.unauthenticated = v;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_AUTH_FAILURE_WINDOW_MS",
        default: "60000",
        doc: "authentication failures are audited as one event per source address per this window, with counts (and once more when the server stops)",
        apply: Apply::One(|c, k, v| {
            c.rate_limits.unauthenticated_window_ms = positive(k, parse(k, v)?)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_CACHE_MAX_ENTRIES",
        default: "1000",
        doc: "result-cache entries",
        apply: Apply::One(|c, k, v| {
            c.cache.max_entries = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_CACHE_MAX_BYTES",
        default: "67108864",
        doc: "result-cache bytes",
        apply: Apply::One(|c, k, v| {
            c.cache.max_bytes = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_CACHE_TTL_SECONDS",
        default: "3600",
        doc: "result-cache entry lifetime",
        apply: Apply::One(|c, k, v| {
            c.cache.ttl_seconds = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "SANDGRAPH_OUTBOX_LIMIT",
        default: "1000000",
        doc: "most records waiting for Neo4j; past it calls get 503 rather than be answered unrecorded",
        apply: Apply::One(|c, k, v| {
            c.outbox_limit = parse(k, v)?;
            Ok(())
        }),
    },
    Setting {
        env: "NEO4J_URI",
        default: "(unset: the embedded store)",
        doc: "Neo4j to ship history and audit to and to serve the graph tools (`bolt://host:7687`)",
        apply: Apply::One(|c, _, v| {
            if !v.is_empty() {
                c.neo4j = Some(Neo4jSettings {
                    uri: v,
                    user: "neo4j".to_owned(),
                    password: String::new(),
                    database: None,
                });
            }
            Ok(())
        }),
    },
    Setting {
        env: "NEO4J_USER",
        default: "neo4j",
        doc: "Neo4j user (with NEO4J_URI)",
        apply: Apply::One(|c, _, v| {
            if let Some(neo4j) = neo4j_settings(c) {
                neo4j.user = v;
            }
            Ok(())
        }),
    },
    Setting {
        env: "NEO4J_PASSWORD",
        default: "(empty)",
        doc: "Neo4j password (with NEO4J_URI)",
        apply: Apply::One(|c, _, v| {
            if let Some(neo4j) = neo4j_settings(c) {
                neo4j.password = v;
            }
            Ok(())
        }),
    },
    Setting {
        env: "NEO4J_DATABASE",
        default: "(the server's default)",
        doc: "Neo4j database (with NEO4J_URI)",
        apply: Apply::One(|c, _, v| {
            if let Some(neo4j) = neo4j_settings(c) {
                neo4j.database = Some(v).filter(|d| !d.is_empty());
            }
            Ok(())
        }),
    },
    Setting {
        env: "RUST_LOG",
        default: "info",
        doc: "log filter (tracing-subscriber's EnvFilter syntax)",
        apply: Apply::Elsewhere,
    },
];

/// The settings as the text `sandgraph --help` ends with.
pub fn settings_help() -> String {
    let width = SETTINGS.iter().map(|s| s.env.len()).max().unwrap_or(0);
    let mut text = String::from(
        "Settings come from defaults, then the TOML file given with --config, then the\nenvironment:\n\n",
    );
    for s in SETTINGS {
        text.push_str(&format!(
            "  {:width$}  {} (default: {})\n",
            s.env, s.doc, s.default
        ));
    }
    text
}

/// The settings as the Markdown of `docs/configuration.md`.
pub fn settings_markdown() -> String {
    let mut text = String::from(
        "# Configuration\n\n\
Generated by `sandgraph settings --markdown` from the one table of settings in\n\
`src/config.rs` (a test keeps this file in step). Settings come from defaults, then the\n\
TOML file given with `--config` (or `SANDGRAPH_CONFIG`), then the environment, which wins.\n\n\
| variable | default | what it does |\n|---|---|---|\n",
    );
    for s in SETTINGS {
        text.push_str(&format!("| `{}` | {} | {} |\n", s.env, s.default, s.doc));
    }
    text
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
    fn every_setting_applies_its_documented_default() {
        for setting in SETTINGS {
            if setting.default.starts_with('(') || setting.default.contains('<') {
                continue;
            }
            let key = setting.env.replace("<ENDPOINT>", "EXECUTE_CODE");
            with_env(&[(&key, setting.default)]).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
        let config = with_env(&[
            ("NEO4J_URI", "bolt://db:7687"),
            ("NEO4J_USER", "u"),
            ("NEO4J_PASSWORD", "p"),
            ("NEO4J_DATABASE", "d"),
            ("SANDGRAPH_RATE_LIMIT_EXECUTE_CODE", "5/second"),
        ])
        .unwrap();
        let neo4j = config.neo4j.unwrap();
        assert_eq!((neo4j.user.as_str(), neo4j.password.as_str()), ("u", "p"));
        assert_eq!(neo4j.database.as_deref(), Some("d"));
        assert_eq!(config.rate_limits.endpoints["execute_code"], "5/second");
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

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
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    /// Sandbox concurrency and limits.
    pub sandbox: SandboxSettings,
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
}

impl Default for SandboxSettings {
    fn default() -> Self {
        Self {
            max_concurrent_runs: 64,
            queue_timeout_ms: 30_000,
            limits: LimitCeilings::default(),
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
            log_format: LogFormat::Text,
            sandbox: SandboxSettings::default(),
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
        if let Some(v) = var("SANDGRAPH_COMPILED_CACHE_DIR") {
            self.compiled_cache_dir = Some(PathBuf::from(v));
        }
        Ok(())
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
        }
    }
}

//! sandgraph: an MCP server where AI agents execute code inside wasmtime sandboxes.
//!
//! [`app`] builds the whole application once (config -> stores -> sandbox -> registry ->
//! transports) and drains it on SIGTERM ([`shutdown`]). A request flows one way through
//! these components:
//!
//! - [`api`]: the REST API (axum) with the old platform's JSON contract, `/health`,
//!   `/openapi.json` (generated from the registry), and the MCP streamable-HTTP service
//!   mounted at `/mcp`.
//! - [`mcp`]: the MCP server (rmcp): the same tools over stdio and streamable HTTP, the
//!   prompts, and the record as resource templates.
//! - [`ui`]: the web console at `/ui` (developers and admins; every page a tool call
//!   through the pipeline) and the API docs at `/docs`.
//! - [`call`]: the one pipeline every transport uses (admit, validate, run, record,
//!   respond) and the `Tool` trait the registry's tools implement.
//! - [`tools`]: one file per tool; validates a typed request, runs it, builds the typed
//!   response. Knows nothing about transports.
//! - [`sandbox`]: wasmtime: the engine, the compiled and pre-linked guests, and a fresh
//!   store per run with time, memory, scratch-file and output limits. Knows nothing about
//!   tools.
//! - [`ruff`]: the Python linter, as persistent `ruff server` workers (LSP over stdio)
//!   on the host: it parses code and never runs it.
//! - [`workspace`]: directories that outlive a call, behind server-minted handles:
//!   paths, quotas, no-follow file access, expiry, pictures for chat clients.
//! - [`auth`]: bearer tokens (SHA-256 hashes in SQLite), roles, and which role each
//!   endpoint needs.
//! - [`rate_limit`]: per-caller, per-endpoint limits (governor).
//! - [`cache`]: the result cache (LRU by entries and bytes, TTL, in-flight coalescing).
//! - [`audit`]: access decisions as events for the audit trail.
//! - [`config`]: defaults < TOML file < environment, parsed once.
//! - [`cypher_guard`]: what a caller's Cypher may read: the knowledge graph, never the
//!   record below admin, never DBMS state (plan inspection in layers).
//! - [`telemetry`]: tracing set-up.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod call;
pub mod config;
pub mod cypher_guard;
pub mod mcp;
pub mod rate_limit;
pub mod ruff;
pub mod sandbox;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod tools;
pub mod ui;
pub mod workspace;

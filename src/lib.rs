//! sandgraph: an MCP server where AI agents execute, lint and test code inside
//! wasmtime sandboxes.
pub mod sandbox;

//! The MCP server: an rmcp tool router over the same `tools::*` functions the REST API
//! calls, served on stdio (`sandgraph mcp`) and as streamable HTTP at `/mcp`.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ProtocolVersion, ServerCapabilities, ServerConfig,
};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{Json, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde_json::json;

use crate::tools::{self, ToolError, Tools};

/// Instructions sent to MCP clients at initialisation.
const INSTRUCTIONS: &str = "sandgraph runs code in a wasmtime sandbox. `execute_code` runs a \
Python (CPython 3.14) or JavaScript (QuickJS) program with no network, no environment and only \
a private scratch directory (/scratch, Python only); the result says how it ended in \
`exit_reason` (ok, error, timeout, memory_limit, output_limit, file_quota).";

/// One MCP session's handler; clones share the tools.
#[derive(Clone)]
pub struct SandgraphMcp {
    tools: Tools,
    tool_router: ToolRouter<Self>,
}

/// Turn a tool refusal into an MCP tool error (`isError: true`) whose text is the same
/// JSON `{"detail": ...}` the REST API returns, so agents can act on it.
fn tool_error(err: ToolError) -> CallToolResult {
    let (kind, detail) = match &err {
        ToolError::Invalid { .. } => ("invalid_argument", err.to_string()),
        ToolError::TooLarge { .. } => ("too_large", err.to_string()),
        ToolError::Busy { .. } => ("busy", err.to_string()),
        ToolError::Internal(inner) => {
            tracing::error!(error = format!("{inner:#}"), "tool failed");
            ("internal", "internal error; see the server log".to_owned())
        }
    };
    let mut body = json!({ "detail": detail, "error": kind });
    if let ToolError::Invalid { field, .. } = &err {
        body["field"] = json!(field);
    }
    CallToolResult::error(vec![ContentBlock::text(body.to_string())])
}

#[tool_router]
impl SandgraphMcp {
    /// A handler over `tools`.
    pub fn new(tools: Tools) -> Self {
        Self {
            tools,
            tool_router: Self::tool_router(),
        }
    }

    /// Run a Python or JavaScript program in a fresh sandbox.
    #[tool(
        name = "execute_code",
        description = "Run a Python (default) or JavaScript program in a fresh wasmtime sandbox \
(no network, no environment, /scratch only) and return its stdout, stderr, return_code and \
exit_reason (ok|error|timeout|memory_limit|output_limit|file_quota). timeout_seconds: 0.5-60, \
default 8."
    )]
    async fn execute_code(
        &self,
        Parameters(request): Parameters<tools::execute::ExecuteRequest>,
    ) -> Result<Json<tools::execute::ExecuteResponse>, CallToolResult> {
        tools::execute::execute_code(&self.tools, request)
            .await
            .map(Json)
            .map_err(tool_error)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SandgraphMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
            .with_server_info(Implementation::new("sandgraph", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

/// The streamable-HTTP MCP service, to be nested at `/mcp`.
pub fn streamable_http_service(
    tools: Tools,
) -> StreamableHttpService<SandgraphMcp, LocalSessionManager> {
    let mut allowed_hosts: Vec<String> =
        ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    allowed_hosts.extend(tools.config.allowed_hosts.iter().cloned());
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts)
        .with_max_request_body_bytes(tools.config.max_code_bytes * 2 + 64 * 1024);
    StreamableHttpService::new(
        move || Ok(SandgraphMcp::new(tools.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

/// Serve MCP on stdin/stdout until the client disconnects.
pub async fn serve_stdio(tools: Tools) -> anyhow::Result<()> {
    let service = SandgraphMcp::new(tools)
        .serve(rmcp::transport::stdio())
        .await?;
    service.waiting().await?;
    Ok(())
}

//! The MCP server: an rmcp tool router over the same `tools::*` functions the REST API
//! calls, served on stdio (`sandgraph mcp`) and as streamable HTTP at `/mcp`.

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, ErrorData, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, Implementation, ListPromptsResult, ListResourcesResult,
    PaginatedRequestParams, Prompt, PromptMessage, ProtocolVersion, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, Role, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{Json, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde_json::json;

use crate::audit::{CallContext, Transport};
use crate::auth::{Caller, Endpoint};
use crate::tools::{self, ToolError, Tools};

/// Instructions sent to MCP clients at initialisation.
const INSTRUCTIONS: &str = "sandgraph runs code in a wasmtime sandbox. `execute_code` runs a \
Python (CPython 3.14) or JavaScript (QuickJS) program with no network, no environment and only \
a private scratch directory (/scratch, Python only); the result says how it ended in \
`exit_reason` (ok, error, timeout, memory_limit, output_limit, file_quota). `lint_code` lints \
Python without running it, `run_tests` runs pytest, `generate_code` renders Jinja2 templates. \
The prompts (and the sandgraph://prompts/* resources) explain each tool and the limits.";

/// One MCP session's handler; clones share the tools.
#[derive(Clone)]
pub struct SandgraphMcp {
    tools: Tools,
    transport: Transport,
    tool_router: ToolRouter<Self>,
}

/// Turn a tool refusal into an MCP tool error (`isError: true`) whose text is the same
/// JSON `{"detail": ...}` the REST API returns, so agents can act on it.
fn tool_error(err: ToolError) -> CallToolResult {
    let (kind, detail) = match &err {
        ToolError::Invalid { .. } => ("invalid_argument", err.to_string()),
        ToolError::TooLarge { .. } => ("too_large", err.to_string()),
        ToolError::Busy { .. } => ("busy", err.to_string()),
        ToolError::Forbidden { .. } => ("forbidden", err.to_string()),
        ToolError::RateLimited { .. } => ("rate_limited", err.to_string()),
        ToolError::Internal(inner) => {
            tracing::error!(error = format!("{inner:#}"), "tool failed");
            ("internal", "internal error; see the server log".to_owned())
        }
    };
    let mut body = json!({ "detail": detail, "error": kind });
    if let ToolError::Invalid { field, .. } = &err {
        body["field"] = json!(field);
    }
    if let ToolError::RateLimited {
        retry_after_seconds,
    } = &err
    {
        body["retry_after_seconds"] = json!(retry_after_seconds);
    }
    CallToolResult::error(vec![ContentBlock::text(body.to_string())])
}

#[tool_router]
impl SandgraphMcp {
    /// A handler over `tools` for calls arriving on `transport`.
    pub fn new(tools: Tools, transport: Transport) -> Self {
        Self {
            tools,
            transport,
            tool_router: Self::tool_router(),
        }
    }

    /// Who is calling: on streamable HTTP, the caller the HTTP middleware authenticated
    /// (carried in the request parts); on stdio, the local user who started the process.
    fn call_context(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallContext, CallToolResult> {
        if self.transport == Transport::McpStdio {
            return Ok(CallContext::new(Caller::local_user(), Transport::McpStdio));
        }
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<CallContext>())
            .cloned()
            .ok_or_else(|| {
                tool_error(ToolError::Internal(anyhow::anyhow!(
                    "MCP request without an authenticated caller"
                )))
            })
    }

    /// Admit a prompt/resource request (same rules as the tools).
    fn admit_prompts(&self, context: &RequestContext<RoleServer>) -> Result<(), ErrorData> {
        let ctx = self
            .call_context(context)
            .map_err(|_| ErrorData::internal_error("no authenticated caller", None))?;
        self.tools
            .admit(&ctx, Endpoint::Prompts)
            .map_err(|e| ErrorData::invalid_request(e.to_string(), None))
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
        context: RequestContext<RoleServer>,
    ) -> Result<Json<tools::execute::ExecuteResponse>, CallToolResult> {
        let ctx = self.call_context(&context)?;
        tools::execute::execute_code(&self.tools, &ctx, request)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    /// Lint Python code inside the sandbox.
    #[tool(
        name = "lint_code",
        description = "Lint Python code (pyflakes, pycodestyle, mccabe) without running it. Returns \
structured diagnostics {line, column, code, message, severity, source}, per-function complexity, \
syntax_error if it does not parse, and a summary (functions, classes, imports, complexity)."
    )]
    async fn lint_code(
        &self,
        Parameters(request): Parameters<tools::lint::LintRequest>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<tools::lint::LintResponse>, CallToolResult> {
        let ctx = self.call_context(&context)?;
        tools::lint::lint_code(&self.tools, &ctx, request)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    /// Run pytest on code inside the sandbox.
    #[tool(
        name = "run_tests",
        description = "Run pytest (also unittest.TestCase classes) inside the sandbox. Put tests in \
`code`, or the implementation in `code` and tests in `tests` (importing it as `solution`). Returns \
summary {passed, failed, errors, skipped}, per-test results with failure messages, and pytest's \
output. timeout_seconds: 1-120, default 15."
    )]
    async fn run_tests(
        &self,
        Parameters(request): Parameters<tools::test::RunTestsRequest>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<tools::test::RunTestsResponse>, CallToolResult> {
        let ctx = self.call_context(&context)?;
        tools::test::run_tests(&self.tools, &ctx, request)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    /// Render a Jinja2 template.
    #[tool(
        name = "generate_code",
        description = "Render a Jinja2 template with a JSON context (strict: every variable must \
be given; no include/import of files; bounded render time and 1 MiB output)."
    )]
    async fn generate_code(
        &self,
        Parameters(request): Parameters<tools::generate::GenerateRequest>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<tools::generate::GenerateResponse>, CallToolResult> {
        let ctx = self.call_context(&context)?;
        tools::generate::generate_code(&self.tools, &ctx, request)
            .await
            .map(Json)
            .map_err(tool_error)
    }
    /// Merge nodes and relationships into the knowledge graph.
    #[tool(
        name = "graph_upsert",
        description = "Merge nodes (by key, with labels and properties) and relationships (start key, \
end key, type, properties) into the Neo4j knowledge graph (developer role or higher). A \
relationship to a key that does not exist is an error listing the keys."
    )]
    async fn graph_upsert(
        &self,
        Parameters(request): Parameters<tools::graph::GraphUpsertRequest>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<tools::graph::GraphUpsertResponse>, CallToolResult> {
        let ctx = self.call_context(&context)?;
        tools::graph::graph_upsert(&self.tools, &ctx, request)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    /// Run a read-only Cypher query.
    #[tool(
        name = "graph_query",
        description = "Run a read-only Cypher query against the knowledge graph: the nodes \
graph_upsert wrote (label GraphNode plus their own labels) and their relationships; start from a \
label, e.g. MATCH (n:GraphNode {key: $key}). Writes, LOAD CSV, procedures, SHOW commands, \
`MATCH (n)` over every node and sandgraph's own record (Execution, AuditEvent, User, Code) are \
refused with a message saying why; at most 1000 rows. Nodes come back as {id, labels, properties}, \
relationships as {id, type, properties, start, end}."
    )]
    async fn graph_query(
        &self,
        Parameters(request): Parameters<tools::graph::GraphQueryRequest>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<tools::graph::GraphQueryResponse>, CallToolResult> {
        let ctx = self.call_context(&context)?;
        tools::graph::graph_query(&self.tools, &ctx, request)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    /// Execution history (developer and up).
    #[tool(
        name = "execution_history",
        description = "List recorded tool runs, newest first (developer role or higher). Filters: \
caller, tool, language, code_hash, outcome, since/until (RFC 3339); limit 1-200 (default 50); pass \
next_cursor as cursor for the next page."
    )]
    async fn execution_history(
        &self,
        Parameters(filter): Parameters<crate::store::HistoryFilter>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<crate::store::Page<crate::store::ExecutionRecord>>, CallToolResult> {
        let ctx = self.call_context(&context)?;
        tools::history::execution_history(&self.tools, &ctx, filter)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    /// One recorded run by id.
    #[tool(
        name = "get_execution",
        description = "Fetch one recorded run by its id (developer role or higher)."
    )]
    async fn get_execution(
        &self,
        Parameters(request): Parameters<tools::history::GetExecutionRequest>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<crate::store::ExecutionRecord>, CallToolResult> {
        let ctx = self.call_context(&context)?;
        let id = request.id.clone();
        match tools::history::get_execution(&self.tools, &ctx, request).await {
            Ok(Some(record)) => Ok(Json(record)),
            Ok(None) => Err(tool_error(ToolError::invalid(
                "id",
                format!("no execution with id {id:?}"),
            ))),
            Err(err) => Err(tool_error(err)),
        }
    }

    /// Statistics for a code hash.
    #[tool(
        name = "code_stats",
        description = "How often a code hash ran, by how many callers, its failure rate and median \
duration (developer role or higher)."
    )]
    async fn code_stats(
        &self,
        Parameters(request): Parameters<tools::history::CodeStatsRequest>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<crate::store::CodeStats>, CallToolResult> {
        let ctx = self.call_context(&context)?;
        tools::history::code_stats(&self.tools, &ctx, request)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    /// The audit log (admin).
    #[tool(
        name = "audit_log",
        description = "Audit events, newest first (admin only): who called what, allowed, denied, \
rate-limited or served from cache. Filters: caller, event_type, endpoint, outcome, since/until."
    )]
    async fn audit_log(
        &self,
        Parameters(filter): Parameters<crate::store::AuditFilter>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<crate::store::Page<crate::audit::AuditEvent>>, CallToolResult> {
        let ctx = self.call_context(&context)?;
        tools::history::audit_log(&self.tools, &ctx, filter)
            .await
            .map(Json)
            .map_err(tool_error)
    }
}

/// The URI of a prompt's text as an MCP resource.
fn prompt_uri(slug: &str) -> String {
    format!("sandgraph://prompts/{slug}")
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SandgraphMcp {
    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.admit_prompts(&context)?;
        let prompts = tools::prompts::list()
            .into_iter()
            .map(|p| {
                let mut prompt = Prompt::new(p.slug, Some(p.description), None);
                prompt.title = Some(p.title.to_owned());
                prompt
            })
            .collect();
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.admit_prompts(&context)?;
        let prompt = tools::prompts::get(&request.name, &self.tools.config.sandbox.limits)
            .ok_or_else(|| {
                ErrorData::invalid_params(format!("no prompt named {:?}", request.name), None)
            })?;
        Ok(
            GetPromptResult::new(vec![PromptMessage::new_text(Role::User, prompt.content)])
                .with_description(prompt.description)
                .into(),
        )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.admit_prompts(&context)?;
        let resources = tools::prompts::list()
            .into_iter()
            .map(|p| {
                Resource::new(prompt_uri(p.slug), p.slug)
                    .with_title(p.title)
                    .with_description(p.description)
                    .with_mime_type("text/markdown")
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.admit_prompts(&context)?;
        let prompt = request
            .uri
            .strip_prefix("sandgraph://prompts/")
            .and_then(|slug| tools::prompts::get(slug, &self.tools.config.sandbox.limits))
            .ok_or_else(|| ErrorData::resource_not_found(request.uri.clone(), None))?;
        let contents =
            ResourceContents::text(prompt.content, request.uri).with_mime_type("text/markdown");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .build(),
        )
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
        .with_max_request_body_bytes(tools.config.max_code_bytes * 4 + (1 << 20));
    StreamableHttpService::new(
        move || Ok(SandgraphMcp::new(tools.clone(), Transport::McpHttp)),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

/// Serve MCP on stdin/stdout until the client disconnects.
pub async fn serve_stdio(tools: Tools) -> anyhow::Result<()> {
    let service = SandgraphMcp::new(tools, Transport::McpStdio)
        .serve(rmcp::transport::stdio())
        .await?;
    service.waiting().await?;
    Ok(())
}

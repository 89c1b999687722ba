//! The MCP server: an rmcp tool router over the same `tools::*` functions the REST API
//! calls, served on stdio (`sandgraph mcp`) and as streamable HTTP at `/mcp`. Prompts are
//! listed resources; the record's resource templates are a table in [`resources`].

pub mod resources;

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult,
    CompletionInfo, ContentBlock, ErrorData, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, Prompt, PromptMessage,
    ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    Reference, Resource, ResourceContents, ResourceTemplate, Role, ServerCapabilities,
    ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, ServiceExt};
use serde_json::{Value, json};

use crate::audit::{CallContext, Transport};
use crate::auth::{Caller, Endpoint};
use crate::call::{self, Args, Attachment, DynTool, Rendering};
use crate::tools::{self, ToolError, Tools, registry};

/// Instructions sent to MCP clients at initialisation.
const INSTRUCTIONS: &str = "sandgraph runs code in a wasmtime sandbox. `execute_code` runs a \
Python (CPython 3.14) or JavaScript (QuickJS) program with no network, no environment and only \
a private scratch directory (/scratch, Python only); the result says how it ended in \
`exit_reason` (ok, error, timeout, memory_limit, output_limit, file_quota). `lint_code` lints \
Python or JavaScript without running it, `run_tests` runs pytest (or, for JavaScript, a \
jest-like runner), `generate_code` renders Jinja2 templates, \
`list_packages` lists the packages code can import (also the sandgraph://packages resource). \
For work across calls, `create_workspace` gives a private directory (workspace_id) that \
execute_code and run_tests can run in: files written there stay, results list the files a run \
created or changed as sandgraph://workspaces/{id}/files/{path} resources, and PNG/JPEG/GIF/SVG \
pictures come back as images. For the knowledge graph, call `graph_schema` first (labels, \
relationship types, property keys, constraints, indexes), then `graph_query` (read-only \
Cypher). The prompts (and the sandgraph://prompts/* resources) explain \
each tool and the limits; the `workspaces-and-charts` prompt shows how to draw a chart.";

/// One MCP session's handler; clones share the tools and the registry.
#[derive(Clone)]
pub struct SandgraphMcp {
    tools: Tools,
    transport: Transport,
    registry: &'static [Arc<dyn DynTool>],
}

/// Turn a tool refusal into an MCP tool error (`isError: true`) whose text is the same
/// JSON `{"detail": ...}` the REST API returns, so agents can act on it.
fn tool_error(err: ToolError) -> CallToolResult {
    let (kind, detail) = match &err {
        ToolError::Invalid { .. } | ToolError::Unreadable { .. } => {
            ("invalid_argument", err.to_string())
        }
        ToolError::TooLarge { .. } => ("too_large", err.to_string()),
        ToolError::Busy { .. } => ("busy", err.to_string()),
        ToolError::Forbidden { .. } => ("forbidden", err.to_string()),
        ToolError::NotFound { .. } => ("not_found", err.to_string()),
        ToolError::QuotaExceeded { .. } => ("quota_exceeded", err.to_string()),
        ToolError::Cancelled { .. } => ("cancelled", err.to_string()),
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

/// A prompt/resource refusal as a JSON-RPC error.
fn request_error(err: ToolError) -> ErrorData {
    match err {
        ToolError::NotFound { detail } => ErrorData::invalid_params(detail, None),
        ToolError::Internal(inner) => {
            tracing::error!(error = format!("{inner:#}"), "request failed");
            ErrorData::internal_error("internal error; see the server log", None)
        }
        other => ErrorData::invalid_request(other.to_string(), None),
    }
}

/// The MCP descriptions of the registered tools (in registry order), built once: their
/// schemas never change while the process runs.
fn mcp_tools() -> &'static [Tool] {
    static TOOLS: std::sync::OnceLock<Vec<Tool>> = std::sync::OnceLock::new();
    TOOLS.get_or_init(|| {
        registry::all()
            .iter()
            .map(|tool| mcp_tool(tool.as_ref()))
            .collect()
    })
}

/// The MCP description of a registered tool.
fn mcp_tool(tool: &dyn DynTool) -> Tool {
    let spec = tool.spec();
    let hints = spec.hints;
    let annotations = ToolAnnotations::from_raw(
        Some(spec.title.to_owned()),
        Some(hints.read_only),
        Some(hints.destructive),
        Some(hints.idempotent),
        Some(hints.open_world),
    );
    Tool::new(spec.name, spec.description, Arc::new(tool.input_schema()))
        .with_title(spec.title)
        .with_raw_output_schema(Arc::new(tool.output_schema()))
        .with_annotations(annotations)
}

impl SandgraphMcp {
    /// A handler over `tools` for calls arriving on `transport`.
    pub fn new(tools: Tools, transport: Transport) -> Self {
        Self {
            tools,
            transport,
            registry: registry::all(),
        }
    }

    /// Who is calling: on streamable HTTP, the caller the HTTP middleware authenticated
    /// (carried in the request parts); on stdio, the local user who started the process.
    fn call_context(&self, context: &RequestContext<RoleServer>) -> Result<CallContext, ErrorData> {
        if self.transport == Transport::McpStdio {
            return Ok(CallContext::new(Caller::local_user(), Transport::McpStdio));
        }
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<CallContext>())
            .cloned()
            .ok_or_else(|| {
                ErrorData::internal_error("MCP request without an authenticated caller", None)
            })
    }

    /// A context for one request: the session's caller with this request's own id and
    /// start time (a streamable-HTTP session carries the caller of its first request).
    fn request_context(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallContext, ErrorData> {
        let mut ctx = self.call_context(context)?;
        if self.transport == Transport::McpStdio {
            ctx.request_id = uuid::Uuid::now_v7().to_string();
            ctx.started = std::time::Instant::now();
        }
        // rmcp cancels this token on `notifications/cancelled` and when the client
        // drops the response stream.
        ctx.cancel = context.ct.clone();
        Ok(ctx)
    }
}

/// An attachment as an MCP content block.
fn content_block(attachment: Attachment) -> ContentBlock {
    use base64::Engine as _;
    match attachment {
        Attachment::Image { mime, data } => {
            ContentBlock::image(base64::engine::general_purpose::STANDARD.encode(data), mime)
        }
        Attachment::Link {
            uri,
            name,
            mime,
            size,
        } => ContentBlock::resource_link(
            Resource::new(uri, name)
                .with_mime_type(mime)
                .with_size(size),
        ),
    }
}

/// `sandgraph://workspaces/{id}/files/{path}` split into the id and the (encoded) path.
fn workspace_file_uri(uri: &str) -> Option<(&str, &str)> {
    uri.strip_prefix("sandgraph://workspaces/")?
        .split_once("/files/")
}

/// The `list_packages` answer as an MCP resource.
const PACKAGES_URI: &str = "sandgraph://packages";

/// The URI of a prompt's text as an MCP resource.
fn prompt_uri(slug: &str) -> String {
    format!("sandgraph://prompts/{slug}")
}

impl SandgraphMcp {
    /// `sandgraph://packages`: the `list_packages` tool's answer, through the one call
    /// path (admitted, audited) like a tool call.
    async fn read_packages_resource(
        &self,
        ctx: &CallContext,
        uri: String,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let name = tools::packages::LIST_PACKAGES_SPEC.name;
        let Some(tool) = self.registry.iter().find(|tool| tool.spec().name == name) else {
            return Err(ErrorData::resource_not_found(uri, None));
        };
        let called = tool
            .call(
                &self.tools,
                ctx,
                Args::Json(Value::Null),
                Rendering::JsonOnly,
            )
            .await
            .map_err(request_error)?;
        let contents =
            ResourceContents::text(called.body.to_string(), uri).with_mime_type("application/json");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}

impl ServerHandler for SandgraphMcp {
    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let ctx = self.request_context(&context)?;
        // A caller sees only the tools its role may call.
        let tools = self
            .registry
            .iter()
            .zip(mcp_tools())
            .filter(|(tool, _)| ctx.caller.role >= tool.spec().least_role())
            .map(|(_, listed)| listed.clone())
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        mcp_tools().iter().find(|tool| tool.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let ctx = self.request_context(&context)?;
        let Some(tool) = self
            .registry
            .iter()
            .find(|tool| tool.spec().name == request.name)
        else {
            return Err(ErrorData::invalid_params(
                format!("no tool named {:?}; tools/list lists them", request.name),
                None,
            ));
        };
        let args = Args::Json(
            request
                .arguments
                .map(Value::Object)
                .unwrap_or_else(|| Value::Object(Default::default())),
        );
        let result = match tool
            .call(&self.tools, &ctx, args, Rendering::WithText)
            .await
        {
            Ok(called) => {
                let mut content = vec![ContentBlock::text(called.text.unwrap_or_default())];
                content.extend(called.attachments.into_iter().map(content_block));
                // A link to the call's own record, for callers who may read it: agents
                // never see the record, so their results carry no link they could not
                // follow.
                if let Some(id) = called
                    .record_id
                    .filter(|_| ctx.caller.may(Endpoint::History))
                {
                    content.push(ContentBlock::resource_link(
                        Resource::new(resources::execution_uri(&id), "execution")
                            .with_title("This call's record")
                            .with_mime_type("application/json"),
                    ));
                }
                let mut result = CallToolResult::success(content);
                result.structured_content = Some(called.body);
                result
            }
            Err(error) => tool_error(error),
        };
        Ok(result.into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let ctx = self.request_context(&context)?;
        let prompts = call::audited(
            &self.tools,
            &ctx,
            Endpoint::Prompts,
            "list_prompts",
            async { Ok(tools::prompts::list()) },
        )
        .await
        .map_err(request_error)?
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
        let ctx = self.request_context(&context)?;
        let limits = self.tools.config.as_ref();
        let prompt = call::audited(&self.tools, &ctx, Endpoint::Prompts, "get_prompt", async {
            tools::prompts::get(&request.name, limits).ok_or_else(|| ToolError::NotFound {
                detail: format!("no prompt named {:?}", request.name),
            })
        })
        .await
        .map_err(request_error)?;
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
        let ctx = self.request_context(&context)?;
        let prompts = call::audited(
            &self.tools,
            &ctx,
            Endpoint::Prompts,
            "list_resources",
            async { Ok(tools::prompts::list()) },
        )
        .await
        .map_err(request_error)?;
        let packages = &tools::packages::LIST_PACKAGES_SPEC;
        let resources = prompts
            .into_iter()
            .map(|p| {
                Resource::new(prompt_uri(p.slug), p.slug)
                    .with_title(p.title)
                    .with_description(p.description)
                    .with_mime_type("text/markdown")
            })
            .chain(std::iter::once(
                Resource::new(PACKAGES_URI, packages.name)
                    .with_title(packages.title)
                    .with_description(packages.description)
                    .with_mime_type("application/json"),
            ))
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let ctx = self.request_context(&context)?;
        call::audited(
            &self.tools,
            &ctx,
            Endpoint::Prompts,
            "list_resource_templates",
            async { Ok(()) },
        )
        .await
        .map_err(request_error)?;
        // Like tools/list: a caller sees only the templates its role may read.
        let templates = resources::TEMPLATES
            .iter()
            .filter(|template| ctx.caller.may(template.endpoint))
            .map(|template| {
                let listed = ResourceTemplate::new(template.uri_template, template.name)
                    .with_title(template.title)
                    .with_description(template.description);
                match template.mime_type {
                    Some(mime) => listed.with_mime_type(mime),
                    None => listed,
                }
            })
            .chain(ctx.caller.may(Endpoint::Workspaces).then(|| {
                ResourceTemplate::new(tools::workspace::FILE_URI_TEMPLATE, "workspace-file")
                    .with_title("A file in one of your workspaces")
                    .with_description(
                        "A file a run or write_file put in a workspace (yours only); results \
                         of execute_code and run_tests link the files they created or changed.",
                    )
            }))
            .collect();
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let ctx = self.request_context(&context)?;
        if request.uri == PACKAGES_URI {
            return self.read_packages_resource(&ctx, request.uri).await;
        }
        if let Some((workspace_id, path)) = workspace_file_uri(&request.uri) {
            return self
                .read_workspace_file(&ctx, &request.uri, workspace_id, path)
                .await;
        }
        let uri = request.uri.clone();
        let not_found = |e| match e {
            ToolError::NotFound { detail } => ErrorData::resource_not_found(detail, None),
            other => request_error(other),
        };
        if let Some((template, argument)) = resources::find(&uri) {
            let contents = call::audited(
                &self.tools,
                &ctx,
                template.endpoint,
                "read_resource",
                (template.read)(&self.tools, &uri, argument),
            )
            .await
            .map_err(not_found)?;
            return Ok(ReadResourceResult::new(contents).into());
        }
        let limits = self.tools.config.as_ref();
        let prompt = call::audited(
            &self.tools,
            &ctx,
            Endpoint::Prompts,
            "read_resource",
            async {
                uri.strip_prefix("sandgraph://prompts/")
                    .and_then(|slug| tools::prompts::get(slug, limits))
                    .ok_or_else(|| ToolError::NotFound {
                        detail: format!("no resource {uri:?}"),
                    })
            },
        )
        .await
        .map_err(not_found)?;
        let contents =
            ResourceContents::text(prompt.content, request.uri).with_mime_type("text/markdown");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let ctx = self.request_context(&context)?;
        let template = match &request.r#ref {
            Reference::Resource(reference) => resources::TEMPLATES
                .iter()
                .find(|t| t.uri_template == reference.uri && t.argument == request.argument.name),
            _ => None,
        };
        // Prompts take no arguments; unknown templates and arguments complete to nothing.
        let Some((template, complete)) =
            template.and_then(|t| t.complete.map(|complete| (t, complete)))
        else {
            return Ok(CompleteResult::default());
        };
        let values = call::audited(
            &self.tools,
            &ctx,
            template.endpoint,
            "complete",
            complete(&self.tools, &request.argument.value),
        )
        .await
        .map_err(request_error)?;
        let completion =
            CompletionInfo::new(values).map_err(|e| ErrorData::internal_error(e, None))?;
        Ok(CompleteResult::new(completion))
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .enable_completions()
                .build(),
        )
        .with_protocol_version(ProtocolVersion::V_2025_11_25)
        .with_server_info(Implementation::new("sandgraph", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }
}

impl SandgraphMcp {
    /// `resources/read` of a workspace file: audited as one workspaces call; text
    /// when it is UTF-8 text, else a base64 blob. Another caller's workspace does not
    /// exist.
    async fn read_workspace_file(
        &self,
        ctx: &CallContext,
        uri: &str,
        workspace_id: &str,
        path: &str,
    ) -> Result<ReadResourceResponse, ErrorData> {
        use base64::Engine as _;
        let path = crate::workspace::path::decode(path);
        let (file, bytes) = call::audited(
            &self.tools,
            ctx,
            Endpoint::Workspaces,
            "read_resource",
            tools::workspace::read_for_download(&self.tools, ctx, workspace_id, path),
        )
        .await
        .map_err(|e| match e {
            ToolError::NotFound { .. } => ErrorData::resource_not_found(uri.to_owned(), None),
            other => request_error(other),
        })?;
        let contents = match tools::workspace::resource_text(&file.mime, &bytes) {
            Some(text) => ResourceContents::text(text, uri),
            None => ResourceContents::blob(
                base64::engine::general_purpose::STANDARD.encode(&bytes),
                uri,
            ),
        }
        .with_mime_type(file.mime);
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}

/// The streamable-HTTP MCP service, to be nested at `/mcp`.
pub fn streamable_http_service(
    tools: Tools,
) -> StreamableHttpService<SandgraphMcp, LocalSessionManager> {
    let mut allowed_hosts: Vec<String> =
        ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    allowed_hosts.extend(tools.config.allowed_hosts.iter().cloned());
    // Browsers send `Origin`; a page on a foreign origin must not drive a local server
    // (the spec's MUST). Loopback origins are always allowed.
    let mut allowed_origins: Vec<String> =
        ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
            .map(String::from)
            .to_vec();
    allowed_origins.extend(tools.config.allowed_origins.iter().cloned());
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts)
        .with_allowed_origins(allowed_origins)
        // At the end of the drain's grace period, sessions, streams and in-flight
        // requests (their run tokens derive from this) are cancelled.
        .with_cancellation_token(tools.shutdown.runs_token().child_token())
        .with_max_request_body_bytes(tools.config.body_limit());
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

//! The one call path. Every tool is a [`Tool`] listed in [`crate::tools::registry`];
//! every transport (REST, MCP on stdio and streamable HTTP) hands a call to [`call`],
//! which owns the sequence so no tool can skip a stage:
//!
//! authenticate (the transport) -> admit (role, rate limit) -> validate (parse the
//! arguments) -> run (the tool; it uses the cache where its results are cacheable) ->
//! record (one audit event with the real outcome, and the tool's result record,
//! committed durably before the answer) -> respond.
//!
//! REST routes, MCP tools and their schemas, and the role table are generated from the
//! registry's [`ToolSpec`]s; adding a tool is one file and one registry line.

use std::future::Future;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::audit::{AuditDecision, AuditEvent, CallContext, Transport};
use crate::auth::{Endpoint, Role};
use crate::rate_limit::retry_after_seconds;
use crate::store::{ExecutionRecord, Record, StoredCode};
use crate::tools::{ToolError, Tools};

/// How a tool is reached over REST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestMethod {
    /// Arguments in a JSON body.
    Post,
    /// Arguments in the query string and path.
    Get,
    /// Arguments in the path (and query string).
    Delete,
}

/// A tool's REST route: method, path (axum syntax, `{name}` binds an argument) and the
/// status of a success.
#[derive(Debug, Clone, Copy)]
pub struct RestRoute {
    /// HTTP method.
    pub method: RestMethod,
    /// Path, e.g. `/executions/{id}`.
    pub path: &'static str,
    /// 200, 201 (created) or 204 (no body).
    pub status: u16,
}

/// What a tool does to the world, as MCP's tool annotations say it.
#[derive(Debug, Clone, Copy)]
pub struct Hints {
    /// Changes nothing outside the call (a sandboxed run is read-only: its scratch dir
    /// dies with it).
    pub read_only: bool,
    /// May destroy or overwrite something (only meaningful when not read-only).
    pub destructive: bool,
    /// Repeating the call with the same arguments has no further effect.
    pub idempotent: bool,
    /// Reaches outside sandgraph (the network, other systems).
    pub open_world: bool,
}

impl Hints {
    /// A tool that only reads.
    pub const READ_ONLY: Hints = Hints {
        read_only: true,
        destructive: false,
        idempotent: true,
        open_world: false,
    };
}

/// Everything the transports need to know about a tool.
#[derive(Debug, Clone, Copy)]
pub struct ToolSpec {
    /// MCP tool name, audit endpoint name.
    pub name: &'static str,
    /// Human-readable title.
    pub title: &'static str,
    /// What it does, for the caller (and the LLM) to choose it.
    pub description: &'static str,
    /// Which role it needs and which rate-limit bucket it spends.
    pub endpoint: Endpoint,
    /// Annotations.
    pub hints: Hints,
    /// REST route.
    pub rest: RestRoute,
}

impl ToolSpec {
    /// The least role allowed to call it.
    pub fn least_role(&self) -> Role {
        self.endpoint.required_role()
    }
}

/// One tool: typed arguments in, typed result out. Knows nothing of transports.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// Arguments.
    type Request: DeserializeOwned + JsonSchema + Send + 'static;
    /// Result.
    type Response: Serialize + JsonSchema + ToolResponse + Send + 'static;
    /// Name, title, role, hints, route.
    fn spec(&self) -> &'static ToolSpec;
    /// The source text the call carries (code, tests, a template, a query), kept with
    /// its record once per hash unless the server keeps no source. Must be what the
    /// record's `code_hash` hashes ([`Source::hash`]).
    fn source(&self, _request: &Self::Request) -> Option<Source> {
        None
    }
    /// Do the work (validation beyond parsing included).
    async fn run(
        &self,
        tools: &Tools,
        ctx: &CallContext,
        request: Self::Request,
    ) -> Result<Self::Response, ToolError>;
}

/// Content a result carries besides its JSON, for transports that can show it (MCP
/// image content and resource links); never part of the JSON, never audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachment {
    /// A picture (`image/png`, `image/jpeg`, `image/gif`).
    Image {
        /// Its MIME type.
        mime: &'static str,
        /// The image bytes.
        data: Vec<u8>,
    },
    /// A resource the caller can read (`resources/read`).
    Link {
        /// Its URI.
        uri: String,
        /// Its name (a file path).
        name: String,
        /// Its MIME type.
        mime: String,
        /// Its size in bytes.
        size: u64,
    },
}

/// The source text of a call, as [`Tool::source`] gives it.
#[derive(Debug, Clone)]
pub struct Source {
    /// The code (the module under test, a template, a query).
    pub code: String,
    /// `run_tests`' separate tests.
    pub tests: Option<String>,
}

impl Source {
    /// Only `code`.
    pub fn code(code: &str) -> Self {
        Self {
            code: code.to_owned(),
            tests: None,
        }
    }

    /// The hash records carry for it: SHA-256 of the code, or of code, NUL, tests.
    pub fn hash(&self) -> String {
        match &self.tests {
            None => crate::tools::code_hash(&self.code),
            Some(tests) => crate::tools::code_hash(&format!("{}\0{}", self.code, tests)),
        }
    }
}

/// How a result is remembered and shown.
pub trait ToolResponse {
    /// The history record of this result, if the tool keeps one (history reads do not:
    /// their audit event is their trace).
    fn record(&self, _ctx: &CallContext, _tool: &str) -> Option<ExecutionRecord> {
        None
    }
    /// A concise text an LLM reads well (MCP text content); `structuredContent` keeps
    /// every field. Default: the JSON.
    fn render(&self) -> Option<String> {
        None
    }
    /// What the call's audit event says about it (which workspace, how many files;
    /// never code or file contents). Default: nothing.
    fn audit_detail(&self) -> Option<String> {
        None
    }
    /// Pictures and links to show beside the text (moved out of the result).
    fn attachments(&mut self) -> Vec<Attachment> {
        Vec::new()
    }
}

/// A call's arguments as a transport received them.
pub enum Args {
    /// A JSON object (REST bodies, MCP arguments).
    Json(Value),
    /// A URL-encoded query string, path parameters appended (REST GET/DELETE).
    Query(String),
    /// The transport could not even read them (malformed JSON): refused, audited.
    Unreadable(ToolError),
}

/// A finished call: the result as JSON, and its text rendering and attachments when the
/// transport asked for them (MCP shows them; REST does not, so it does not pay for them).
pub struct Called {
    /// The response as JSON (REST body, MCP `structuredContent`).
    pub body: Value,
    /// The text rendering (MCP text content), if asked for.
    pub text: Option<String>,
    /// Pictures and resource links (MCP content blocks after the text), if asked for.
    pub attachments: Vec<Attachment>,
    /// The id of the call's history record, if it has one.
    pub record_id: Option<String>,
}

/// Whether the transport shows a text rendering of the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    /// JSON only (REST).
    JsonOnly,
    /// JSON and a concise text (MCP).
    WithText,
}

/// A [`Tool`] with its types erased, so a registry can hold them all.
#[async_trait]
pub trait DynTool: Send + Sync {
    /// Its spec.
    fn spec(&self) -> &'static ToolSpec;
    /// JSON Schema of its arguments (standard 2020-12 keywords only).
    fn input_schema(&self) -> serde_json::Map<String, Value>;
    /// JSON Schema of its result.
    fn output_schema(&self) -> serde_json::Map<String, Value>;
    /// Run one call through the pipeline.
    async fn call(
        &self,
        tools: &Tools,
        ctx: &CallContext,
        args: Args,
        rendering: Rendering,
    ) -> Result<Called, ToolError>;
}

#[async_trait]
impl<T: Tool> DynTool for T {
    fn spec(&self) -> &'static ToolSpec {
        Tool::spec(self)
    }

    fn input_schema(&self) -> serde_json::Map<String, Value> {
        schema_for::<T::Request>(false)
    }

    fn output_schema(&self) -> serde_json::Map<String, Value> {
        schema_for::<T::Response>(true)
    }

    async fn call(
        &self,
        tools: &Tools,
        ctx: &CallContext,
        args: Args,
        rendering: Rendering,
    ) -> Result<Called, ToolError> {
        let (mut response, record_id) =
            pipeline(tools, ctx, self, || parse::<T::Request>(args)).await?;
        let body = serde_json::to_value(&response)
            .map_err(|e| ToolError::Internal(anyhow::anyhow!("serialising the result: {e}")))?;
        let with_text = rendering == Rendering::WithText;
        let text = with_text.then(|| response.render().unwrap_or_else(|| body.to_string()));
        let attachments = if with_text {
            response.attachments()
        } else {
            Vec::new()
        };
        Ok(Called {
            body,
            text,
            attachments,
            record_id,
        })
    }
}

fn parse<R: DeserializeOwned>(args: Args) -> Result<R, ToolError> {
    match args {
        Args::Json(value) => {
            let value = if value.is_null() {
                Value::Object(Default::default())
            } else {
                value
            };
            serde_json::from_value(value)
                .map_err(|e| ToolError::invalid("arguments", e.to_string()))
        }
        Args::Query(query) => serde_urlencoded::from_str(&query)
            .map_err(|e| ToolError::invalid("query", e.to_string())),
        Args::Unreadable(error) => Err(error),
    }
}

/// Call a tool with typed arguments (in-process callers: benchmarks, the stdio server's
/// own helpers), through the same stages as every transport.
pub async fn call_typed<T: Tool>(
    tools: &Tools,
    ctx: &CallContext,
    tool: &T,
    request: T::Request,
) -> Result<T::Response, ToolError> {
    pipeline(tools, ctx, tool, || Ok(request))
        .await
        .map(|(response, _)| response)
}

/// admit -> validate -> run -> record. Returns the result and its record's id.
async fn pipeline<T: Tool>(
    tools: &Tools,
    ctx: &CallContext,
    tool: &T,
    arguments: impl FnOnce() -> Result<T::Request, ToolError>,
) -> Result<(T::Response, Option<String>), ToolError> {
    let spec = Tool::spec(tool);
    admit(tools, ctx, spec.endpoint, spec.name).await?;
    let (result, source) = match arguments() {
        Ok(request) => {
            // Taken before the run consumes the request; not at all when no source is kept.
            let source = if tools.config.store_source {
                tool.source(&request)
            } else {
                None
            };
            (tool.run(tools, ctx, request).await, source)
        }
        Err(error) => (Err(error), None),
    };
    record(tools, ctx, spec.name, result, source).await
}

/// Run a non-tool request (prompts, resources) through admit -> run -> record, so it is
/// audited like a tool call.
pub async fn audited<R, Fut>(
    tools: &Tools,
    ctx: &CallContext,
    endpoint: Endpoint,
    name: &str,
    work: Fut,
) -> Result<R, ToolError>
where
    Fut: Future<Output = Result<R, ToolError>>,
{
    admit(tools, ctx, endpoint, name).await?;
    let result = work.await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(error) => error.outcome(),
    };
    let detail = result.as_ref().err().map(ToString::to_string);
    let mut event = AuditEvent::new(ctx, name, AuditDecision::Allowed, detail);
    event.outcome = Some(outcome.to_owned());
    observe(ctx, name, outcome, false);
    commit(tools, vec![Record::Audit(event)]).await?;
    result
}

/// The caller's role, then its rate limit. A refusal is the call's one audit event.
async fn admit(
    tools: &Tools,
    ctx: &CallContext,
    endpoint: Endpoint,
    name: &str,
) -> Result<(), ToolError> {
    let refusal = if !ctx.caller.may(endpoint) {
        let detail = format!(
            "role {} may not call {name}; it needs {} or higher",
            ctx.caller.role.as_str(),
            endpoint.required_role().as_str()
        );
        metrics::counter!("sandgraph_access_denied_total", "endpoint" => endpoint.name(), "reason" => "forbidden").increment(1);
        (
            AuditDecision::Forbidden,
            detail.clone(),
            ToolError::Forbidden { detail },
        )
    } else if let Err(wait) = tools.rate_limits.check(endpoint, &ctx.caller.id) {
        let retry_after = retry_after_seconds(wait);
        metrics::counter!("sandgraph_rate_limited_total", "endpoint" => endpoint.name())
            .increment(1);
        (
            AuditDecision::RateLimited,
            format!("retry after {retry_after} s"),
            ToolError::RateLimited {
                retry_after_seconds: retry_after,
            },
        )
    } else {
        return Ok(());
    };
    let (decision, detail, error) = refusal;
    let mut event = AuditEvent::new(ctx, name, decision, Some(detail));
    event.outcome = Some("refused".to_owned());
    observe(ctx, name, "refused", false);
    if decision == AuditDecision::RateLimited {
        // A caller over its limit may be flooding: its refusals must not cost a durable
        // commit each (the writer's capacity belongs to admitted calls). Queued, not
        // awaited.
        tools.store.append_later(vec![Record::Audit(event)]);
    } else {
        // A forbidden call is rare and worth an admin's attention: committed before the
        // answer like every other outcome.
        commit(tools, vec![Record::Audit(event)]).await?;
    }
    Err(error)
}

/// The call's one audit event (decision allowed or cache hit, with the outcome) and its
/// result record (with its source text, the first time this process sees its hash),
/// committed durably before the answer; if they cannot be, 503.
async fn record<R: ToolResponse>(
    tools: &Tools,
    ctx: &CallContext,
    name: &str,
    result: Result<R, ToolError>,
    source: Option<Source>,
) -> Result<(R, Option<String>), ToolError> {
    match result {
        Ok(response) => {
            let record = response.record(ctx, name);
            let (outcome, cached) = record
                .as_ref()
                .map(|r| (r.outcome.clone(), r.cached))
                .unwrap_or_else(|| ("ok".to_owned(), false));
            let decision = if cached {
                AuditDecision::CacheHit
            } else {
                AuditDecision::Allowed
            };
            let mut event = AuditEvent::new(ctx, name, decision, response.audit_detail());
            event.outcome = Some(outcome.clone());
            observe(ctx, name, &outcome, cached);
            let record_id = record.as_ref().map(|r| r.id.clone());
            let mut records = vec![Record::Audit(event)];
            let code = record.map(|r| with_source(tools, &mut records, r, source));
            commit(tools, records).await?;
            remember_code(tools, code.flatten());
            Ok((response, record_id))
        }
        Err(mut error) => {
            let outcome = error.outcome();
            let mut event =
                AuditEvent::new(ctx, name, AuditDecision::Allowed, Some(error.to_string()));
            event.outcome = Some(outcome.to_owned());
            observe(ctx, name, outcome, false);
            let mut records = vec![Record::Audit(event)];
            let mut code = None;
            if let ToolError::Cancelled { record } = &mut error
                && let Some(record) = record.take()
            {
                code = with_source(tools, &mut records, *record, source);
            }
            commit(tools, records).await?;
            remember_code(tools, code);
            Err(error)
        }
    }
}

/// Push `record` onto `records`, saying whether its source is kept, preceded by the
/// source itself unless this process stored that hash lately. Returns the hash of a
/// source pushed, to remember once the commit succeeded.
fn with_source(
    tools: &Tools,
    records: &mut Vec<Record>,
    mut record: ExecutionRecord,
    source: Option<Source>,
) -> Option<String> {
    let mut pushed = None;
    if let Some(hash) = record.code_hash.clone() {
        if !tools.config.store_source {
            record.source_kept = Some(false);
        } else if let Some(source) = source {
            record.source_kept = Some(true);
            if !tools.store.code_recently_stored(&hash) {
                records.push(Record::Code(StoredCode::new(
                    hash.clone(),
                    record.language.clone(),
                    source.code,
                    source.tests,
                )));
                pushed = Some(hash);
            }
        }
    }
    records.push(Record::Execution(record));
    pushed
}

fn remember_code(tools: &Tools, hash: Option<String>) {
    if let Some(hash) = hash {
        tools.store.remember_code(hash);
    }
}

async fn commit(tools: &Tools, records: Vec<Record>) -> Result<(), ToolError> {
    tools
        .store
        .append(records)
        .await
        .map_err(|e| ToolError::Busy {
            detail: e.to_string(),
        })
}

/// Per-call metrics and the one log line per call.
fn observe(ctx: &CallContext, tool: &str, outcome: &str, cached: bool) {
    let transport = transport_name(ctx.transport);
    let elapsed = ctx.started.elapsed().as_secs_f64();
    metrics::counter!(
        "sandgraph_tool_calls_total",
        "tool" => tool.to_owned(),
        "transport" => transport,
        "outcome" => outcome.to_owned(),
        "cached" => if cached { "true" } else { "false" }
    )
    .increment(1);
    metrics::histogram!("sandgraph_tool_duration_seconds", "tool" => tool.to_owned(), "transport" => transport)
        .record(elapsed);
    // Who, what, how it ended, how long. Never code or tokens.
    tracing::info!(
        request_id = %ctx.request_id,
        caller = %ctx.caller.id,
        tool,
        transport,
        outcome,
        cached,
        duration_ms = elapsed * 1000.0,
        "tool call"
    );
}

/// The snake_case name of a transport.
pub fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Rest => "rest",
        Transport::McpHttp => "mcp_http",
        Transport::McpStdio => "mcp_stdio",
        Transport::Console => "console",
        Transport::Internal => "internal",
    }
}

/// A JSON Schema (2020-12) for `T` using only standard keywords and formats: schemars'
/// integer formats (`uint32`, `int64`, `double`, ...) become `minimum`/`maximum` bounds,
/// so strict validators and client SDKs accept the schema without warnings.
pub fn schema_for<T: JsonSchema>(for_output: bool) -> serde_json::Map<String, Value> {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    if for_output {
        settings = settings.for_serialize();
    }
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut value = serde_json::to_value(schema).unwrap_or(Value::Null);
    standardise(&mut value);
    match value {
        Value::Object(map) => map,
        _ => Default::default(),
    }
}

fn standardise(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(format)) = map.get("format") {
                let bounds: Option<(Option<f64>, Option<f64>)> = match format.as_str() {
                    "uint8" => Some((Some(0.0), Some(u8::MAX as f64))),
                    "uint16" => Some((Some(0.0), Some(u16::MAX as f64))),
                    "uint32" => Some((Some(0.0), Some(u32::MAX as f64))),
                    "uint" | "uint64" | "uint128" | "usize" => Some((Some(0.0), None)),
                    "int8" => Some((Some(i8::MIN as f64), Some(i8::MAX as f64))),
                    "int16" => Some((Some(i16::MIN as f64), Some(i16::MAX as f64))),
                    "int32" => Some((Some(i32::MIN as f64), Some(i32::MAX as f64))),
                    "int" | "int64" | "int128" | "isize" | "float" | "double" => Some((None, None)),
                    _ => None,
                };
                if let Some((minimum, maximum)) = bounds {
                    map.remove("format");
                    if let Some(min) = minimum {
                        map.entry("minimum").or_insert_with(|| number(min));
                    }
                    if let Some(max) = maximum {
                        map.entry("maximum").or_insert_with(|| number(max));
                    }
                }
            }
            for child in map.values_mut() {
                standardise(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(standardise),
        _ => {}
    }
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        Value::from(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(JsonSchema, Serialize)]
    #[allow(dead_code)]
    struct Sample {
        small: u32,
        big: u64,
        signed: i32,
        ratio: f64,
        maybe: Option<u16>,
    }

    #[test]
    fn schemas_use_only_standard_formats() {
        let schema = Value::Object(schema_for::<Sample>(false));
        let text = schema.to_string();
        for format in [
            "uint", "int32", "int64", "double", "uint16", "uint32", "uint64",
        ] {
            assert!(
                !text.contains(&format!("\"format\":\"{format}\"")),
                "{text}"
            );
        }
        let props = &schema["properties"];
        assert_eq!(props["small"]["minimum"], 0);
        assert_eq!(props["small"]["maximum"], u32::MAX as i64);
        assert_eq!(props["big"]["minimum"], 0);
        assert_eq!(props["signed"]["minimum"], i32::MIN as i64);
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
    }
}

//! `execute_code`: run a snippet in the sandbox and report its output and how it ended.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::workspace::{FileInput, FilesOut, input_files, tool_error, wants_pictures};
use super::{CachedResult, ToolError, Tools, code_hash, new_id};
use crate::audit::CallContext;
use crate::auth::Endpoint;
use crate::call::{Hints, RestMethod, RestRoute, Source, Tool, ToolResponse, ToolSpec};
use crate::sandbox::{ExitReason, Language, LimitOverrides, RunDir, RunOutput, SandboxLimits};
use crate::workspace::InputFile;

/// Smallest and largest `timeout_seconds` (the contract of the platform we replace).
pub const TIMEOUT_RANGE: (f64, f64) = (0.5, 60.0);
/// `timeout_seconds` when the caller does not say.
pub const DEFAULT_TIMEOUT_SECONDS: f64 = 8.0;

/// Arguments of `execute_code`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    /// The program's source text.
    pub code: String,
    /// `python` (CPython 3.14) or `javascript` (QuickJS-NG). Default `python`.
    #[serde(default = "default_language")]
    pub language: String,
    /// Wall-clock limit in seconds, 0.5 to 60. Default 8.
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    /// Optional tighter or looser (up to the server's ceilings) resource limits.
    #[serde(default)]
    pub limits: Option<LimitOverrides>,
    /// Set to false to skip the result cache (and in-flight sharing). Default true.
    /// Runs in a workspace or with `files` are never cached.
    #[serde(default)]
    pub cache: Option<bool>,
    /// Run in this workspace (from `create_workspace`): it is the working directory,
    /// files written there stay, and the result lists the files created or changed.
    /// Python only.
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// Files to write into the working directory before the run (into the workspace if
    /// one is given, else into a directory that lives only for this run). Python only.
    #[serde(default)]
    pub files: Option<Vec<FileInput>>,
}

pub(crate) fn default_language() -> String {
    "python".to_owned()
}

/// Result of `execute_code`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct ExecuteResponse {
    /// Id of this run.
    pub id: String,
    /// Exit code: 0 on success; 124 timeout, 137 memory trap, 134 other trap.
    pub return_code: i32,
    /// Captured stdout (truncated at the stdout limit).
    pub stdout: String,
    /// Captured stderr (truncated at the stderr limit; sandbox notes appended).
    pub stderr: String,
    /// Time the run took, in seconds.
    pub duration_seconds: f64,
    /// The language that ran.
    pub language: Language,
    /// SHA-256 (hex) of `code`.
    pub code_hash: String,
    /// Why the run ended: ok, error, timeout, memory_limit, output_limit or file_quota.
    pub exit_reason: ExitReason,
    /// Whether stdout or stderr was cut at its limit.
    pub truncated: bool,
    /// Total bytes the program wrote to stdout (kept or not).
    pub stdout_bytes: u64,
    /// Total bytes the program wrote to stderr (kept or not).
    pub stderr_bytes: u64,
    /// The limits the run had.
    pub limits: SandboxLimits,
    /// Whether this answer came from the result cache (no new run).
    pub cached: bool,
    /// For a run in a workspace or with `files`: the files it created or changed.
    #[serde(flatten)]
    pub output: FilesOut,
}

/// Parse and check a language name.
pub fn parse_language(name: &str) -> Result<Language, ToolError> {
    Language::parse(name).ok_or_else(|| {
        ToolError::invalid(
            "language",
            format!("unsupported language {name:?}; supported: python, javascript"),
        )
    })
}

/// Check `timeout_seconds` against `range`, defaulting when absent.
pub fn parse_timeout(
    value: Option<f64>,
    default: f64,
    range: (f64, f64),
) -> Result<Duration, ToolError> {
    let seconds = value.unwrap_or(default);
    if !seconds.is_finite() || seconds < range.0 || seconds > range.1 {
        return Err(ToolError::invalid(
            "timeout_seconds",
            format!(
                "timeout_seconds must be between {} and {} (got {seconds})",
                range.0, range.1
            ),
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Run the request's code in the sandbox.
async fn execute_code_unrecorded(
    tools: &Tools,
    ctx: &CallContext,
    request: ExecuteRequest,
) -> Result<ExecuteResponse, ToolError> {
    tools.check_size("code", &request.code)?;
    let language = parse_language(&request.language)?;
    let timeout = parse_timeout(
        request.timeout_seconds,
        DEFAULT_TIMEOUT_SECONDS,
        TIMEOUT_RANGE,
    )?;
    let limits = tools
        .config
        .sandbox
        .limits
        .resolve(Some(timeout), &request.limits.unwrap_or_default())?;
    let with_files = request.files.as_ref().is_some_and(|f| !f.is_empty());
    if request.workspace_id.is_some() || with_files {
        return execute_with_files(tools, ctx, request, language, limits).await;
    }
    let key = (language, &request.code, limits);
    let run = || async {
        let output = tools
            .sandbox
            .execute_until(language, &request.code, limits, &ctx.caller.id, &ctx.cancel)
            .await?;
        let response = response(language, &request.code, output);
        // A cancelled run is recorded, never cached nor shared with identical calls
        // in flight (they run on their own).
        if response.exit_reason == ExitReason::Cancelled {
            return Err(ToolError::Cancelled {
                record: response.record(ctx, SPEC.name).map(Box::new),
            });
        }
        Ok(CachedResult::Execute(response))
    };
    let use_cache = request.cache.unwrap_or(true);
    let (result, cached) = tools
        .cached(ctx, Endpoint::ExecuteCode, use_cache, &key, run)
        .await?;
    match result {
        CachedResult::Execute(mut response) => {
            response.id = new_id();
            response.cached = cached;
            Ok(response)
        }
        _ => Err(ToolError::Internal(anyhow::anyhow!(
            "cache returned another tool's result"
        ))),
    }
}

/// Check that `language` can use files (Python; QuickJS here has no filesystem).
pub(crate) fn files_need_python(language: Language) -> Result<(), ToolError> {
    if language == Language::Python {
        return Ok(());
    }
    Err(ToolError::invalid(
        "language",
        format!(
            "workspace_id and files need python: {} runs here without a filesystem",
            language.as_str()
        ),
    ))
}

/// The run's directory: the workspace (with `inputs` written into it), or one of its
/// own holding `inputs`.
pub(crate) async fn begin_scope(
    tools: &Tools,
    ctx: &CallContext,
    workspace_id: Option<&str>,
    inputs: Vec<InputFile>,
    limits: SandboxLimits,
) -> Result<crate::workspace::RunScope, ToolError> {
    let workspaces = &tools.workspaces;
    match workspace_id {
        Some(id) => workspaces
            .begin_run(&ctx.caller.id, id, inputs, &ctx.cancel)
            .await
            .map_err(|e| tool_error(e, "files")),
        None => workspaces
            .begin_ephemeral_run(inputs, limits.scratch_bytes, &ctx.cancel)
            .await
            .map_err(|e| tool_error(e, "files")),
    }
}

/// After a run in `scope`: its files part, or why the call fails (the workspace was
/// deleted during the run).
pub(crate) async fn finish_scope(
    tools: &Tools,
    ctx: &CallContext,
    scope: crate::workspace::RunScope,
) -> Result<FilesOut, ToolError> {
    let deleted = tools.workspaces.deleted_during(&scope);
    let workspace_id = scope.workspace_id().map(str::to_owned);
    let changes = tools
        .workspaces
        .finish_run(scope, wants_pictures(ctx))
        .await;
    if deleted {
        return Err(ToolError::NotFound {
            detail: format!(
                "workspace {} was deleted while the run was in progress; the run was stopped",
                workspace_id.unwrap_or_default()
            ),
        });
    }
    let changes = changes.map_err(|e| tool_error(e, "workspace_id"))?;
    Ok(FilesOut::from_changes(workspace_id.as_deref(), changes))
}

/// A run in a workspace or with files: never cached (it depends on and changes the
/// directory), and its result lists what it created or changed.
async fn execute_with_files(
    tools: &Tools,
    ctx: &CallContext,
    request: ExecuteRequest,
    language: Language,
    limits: SandboxLimits,
) -> Result<ExecuteResponse, ToolError> {
    files_need_python(language)?;
    let inputs = input_files(tools, request.files.unwrap_or_default())?;
    let scope = begin_scope(tools, ctx, request.workspace_id.as_deref(), inputs, limits).await?;
    let dir = RunDir::Existing {
        path: scope.dir().to_owned(),
        budget: scope.budget(),
    };
    let output = tools
        .sandbox
        .execute_in(&request.code, limits, dir, &ctx.caller.id, scope.cancel())
        .await;
    let files = finish_scope(tools, ctx, scope).await;
    let mut response = response(language, &request.code, output?);
    response.output = files?;
    if response.exit_reason == ExitReason::Cancelled {
        return Err(ToolError::Cancelled {
            record: response.record(ctx, SPEC.name).map(Box::new),
        });
    }
    Ok(response)
}

fn response(language: Language, code: &str, output: RunOutput) -> ExecuteResponse {
    ExecuteResponse {
        id: new_id(),
        return_code: output.exit_code,
        stdout: output.stdout,
        stderr: output.stderr,
        duration_seconds: output.duration.as_secs_f64(),
        language,
        code_hash: code_hash(code),
        exit_reason: output.exit_reason,
        truncated: output.truncated,
        stdout_bytes: output.stdout_bytes,
        stderr_bytes: output.stderr_bytes,
        limits: output.limits,
        cached: false,
        output: FilesOut::default(),
    }
}

/// `execute_code`.
pub struct ExecuteCode;

/// Name, role, hints and route of `execute_code`.
pub static SPEC: ToolSpec = ToolSpec {
    name: "execute_code",
    title: "Run code in a sandbox",
    description: "Run a Python (default) or JavaScript program in a fresh wasmtime sandbox \
(no network, no environment, /scratch only) and return its stdout, stderr, return_code and \
exit_reason (ok|error|timeout|memory_limit|output_limit|file_quota). timeout_seconds: 0.5-60, \
default 8. Python: `files` [{path, content | content_base64}] are written into the working \
directory first; with `workspace_id` (create_workspace) the run works in that workspace, its \
files stay, and the result lists the files it created or changed (pictures come back as \
images).",
    endpoint: Endpoint::ExecuteCode,
    // Without a workspace the run changes nothing outside itself (its scratch dir dies
    // with it); in a workspace it may overwrite or delete files there.
    hints: Hints {
        read_only: false,
        destructive: true,
        idempotent: false,
        open_world: false,
    },
    rest: RestRoute {
        method: RestMethod::Post,
        path: "/execute_code",
        status: 200,
    },
};

#[async_trait::async_trait]
impl Tool for ExecuteCode {
    type Request = ExecuteRequest;
    type Response = ExecuteResponse;

    fn spec(&self) -> &'static ToolSpec {
        &SPEC
    }

    fn source(&self, request: &ExecuteRequest) -> Option<Source> {
        Some(Source::code(&request.code))
    }

    async fn run(
        &self,
        tools: &Tools,
        ctx: &CallContext,
        request: ExecuteRequest,
    ) -> Result<ExecuteResponse, ToolError> {
        execute_code_unrecorded(tools, ctx, request).await
    }
}

/// Admit, run and remember one `execute_code` call (the pipeline in [`crate::call`]).
pub async fn execute_code(
    tools: &Tools,
    ctx: &CallContext,
    request: ExecuteRequest,
) -> Result<ExecuteResponse, ToolError> {
    crate::call::call_typed(tools, ctx, &ExecuteCode, request).await
}

/// The text an LLM reads: how the run ended, then its output streams.
pub(crate) fn render_run(
    exit_reason: ExitReason,
    return_code: i32,
    duration_seconds: f64,
    cached: bool,
    stdout: &str,
    stderr: &str,
) -> String {
    let mut text = format!(
        "exit_reason: {} (return code {return_code}, {:.1} ms{})\n",
        super::reason_name(exit_reason),
        duration_seconds * 1000.0,
        if cached { ", cached" } else { "" }
    );
    for (name, stream) in [("stdout", stdout), ("stderr", stderr)] {
        if !stream.is_empty() {
            text.push_str(&format!("--- {name} ---\n{stream}"));
            if !stream.ends_with('\n') {
                text.push('\n');
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_outside_the_contract_range_is_refused() {
        assert!(parse_timeout(Some(0.1), 8.0, TIMEOUT_RANGE).is_err());
        assert!(parse_timeout(Some(61.0), 8.0, TIMEOUT_RANGE).is_err());
        assert!(parse_timeout(Some(f64::NAN), 8.0, TIMEOUT_RANGE).is_err());
        assert_eq!(
            parse_timeout(None, 8.0, TIMEOUT_RANGE).unwrap(),
            Duration::from_secs(8)
        );
    }

    #[test]
    fn unknown_language_names_the_supported_ones() {
        let err = parse_language("cobol").unwrap_err().to_string();
        assert!(
            err.contains("\"cobol\"") && err.contains("python, javascript"),
            "{err}"
        );
    }
}

//! `run_tests`: pytest inside the Python guest, on the code (and optional separate tests)
//! written to the run's scratch directory. Timeouts, memory limits and syntax errors are
//! results, not server errors.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::execute::{begin_scope, finish_scope, parse_language, parse_timeout};
use super::workspace::{FileInput, FilesOut, input_files};
use super::{CachedResult, ToolError, Tools, code_hash, new_id};
use crate::audit::CallContext;
use crate::auth::Endpoint;
use crate::call::{Hints, RestMethod, RestRoute, Source, Tool, ToolSpec};
use crate::sandbox::{ExitReason, Language, LimitOverrides, RunDir, SandboxLimits, ScratchFile};
use crate::workspace::{InputFile, WorkspacePath};

/// Smallest and largest `timeout_seconds` (the old platform's contract).
pub const TIMEOUT_RANGE: (f64, f64) = (1.0, 120.0);
/// `timeout_seconds` when the caller does not say.
pub const DEFAULT_TIMEOUT_SECONDS: f64 = 15.0;

/// Arguments of `run_tests`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunTestsRequest {
    /// The code. Without `tests`, it holds the tests itself (written as `test_code.py`).
    /// With `tests`, it is the module under test, importable as `module_name`.
    pub code: String,
    /// Optional separate test code (written as `test_<module_name>.py`).
    #[serde(default)]
    pub tests: Option<String>,
    /// Module name the tests import the code as, when `tests` is given. Default `solution`.
    #[serde(default)]
    pub module_name: Option<String>,
    /// `python` (pytest) or `javascript` (a built-in jest-like runner). Default `python`.
    #[serde(default = "super::execute::default_language")]
    pub language: String,
    /// `pytest` (default); `unittest` TestCase classes are collected by pytest too. For
    /// javascript: `builtin` (test/it, describe, expect, before/after hooks).
    #[serde(default = "default_framework")]
    pub test_framework: String,
    /// Wall-clock limit in seconds, 1 to 120. Default 15.
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    /// Optional resource limits (up to the server's ceilings).
    #[serde(default)]
    pub limits: Option<LimitOverrides>,
    /// Set to false to skip the result cache. Default true. Runs in a workspace or with
    /// `files` are never cached.
    #[serde(default)]
    pub cache: Option<bool>,
    /// Run in this workspace (from `create_workspace`): the code and test files are
    /// written into it, tests can read its files, and the result lists the files the run
    /// created or changed.
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// More files to write into the working directory before the run (data, helper
    /// modules, conftest.py).
    #[serde(default)]
    pub files: Option<Vec<FileInput>>,
}

fn default_framework() -> String {
    "pytest".to_owned()
}

/// Counts per outcome.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct TestSummary {
    /// Tests that passed.
    pub passed: u32,
    /// Tests that failed.
    pub failed: u32,
    /// Tests (or collectors) that errored in setup, teardown or collection.
    pub errors: u32,
    /// Tests skipped.
    pub skipped: u32,
    /// Expected failures that failed.
    #[serde(default)]
    pub xfailed: u32,
    /// Expected failures that passed.
    #[serde(default)]
    pub xpassed: u32,
}

/// One test's result.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct TestResult {
    /// pytest node id, e.g. `test_code.py::test_add[1-2]`.
    pub nodeid: String,
    /// passed, failed, error, skipped, xfailed or xpassed.
    pub outcome: String,
    /// Setup + call + teardown time.
    pub duration_seconds: f64,
    /// Failure/skip message (assertion introspection included), if any.
    pub message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GuestTestReport {
    summary: TestSummary,
    tests: Vec<TestResult>,
}

/// Result of `run_tests`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct RunTestsResponse {
    /// Id of this run.
    pub id: String,
    /// The framework that ran (`pytest`, or `builtin` for javascript).
    pub framework: String,
    /// pytest's exit code (0 all passed, 1 failures, 2 interrupted/collection errors,
    /// 5 no tests), or 124/137/134 when the sandbox ended the run.
    pub return_code: i32,
    /// pytest's output.
    pub stdout: String,
    /// stderr (sandbox notes appended).
    pub stderr: String,
    /// Time the run took, in seconds.
    pub duration_seconds: f64,
    /// The language.
    pub language: Language,
    /// SHA-256 (hex) of `code` (and `tests`, if given, after a NUL separator).
    pub code_hash: String,
    /// How the run ended (`error` when tests failed; `timeout`, `memory_limit`, ...).
    pub exit_reason: ExitReason,
    /// Whether output was truncated.
    pub truncated: bool,
    /// Counts per outcome (all zero if the run did not finish).
    pub summary: TestSummary,
    /// Per-test results (empty if the run did not finish).
    pub tests: Vec<TestResult>,
    /// The limits the run had.
    pub limits: SandboxLimits,
    /// Whether this answer came from the result cache.
    pub cached: bool,
    /// For a run in a workspace or with `files`: the files it created or changed.
    #[serde(flatten)]
    pub output: FilesOut,
}

/// A valid Python module name for `module_name`.
fn check_module_name(name: &str) -> Result<(), ToolError> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(ToolError::invalid(
            "module_name",
            format!("module_name {name:?} is not a Python identifier of at most 64 characters"),
        ))
    }
}

/// Run the request's tests inside the guest.
async fn run_tests_unrecorded(
    tools: &Tools,
    ctx: &CallContext,
    request: RunTestsRequest,
) -> Result<RunTestsResponse, ToolError> {
    tools.check_size("code", &request.code)?;
    if let Some(tests) = &request.tests {
        tools.check_size("tests", tests)?;
    }
    let language = parse_language(&request.language)?;
    let framework = request.test_framework.to_ascii_lowercase();
    if language == Language::Javascript {
        return run_javascript_tests(tools, ctx, request).await;
    }
    if framework != "pytest" && framework != "unittest" {
        return Err(ToolError::invalid(
            "test_framework",
            format!(
                "unsupported test_framework {:?}; supported: pytest, unittest (run by pytest)",
                request.test_framework
            ),
        ));
    }
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

    // (file name, text): the code, and the tests if separate.
    let (sources, hash): (Vec<(String, &str)>, String) = match &request.tests {
        None => (
            vec![("test_code.py".to_owned(), request.code.as_str())],
            code_hash(&request.code),
        ),
        Some(tests) => {
            let module = request.module_name.as_deref().unwrap_or("solution");
            check_module_name(module)?;
            (
                vec![
                    (format!("{module}.py"), request.code.as_str()),
                    (format!("test_{module}.py"), tests.as_str()),
                ],
                code_hash(&format!("{}\0{}", request.code, tests)),
            )
        }
    };
    let test_file = sources.last().map(|f| f.0.clone()).unwrap_or_default();
    let args = vec!["-q".to_owned(), "--tb=short".to_owned(), test_file];
    let with_files = request.files.as_ref().is_some_and(|f| !f.is_empty());
    if request.workspace_id.is_some() || with_files {
        let mut inputs = input_files(tools, request.files.clone().unwrap_or_default())?;
        for (name, text) in &sources {
            inputs.push(InputFile {
                path: WorkspacePath::parse(name)
                    .map_err(|e| ToolError::invalid("module_name", e))?,
                bytes: text.as_bytes().to_vec(),
            });
        }
        let scope =
            begin_scope(tools, ctx, request.workspace_id.as_deref(), inputs, limits).await?;
        let dir = RunDir::Existing {
            path: scope.dir().to_owned(),
            budget: scope.budget(),
        };
        let ran = tools
            .sandbox
            .run_pytest(dir, args.clone(), limits, &ctx.caller.id, scope.cancel())
            .await;
        let files = finish_scope(tools, ctx, scope).await;
        let (output, report) = ran?;
        let mut response = response(language, hash, output, report)?;
        response.output = files?;
        if response.exit_reason == ExitReason::Cancelled {
            return Err(ToolError::Cancelled {
                record: crate::call::ToolResponse::record(&response, ctx, RUNTESTS_SPEC.name)
                    .map(Box::new),
            });
        }
        return Ok(response);
    }
    let key = (&sources, &args, limits);
    let files: Vec<ScratchFile> = sources
        .iter()
        .map(|(name, text)| ScratchFile {
            name: name.clone(),
            contents: text.as_bytes().to_vec(),
        })
        .collect();
    let run = || async {
        let (output, report) = tools
            .sandbox
            .run_pytest(
                RunDir::Fresh(files.clone()),
                args.clone(),
                limits,
                &ctx.caller.id,
                &ctx.cancel,
            )
            .await?;
        response(language, hash.clone(), output, report)
    };
    cached_tests(tools, ctx, request.cache.unwrap_or(true), &key, run).await
}

/// The JavaScript test runner: test()/describe()/expect() inside QuickJS.
const JS_HARNESS: &str = include_str!("../../sandbox/javascript/test_harness.js");
/// Where the harness takes the user's source (a JSON string literal).
const JS_SOURCE_PLACEHOLDER: &str = "__SANDGRAPH_SOURCE__";
/// What starts the harness's last line, the JSON report (an ASCII record separator
/// first: QuickJS prints strings as C strings, so not a NUL).
const JS_REPORT_MARKER: &str = "\u{1e}SANDGRAPH_TEST_REPORT ";
/// The framework name `run_tests` reports for JavaScript.
const JS_FRAMEWORK: &str = "builtin";

#[derive(Debug, Deserialize)]
struct JavascriptTestReport {
    summary: TestSummary,
    tests: Vec<TestResult>,
    exit_code: i32,
}

/// `run_tests` for JavaScript: the code (and the tests after it, one script) evaluated
/// by the harness in a fresh QuickJS instance, tests run in order, async ones awaited.
async fn run_javascript_tests(
    tools: &Tools,
    ctx: &CallContext,
    request: RunTestsRequest,
) -> Result<RunTestsResponse, ToolError> {
    let framework = request.test_framework.to_ascii_lowercase();
    // `pytest` is the field's default, so it stands for "not given" here.
    if !matches!(framework.as_str(), "pytest" | "builtin" | "jest") {
        return Err(ToolError::invalid(
            "test_framework",
            format!(
                "unsupported test_framework {:?} for javascript; supported: builtin (test, \
                 describe, expect, as in jest)",
                request.test_framework
            ),
        ));
    }
    if request.workspace_id.is_some() || request.files.as_ref().is_some_and(|f| !f.is_empty()) {
        super::execute::files_need_python(Language::Javascript)?;
    }
    if request.module_name.is_some() {
        return Err(ToolError::invalid(
            "module_name",
            "module_name is for python; javascript tests see the code's top-level names directly",
        ));
    }
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
    let (source, hash) = match &request.tests {
        None => (request.code.clone(), code_hash(&request.code)),
        Some(tests) => (
            format!("{}\n{tests}", request.code),
            code_hash(&format!("{}\0{}", request.code, tests)),
        ),
    };
    let literal = serde_json::to_string(&source)
        .map_err(|e| ToolError::Internal(anyhow::anyhow!("encoding the source: {e}")))?;
    let program = JS_HARNESS.replacen(JS_SOURCE_PLACEHOLDER, &literal, 1);
    // The harness's own hash is in the key: a new runner never serves an old answer.
    let key = ("javascript-tests", code_hash(JS_HARNESS), &source, limits);
    let run = || async {
        let output = tools
            .sandbox
            .execute_until(
                Language::Javascript,
                &program,
                limits,
                &ctx.caller.id,
                &ctx.cancel,
            )
            .await?;
        javascript_response(hash.clone(), output)
    };
    cached_tests(tools, ctx, request.cache.unwrap_or(true), &key, run).await
}

/// A test run through the result cache (Python and JavaScript alike), answered with a
/// fresh id. A cancelled run is recorded, never cached nor shared with identical calls in
/// flight: it comes back as `ToolError::Cancelled` with its record.
async fn cached_tests<Fut>(
    tools: &Tools,
    ctx: &CallContext,
    use_cache: bool,
    key: &impl serde::Serialize,
    run: impl FnOnce() -> Fut,
) -> Result<RunTestsResponse, ToolError>
where
    Fut: std::future::Future<Output = Result<RunTestsResponse, ToolError>>,
{
    let run = || async {
        let response = run().await?;
        if response.exit_reason == ExitReason::Cancelled {
            return Err(ToolError::Cancelled {
                record: crate::call::ToolResponse::record(&response, ctx, RUNTESTS_SPEC.name)
                    .map(Box::new),
            });
        }
        Ok(CachedResult::Tests(response))
    };
    let (result, cached) = tools
        .cached(ctx, Endpoint::RunTests, use_cache, key, run)
        .await?;
    match result {
        CachedResult::Tests(mut response) => {
            response.id = new_id();
            response.cached = cached;
            Ok(response)
        }
        _ => Err(ToolError::Internal(anyhow::anyhow!(
            "cache returned another tool's result"
        ))),
    }
}

/// A JavaScript run as a `run_tests` answer: the harness's report taken off stdout; its
/// exit code (pytest's meanings) is the answer's, when the run itself ended normally.
fn javascript_response(
    hash: String,
    mut output: crate::sandbox::RunOutput,
) -> Result<RunTestsResponse, ToolError> {
    let mut report = None;
    if let Some(at) = output.stdout.rfind(JS_REPORT_MARKER) {
        let line = output.stdout[at + JS_REPORT_MARKER.len()..].trim_end();
        report = Some(
            serde_json::from_str::<JavascriptTestReport>(line)
                .map_err(|e| ToolError::Internal(anyhow::anyhow!("bad test report: {e}")))?,
        );
        output.stdout.truncate(at);
    }
    let (summary, tests) = match report {
        Some(report) => {
            if output.exit_reason == ExitReason::Ok {
                output.exit_code = report.exit_code;
                if report.exit_code != 0 {
                    output.exit_reason = ExitReason::Error;
                }
            }
            (report.summary, report.tests)
        }
        None => {
            if output.exit_reason == ExitReason::Ok {
                // The script ended without the runner finishing: a test awaited a
                // promise that never settles (QuickJS has no timers to wait for).
                output.exit_reason = ExitReason::Error;
                output.exit_code = 2;
                output.stderr.push_str(
                    "sandbox: the tests did not finish: a test awaits a promise that never \
                     settles\n",
                );
            }
            (TestSummary::default(), Vec::new())
        }
    };
    Ok(RunTestsResponse {
        id: new_id(),
        framework: JS_FRAMEWORK.to_owned(),
        return_code: output.exit_code,
        stdout: output.stdout,
        stderr: output.stderr,
        duration_seconds: output.duration.as_secs_f64(),
        language: Language::Javascript,
        code_hash: hash,
        exit_reason: output.exit_reason,
        truncated: output.truncated,
        summary,
        tests,
        limits: output.limits,
        cached: false,
        output: FilesOut::default(),
    })
}

fn response(
    language: Language,
    hash: String,
    output: crate::sandbox::RunOutput,
    report: Option<String>,
) -> Result<RunTestsResponse, ToolError> {
    let report = match report {
        Some(text) => serde_json::from_str::<GuestTestReport>(&text)
            .map_err(|e| ToolError::Internal(anyhow::anyhow!("bad test report: {e}")))?,
        None => GuestTestReport {
            summary: TestSummary::default(),
            tests: Vec::new(),
        },
    };
    Ok(RunTestsResponse {
        id: new_id(),
        framework: "pytest".to_owned(),
        return_code: output.exit_code,
        stdout: output.stdout,
        stderr: output.stderr,
        duration_seconds: output.duration.as_secs_f64(),
        language,
        code_hash: hash,
        exit_reason: output.exit_reason,
        truncated: output.truncated,
        summary: report.summary,
        tests: report.tests,
        limits: output.limits,
        cached: false,
        output: FilesOut::default(),
    })
}

/// `run_tests`.
pub struct RunTests;

/// Name, role, hints and route of `run_tests`.
pub static RUNTESTS_SPEC: ToolSpec = ToolSpec {
    name: "run_tests",
    title: "Run tests in a sandbox",
    description: "Run pytest (also unittest.TestCase classes) inside the sandbox. Put tests in \
`code`, or the implementation in `code` and tests in `tests` (importing it as `solution`). Returns \
summary {passed, failed, errors, skipped}, per-test results with failure messages, and pytest's \
output. timeout_seconds: 1-120, default 15. `files` adds data or helper files; with \
`workspace_id` the tests run in that workspace (the code files are written into it). With \
language=javascript: test()/it(), describe(), expect(x).toBe/toEqual/toThrow/... and \
beforeEach/afterEach/beforeAll/afterAll, run in QuickJS (`tests` is appended to `code`).",
    endpoint: Endpoint::RunTests,
    // As execute_code: read-only without a workspace, writes into one with it.
    hints: Hints {
        read_only: false,
        destructive: true,
        idempotent: false,
        open_world: false,
    },
    rest: RestRoute {
        method: RestMethod::Post,
        path: "/run_tests",
        status: 200,
    },
};

#[async_trait::async_trait]
impl Tool for RunTests {
    type Request = RunTestsRequest;
    type Response = RunTestsResponse;

    fn spec(&self) -> &'static ToolSpec {
        &RUNTESTS_SPEC
    }

    fn source(&self, request: &RunTestsRequest) -> Option<Source> {
        Some(Source {
            code: request.code.clone(),
            tests: request.tests.clone(),
        })
    }

    async fn run(
        &self,
        tools: &Tools,
        ctx: &CallContext,
        request: RunTestsRequest,
    ) -> Result<RunTestsResponse, ToolError> {
        run_tests_unrecorded(tools, ctx, request).await
    }
}

/// Admit, run and remember one `run_tests` call (the pipeline in [`crate::call`]).
pub async fn run_tests(
    tools: &Tools,
    ctx: &CallContext,
    request: RunTestsRequest,
) -> Result<RunTestsResponse, ToolError> {
    crate::call::call_typed(tools, ctx, &RunTests, request).await
}

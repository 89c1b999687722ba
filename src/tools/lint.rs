//! `lint_code`: pyflakes + pycodestyle + mccabe and an AST summary, computed inside the
//! Python guest (never on the host), with the old platform's fields kept; for JavaScript,
//! JSHint inside the QuickJS guest.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::execute::parse_language;
use super::{CachedResult, ToolError, Tools, code_hash, new_id};
use crate::audit::CallContext;
use crate::auth::Endpoint;
use crate::call::{Hints, RestMethod, RestRoute, Source, Tool, ToolSpec};
use crate::sandbox::{ExitReason, Language};

/// How long linting may take: it runs no user code, so only pathological input is slow.
const LINT_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `lint_code`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LintRequest {
    /// The source text to lint.
    pub code: String,
    /// `python` (pyflakes, pycodestyle, mccabe) or `javascript` (JSHint). Default `python`.
    #[serde(default = "super::execute::default_language")]
    pub language: String,
    /// Linter settings; all optional.
    #[serde(default)]
    pub options: Option<LintOptions>,
    /// Set to false to skip the result cache. Default true.
    #[serde(default)]
    pub cache: Option<bool>,
}

/// Linter settings (flake8 semantics).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LintOptions {
    /// E501 threshold. Default 79.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_line_length: Option<u32>,
    /// C901 threshold (mccabe). Default 10.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_complexity: Option<u32>,
    /// Only report codes with these prefixes (e.g. `["F", "E9"]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub select: Option<Vec<String>>,
    /// Replace the default ignore list (flake8's: E121,E123,E126,E226,E24,E704,W503,W504).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore: Option<Vec<String>>,
    /// Add to the ignore list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extend_ignore: Option<Vec<String>>,
}

/// One finding.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// flake8-style code: Fxxx (pyflakes), E/Wxxx (pycodestyle), C901 (mccabe).
    pub code: String,
    /// What is wrong.
    pub message: String,
    /// `error`, `warning` or `convention`.
    pub severity: String,
    /// `pyflakes`, `pycodestyle` or `mccabe`.
    pub source: String,
}

/// Cyclomatic complexity of one function (mccabe).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct FunctionComplexity {
    /// Function name (methods as `Class.method`).
    pub name: String,
    /// Line of its definition.
    pub line: u32,
    /// mccabe's complexity.
    pub complexity: u32,
}

/// Where the code fails to parse.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct SyntaxErrorInfo {
    /// 1-based line.
    pub line: Option<u32>,
    /// 1-based column.
    pub column: Option<u32>,
    /// The parser's message.
    pub message: String,
}

/// What the guest reports (the JSON document of `runner.lint`).
#[derive(Debug, Deserialize)]
struct GuestLintReport {
    syntax_error: Option<SyntaxErrorInfo>,
    functions: Vec<String>,
    classes: Vec<String>,
    imports: Vec<String>,
    complexity: u32,
    function_complexity: Vec<FunctionComplexity>,
    diagnostics: Vec<Diagnostic>,
    linter_output: String,
    linter_exit_code: i32,
}

/// Result of `lint_code`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct LintResponse {
    /// Id of this run.
    pub id: String,
    /// SHA-256 (hex) of `code`.
    pub code_hash: String,
    /// The language linted.
    pub language: Language,
    /// Names of every function and method, `async def` included, in AST walk order.
    pub functions: Vec<String>,
    /// Names of every class.
    pub classes: Vec<String>,
    /// `import x.y` gives `x`; `from x import y` gives `y` (the old platform's semantics).
    pub imports: Vec<String>,
    /// Decision points (if/for/while/with/try/boolop/except, async forms included) plus
    /// max(number of functions, 1): the old platform's module complexity.
    pub complexity: u32,
    /// 0 when there are no diagnostics, else 1.
    pub linter_exit_code: i32,
    /// flake8-style text, one `main.py:LINE:COL: CODE message` per diagnostic.
    pub linter_output: String,
    /// Structured diagnostics, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    /// mccabe complexity per function.
    pub function_complexity: Vec<FunctionComplexity>,
    /// Set when the code does not parse (then the lists are empty and complexity is 1).
    pub syntax_error: Option<SyntaxErrorInfo>,
    /// Time the lint took, in seconds.
    pub duration_seconds: f64,
    /// Whether this answer came from the result cache.
    pub cached: bool,
}

/// Lint the request's code inside the guest.
async fn lint_code_unrecorded(
    tools: &Tools,
    ctx: &CallContext,
    request: LintRequest,
) -> Result<LintResponse, ToolError> {
    tools.check_size("code", &request.code)?;
    let language = parse_language(&request.language)?;
    let lint_options = request.options.clone().unwrap_or_default();
    let options =
        serde_json::to_string(&lint_options).map_err(|e| ToolError::Internal(e.into()))?;
    let limits = tools
        .config
        .sandbox
        .limits
        .resolve(Some(LINT_TIMEOUT), &Default::default())?;
    let key = (&request.code, &options, language);
    let run = || async {
        match language {
            Language::Python => lint_in_guest(tools, &request.code, &options, limits, ctx).await,
            Language::Javascript => {
                lint_javascript(tools, &request.code, &lint_options, limits, ctx).await
            }
        }
        .map(CachedResult::Lint)
    };
    let (result, cached) = tools
        .cached(
            ctx,
            Endpoint::LintCode,
            request.cache.unwrap_or(true),
            &key,
            run,
        )
        .await?;
    match result {
        CachedResult::Lint(mut response) => {
            response.id = new_id();
            response.cached = cached;
            Ok(response)
        }
        _ => Err(ToolError::Internal(anyhow::anyhow!(
            "cache returned another tool's result"
        ))),
    }
}

async fn lint_in_guest(
    tools: &Tools,
    code: &str,
    options: &str,
    limits: crate::sandbox::SandboxLimits,
    ctx: &CallContext,
) -> Result<LintResponse, ToolError> {
    let language = Language::Python;
    let (output, report) = tools
        .sandbox
        .lint_python(code, options, limits, &ctx.caller.id, &ctx.cancel)
        .await?;
    let Some(report) = report else {
        return Err(match output.exit_reason {
            ExitReason::Cancelled => ToolError::Cancelled { record: None },
            ExitReason::Timeout | ExitReason::MemoryLimit => {
                ToolError::invalid("code", format!("linting stopped: {}", output.stderr.trim()))
            }
            _ => ToolError::Internal(anyhow::anyhow!("lint guest failed: {}", output.stderr)),
        });
    };
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(&report)
        && let Some(error) = map.get("internal_error")
    {
        return Err(ToolError::Internal(anyhow::anyhow!("lint guest: {error}")));
    }
    let report: GuestLintReport =
        serde_json::from_str(&report).map_err(|e| ToolError::Internal(e.into()))?;
    Ok(LintResponse {
        id: new_id(),
        code_hash: code_hash(code),
        language,
        functions: report.functions,
        classes: report.classes,
        imports: report.imports,
        complexity: report.complexity,
        linter_exit_code: report.linter_exit_code,
        linter_output: report.linter_output,
        diagnostics: report.diagnostics,
        function_complexity: report.function_complexity,
        syntax_error: report.syntax_error,
        duration_seconds: output.duration.as_secs_f64(),
        cached: false,
    })
}

/// What the JavaScript lint runner reports (sandbox/javascript/lint_runner.js).
#[derive(Debug, Deserialize)]
struct JavascriptLintReport {
    diagnostics: Vec<JavascriptDiagnostic>,
    functions: Vec<FunctionComplexity>,
}

#[derive(Debug, Deserialize)]
struct JavascriptDiagnostic {
    line: u32,
    column: u32,
    code: String,
    message: String,
}

/// Lint JavaScript with JSHint inside QuickJS (nothing of the code runs). JSHint's
/// codes: E (errors, the syntax errors among them), W (warnings: W098 unused, W117
/// undefined), I (information). `select`/`ignore`/`extend_ignore` filter by code prefix;
/// the other options are Python's.
async fn lint_javascript(
    tools: &Tools,
    code: &str,
    options: &LintOptions,
    limits: crate::sandbox::SandboxLimits,
    ctx: &CallContext,
) -> Result<LintResponse, ToolError> {
    let (output, report) = tools
        .sandbox
        .lint_javascript(code, limits, &ctx.caller.id, &ctx.cancel)
        .await?;
    let Some(report) = report else {
        return Err(match output.exit_reason {
            ExitReason::Cancelled => ToolError::Cancelled { record: None },
            ExitReason::Timeout | ExitReason::MemoryLimit => {
                ToolError::invalid("code", format!("linting stopped: {}", output.stderr.trim()))
            }
            _ => ToolError::Internal(anyhow::anyhow!("javascript lint failed: {}", output.stderr)),
        });
    };
    let report: JavascriptLintReport =
        serde_json::from_str(&report).map_err(|e| ToolError::Internal(e.into()))?;
    let syntax_error = report
        .diagnostics
        .iter()
        .find(|d| d.code.starts_with('E'))
        .map(|d| SyntaxErrorInfo {
            line: Some(d.line),
            column: Some(d.column),
            message: d.message.clone(),
        });
    let has_prefix = |list: &Option<Vec<String>>, code: &str| {
        list.as_ref()
            .is_some_and(|l| l.iter().any(|p| code.starts_with(p.as_str())))
    };
    let mut diagnostics: Vec<Diagnostic> = report
        .diagnostics
        .into_iter()
        .filter(|d| options.select.is_none() || has_prefix(&options.select, &d.code))
        .filter(|d| !has_prefix(&options.ignore, &d.code))
        .filter(|d| !has_prefix(&options.extend_ignore, &d.code))
        .map(|d| Diagnostic {
            severity: match d.code.chars().next() {
                Some('E') => "error",
                Some('W') => "warning",
                _ => "convention",
            }
            .to_owned(),
            source: "jshint".to_owned(),
            line: d.line,
            column: d.column,
            code: d.code,
            message: d.message,
        })
        .collect();
    diagnostics.sort_by_key(|d| (d.line, d.column));
    let linter_output = diagnostics
        .iter()
        .map(|d| {
            format!(
                "main.js:{}:{}: {} {}\n",
                d.line, d.column, d.code, d.message
            )
        })
        .collect();
    // The old platform's module complexity: decision points plus max(#functions, 1);
    // JSHint's per-function complexity is 1 + that function's decision points.
    let functions = report.functions;
    let complexity = functions
        .iter()
        .map(|f| f.complexity.saturating_sub(1))
        .sum::<u32>()
        + (functions.len() as u32).max(1);
    Ok(LintResponse {
        id: new_id(),
        code_hash: code_hash(code),
        language: Language::Javascript,
        functions: functions.iter().map(|f| f.name.clone()).collect(),
        classes: Vec::new(),
        imports: Vec::new(),
        complexity,
        linter_exit_code: i32::from(!diagnostics.is_empty()),
        linter_output,
        diagnostics,
        function_complexity: functions,
        syntax_error,
        duration_seconds: output.duration.as_secs_f64(),
        cached: false,
    })
}

/// `lint_code`.
pub struct LintCode;

/// Name, role, hints and route of `lint_code`.
pub static LINTCODE_SPEC: ToolSpec = ToolSpec {
    name: "lint_code",
    title: "Lint Python or JavaScript code",
    description: "Lint Python code (pyflakes, pycodestyle, mccabe) or JavaScript (JSHint: syntax \
errors, unused and undefined names) without running it. Returns \
structured diagnostics {line, column, code, message, severity, source}, per-function complexity, \
syntax_error if it does not parse, and a summary (functions, classes, imports, complexity).",
    endpoint: Endpoint::LintCode,
    hints: Hints::READ_ONLY,
    rest: RestRoute {
        method: RestMethod::Post,
        path: "/lint_code",
        status: 200,
    },
};

#[async_trait::async_trait]
impl Tool for LintCode {
    type Request = LintRequest;
    type Response = LintResponse;

    fn spec(&self) -> &'static ToolSpec {
        &LINTCODE_SPEC
    }

    fn source(&self, request: &LintRequest) -> Option<Source> {
        Some(Source::code(&request.code))
    }

    async fn run(
        &self,
        tools: &Tools,
        ctx: &CallContext,
        request: LintRequest,
    ) -> Result<LintResponse, ToolError> {
        lint_code_unrecorded(tools, ctx, request).await
    }
}

/// Admit, run and remember one `lint_code` call (the pipeline in [`crate::call`]).
pub async fn lint_code(
    tools: &Tools,
    ctx: &CallContext,
    request: LintRequest,
) -> Result<LintResponse, ToolError> {
    crate::call::call_typed(tools, ctx, &LintCode, request).await
}

//! `lint_code`. Python: ruff's findings (persistent `ruff server` workers on the host,
//! [`crate::ruff`]: they parse the code and never run it) beside the old platform's module
//! summary (functions, classes, imports, complexity, mccabe per function), computed on the
//! host from ruff's parser ([`super::lint_summary`]); no sandbox run is needed. With
//! `SANDGRAPH_LINTER=guest`, pyflakes + pycodestyle + mccabe and the summary inside the
//! guest instead. JavaScript: JSHint inside the QuickJS guest.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::execute::parse_language;
use super::lint_summary::{Summary, summarize};
use super::{CachedResult, ToolError, Tools, code_hash, new_id};
use crate::audit::CallContext;
use crate::auth::Endpoint;
use crate::call::{Hints, RestMethod, RestRoute, Source, Tool, ToolSpec};
use crate::config::Linter;
use crate::ruff::{RuffError, RuffSettings};
use crate::sandbox::{ExitReason, Language};

/// How long linting may take: it runs no user code, so only pathological input is slow.
const LINT_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `lint_code`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LintRequest {
    /// The source text to lint.
    pub code: String,
    /// `python` (ruff) or `javascript` (JSHint). Default `python`.
    #[serde(default = "super::execute::default_language")]
    pub language: String,
    /// Linter settings; all optional.
    #[serde(default)]
    pub options: Option<LintOptions>,
    /// Set to false to skip the result cache. Default true.
    #[serde(default)]
    pub cache: Option<bool>,
}

/// Linter settings, all optional. Python (ruff): without options, ruff's default rule
/// set, line length 88; a rule code or prefix ruff does not know is a 422 with ruff's
/// message. (With the guest linter: flake8's semantics, line length 79, complexity 10.)
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LintOptions {
    /// Longest line (ruff's `line-length`, 1..320, default 88); setting it also turns on
    /// E501 (line too long) unless `select` is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_line_length: Option<u32>,
    /// C901 threshold (mccabe's complexity, default 10); setting it also turns on C901
    /// unless `select` is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_complexity: Option<u32>,
    /// Only these rules: codes or prefixes (e.g. `["F", "E9", "B006"]`, or `["ALL"]`),
    /// instead of ruff's default set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub select: Option<Vec<String>>,
    /// Rules (codes or prefixes) not to report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore: Option<Vec<String>>,
    /// More rules not to report (added to `ignore`).
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
    /// ruff's rule code (`F401`, `E501`, `B006`, ...; `invalid-syntax` where the code does
    /// not parse); flake8's with the guest linter; JSHint's for JavaScript.
    pub code: String,
    /// What is wrong, as the linter words it.
    pub message: String,
    /// `error` or `warning` (ruff's own severities); with the guest linter and JSHint
    /// also `convention`.
    pub severity: String,
    /// `ruff`; with the guest linter `pyflakes`, `pycodestyle` or `mccabe`; `jshint`.
    pub source: String,
}

/// Cyclomatic complexity of one function (mccabe).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct FunctionComplexity {
    /// Function name (methods as `Class.method`).
    pub name: String,
    /// Line of its definition.
    pub line: u32,
    /// mccabe's complexity.
    pub complexity: u32,
}

/// Where the code fails to parse.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
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
    /// The linter's text, one line per diagnostic: what `ruff check --output-format
    /// concise` prints for `main.py` (`main.py:LINE:COL: CODE message`), without its
    /// `[*]` fix marks and summary lines; flake8's format with the guest linter.
    pub linter_output: String,
    /// Which linter answered, with its version (`ruff 0.17.6`).
    pub linter: String,
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
    let linter = match (language, tools.config.linter) {
        (Language::Python, Linter::Ruff) => {
            let settings = ruff_settings(&lint_options)?;
            let version = tools
                .ruff
                .version()
                .await
                .map_err(|e| ToolError::Internal(anyhow::anyhow!("lint_code: {e}")))?;
            Some((settings, version))
        }
        _ => None,
    };
    // The linter and its version are part of what determines the answer.
    let linter_id = linter
        .as_ref()
        .map_or(GUEST_LINTER, |(_, version)| *version);
    let key = (&request.code, &options, language, linter_id);
    let run = || async {
        match (language, &linter) {
            (Language::Python, Some((settings, version))) => {
                lint_with_ruff(tools, &request.code, settings, version, ctx).await
            }
            (Language::Python, None) => {
                lint_in_guest(tools, &request.code, &options, limits, ctx).await
            }
            (Language::Javascript, _) => {
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

/// What `linter` says with `SANDGRAPH_LINTER=guest`.
const GUEST_LINTER: &str = "pyflakes + pycodestyle + mccabe (in the guest)";

/// The guest's lint run with `options` (a JSON object): its report and how long it took.
async fn guest_report(
    tools: &Tools,
    code: &str,
    options: &str,
    limits: crate::sandbox::SandboxLimits,
    ctx: &CallContext,
) -> Result<(GuestLintReport, Duration), ToolError> {
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
    Ok((report, output.duration))
}

/// pyflakes + pycodestyle + mccabe and the summary, all inside the guest.
async fn lint_in_guest(
    tools: &Tools,
    code: &str,
    options: &str,
    limits: crate::sandbox::SandboxLimits,
    ctx: &CallContext,
) -> Result<LintResponse, ToolError> {
    let (report, duration) = guest_report(tools, code, options, limits, ctx).await?;
    Ok(LintResponse {
        id: new_id(),
        code_hash: code_hash(code),
        language: Language::Python,
        linter: GUEST_LINTER.to_owned(),
        functions: report.functions,
        classes: report.classes,
        imports: report.imports,
        complexity: report.complexity,
        linter_exit_code: report.linter_exit_code,
        linter_output: report.linter_output,
        diagnostics: report.diagnostics,
        function_complexity: report.function_complexity,
        syntax_error: report.syntax_error,
        duration_seconds: duration.as_secs_f64(),
        cached: false,
    })
}

/// Most rule selectors in one option list.
const MAX_SELECTORS: usize = 64;

/// The caller's options as ruff settings. Selectors are checked for shape here (ruff
/// itself judges whether it knows them, [`crate::ruff`]).
fn ruff_settings(options: &LintOptions) -> Result<RuffSettings, ToolError> {
    fn selectors(field: &'static str, list: &[String]) -> Result<Vec<String>, ToolError> {
        if list.len() > MAX_SELECTORS {
            return Err(ToolError::invalid(
                field,
                format!("{field}: at most {MAX_SELECTORS} rule selectors"),
            ));
        }
        list.iter()
            .map(|s| {
                let s = s.trim().to_ascii_uppercase();
                let letters = s.trim_end_matches(|c: char| c.is_ascii_digit());
                let shaped = !letters.is_empty()
                    && s.len() <= 16
                    && letters.chars().all(|c| c.is_ascii_uppercase());
                if shaped {
                    Ok(s)
                } else {
                    Err(ToolError::invalid(
                        field,
                        format!(
                            "{field}: {s:?} is not a rule selector (a rule code or prefix \
                             such as F401, E5, B, or ALL)"
                        ),
                    ))
                }
            })
            .collect()
    }
    if let Some(length) = options.max_line_length
        && !(1..=320).contains(&length)
    {
        return Err(ToolError::invalid(
            "options.max_line_length",
            format!("options.max_line_length must be between 1 and 320 (got {length})"),
        ));
    }
    let mut ignore = selectors(
        "options.ignore",
        options.ignore.as_deref().unwrap_or_default(),
    )?;
    ignore.extend(selectors(
        "options.extend_ignore",
        options.extend_ignore.as_deref().unwrap_or_default(),
    )?);
    Ok(RuffSettings {
        line_length: options.max_line_length,
        max_complexity: options.max_complexity,
        select: options
            .select
            .as_deref()
            .map(|list| selectors("options.select", list))
            .transpose()?,
        ignore,
    })
}

/// Code longer than this is summarised on a blocking thread, not on the runtime's.
const SUMMARY_INLINE_BYTES: usize = 64 << 10;

/// The module summary ([`super::lint_summary`]), off the runtime's threads for long code.
/// A summary that failed (the blocking task panicked) is an internal error, never a
/// syntax error of the caller's code.
async fn summary(code: &str) -> Result<Result<Summary, SyntaxErrorInfo>, ToolError> {
    if code.len() <= SUMMARY_INLINE_BYTES {
        return Ok(summarize(code));
    }
    let owned = code.to_owned();
    tokio::task::spawn_blocking(move || summarize(&owned))
        .await
        .map_err(|e| ToolError::Internal(anyhow::anyhow!("lint_code: the summary failed: {e}")))
}

/// ruff's findings (its workers) and the module summary (ruff's parser, here), side by
/// side. Neither runs the code, so no sandbox is needed.
async fn lint_with_ruff(
    tools: &Tools,
    code: &str,
    settings: &RuffSettings,
    version: &str,
    ctx: &CallContext,
) -> Result<LintResponse, ToolError> {
    let started = std::time::Instant::now();
    // The request goes to the worker first; the summary is computed while ruff works.
    let (findings, summary) = tokio::join!(
        tools.ruff.lint(code, settings, LINT_TIMEOUT, &ctx.cancel),
        summary(code),
    );
    let findings = findings.map_err(|e| match e {
        RuffError::Settings(why) => {
            ToolError::invalid("options", format!("ruff refused the options: {why}"))
        }
        RuffError::Timeout(limit) => ToolError::invalid(
            "code",
            format!(
                "linting stopped: ruff took longer than {} s",
                limit.as_secs()
            ),
        ),
        RuffError::Cancelled => ToolError::Cancelled { record: None },
        RuffError::Crashed(_) => ToolError::invalid(
            "code",
            "ruff could not lint this code: its worker exited while parsing it, twice \
             (very deeply nested expressions can do this); simplify the nesting",
        ),
        RuffError::Failed(why) => ToolError::Internal(anyhow::anyhow!("lint_code: {why}")),
    })?;
    let summary = summary?;
    let mut findings = findings;
    findings.sort_by(|a, b| (a.line, a.column, &a.code).cmp(&(b.line, b.column, &b.code)));
    // The syntax error is ruff's first (the one `linter_output` shows); code that only
    // the summary's parser refuses still gets one. Either way the summary is empty.
    let ruff_syntax = findings.iter().find(|d| {
        d.code
            .as_deref()
            .is_none_or(|code| code == crate::ruff::SYNTAX_ERROR)
    });
    let (syntax_error, summary) = match (ruff_syntax, summary) {
        (Some(d), _) => (
            Some(SyntaxErrorInfo {
                line: Some(d.line),
                column: Some(d.column),
                message: d.message.clone(),
            }),
            Summary::default(),
        ),
        (None, Err(error)) => (Some(error), Summary::default()),
        (None, Ok(summary)) => (None, summary),
    };
    let complexity = if syntax_error.is_some() {
        1
    } else {
        summary.complexity
    };
    let linter_output = findings
        .iter()
        .map(|d| d.concise() + "\n")
        .collect::<String>();
    let diagnostics: Vec<Diagnostic> = findings
        .into_iter()
        .map(|d| Diagnostic {
            line: d.line,
            column: d.column,
            code: d
                .code
                .unwrap_or_else(|| crate::ruff::SYNTAX_ERROR.to_owned()),
            message: d.message,
            severity: if d.error { "error" } else { "warning" }.to_owned(),
            source: "ruff".to_owned(),
        })
        .collect();
    Ok(LintResponse {
        id: new_id(),
        code_hash: code_hash(code),
        language: Language::Python,
        linter: version.to_owned(),
        functions: summary.functions,
        classes: summary.classes,
        imports: summary.imports,
        complexity,
        linter_exit_code: i32::from(!diagnostics.is_empty()),
        linter_output,
        diagnostics,
        function_complexity: summary.function_complexity,
        syntax_error,
        duration_seconds: started.elapsed().as_secs_f64(),
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
        linter: "jshint".to_owned(),
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
    description: "Lint Python code (ruff: its rules, codes and messages; options select, ignore, \
max_line_length, max_complexity) or JavaScript (JSHint: syntax errors, unused and undefined \
names) without running it. Returns \
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

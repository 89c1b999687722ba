//! Prompts and reference documents for agents: how to use each tool, the sandbox limits,
//! and the history/audit model. Served at `GET /prompts`, `GET /prompts/{slug}` and as
//! MCP prompts and resources (`sandgraph://prompts/{slug}`).

use schemars::JsonSchema;
use serde::Serialize;

use crate::sandbox::LimitCeilings;

/// One prompt's listing.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PromptSummary {
    /// URL-safe name.
    pub slug: &'static str,
    /// Short title.
    pub title: &'static str,
    /// When to use it.
    pub description: &'static str,
}

/// One prompt with its text.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Prompt {
    /// URL-safe name.
    pub slug: &'static str,
    /// Short title.
    pub title: &'static str,
    /// When to use it.
    pub description: &'static str,
    /// The text (Markdown).
    pub content: String,
}

struct Entry {
    slug: &'static str,
    title: &'static str,
    description: &'static str,
    body: fn(&LimitCeilings) -> String,
}

const ENTRIES: &[Entry] = &[
    Entry {
        slug: "execute-code",
        title: "Running code with execute_code",
        description: "How to run Python or JavaScript and read the result.",
        body: |_| EXECUTE.to_owned(),
    },
    Entry {
        slug: "lint-code",
        title: "Linting Python with lint_code",
        description: "Diagnostics, complexity and the AST summary, and how to act on them.",
        body: |_| LINT.to_owned(),
    },
    Entry {
        slug: "run-tests",
        title: "Testing code with run_tests",
        description: "Running pytest/unittest tests against code and reading per-test results.",
        body: |_| TESTS.to_owned(),
    },
    Entry {
        slug: "generate-code",
        title: "Rendering templates with generate_code",
        description: "Jinja2 templates with strict variables and no file access.",
        body: |_| GENERATE.to_owned(),
    },
    Entry {
        slug: "sandbox-limits",
        title: "Sandbox limits",
        description: "What a run may use (time, memory, files, output) and what it cannot do.",
        body: limits_text,
    },
    Entry {
        slug: "history-and-audit",
        title: "History and audit model",
        description: "What sandgraph records about every call and who may read it.",
        body: |_| HISTORY.to_owned(),
    },
];

/// Every prompt's listing.
pub fn list() -> Vec<PromptSummary> {
    ENTRIES
        .iter()
        .map(|e| PromptSummary {
            slug: e.slug,
            title: e.title,
            description: e.description,
        })
        .collect()
}

/// One prompt, with limits filled in from the server's configuration.
pub fn get(slug: &str, limits: &LimitCeilings) -> Option<Prompt> {
    ENTRIES.iter().find(|e| e.slug == slug).map(|e| Prompt {
        slug: e.slug,
        title: e.title,
        description: e.description,
        content: (e.body)(limits),
    })
}

fn limits_text(limits: &LimitCeilings) -> String {
    let d = &limits.defaults;
    let m = &limits.maximum;
    format!(
        "# Sandbox limits\n\n\
Every call runs in a fresh WebAssembly instance; nothing survives between calls.\n\n\
| limit | default | maximum | request field |\n|---|---|---|---|\n\
| wall-clock time | {} ms | {} ms | `timeout_seconds` |\n\
| memory above the interpreter image | {} bytes | {} bytes | `limits.memory_bytes` |\n\
| bytes written to /scratch | {} bytes | {} bytes | `limits.scratch_bytes` |\n\
| stdout kept | {} bytes | {} bytes | `limits.stdout_bytes` |\n\
| stderr kept | {} bytes | {} bytes | `limits.stderr_bytes` |\n\n\
`execute_code` accepts `timeout_seconds` from 0.5 to 60, `run_tests` from 1 to 120.\n\n\
Not available at all: network sockets and DNS, environment variables, host files (Python \
sees only its own empty /scratch; JavaScript has no filesystem), processes (`subprocess`, \
`os.system`, `fork`), `ctypes`, threads that run in parallel, `ssl`, `bz2`, `lzma`.\n\n\
When a limit ends a run, `exit_reason` says which (`timeout`, `memory_limit`, \
`output_limit`, `file_quota`) and stderr ends with a `sandbox:` line. Fix the cause \
(shorter loops, smaller data, less output) rather than retrying unchanged.\n",
        d.timeout_ms,
        m.timeout_ms,
        d.memory_bytes,
        m.memory_bytes,
        d.scratch_bytes,
        m.scratch_bytes,
        d.stdout_bytes,
        m.stdout_bytes,
        d.stderr_bytes,
        m.stderr_bytes,
    )
}

const EXECUTE: &str = "# execute_code\n\n\
Runs a complete program and returns `stdout`, `stderr`, `return_code`, `exit_reason` and \
`duration_seconds`.\n\n\
- `language`: `python` (CPython 3.14 with its standard library and a curated package set: \
sympy, mpmath, networkx, python-dateutil, tzdata (zoneinfo works), pyyaml, tabulate, \
markdown, beautifulsoup4, openpyxl, pypdf, hypothesis, more-itertools, toolz, \
sortedcontainers, attrs, typing_extensions, pygal (SVG charts), pypng) or `javascript` \
(QuickJS-NG, ES2023, standard library only; `console.log` prints; promises run to \
completion; no `fetch`, no Node APIs).\n\
- Call `list_packages` to see every importable package and its version before you import \
a third-party library: nothing can be installed at run time (no network, no pip).\n\
- Print what you need to see: the return value of the last expression is not shown.\n\
- `exit_reason` is `ok`, `error` (exception or non-zero exit: read stderr's traceback), \
`timeout`, `memory_limit`, `output_limit` (output truncated at the cap) or `file_quota`.\n\
- Python code runs as `main.py` in `/scratch`, a private directory that is empty at start \
and deleted afterwards. Tracebacks name `main.py` lines.\n\
- Each call is independent: define everything you use in the same call.\n\n\
Example: `{\"code\": \"import statistics\\nprint(statistics.mean([1, 2, 3]))\"}`\n";

const LINT: &str = "# lint_code\n\n\
Lints Python with pyflakes (F codes: unused imports, undefined names), pycodestyle (E/W \
codes: style) and mccabe (C901: too complex). The code is parsed, never run.\n\n\
- `diagnostics`: `{line, column, code, message, severity, source}`; severity is `error` \
(will fail at run time: fix first), `warning`, or `convention` (style).\n\
- `syntax_error`: `{line, column, message}` when the code does not parse; fix it and lint \
again.\n\
- `function_complexity`: mccabe complexity per function; above 10 consider splitting.\n\
- `functions`, `classes`, `imports`, `complexity`: a summary of the module.\n\
- `options`: `max_line_length` (79), `max_complexity` (10), `select`, `ignore`, \
`extend_ignore` (code prefixes, flake8 semantics). `# noqa` comments are honoured.\n";

const TESTS: &str = "# run_tests\n\n\
Runs pytest inside the sandbox. Either put tests in `code` (test functions named `test_*` \
or `unittest.TestCase` classes), or put the implementation in `code` and the tests in \
`tests`; the tests then import the implementation as `solution` (or `module_name`).\n\n\
- `summary`: `{passed, failed, errors, skipped, xfailed, xpassed}`.\n\
- `tests`: `{nodeid, outcome, duration_seconds, message}` per test; `message` carries \
pytest's assertion introspection (e.g. `assert 3 == 4`).\n\
- `return_code`: 0 all passed, 1 some failed, 2 collection errors (e.g. a syntax error), \
5 no tests found; `exit_reason` `timeout` if a test loops.\n\
- `parametrize`, fixtures, `tmp_path` (under /scratch) and `unittest` all work, and so \
do hypothesis property tests (`from hypothesis import given, strategies as st`).\n";

const GENERATE: &str = "# generate_code\n\n\
Renders a Jinja2 template (minijinja) with `context` (a JSON object) and returns `output`.\n\n\
- Every variable the template uses must be in `context`; missing ones are reported by \
name.\n\
- No `include`, `import` or `extends`: templates are self-contained.\n\
- Rendering has a time budget and a 1 MiB output cap.\n\
- Filters: the usual Jinja2 ones (`join`, `upper`, `replace`, `tojson`, `indent`, ...).\n";

const HISTORY: &str = "# History and audit\n\n\
Every tool call produces an audit event (who called which tool, when, whether it was \
allowed, denied or rate-limited) and a result record (execution, lint, test or generation: \
language, code hash, outcome/exit_reason, durations, limits, truncated output).\n\n\
Records link the caller and the code: `(:User)-[:RAN]->(:Execution)-[:OF]->(:Code {hash})`, \
so the same code (by SHA-256 `code_hash`, returned by every tool) can be traced across runs \
and callers.\n\n\
Roles: `agent` may call the tools; `developer` may also read execution history; `admin` \
may also read the audit log and manage tokens.\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_prompt_resolves() {
        for summary in list() {
            let prompt = get(summary.slug, &LimitCeilings::default()).unwrap();
            assert!(prompt.content.starts_with("# "), "{}", summary.slug);
        }
        assert!(get("nope", &LimitCeilings::default()).is_none());
    }
}

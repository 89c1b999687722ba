//! Prompts and reference documents for agents: how to use each tool, the sandbox limits,
//! and the history/audit model. Served at `GET /prompts`, `GET /prompts/{slug}` and as
//! MCP prompts and resources (`sandgraph://prompts/{slug}`).

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::Config;

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
    body: fn(&Config) -> String,
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
        body: |config| limits_text(&config.sandbox.limits),
    },
    Entry {
        slug: "workspaces-and-charts",
        title: "Workspaces, files and charts",
        description: "Keeping files across calls, passing files in, getting files and pictures back, drawing a chart.",
        body: workspaces_text,
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
pub fn get(slug: &str, config: &Config) -> Option<Prompt> {
    ENTRIES.iter().find(|e| e.slug == slug).map(|e| Prompt {
        slug: e.slug,
        title: e.title,
        description: e.description,
        content: (e.body)(config),
    })
}

fn limits_text(limits: &crate::sandbox::LimitCeilings) -> String {
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
sees only its own /scratch: empty, or the workspace named by `workspace_id`; JavaScript \
has no filesystem), processes (`subprocess`, \
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

/// The chart example of the workspaces prompt: pure Python (the standard library only),
/// so it runs in every guest build. `tests/python/test_mcp_workspaces.py` runs it.
pub const CHART_EXAMPLE: &str = r#"import csv
from xml.sax.saxutils import escape

with open("data.csv", newline="") as f:
    rows = list(csv.DictReader(f))
labels = [row["month"] for row in rows]
values = [float(row["sales"]) for row in rows]

width, height, pad = 480, 300, 40
slot = (width - 2 * pad) / len(values)
top = max(values) or 1
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
       '<rect width="100%" height="100%" fill="white"/>']
for i, (label, value) in enumerate(zip(labels, values)):
    h = (height - 2 * pad) * value / top
    x = pad + i * slot
    svg.append(f'<rect x="{x + 4:.1f}" y="{height - pad - h:.1f}" '
               f'width="{slot - 8:.1f}" height="{h:.1f}" fill="steelblue"/>')
    svg.append(f'<text x="{x + slot / 2:.1f}" y="{height - pad + 16}" '
               f'font-size="12" text-anchor="middle">{escape(label)}</text>')
svg.append("</svg>")
with open("chart.svg", "w") as f:
    f.write("\n".join(svg))
print("total", sum(values))
"#;

fn workspaces_text(config: &Config) -> String {
    let w = &config.workspaces;
    format!(
        "# Workspaces, files and charts\n\n\
A workspace is a private directory that lasts across calls. Only you can use it (to anyone \
else it does not exist); it expires after {ttl} s without use, and every call naming it \
extends it.\n\n\
1. `create_workspace` returns `{{workspace_id, expires_at, quota_bytes}}`.\n\
2. Put files in: `write_file {{workspace_id, path, content}}` (`content_base64` for bytes), \
or pass `files: [{{path, content}}]` with `execute_code`/`run_tests`. Paths are relative and \
`/`-separated (`data/in.csv`); `..` and absolute paths are refused.\n\
3. Run: `execute_code {{workspace_id, code}}` (Python). The workspace is the working \
directory: `open(\"data.csv\")` reads what you wrote, files you write stay for the next \
call. `run_tests {{workspace_id, code}}` runs pytest there.\n\
4. Files out: the result's `files` lists what the run created or changed, each \
`{{path, size, sha256, mime}}` with a resource link `sandgraph://workspaces/{{id}}/files/{{path}}` \
(read it with `resources/read`, or `read_file`); small text files come back inline. PNG, \
JPEG, GIF and SVG files come back as images (SVG is rendered to PNG), at most {images} per \
result.\n\
5. `list_files`, `read_file`, `delete_file`, and `delete_workspace` when you are done.\n\n\
Limits: {quota} bytes and {files} files per workspace, {per_caller} workspaces at a time. A \
write past the quota fails inside the run with `OSError: [Errno 122] Disk quota exceeded` \
(`exit_reason: file_quota` if the program stops); a tool call over a quota gets a \
`quota_exceeded` error. Delete what you no longer need.\n\n\
## Drawing a chart\n\n\
No plotting library is needed: write SVG text and the client receives the picture. With \
`data.csv` holding `month,sales` rows, this draws a bar chart to `chart.svg`:\n\n\
```python\n{example}```\n\n\
Any SVG works the same way (lines: `<polyline points=\"x1,y1 x2,y2 ...\"/>`; text: \
`<text>`). Keep charts under about 2000 pixels a side.\n",
        ttl = w.ttl_seconds,
        images = w.images_per_result,
        quota = w.quota_bytes,
        files = w.max_files,
        per_caller = w.per_caller,
        example = CHART_EXAMPLE,
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
and deleted afterwards. Tracebacks name `main.py` lines. To keep files across calls, pass \
in data files or get files and charts back, use a workspace (`workspace_id`, `files`: see \
the `workspaces-and-charts` prompt).\n\
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
`extend_ignore` (code prefixes, flake8 semantics). `# noqa` comments are honoured.\n\
- `language: javascript`: JSHint (ES2020 syntax) parses the code inside the sandbox: \
E codes are errors (the first is `syntax_error`), W098 an unused variable, W117 an \
undefined name; `functions` and `function_complexity` come from JSHint, `classes` and \
`imports` stay empty; `select`/`ignore`/`extend_ignore` filter by code prefix.\n";

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
do hypothesis property tests (`from hypothesis import given, strategies as st`).\n\
- `language: javascript`: a built-in jest-like runner in QuickJS: `test`/`it`, \
`describe`, `test.skip`, `beforeEach`/`afterEach`/`beforeAll`/`afterAll`, async tests, and \
`expect(x)` with `toBe`, `toEqual`, `toThrow`, `toContain`, `toBeCloseTo`, `toMatch`, \
`toBeTruthy`, ... and `.not`. `tests` is appended to `code` (one script, no modules); \
results have the same shape (node ids `test_code.js::suite::name`), a syntax error is a \
collection error (return_code 2) with its line.\n";

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
            let prompt = get(summary.slug, &Config::default()).unwrap();
            assert!(prompt.content.starts_with("# "), "{}", summary.slug);
        }
        assert!(get("nope", &Config::default()).is_none());
    }
}

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
        slug: "knowledge-graph",
        title: "Querying the knowledge graph",
        description: "Call graph_schema first, then write Cypher for graph_query; grow the graph with graph_upsert.",
        body: |_| GRAPH.to_owned(),
    },
    Entry {
        slug: "history-and-audit",
        title: "History and audit model",
        description: "What sandgraph records about every call and who may read it.",
        body: |_| HISTORY.to_owned(),
    },
];

/// The replaced platform's prompt catalogue, under its own slugs so its clients keep
/// working (`GET /prompts/proceed`, ...): our own text for the same purposes.
const WORKFLOW: &[Entry] = &[
    Entry {
        slug: "proceed",
        title: "Proceed with the task",
        description: "Carry on with the task in small, verified steps using the sandbox tools.",
        body: |_| PROCEED.to_owned(),
    },
    Entry {
        slug: "evaluate",
        title: "Evaluate a result",
        description: "Judge whether a result meets the task, with evidence from runs, lint and tests.",
        body: |_| EVALUATE.to_owned(),
    },
    Entry {
        slug: "real-a",
        title: "Real-world assessment",
        description: "Assess how the work holds up outside the sandbox: real inputs, scale, failure, users.",
        body: |_| REAL_WORLD.to_owned(),
    },
    Entry {
        slug: "test-a",
        title: "Test assessment",
        description: "Assess the tests themselves: what they cover, what they miss, whether they can fail.",
        body: |_| TEST_ASSESSMENT.to_owned(),
    },
    Entry {
        slug: "improve",
        title: "Improve code",
        description: "Make code better where it matters (correctness first), proving each change with a run.",
        body: |_| IMPROVE.to_owned(),
    },
    Entry {
        slug: "clean",
        title: "Clean up code",
        description: "Tidy code without changing behaviour: lint clean, dead code gone, names that explain.",
        body: |_| CLEAN.to_owned(),
    },
    Entry {
        slug: "synthesize",
        title: "Synthesize findings",
        description: "Pull results, runs and notes together into one short, sourced conclusion.",
        body: |_| SYNTHESIZE.to_owned(),
    },
];

fn entries() -> impl Iterator<Item = &'static Entry> {
    ENTRIES.iter().chain(WORKFLOW)
}

/// Every prompt's listing.
pub fn list() -> Vec<PromptSummary> {
    entries()
        .map(|e| PromptSummary {
            slug: e.slug,
            title: e.title,
            description: e.description,
        })
        .collect()
}

/// One prompt, with limits filled in from the server's configuration.
pub fn get(slug: &str, config: &Config) -> Option<Prompt> {
    entries().find(|e| e.slug == slug).map(|e| Prompt {
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

/// The `pygal` chart of the `workspaces-and-charts` prompt (tests/python/test_mcp_workspaces.py
/// runs it as it is).
const PYGAL_EXAMPLE: &str = "import csv, pygal\n\
rows = list(csv.DictReader(open('data.csv')))\n\
chart = pygal.Line(title='Sales', width=640, height=400, js=[])\n\
chart.x_labels = [row['month'] for row in rows]\n\
chart.add('sales', [float(row['sales']) for row in rows])\n\
chart.render_to_file('sales.svg')\n";

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
`<text>`). Keep charts under about 2000 pixels a side.\n\n\
## With a charting library\n\n\
`pygal` is in the guest (see `list_packages`): bar, line, pie, scatter, box and more, drawn \
as SVG. Pass `js=[]` (the default links a script on the internet, which the sandbox cannot \
reach and the picture does not need):\n\n\
```python\n{pygal}```\n",
        ttl = w.ttl_seconds,
        images = w.images_per_result,
        quota = w.quota_bytes,
        files = w.max_files,
        per_caller = w.per_caller,
        example = CHART_EXAMPLE,
        pygal = PYGAL_EXAMPLE,
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
Lints Python with ruff (its rule codes and messages: F401 unused import, F821 undefined \
name, E/W style, C901 too complex, B/UP/SIM/... when selected). The code is parsed, never \
run. Call `list_packages` to see which imports the sandbox can satisfy.\n\n\
- `diagnostics`: `{line, column, code, message, severity, source}`; severity is `error` \
(syntax errors: fix first) or `warning`; `linter_output` is ruff's concise text.\n\
- `syntax_error`: `{line, column, message}` when the code does not parse; fix it and lint \
again.\n\
- `function_complexity`: mccabe complexity per function; above 10 consider splitting.\n\
- `functions`, `classes`, `imports`, `complexity`: a summary of the module.\n\
- `options`: `max_line_length` (88; also turns on E501), `max_complexity` (10; also turns \
on C901), `select` (e.g. `[\"F\", \"E\", \"B\"]` or `[\"ALL\"]`), `ignore`, \
`extend_ignore` (rule codes or prefixes). An unknown rule is a 422 naming it. `# noqa` \
comments are honoured.\n\
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

const GRAPH: &str = "# The knowledge graph\n\n\
**Call `graph_schema` first.** It lists the labels in use (each with its property keys), the \
relationship types (with the labels they join and their property keys), and the constraints \
and indexes, so you can write Cypher that matches the data instead of guessing.\n\n\
- Every node `graph_upsert` wrote carries the label `GraphNode` and a unique `key`, plus its \
own labels. Start a query from a label: `MATCH (p:Person {key: $key})-[:KNOWS]->(f) RETURN f`; \
pass values as `parameters`, never spliced into the text.\n\
- `graph_query` is read-only and returns at most 1000 rows (`truncated` says when it cut): \
aggregate (`count`, `collect`) or add `LIMIT` rather than fetching everything.\n\
- Queries over every node (`MATCH (n)`), procedures, `SHOW` commands and sandgraph's own \
record are refused with a message saying why.\n\
- `graph_upsert {nodes: [{key, labels, properties}], relationships: [{start, end, type, \
properties}]}` merges by key (developer role); names match `^[A-Za-z_][A-Za-z0-9_\\-:]{0,63}$`. \
Call `graph_schema` again after writing to see the new shape.\n";

const PROCEED: &str = "# Proceed with the task\n\n\
Carry on from where the work stands, in small steps you can check.\n\n\
1. Restate in one line what is done and what is next.\n\
2. Take the smallest next step that produces evidence: write the code, then run it with \
`execute_code` (or its tests with `run_tests`) before building on it.\n\
3. Read the whole result: `exit_reason`, `stderr`, `truncated`. A limit (`timeout`, \
`memory_limit`, `output_limit`) means change the approach, not retry unchanged.\n\
4. Keep state that must outlast a call in a workspace (`create_workspace`); each call is \
otherwise a fresh interpreter.\n\
5. Stop and say so when blocked, naming what is missing, rather than guessing.\n";

const EVALUATE: &str = "# Evaluate a result\n\n\
Decide whether a result does what the task asked, and show why.\n\n\
- State the criteria first (the task's own words, then correctness, edge cases, limits).\n\
- Gather evidence with the tools: run the code on the stated inputs and on edge cases \
(empty, large, malformed); `run_tests` for the behaviour; `lint_code` for errors a run \
may not reach.\n\
- For each criterion: met, not met, or unknown, with the run or test that shows it (its \
`id` and `code_hash` let a developer find it in the history).\n\
- End with a verdict (accept / accept with fixes / reject) and the fixes in priority \
order. Do not call untested behaviour correct.\n";

const REAL_WORLD: &str = "# Real-world assessment\n\n\
Judge how the work would hold up in use, beyond the happy path the sandbox showed.\n\n\
- **Inputs**: real data is larger, dirtier and stranger. Try sizes near the limits, \
Unicode, missing fields, duplicates; say what breaks.\n\
- **Failure**: what happens when a dependency is slow or down, a file is absent, input is \
hostile? Errors should be clear and the program should not corrupt state.\n\
- **Scale and cost**: measure with `execute_code` (`duration_seconds`) at two sizes and \
extrapolate honestly; name the complexity.\n\
- **Operation**: configuration, logging, how someone would notice and fix a problem.\n\
- **People**: who uses it, what they would misunderstand.\n\n\
Finish with the top risks, each with likelihood, impact and the cheapest mitigation.\n";

const TEST_ASSESSMENT: &str = "# Test assessment\n\n\
Assess the tests, not the code: would they catch a real bug?\n\n\
- Run them (`run_tests`) and read per-test outcomes; note any that are skipped or xfail.\n\
- **Can each test fail?** Break the code on purpose (flip a condition, return a constant) \
and run again: a test that still passes tests nothing.\n\
- **Coverage of behaviour**: list the cases the task implies (normal, boundary, empty, \
error) and mark which a test covers.\n\
- **Quality**: exact assertions over truthiness, no reliance on timing or ordering, names \
that say the behaviour, independent tests.\n\n\
Report the gaps in priority order with a concrete test for each.\n";

const IMPROVE: &str = "# Improve code\n\n\
Make the code better where it matters, in this order: correct, clear, fast enough.\n\n\
1. Pin current behaviour first: run it and its tests (`run_tests`), so every change can be \
checked against them.\n\
2. Fix bugs and unhandled cases before anything else; add a test for each.\n\
3. Then clarity: smaller functions, names that explain, early returns, no duplication \
(`lint_code` reports complexity per function).\n\
4. Performance only with a measurement showing it matters (`duration_seconds` before and \
after).\n\
5. One change at a time, re-running the tests after each. Explain each change in a line.\n";

const CLEAN: &str = "# Clean up code\n\n\
Tidy the code without changing what it does.\n\n\
- `lint_code` until it reports no `error` diagnostics and the warnings left are deliberate.\n\
- Remove dead code, unused imports and variables, commented-out blocks and leftover debug \
prints.\n\
- Consistent formatting and naming; constants for magic numbers; docstrings where the why \
is not obvious.\n\
- Behaviour must not change: run the tests (`run_tests`) or the program (`execute_code`) \
before and after and compare the output.\n";

const SYNTHESIZE: &str = "# Synthesize findings\n\n\
Pull the work together into one conclusion someone can act on.\n\n\
- Lead with the answer in two or three sentences.\n\
- Then the evidence: the runs, tests and queries that support it, by `id` or `code_hash`, \
with the numbers they produced. Separate what was measured from what is inferred.\n\
- Note disagreements between sources and how they were resolved, and what is still \
unknown.\n\
- End with next steps, each small and concrete.\n\
Keep it short: cut anything that does not change a decision.\n";

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

    #[test]
    fn the_replaced_platforms_slugs_are_served() {
        for slug in [
            "proceed",
            "evaluate",
            "real-a",
            "test-a",
            "improve",
            "clean",
            "synthesize",
        ] {
            assert!(get(slug, &Config::default()).is_some(), "{slug}");
        }
        let slugs: Vec<&str> = list().iter().map(|p| p.slug).collect();
        let unique: std::collections::BTreeSet<&str> = slugs.iter().copied().collect();
        assert_eq!(slugs.len(), unique.len(), "a slug is listed twice");
    }
}

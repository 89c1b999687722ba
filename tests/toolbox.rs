//! `lint_code`, `run_tests`, `generate_code` and the prompts, over HTTP against the real
//! binary and guest.

mod common;

use common::TestServer;
use serde_json::{Value, json};

fn diagnostic<'a>(body: &'a Value, code: &str) -> &'a Value {
    body["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {body}"))
}

const LINT_SAMPLE: &str = "\
import json
import os.path
from collections import OrderedDict


def tangled(a, b, c, d):
    if a:
        if b:
            return 1
        elif c:
            return 2
    for i in range(3):
        while d:
            if a and b or c:
                d -= 1
            elif d > 10:
                break
    try:
        pass
    except ValueError:
        pass
    return undefined_name


async def fetch(x):
    y=x
    return y
";

#[tokio::test]
async fn lint_reports_each_problem_at_its_line() {
    let server = TestServer::spawn();
    let (status, body) = server
        .post(
            "/lint_code",
            json!({"code": LINT_SAMPLE, "options": {"max_complexity": 5}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["linter"].as_str().unwrap().starts_with("ruff 0."),
        "{body}"
    );
    let unused = diagnostic(&body, "F401");
    assert_eq!(unused["line"], 1);
    assert_eq!(unused["source"], "ruff");
    assert_eq!(unused["message"], "`json` imported but unused");
    let undefined = diagnostic(&body, "F821");
    assert_eq!(undefined["line"], 22);
    assert_eq!(undefined["column"], 12);
    assert_eq!(undefined["severity"], "error");
    assert_eq!(undefined["message"], "Undefined name `undefined_name`");
    // max_complexity turns C901 on (it is not in ruff's default set).
    let complex = diagnostic(&body, "C901");
    assert_eq!(complex["line"], 6);
    assert_eq!(complex["message"], "`tangled` is too complex (9 > 5)");
    assert_eq!(body["linter_exit_code"], 1);
    assert!(
        body["linter_output"]
            .as_str()
            .unwrap()
            .contains("main.py:22:12: F821 Undefined name `undefined_name`\n"),
        "{body}"
    );
    assert!(body["syntax_error"].is_null());
    let tangled = body["function_complexity"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "tangled")
        .unwrap();
    assert!(tangled["complexity"].as_u64().unwrap() > 5);
    // Without the option, no C901: ruff's defaults.
    let (_, plain) = server
        .post("/lint_code", json!({"code": LINT_SAMPLE}))
        .await;
    assert!(
        plain["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["code"] != "C901"),
        "{plain}"
    );
}

/// What `ruff check` prints for `code` with `args`: its finding lines, without the `[*]`
/// fix marks (which the LSP does not carry) and the summary lines.
fn ruff_check(code: &str, args: &[&str]) -> String {
    use std::io::Write;
    let ruff = common::repo_root().join("build/guest/ruff");
    let mut child = std::process::Command::new(&ruff)
        .args([
            "check",
            "--isolated",
            "--no-cache",
            "--target-version",
            "py314",
        ])
        .args(["--output-format", "concise"])
        .args(args)
        .args(["--stdin-filename", "main.py", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", ruff.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(code.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter(|line| line.starts_with("main.py:"))
        .map(|line| line.replacen(" [*] ", " ", 1) + "\n")
        .collect()
}

#[tokio::test]
async fn lint_output_is_what_ruff_check_prints_for_the_same_file() {
    let server = TestServer::spawn();
    let unicode = "name = \"Zoë ☕\"; total = undefined + 1\nimport sys\n";
    let syntax = "x = 1\ndef broken(:\n    pass\n";
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (LINT_SAMPLE, json!({}), vec![]),
        (
            LINT_SAMPLE,
            json!({"max_complexity": 5, "max_line_length": 20}),
            vec![
                "--line-length",
                "20",
                "--extend-select",
                "E501,C901",
                "--config",
                "lint.mccabe.max-complexity = 5",
            ],
        ),
        (
            LINT_SAMPLE,
            json!({"select": ["E", "W", "F"], "ignore": ["F401"]}),
            vec!["--select", "E,W,F", "--ignore", "F401"],
        ),
        (
            LINT_SAMPLE,
            json!({"select": ["ALL"], "ignore": ["D"], "extend_ignore": ["ANN"]}),
            vec!["--select", "ALL", "--ignore", "D,ANN"],
        ),
        // Columns count characters, not bytes.
        (unicode, json!({}), vec![]),
        (syntax, json!({}), vec![]),
    ];
    for (code, options, args) in cases {
        let expected = ruff_check(code, &args);
        assert!(
            !expected.is_empty(),
            "ruff found nothing in {code:?} with {args:?}"
        );
        let (status, body) = server
            .post("/lint_code", json!({"code": code, "options": options}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["linter_output"].as_str().unwrap(),
            expected,
            "options {options} vs ruff check {args:?}"
        );
        // The structured findings are the same lines.
        assert_eq!(
            body["diagnostics"].as_array().unwrap().len(),
            expected.lines().count()
        );
    }
}

/// Code that ruff itself cannot take (its worker overflows its stack on some very deeply
/// nested expressions and exits) is a 422 on the code, not a 500, and the next lint, of
/// anyone, is answered by a new worker. The summary of the same code (ruff's parser on
/// the server) must not bring the server down either.
#[tokio::test]
async fn lint_of_code_that_crashes_ruff_is_a_clear_error_and_the_next_lint_works() {
    let server = TestServer::spawn();
    for code in [
        format!("x = {}1\n", "-".repeat(200_000)),
        format!("x = a{}\n", ".b".repeat(100_000)),
    ] {
        let (status, body) = server
            .post("/lint_code", json!({"code": code, "cache": false}))
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(
            body["detail"],
            "ruff could not lint this code: its worker exited while parsing it, twice \
             (very deeply nested expressions can do this); simplify the nesting"
        );
        let (status, body) = server
            .post("/lint_code", json!({"code": "import os\n"}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(diagnostic(&body, "F401")["line"], 1);
    }
    server.assert_alive().await;
}

#[tokio::test]
async fn lint_refuses_options_ruff_does_not_know_and_keeps_serving() {
    let server = TestServer::spawn();
    for (options, detail) in [
        (
            json!({"select": ["E121"]}),
            "ruff refused the options: Unknown rule selector `E121` in `select`",
        ),
        (
            json!({"ignore": ["F401", "XYZ999"]}),
            "ruff refused the options: Unknown rule selector `XYZ999` in `ignore`",
        ),
        (
            json!({"max_line_length": 0}),
            "options.max_line_length must be between 1 and 320 (got 0)",
        ),
        (
            json!({"ignore": ["F4;01"]}),
            "options.ignore: \"F4;01\" is not a rule selector (a rule code or prefix such as F401, E5, B, or ALL)",
        ),
        (
            json!({"select": vec!["E"; 65]}),
            "options.select: at most 64 rule selectors",
        ),
    ] {
        let (status, body) = server
            .post("/lint_code", json!({"code": "x = 1\n", "options": options}))
            .await;
        assert_eq!(status, 422, "{options}: {body}");
        assert_eq!(body["detail"], detail, "{options}");
    }
    let (status, body) = server
        .post("/lint_code", json!({"code": "import os\n"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(diagnostic(&body, "F401")["line"], 1);
    server.assert_alive().await;
}

/// The `ruff server` processes the server runs (its children with that command line).
fn ruff_workers(server_pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // pid (comm) state ppid ...
        let ppid = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(server_pid) && cmdline.ends_with(b"ruff\0server\0") {
            found.push(pid);
        }
    }
    found
}

#[tokio::test]
async fn a_killed_ruff_worker_is_replaced_and_workers_stay_bounded() {
    let server = TestServer::spawn();
    let lint = |code: String, options: Value| {
        let server = &server;
        async move {
            let (status, body) = server
                .post(
                    "/lint_code",
                    json!({"code": code, "options": options, "cache": false}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    lint("import os\n".into(), json!({})).await;
    let workers = ruff_workers(server.pid());
    assert_eq!(workers.len(), 1, "one worker for the default settings");
    for pid in &workers {
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
    }
    // The next call finds the worker gone and gets a new one; nothing is lost.
    let body = lint("import os\n".into(), json!({})).await;
    assert_eq!(diagnostic(&body, "F401")["line"], 1);
    let replaced = ruff_workers(server.pid());
    assert_eq!(replaced.len(), 1);
    assert_ne!(replaced, workers);
    // Every distinct setting gets a worker, at most four at once (least recently used
    // go), whatever callers send.
    for length in 40..50 {
        let body = lint(
            format!("x = '{}'\n", "a".repeat(60)),
            json!({"max_line_length": length}),
        )
        .await;
        assert_eq!(diagnostic(&body, "E501")["line"], 1);
        assert!(ruff_workers(server.pid()).len() <= 4);
    }
    server.assert_alive().await;
}

#[tokio::test]
async fn the_guest_linter_keeps_flake8s_codes_and_messages() {
    let server = TestServer::spawn_with(&[("SANDGRAPH_LINTER", "guest")]);
    let (status, body) = server
        .post(
            "/lint_code",
            json!({"code": LINT_SAMPLE, "options": {"max_complexity": 5}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["linter"],
        "pyflakes + pycodestyle + mccabe (in the guest)"
    );
    let unused = diagnostic(&body, "F401");
    assert_eq!(unused["line"], 1);
    assert_eq!(unused["source"], "pyflakes");
    let complex = diagnostic(&body, "C901");
    assert_eq!(complex["line"], 6);
    assert!(
        complex["message"]
            .as_str()
            .unwrap()
            .contains("'tangled' is too complex")
    );
    let style = diagnostic(&body, "E225");
    assert_eq!(style["line"], 26);
    assert_eq!(style["source"], "pycodestyle");
    assert!(
        body["linter_output"]
            .as_str()
            .unwrap()
            .contains("main.py:22:12: F821 undefined name 'undefined_name'"),
        "{body}"
    );
    let (_, broken) = server
        .post(
            "/lint_code",
            json!({"code": "x = 1\ndef broken(:\n    pass\n"}),
        )
        .await;
    assert_eq!(diagnostic(&broken, "E999")["line"], 2);
    assert_eq!(broken["syntax_error"]["line"], 2);
}

#[tokio::test]
async fn lint_keeps_the_old_semantics_for_imports_functions_and_complexity() {
    let server = TestServer::spawn();
    let (_, body) = server
        .post("/lint_code", json!({"code": LINT_SAMPLE}))
        .await;
    // `import os.path` -> "os"; `from collections import OrderedDict` -> "OrderedDict".
    assert_eq!(body["imports"], json!(["json", "os", "OrderedDict"]));
    // async functions count (the old platform missed them).
    assert_eq!(body["functions"], json!(["tangled", "fetch"]));
    assert_eq!(body["classes"], json!([]));
    // if, if, if(elif), for, while, if, boolop(and), boolop(or), if(elif), try, except
    // = 11 decision points + max(2 functions, 1) = 13.
    assert_eq!(body["complexity"], 13, "{body}");

    let (_, empty) = server.post("/lint_code", json!({"code": "x = 1\n"})).await;
    assert_eq!(empty["complexity"], 1);
    assert_eq!(empty["linter_exit_code"], 0);
    assert_eq!(empty["diagnostics"], json!([]));
}

#[tokio::test]
async fn lint_reports_a_syntax_error_with_its_position() {
    let server = TestServer::spawn();
    let (status, body) = server
        .post(
            "/lint_code",
            json!({"code": "x = 1\ndef broken(:\n    pass\n"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // CPython's own parser says where (the guest's summary) ...
    assert_eq!(body["syntax_error"]["line"], 2);
    assert_eq!(body["syntax_error"]["column"], 12);
    // ... and ruff reports it among the findings.
    let syntax = diagnostic(&body, "invalid-syntax");
    assert_eq!(syntax["line"], 2);
    assert_eq!(syntax["severity"], "error");
    assert_eq!(body["functions"], json!([]));
}

#[tokio::test]
async fn lint_refuses_a_megabyte_of_code_and_unknown_languages() {
    let server = TestServer::spawn();
    let (status, body) = server
        .post("/lint_code", json!({"code": "x = 1\n".repeat(200_000)}))
        .await;
    assert_eq!(status, 413, "{body}");
    let (status, body) = server
        .post("/lint_code", json!({"code": "x", "language": "cobol"}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["detail"],
        "unsupported language \"cobol\"; supported: python, javascript"
    );
    server.assert_alive().await;
}

fn outcome<'a>(body: &'a Value, nodeid: &str) -> &'a Value {
    body["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["nodeid"] == nodeid)
        .unwrap_or_else(|| panic!("no {nodeid} in {body}"))
}

#[tokio::test]
async fn run_tests_reports_each_outcome() {
    let server = TestServer::spawn();
    let code = "\
import unittest
import pytest


def add(a, b):
    return a + b


def test_passes():
    assert add(1, 2) == 3


def test_fails():
    assert add(1, 2) == 4


@pytest.fixture
def broken():
    raise RuntimeError('fixture exploded')


def test_errors(broken):
    pass


@pytest.mark.skip(reason='not today')
def test_skipped():
    pass


@pytest.mark.parametrize('a,b,total', [(1, 1, 2), (2, 2, 5)])
def test_param(a, b, total):
    assert add(a, b) == total


class TestWithUnittest(unittest.TestCase):
    def test_ok(self):
        self.assertEqual(add(2, 2), 4)

    def test_bad(self):
        self.assertEqual(add(2, 2), 5)
";
    let (status, body) = server.post("/run_tests", json!({"code": code})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["framework"], "pytest");
    assert_eq!(body["return_code"], 1);
    assert_eq!(
        body["summary"],
        json!({"passed": 3, "failed": 3, "errors": 1, "skipped": 1, "xfailed": 0, "xpassed": 0})
    );
    assert_eq!(
        outcome(&body, "test_code.py::test_passes")["outcome"],
        "passed"
    );
    let failed = outcome(&body, "test_code.py::test_fails");
    assert_eq!(failed["outcome"], "failed");
    // Assertion rewriting shows the compared values.
    assert_eq!(failed["message"], "assert 3 == 4\n +  where 3 = add(1, 2)");
    let errored = outcome(&body, "test_code.py::test_errors");
    assert_eq!(errored["outcome"], "error");
    assert!(
        errored["message"]
            .as_str()
            .unwrap()
            .contains("fixture exploded")
    );
    assert_eq!(
        outcome(&body, "test_code.py::test_skipped")["message"],
        "Skipped: not today"
    );
    assert_eq!(
        outcome(&body, "test_code.py::test_param[1-1-2]")["outcome"],
        "passed"
    );
    assert_eq!(
        outcome(&body, "test_code.py::test_param[2-2-5]")["outcome"],
        "failed"
    );
    assert_eq!(
        outcome(&body, "test_code.py::TestWithUnittest::test_ok")["outcome"],
        "passed"
    );
    let bad = outcome(&body, "test_code.py::TestWithUnittest::test_bad");
    assert_eq!(bad["outcome"], "failed");
    assert!(bad["message"].as_str().unwrap().contains("4 != 5"), "{bad}");
    assert!(
        body["stdout"]
            .as_str()
            .unwrap()
            .contains("3 failed, 3 passed, 1 skipped, 1 error")
    );
}

#[tokio::test]
async fn run_tests_with_separate_tests_imports_the_code_as_solution() {
    let server = TestServer::spawn();
    let (status, body) = server
        .post(
            "/run_tests",
            json!({
                "code": "def square(x):\n    return x * x\n",
                "tests": "from solution import square\n\ndef test_square():\n    assert square(3) == 9\n"
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["return_code"], 0);
    assert_eq!(body["exit_reason"], "ok");
    assert_eq!(
        outcome(&body, "test_solution.py::test_square")["outcome"],
        "passed"
    );
}

#[tokio::test]
async fn run_tests_infinite_loop_is_a_timeout_result_not_a_server_error() {
    let server = TestServer::spawn();
    let (status, body) = server
        .post(
            "/run_tests",
            json!({"code": "def test_spin():\n    while True:\n        pass\n", "timeout_seconds": 1}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["exit_reason"], "timeout");
    assert_eq!(body["return_code"], 124);
    assert_eq!(body["tests"], json!([]));
    server.assert_alive().await;
}

#[tokio::test]
async fn run_tests_syntax_error_is_a_collection_error_result() {
    let server = TestServer::spawn();
    let (status, body) = server
        .post("/run_tests", json!({"code": "def test_x(:\n    pass\n"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["return_code"], 2);
    assert_eq!(body["summary"]["errors"], 1);
    assert!(
        body["stdout"].as_str().unwrap().contains("SyntaxError"),
        "{body}"
    );
}

#[tokio::test]
async fn run_tests_refuses_bad_arguments() {
    let server = TestServer::spawn();
    let cases = [
        (
            json!({"code": "x", "test_framework": "nose"}),
            "test_framework",
        ),
        (
            json!({"code": "x", "timeout_seconds": 0.5}),
            "timeout_seconds",
        ),
        (
            json!({"code": "x", "tests": "y", "module_name": "../etc"}),
            "module_name",
        ),
    ];
    for (request, field) in cases {
        let (status, body) = server.post("/run_tests", request).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["field"], field, "{body}");
    }
}

#[tokio::test]
async fn generate_renders_and_refuses_clearly() {
    let server = TestServer::spawn();
    let (status, body) = server
        .post(
            "/generate_code",
            json!({
                "template": "class {{ name }}:\n{% for f in fields %}    {{ f }}: int\n{% endfor %}",
                "context": {"name": "Point", "fields": ["x", "y"]},
                "language": "python"
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"], "class Point:\n    x: int\n    y: int\n");
    assert_eq!(body["language"], "python");
    assert!(body["id"].as_str().unwrap().len() >= 32);

    let (status, body) = server
        .post(
            "/generate_code",
            json!({"template": "{{ missing }}", "context": {}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["detail"],
        "template variables missing from context: missing"
    );

    let (status, body) = server
        .post(
            "/generate_code",
            json!({"template": "{% include '/etc/passwd' %}"}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body["detail"].as_str().unwrap().contains("cannot include"),
        "{body}"
    );

    let (status, body) = server
        .post(
            "/generate_code",
            json!({"template": "{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}"}),
        )
        .await;
    assert!(status == 422 || status == 413, "{status} {body}");
    server.assert_alive().await;
}

#[tokio::test]
async fn prompts_are_listed_and_served() {
    let server = TestServer::spawn();
    let list = server.get_json("/prompts").await;
    let slugs: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap())
        .collect();
    for slug in [
        "execute-code",
        "lint-code",
        "run-tests",
        "generate-code",
        "sandbox-limits",
        "history-and-audit",
    ] {
        assert!(slugs.contains(&slug), "{slug} missing from {list}");
    }
    let limits = server.get_json("/prompts/sandbox-limits").await;
    assert!(
        limits["content"]
            .as_str()
            .unwrap()
            .contains("| wall-clock time | 8000 ms |"),
        "{limits}"
    );
    let missing = server
        .http
        .get(server.url("/prompts/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "no prompt named \"nope\"; GET /prompts lists them"
    );
}

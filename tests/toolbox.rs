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
    let unused = diagnostic(&body, "F401");
    assert_eq!(unused["line"], 1);
    assert_eq!(unused["source"], "pyflakes");
    let undefined = diagnostic(&body, "F821");
    assert_eq!(undefined["line"], 22);
    assert_eq!(undefined["severity"], "error");
    assert!(
        undefined["message"]
            .as_str()
            .unwrap()
            .contains("undefined_name")
    );
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
    assert_eq!(body["linter_exit_code"], 1);
    assert!(
        body["linter_output"]
            .as_str()
            .unwrap()
            .contains("main.py:22:12: F821 undefined name 'undefined_name'"),
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
    assert_eq!(body["syntax_error"]["line"], 2);
    assert_eq!(body["syntax_error"]["column"], 12);
    assert_eq!(diagnostic(&body, "E999")["line"], 2);
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

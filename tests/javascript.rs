//! JavaScript (QuickJS-NG) through `/execute_code` and `/run_tests` (the built-in runner).

mod common;

use common::TestServer;
use serde_json::json;

fn js(code: &str) -> serde_json::Value {
    json!({"language": "javascript", "code": code})
}

#[tokio::test]
async fn console_log_reaches_stdout() {
    let server = TestServer::spawn();
    let result = server
        .execute(js("console.log('hello', 1 + 2, [1, 2])"))
        .await;
    assert_eq!(result["exit_reason"], "ok", "{result}");
    assert_eq!(result["stdout"], "hello 3 1,2\n");
    assert_eq!(result["language"], "javascript");
}

#[tokio::test]
async fn promise_jobs_run_before_the_program_ends() {
    let server = TestServer::spawn();
    let result = server
        .execute(js("async function f() { await null; return 7; }\n\
             f().then(v => console.log('resolved', v));\n\
             Promise.reject(new Error('x')).catch(e => console.log('caught', e.message));\n\
             console.log('sync first');"))
        .await;
    assert_eq!(
        result["stdout"], "sync first\ncaught x\nresolved 7\n",
        "{result}"
    );
}

#[tokio::test]
async fn infinite_loop_hits_the_time_limit() {
    let server = TestServer::spawn();
    let result = server
        .execute(json!({"language": "javascript", "code": "for (;;) {}", "timeout_seconds": 1}))
        .await;
    assert_eq!(result["exit_reason"], "timeout", "{result}");
    assert_eq!(result["return_code"], 124);
    server.assert_alive().await;
}

#[tokio::test]
async fn uncaught_exception_is_an_error_with_its_message() {
    let server = TestServer::spawn();
    let result = server.execute(js("throw new TypeError('nope')")).await;
    assert_eq!(result["exit_reason"], "error", "{result}");
    assert_eq!(result["return_code"], 1);
    assert!(
        result["stderr"]
            .as_str()
            .unwrap()
            .contains("TypeError: nope"),
        "{result}"
    );
}

#[tokio::test]
async fn runaway_allocation_hits_the_memory_limit() {
    let server = TestServer::spawn();
    let result = server
        .execute(json!({
            "language": "javascript",
            "code": "let a = []; for (;;) a.push('x'.repeat(1 << 20) + a.length);",
            "limits": {"memory_bytes": 32 * 1024 * 1024}
        }))
        .await;
    assert_eq!(result["exit_reason"], "memory_limit", "{result}");
    server.assert_alive().await;
}

/// POST `/run_tests` with javascript code; (status, body).
async fn js_tests(server: &TestServer, body: serde_json::Value) -> (u16, serde_json::Value) {
    let mut body = body;
    body["language"] = json!("javascript");
    server.post("/run_tests", body).await
}

#[tokio::test]
async fn run_tests_gives_per_test_results_for_javascript() {
    let server = TestServer::spawn();
    let code = "\
function add(a, b) { return a + b; }
describe('add', () => {
  test('adds small numbers', () => { expect(add(1, 2)).toBe(3); });
  test('is wrong on purpose', () => { expect(add(1, 2)).toEqual(4); });
});
it('awaits async tests', async () => {
  const v = await Promise.resolve({ a: [1, 2] });
  expect(v).toEqual({ a: [1, 2] });
  expect(() => JSON.parse('{')).toThrow(SyntaxError);
  expect([1, 2, 3]).not.toContain(4);
});
test.skip('not today', () => {});
";
    let (status, body) = js_tests(&server, json!({"code": code})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["framework"], "builtin");
    assert_eq!(body["language"], "javascript");
    assert_eq!(body["return_code"], 1, "{body}");
    assert_eq!(body["exit_reason"], "error");
    assert_eq!(
        body["summary"],
        json!({"passed": 2, "failed": 1, "errors": 0, "skipped": 1, "xfailed": 0, "xpassed": 0})
    );
    let tests = body["tests"].as_array().unwrap();
    let ids: Vec<&str> = tests
        .iter()
        .map(|t| t["nodeid"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "test_code.js::add::adds small numbers",
            "test_code.js::add::is wrong on purpose",
            "test_code.js::awaits async tests",
            "test_code.js::not today",
        ]
    );
    let outcomes: Vec<&str> = tests
        .iter()
        .map(|t| t["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["passed", "failed", "passed", "skipped"]);
    assert_eq!(
        tests[1]["message"],
        "AssertionError: expected 3 to equal 4 (line 4, column 57)"
    );
    // The report line is the host's, not part of the output.
    assert_eq!(
        body["stdout"],
        "FAILED test_code.js::add::is wrong on purpose - AssertionError: expected 3 to equal 4 \
         (line 4, column 57)\n1 failed, 2 passed, 1 skipped\n"
    );

    // Code and tests apart: the tests see the code's top-level names.
    let (status, body) = js_tests(
        &server,
        json!({"code": "const square = (x) => x * x;", "tests": "test('square', () => expect(square(3)).toBe(9));"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["return_code"], 0, "{body}");
    assert_eq!(body["exit_reason"], "ok");
    assert_eq!(body["tests"][0]["nodeid"], "test_code.js::square");
}

#[tokio::test]
async fn run_tests_reports_a_javascript_syntax_error_as_a_collection_error_with_its_line() {
    let server = TestServer::spawn();
    let (status, body) = js_tests(
        &server,
        json!({"code": "test('a', () => {});\n\nlet x = ;\n"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["return_code"], 2, "{body}");
    assert_eq!(body["summary"]["errors"], 1);
    let error = &body["tests"][0];
    assert_eq!(error["nodeid"], "test_code.js");
    assert_eq!(error["outcome"], "error");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("SyntaxError: "), "{message}");
    assert!(message.contains("(line 3, column"), "{message}");
}

#[tokio::test]
async fn run_tests_ends_an_infinite_javascript_loop_in_timeout() {
    let server = TestServer::spawn();
    let (status, body) = js_tests(
        &server,
        json!({"code": "test('ok', () => {});\ntest('spins', () => { for (;;) {} });\n", "timeout_seconds": 1}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["exit_reason"], "timeout", "{body}");
    assert_eq!(body["return_code"], 124);
    assert_eq!(body["tests"], json!([]));
    server.assert_alive().await;
}

#[tokio::test]
async fn run_tests_refuses_what_javascript_cannot_do() {
    let server = TestServer::spawn();
    for (body, field) in [
        (
            json!({"code": "1", "test_framework": "mocha"}),
            "test_framework",
        ),
        (
            json!({"code": "1", "files": [{"path": "a.txt", "content": "x"}]}),
            "language",
        ),
        (
            json!({"code": "1", "tests": "2", "module_name": "m"}),
            "module_name",
        ),
    ] {
        let (status, answer) = js_tests(&server, body).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["field"], field, "{answer}");
    }
    server.assert_alive().await;
}

#[tokio::test]
async fn lint_reports_javascript_syntax_errors_and_unused_variables_by_line() {
    let server = TestServer::spawn();
    let code = "\
function pick(a, b) {
  if (a) { return b; }
  return a && b ? 1 : 2;
}
var unused = 3;
pick(1, 2);
console.log(notDeclared);
";
    let (status, body) = server
        .post(
            "/lint_code",
            json!({"code": code, "language": "javascript"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["language"], "javascript");
    assert_eq!(body["syntax_error"], serde_json::Value::Null);
    assert_eq!(body["functions"], json!(["pick"]));
    assert_eq!(
        body["function_complexity"],
        json!([{"name": "pick", "line": 1, "complexity": 4}])
    );
    assert_eq!(body["complexity"], 4);
    assert_eq!(body["linter_exit_code"], 1);
    assert_eq!(
        body["linter_output"],
        "main.js:5:5: W098 'unused' is defined but never used.\n\
         main.js:7:13: W117 'notDeclared' is not defined.\n"
    );
    assert_eq!(body["diagnostics"][0]["source"], "jshint");
    assert_eq!(body["diagnostics"][0]["severity"], "warning");

    let (status, body) = server
        .post(
            "/lint_code",
            json!({"code": "const ok = 1;\nconsole.log(ok);\nlet x = ;\n", "language": "javascript"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["syntax_error"],
        json!({"line": 3, "column": 9, "message": "Expected an identifier and instead saw ';'."})
    );
    // Nothing ran: linting a program that would loop forever returns at once.
    let (status, body) = server
        .post(
            "/lint_code",
            json!({"code": "for (;;) {}\n", "language": "javascript", "options": {"select": ["E"]}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["diagnostics"], json!([]));
    assert_eq!(body["linter_exit_code"], 0);
}

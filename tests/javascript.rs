//! JavaScript (QuickJS-NG) through `/execute_code`.

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

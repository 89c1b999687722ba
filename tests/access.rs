//! Who may call what, how often, and the result cache — on REST and on MCP over
//! streamable HTTP.

mod common;

use std::time::Duration;

use common::{TestServer, client_with_token};
use serde_json::{Value, json};

/// Every REST endpoint that needs a caller, with a valid request, and the least role
/// allowed to call it (README "Access" table).
fn endpoints() -> Vec<(&'static str, &'static str, Option<Value>, &'static str)> {
    vec![
        (
            "POST",
            "/execute_code",
            Some(json!({"code": "print(1)"})),
            "agent",
        ),
        (
            "POST",
            "/lint_code",
            Some(json!({"code": "x = 1\n"})),
            "agent",
        ),
        (
            "POST",
            "/run_tests",
            Some(json!({"code": "def test_a():\n    pass\n"})),
            "agent",
        ),
        (
            "POST",
            "/generate_code",
            Some(json!({"template": "{{ a }}", "context": {"a": 1}})),
            "agent",
        ),
        ("GET", "/prompts", None, "agent"),
        ("GET", "/prompts/execute-code", None, "agent"),
        ("GET", "/admin/tokens", None, "admin"),
    ]
}

fn rank(role: &str) -> u8 {
    match role {
        "agent" => 0,
        "developer" => 1,
        "admin" => 2,
        _ => unreachable!(),
    }
}

async fn call(
    client: &reqwest::Client,
    server: &TestServer,
    method: &str,
    path: &str,
    body: &Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = server.url(path);
    let request = match method {
        "GET" => client.get(url),
        _ => client.post(url).json(body.as_ref().unwrap()),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn each_role_gets_exactly_the_documented_access_on_rest() {
    let server = TestServer::spawn();
    let anonymous = reqwest::Client::new();
    let bogus = client_with_token("sg_not_a_real_token");
    for (method, path, body, _) in endpoints() {
        let (status, headers, detail) = call(&anonymous, &server, method, path, &body).await;
        assert_eq!(status, 401, "{method} {path} without a token: {detail}");
        assert_eq!(headers["www-authenticate"], "Bearer realm=\"sandgraph\"");
        assert_eq!(
            detail["detail"],
            "missing bearer token: send `Authorization: Bearer <token>`"
        );
        let (status, headers, detail) = call(&bogus, &server, method, path, &body).await;
        assert_eq!(status, 401, "{method} {path} with a bad token");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
        assert_eq!(detail["detail"], "invalid or revoked token");
    }
    for role in ["agent", "developer", "admin"] {
        let client = client_with_token(&server.create_token(role, &format!("{role}-table")));
        for (method, path, body, least) in endpoints() {
            let (status, _, detail) = call(&client, &server, method, path, &body).await;
            if rank(role) >= rank(least) {
                assert!(
                    status == 200 || status == 201,
                    "{role} {method} {path}: {status} {detail}"
                );
            } else {
                assert_eq!(status, 403, "{role} {method} {path}: {detail}");
                assert_eq!(
                    detail["detail"],
                    format!("role {role} may not call list_tokens; it needs {least} or higher")
                );
            }
        }
    }
    // The open endpoints need no token.
    let health = anonymous.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn a_revoked_token_is_refused_immediately() {
    let server = TestServer::spawn();
    let token = server.create_token("agent", "short-lived");
    let client = client_with_token(&token);
    let (status, _, _) = call(&client, &server, "GET", "/prompts", &None).await;
    assert_eq!(status, 200);
    let list = std::process::Command::new(env!("CARGO_BIN_EXE_sandgraph"))
        .args(["token", "list"])
        .env("SANDGRAPH_DATA_DIR", server.data_dir())
        .output()
        .unwrap();
    let listing = String::from_utf8(list.stdout).unwrap();
    let id = listing
        .lines()
        .find(|l| l.ends_with("short-lived"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    assert!(
        !listing.contains(&token),
        "token list must never show secrets"
    );
    let revoke = std::process::Command::new(env!("CARGO_BIN_EXE_sandgraph"))
        .args(["token", "revoke", &id])
        .env("SANDGRAPH_DATA_DIR", server.data_dir())
        .status()
        .unwrap();
    assert!(revoke.success());
    let (status, _, body) = call(&client, &server, "GET", "/prompts", &None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["detail"], "invalid or revoked token");
}

#[tokio::test]
async fn admins_manage_tokens_over_http() {
    let server = TestServer::spawn();
    let (status, created) = server
        .post("/admin/tokens", json!({"role": "developer", "name": "ci"}))
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["info"]["id"].as_str().unwrap().to_owned();
    let dev = client_with_token(&token);
    assert_eq!(call(&dev, &server, "GET", "/prompts", &None).await.0, 200);
    let (status, _) = server
        .post("/admin/tokens", json!({"role": "root", "name": "x"}))
        .await;
    assert_eq!(status, 422);
    let revoked = server
        .http
        .delete(server.url(&format!("/admin/tokens/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status().as_u16(), 204);
    assert_eq!(call(&dev, &server, "GET", "/prompts", &None).await.0, 401);
}

#[tokio::test]
async fn tokens_never_appear_in_logs() {
    let server = TestServer::spawn_logged(&[("RUST_LOG", "trace")]);
    let agent = server.create_token("agent", "logged");
    let client = client_with_token(&agent);
    call(
        &client,
        &server,
        "POST",
        "/execute_code",
        &Some(json!({"code": "print(1)"})),
    )
    .await;
    call(&client, &server, "GET", "/admin/tokens", &None).await;
    let bogus = "sg_this_secret_must_not_be_logged_0123456789";
    call(&client_with_token(bogus), &server, "GET", "/prompts", &None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = server.log();
    assert!(log.len() > 100, "expected a trace log, got {log:?}");
    for secret in [agent.as_str(), server.admin_token.as_str(), bogus] {
        assert!(!log.contains(secret), "a token leaked into the log");
    }
}

#[tokio::test]
async fn a_burst_over_the_limit_gets_429_with_a_retry_after_that_works() {
    let server = TestServer::spawn_with(&[("SANDGRAPH_RATE_LIMIT_LINT_CODE", "2/second")]);
    let first = client_with_token(&server.create_token("agent", "bursty"));
    let second = client_with_token(&server.create_token("agent", "calm"));
    let body = Some(json!({"code": "x = 1\n"}));
    let mut limited = None;
    for _ in 0..5 {
        let (status, headers, detail) = call(&first, &server, "POST", "/lint_code", &body).await;
        if status == 429 {
            limited = Some((headers, detail));
            break;
        }
        assert_eq!(status, 200);
    }
    let (headers, detail) = limited.expect("the burst was never limited");
    assert_eq!(detail, json!({"detail": "Rate limit exceeded"}));
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "retry-after {retry_after}");
    // Another caller's budget is untouched.
    assert_eq!(
        call(&second, &server, "POST", "/lint_code", &body).await.0,
        200
    );
    // Waiting as told lets the next call through.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(
        call(&first, &server, "POST", "/lint_code", &body).await.0,
        200
    );
}

async fn runs_started(server: &TestServer) -> u64 {
    let health = server.get_json("/health").await;
    health["sandbox"]["runs_started"].as_u64().unwrap()
}

#[tokio::test]
async fn a_second_identical_call_is_cached_and_does_not_run_the_guest() {
    let server = TestServer::spawn();
    let request = json!({"code": "import random\nprint(random.random())"});
    let first = server.execute(request.clone()).await;
    assert_eq!(first["cached"], false);
    let before = runs_started(&server).await;
    let second = server.execute(request.clone()).await;
    assert_eq!(second["cached"], true);
    assert_eq!(second["stdout"], first["stdout"]);
    assert_ne!(second["id"], first["id"], "each call gets its own id");
    assert_eq!(
        runs_started(&server).await,
        before,
        "a cache hit ran the guest"
    );

    // Changing any part of the key misses.
    for changed in [
        json!({"code": "import random\nprint(random.random()) "}),
        json!({"code": "import random\nprint(random.random())", "timeout_seconds": 7}),
        json!({"code": "import random\nprint(random.random())", "limits": {"stdout_bytes": 1000}}),
        json!({"code": "import random\nprint(random.random())", "cache": false}),
    ] {
        let result = server.execute(changed.clone()).await;
        assert_eq!(result["cached"], false, "{changed}");
    }
    let js = server
        .execute(json!({"code": "console.log(1)", "language": "javascript"}))
        .await;
    assert_eq!(js["cached"], false);
    // Lint and tests are cached too.
    let (_, lint1) = server
        .post("/lint_code", json!({"code": "import os\n"}))
        .await;
    let (_, lint2) = server
        .post("/lint_code", json!({"code": "import os\n"}))
        .await;
    assert_eq!(
        (lint1["cached"].clone(), lint2["cached"].clone()),
        (json!(false), json!(true))
    );
    let (_, lint3) = server
        .post(
            "/lint_code",
            json!({"code": "import os\n", "options": {"max_line_length": 100}}),
        )
        .await;
    assert_eq!(lint3["cached"], false);
}

#[tokio::test]
async fn timeouts_are_not_cached() {
    let server = TestServer::spawn();
    let request = json!({"code": "while True: pass", "timeout_seconds": 0.5});
    assert_eq!(
        server.execute(request.clone()).await["exit_reason"],
        "timeout"
    );
    let again = server.execute(request).await;
    assert_eq!(again["cached"], false);
}

#[tokio::test]
async fn cache_entries_expire_after_the_ttl() {
    let server = TestServer::spawn_with(&[("SANDGRAPH_CACHE_TTL_SECONDS", "1")]);
    let request = json!({"code": "print('ttl')"});
    server.execute(request.clone()).await;
    assert_eq!(server.execute(request.clone()).await["cached"], true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(server.execute(request).await["cached"], false);
}

#[tokio::test]
async fn the_cache_evicts_at_its_byte_bound() {
    // One execute result is ~500 bytes of JSON; 1200 bytes hold two.
    let server = TestServer::spawn_with(&[("SANDGRAPH_CACHE_MAX_BYTES", "1200")]);
    for i in 0..3 {
        server.python(&format!("print({i})")).await;
    }
    let health = server.get_json("/health").await;
    assert_eq!(health["cache"]["evictions"], 1, "{health}");
    assert!(health["cache"]["bytes"].as_u64().unwrap() <= 1200);
    assert_eq!(
        server.python("print(0)").await["cached"],
        false,
        "the oldest was evicted"
    );
    assert_eq!(server.python("print(2)").await["cached"], true);
}

#[tokio::test]
async fn fifty_identical_concurrent_calls_run_the_guest_once() {
    let server = TestServer::spawn();
    let before = runs_started(&server).await;
    let request = json!({"code": "import time\ntime.sleep(0.5)\nprint('shared')"});
    let calls = (0..50).map(|_| server.execute(request.clone()));
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| r["stdout"] == "shared\n"));
    assert_eq!(results.iter().filter(|r| r["cached"] == false).count(), 1);
    assert_eq!(runs_started(&server).await - before, 1);
}

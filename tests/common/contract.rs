//! Helpers shared by the history tests of both backends.

use std::time::Duration;

use serde_json::{Value, json};

use super::{TestServer, client_with_token};

/// POST JSON with `client`.
pub async fn post_as(
    server: &TestServer,
    client: &reqwest::Client,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let response = client
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// GET with `client`.
pub async fn get_as(server: &TestServer, client: &reqwest::Client, path: &str) -> (u16, Value) {
    let response = client.get(server.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The id of the token named `name` (via `sandgraph token list`).
pub fn caller_id(server: &TestServer, name: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sandgraph"))
        .args(["token", "list"])
        .env("SANDGRAPH_DATA_DIR", server.data_dir())
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find(|l| l.ends_with(name))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned()
}

/// A unique suffix for names.
pub fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// The same history contract, checked against whichever backend `server` uses.
pub async fn history_contract(server: &TestServer) {
    let name = format!("hist-{}", uuid_like());
    let dev_token = server.create_token("developer", &name);
    let dev = client_with_token(&dev_token);
    let caller = caller_id(server, &name);
    for i in 0..5 {
        post_as(
            server,
            &dev,
            "/execute_code",
            json!({"code": format!("print({i})")}),
        )
        .await;
    }
    post_as(
        server,
        &dev,
        "/execute_code",
        json!({"code": "raise SystemExit(3)"}),
    )
    .await;
    post_as(server, &dev, "/lint_code", json!({"code": "x = 1\n"})).await;
    server.wait_shipped(Duration::from_secs(60)).await;

    let (status, page1) = get_as(
        server,
        &dev,
        &format!("/execution_history?caller={caller}&tool=execute_code&limit=4"),
    )
    .await;
    assert_eq!(status, 200, "{page1}");
    let items = page1["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    let ts: Vec<i64> = items.iter().map(|i| i["ts"].as_i64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = get_as(
        server,
        &dev,
        &format!("/execution_history?caller={caller}&tool=execute_code&limit=4&cursor={cursor}"),
    )
    .await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 2);
    assert!(page2["next_cursor"].is_null());
    let (_, failed) = get_as(
        server,
        &dev,
        &format!("/execution_history?caller={caller}&outcome=error"),
    )
    .await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 1);
    assert_eq!(failed["items"][0]["return_code"], 3);
    let (_, lint) = get_as(
        server,
        &dev,
        &format!("/execution_history?caller={caller}&tool=lint_code"),
    )
    .await;
    assert_eq!(lint["items"].as_array().unwrap().len(), 1);
    let id = lint["items"][0]["id"].as_str().unwrap();
    let (status, one) = get_as(server, &dev, &format!("/executions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["tool"], "lint_code");
    let hash = one["code_hash"].as_str().unwrap();
    let (_, stats) = get_as(server, &dev, &format!("/code_stats/{hash}")).await;
    assert!(stats["runs"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["failure_rate"], 0.0);
    let (status, _) = get_as(server, &dev, "/executions/no-such-id").await;
    assert_eq!(status, 404);
    let (status, bad) = get_as(server, &dev, "/execution_history?since=yesterday").await;
    assert_eq!(status, 422, "{bad}");

    // The audit log is for admins.
    let (status, body) = get_as(server, &dev, "/audit_log").await;
    assert_eq!(status, 403, "{body}");
    let (status, audit) = get_as(
        server,
        &server.http,
        &format!("/audit_log?caller={caller}&event_type=allowed"),
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    let events = audit["items"].as_array().unwrap();
    assert!(events.len() >= 7, "{audit}");
    assert!(events.iter().all(|e| e["caller_id"] == caller.as_str()));
    let (_, agent_history) = get_as(
        server,
        &client_with_token(&server.create_token("agent", "nosy")),
        "/execution_history",
    )
    .await;
    assert_eq!(
        agent_history["detail"],
        "role agent may not call execution_history; it needs developer or higher"
    );
}

/// The record keeps the source text it ran, once per hash, and `get_execution` returns
/// it: code, `run_tests`' separate tests, templates. Returns the hash of the code run
/// twice, for backend-specific checks that it was stored once.
pub async fn source_contract(server: &TestServer) -> String {
    let name = format!("src-{}", uuid_like());
    let dev = client_with_token(&server.create_token("developer", &name));
    let code = format!("print('{name}')\n");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, run) = post_as(
            server,
            &dev,
            "/execute_code",
            json!({"code": code, "cache": false}),
        )
        .await;
        assert_eq!(status, 200, "{run}");
        ids.push(run["id"].as_str().unwrap().to_owned());
    }
    let module = format!("def answer():\n    return '{name}'\n");
    let tests = "from solution import answer\n\ndef test_answer():\n    assert answer()\n";
    let (status, tested) = post_as(
        server,
        &dev,
        "/run_tests",
        json!({"code": module, "tests": tests}),
    )
    .await;
    assert_eq!(status, 200, "{tested}");
    let template = format!("{name}: {{{{ who }}}}");
    let (status, generated) = post_as(
        server,
        &dev,
        "/generate_code",
        json!({"template": template, "context": {"who": "x"}}),
    )
    .await;
    assert_eq!(status, 200, "{generated}");
    server.wait_shipped(Duration::from_secs(60)).await;

    let mut hash = String::new();
    for id in &ids {
        let (status, one) = get_as(server, &dev, &format!("/executions/{id}")).await;
        assert_eq!(status, 200, "{one}");
        assert_eq!(one["source_kept"], true, "{one}");
        assert_eq!(one["code"]["source"], code.as_str(), "{one}");
        assert_eq!(one["code"]["hash"], one["code_hash"]);
        assert_eq!(one["code"]["bytes"], code.len());
        assert_eq!(one["code"]["language"], "python");
        assert!(one["code"]["tests"].is_null());
        hash = one["code_hash"].as_str().unwrap().to_owned();
    }
    let (_, one) = get_as(
        server,
        &dev,
        &format!("/executions/{}", tested["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(one["code"]["source"], module.as_str(), "{one}");
    assert_eq!(one["code"]["tests"], tests, "{one}");
    assert_eq!(one["code"]["bytes"], module.len() + tests.len());
    let (_, one) = get_as(
        server,
        &dev,
        &format!("/executions/{}", generated["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(one["code"]["source"], template.as_str(), "{one}");
    hash
}

/// With `SANDGRAPH_STORE_SOURCE=false` the record keeps the hash only and says so.
pub async fn source_off_contract(server: &TestServer) {
    let code = format!("print('off-{}')\n", uuid_like());
    let run = server.execute(json!({"code": code})).await;
    server.wait_shipped(Duration::from_secs(60)).await;
    let (status, one) = get_as(
        server,
        &server.http,
        &format!("/executions/{}", run["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["source_kept"], false, "{one}");
    assert!(one["code"].is_null(), "{one}");
    assert_eq!(one["code_hash"], run["code_hash"]);
}

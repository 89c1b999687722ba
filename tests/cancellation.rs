//! Cancellation frees the sandbox slot: a REST client that disconnects mid-run and an
//! MCP `notifications/cancelled` both stop the guest well before its timeout; `/health`
//! shows no active run, and the run is recorded with `exit_reason: cancelled`.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use common::contract::{caller_id, get_as, uuid_like};
use serde_json::{Value, json};

/// Wait until `/health` reports `want` active runs; how long it took.
async fn until_active_runs(server: &TestServer, want: u64, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let health = server.get_json("/health").await;
        if health["sandbox"]["active_runs"] == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "active_runs never reached {want}: {health}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The newest record of `caller`, once one exists.
async fn newest_record(server: &TestServer, caller: &str) -> Value {
    for _ in 0..100 {
        let (_, page) = get_as(
            server,
            &server.http,
            &format!("/execution_history?caller={caller}"),
        )
        .await;
        if let Some(first) = page["items"].get(0) {
            return first.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no record for {caller}");
}

#[tokio::test]
async fn a_rest_client_that_disconnects_frees_the_slot_and_the_run_is_recorded_cancelled() {
    let server = TestServer::spawn();
    let name = format!("leaver-{}", uuid_like());
    let token = server.create_token("agent", &name);
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(800))
        .build()
        .unwrap();
    let call = impatient
        .post(server.url("/execute_code"))
        .bearer_auth(&token)
        .json(&json!({"code": "while True: pass", "timeout_seconds": 30, "cache": false}))
        .send();
    let spinning = async {
        until_active_runs(&server, 1, Duration::from_secs(10)).await;
    };
    let (sent, ()) = tokio::join!(call, spinning);
    assert!(sent.is_err(), "the client gave up after 800 ms");
    // Well before the 30 s timeout: the slot is free once the guest sees the cancel.
    until_active_runs(&server, 0, Duration::from_secs(5)).await;
    let record = newest_record(&server, &caller_id(&server, &name)).await;
    assert_eq!(record["outcome"], "cancelled", "{record}");
    assert_eq!(record["return_code"], 130, "{record}");
    server.assert_alive().await;
}

#[tokio::test]
async fn an_mcp_cancelled_notification_stops_the_run() {
    let server = TestServer::spawn();
    let http = &server.http;
    let mcp = server.url("/mcp");
    let accept = "application/json, text/event-stream";
    let init = http
        .post(&mcp)
        .header("accept", accept)
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "cancel-test", "version": "0"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(init.status().as_u16(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = init.text().await;
    let post = |body: Value| {
        http.post(&mcp)
            .header("accept", accept)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&body)
            .send()
    };
    post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await
        .unwrap();
    let started = Instant::now();
    let call = post(
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "execute_code",
        "arguments": {"code": "while True: pass", "timeout_seconds": 30, "cache": false}}}),
    );
    let cancel = async {
        until_active_runs(&server, 1, Duration::from_secs(10)).await;
        post(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                    "params": {"requestId": 7, "reason": "user pressed stop"}}),
        )
        .await
        .unwrap();
        until_active_runs(&server, 0, Duration::from_secs(5)).await
    };
    let _ = tokio::join!(
        async { tokio::time::timeout(Duration::from_secs(10), call).await },
        cancel
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "not stopped by its 30 s timeout"
    );
    // The slot is free before the record is committed: wait for it.
    let mut page = Value::Null;
    for _ in 0..100 {
        page = get_as(&server, http, "/execution_history?tool=execute_code")
            .await
            .1;
        if page["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let outcomes: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["cancelled"], "{page}");
    server.assert_alive().await;
}

//! History and audit on the embedded store (no Neo4j): the same contract as on Neo4j.

mod common;

use common::TestServer;
use common::contract::history_contract;
use serde_json::json;

/// A history read: it returns once every call acknowledged before it is in the history
/// tables (they wait in the store's journal until then), so raw table counts after it
/// are complete.
async fn settle(server: &TestServer) {
    let (status, body) = common::contract::get_as(
        server,
        &common::client_with_token(&server.admin_token),
        "/execution_history?limit=1",
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn history_filters_paginate_and_audit_is_admin_only_on_the_embedded_store() {
    let server = TestServer::spawn();
    history_contract(&server).await;
}

#[tokio::test]
async fn the_record_keeps_the_source_once_per_hash_on_the_embedded_store() {
    let server = TestServer::spawn();
    let hash = common::contract::source_contract(&server).await;
    settle(&server).await;
    let db = rusqlite::Connection::open(server.data_dir().join("sandgraph.db")).unwrap();
    let copies: i64 = db
        .query_row("SELECT COUNT(*) FROM code WHERE hash = ?1", [&hash], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(copies, 1);
}

#[tokio::test]
async fn with_source_storage_off_the_embedded_record_keeps_no_source() {
    let server = TestServer::spawn_with(&[("SANDGRAPH_STORE_SOURCE", "false")]);
    common::contract::source_off_contract(&server).await;
    settle(&server).await;
    let db = rusqlite::Connection::open(server.data_dir().join("sandgraph.db")).unwrap();
    let stored: i64 = db
        .query_row("SELECT COUNT(*) FROM code", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn calls_acknowledged_just_before_a_sigkill_are_in_the_history_after_a_restart() {
    let server = TestServer::spawn_with(&[("SANDGRAPH_RATE_LIMIT", "100000/second")]);
    let mut calls = Vec::new();
    for i in 0..40 {
        let (http, url) = (server.http.clone(), server.url("/execute_code"));
        calls.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .json(&json!({"code": format!("print({i})")}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let body: serde_json::Value = response.json().await.unwrap();
            body["id"].as_str().unwrap().to_owned()
        }));
    }
    let mut acknowledged = Vec::new();
    for call in calls {
        acknowledged.push(call.await.unwrap());
    }
    // No history read, no shutdown: the newest calls may still be in the journal.
    let data_dir = server.kill_keep_data();
    let restarted = TestServer::spawn_in(data_dir, &[], false);
    let admin = common::client_with_token(&restarted.admin_token);
    for id in &acknowledged {
        let (status, record) =
            common::contract::get_as(&restarted, &admin, &format!("/executions/{id}")).await;
        assert_eq!(status, 200, "acknowledged {id} lost: {record}");
        assert!(
            record["code"]["source"]
                .as_str()
                .unwrap()
                .starts_with("print(")
        );
    }
    // In the history table itself (the reads above waited for the journal to move).
    let db = rusqlite::Connection::open(restarted.data_dir().join("sandgraph.db")).unwrap();
    for id in &acknowledged {
        let rows: i64 = db
            .query_row("SELECT COUNT(*) FROM executions WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(rows, 1, "{id}");
    }
}

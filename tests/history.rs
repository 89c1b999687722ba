//! History and audit on the embedded store (no Neo4j): the same contract as on Neo4j.

mod common;

use common::TestServer;
use common::contract::history_contract;

#[tokio::test]
async fn history_filters_paginate_and_audit_is_admin_only_on_the_embedded_store() {
    let server = TestServer::spawn();
    history_contract(&server).await;
}

#[tokio::test]
async fn the_record_keeps_the_source_once_per_hash_on_the_embedded_store() {
    let server = TestServer::spawn();
    let hash = common::contract::source_contract(&server).await;
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
    let db = rusqlite::Connection::open(server.data_dir().join("sandgraph.db")).unwrap();
    let stored: i64 = db
        .query_row("SELECT COUNT(*) FROM code", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 0);
}

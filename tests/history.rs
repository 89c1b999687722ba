//! History and audit on the embedded store (no Neo4j): the same contract as on Neo4j.

mod common;

use common::TestServer;
use common::contract::history_contract;

#[tokio::test]
async fn history_filters_paginate_and_audit_is_admin_only_on_the_embedded_store() {
    let server = TestServer::spawn();
    history_contract(&server).await;
}

//! The Neo4j backend against a real Neo4j (started by `make test`): every call is
//! remembered exactly once and linked, history and audit queries, and a graph_query that
//! is read-only for real.

mod common;

use std::time::Duration;

use common::contract::{caller_id, history_contract, post_as, uuid_like};
use common::{
    TestServer, client_with_token, neo4j_client, neo4j_count, neo4j_uri, recorded_in_neo4j,
};
use serde_json::json;

fn neo4j_server() -> TestServer {
    TestServer::spawn_with(&[
        ("NEO4J_URI", &neo4j_uri()),
        ("SANDGRAPH_RATE_LIMIT", "100000/second"),
    ])
}

#[tokio::test]
async fn each_tool_call_is_one_audit_event_and_one_linked_record() {
    let server = neo4j_server();
    let name = format!("linked-{}", uuid_like());
    let dev = client_with_token(&server.create_token("developer", &name));
    let caller = caller_id(&server, &name);
    let calls = [
        ("/execute_code", json!({"code": format!("print('{name}')")})),
        ("/lint_code", json!({"code": format!("x = '{name}'\n")})),
        (
            "/run_tests",
            json!({"code": format!("def test_x():\n    assert '{name}'\n")}),
        ),
        (
            "/generate_code",
            json!({"template": format!("{name} {{{{ a }}}}"), "context": {"a": 1}}),
        ),
        (
            "/graph_upsert",
            json!({"nodes": [{"key": format!("k{}", name.replace('-', "_")), "labels": ["Test"]}]}),
        ),
    ];
    let mut hashes = Vec::new();
    for (path, body) in calls {
        let (status, response) = post_as(&server, &dev, path, body).await;
        assert_eq!(status, 200, "{path}: {response}");
        if let Some(hash) = response["code_hash"].as_str() {
            hashes.push(hash.to_owned());
        }
    }
    server.wait_shipped(Duration::from_secs(60)).await;
    let graph = neo4j_client();
    let p = [("caller", caller.as_str())];
    assert_eq!(
        neo4j_count(
            &graph,
            "MATCH (:User {id: $caller})-[:RAN]->(e:Execution) RETURN count(e) AS n",
            &p
        )
        .await,
        5
    );
    assert_eq!(
        neo4j_count(
            &graph,
            "MATCH (:User {id: $caller})-[:RAN]->(:Execution)-[:OF]->(c:Code) RETURN count(c) AS n",
            &p
        )
        .await,
        4,
        "every record with code links to its Code node"
    );
    assert_eq!(
        neo4j_count(
            &graph,
            "MATCH (a:AuditEvent)-[:BY]->(:User {id: $caller}) RETURN count(a) AS n",
            &p
        )
        .await,
        5
    );
    assert_eq!(
        neo4j_count(
            &graph,
            "MATCH (e:Execution {caller_id: $caller}) RETURN count(e) AS n",
            &p
        )
        .await,
        5
    );
    for hash in hashes {
        assert_eq!(
            neo4j_count(
                &graph,
                "MATCH (c:Code {hash: $h}) RETURN count(c) AS n",
                &[("h", &hash)]
            )
            .await,
            1,
            "Code nodes are unique per hash"
        );
    }
}

#[tokio::test]
async fn counts_match_after_a_thousand_mixed_calls() {
    let server = neo4j_server();
    let name = format!("thousand-{}", uuid_like());
    let agent = client_with_token(&server.create_token("agent", &name));
    let caller = caller_id(&server, &name);
    let mut calls = Vec::new();
    for i in 0..1000 {
        let (path, body) = match i % 4 {
            0 => (
                "/execute_code",
                json!({"code": format!("print({})", i % 50)}),
            ),
            1 => ("/lint_code", json!({"code": format!("x = {}\n", i % 50)})),
            2 => (
                "/generate_code",
                json!({"template": "{{ n }}", "context": {"n": i}}),
            ),
            _ => (
                "/execute_code",
                json!({"code": "console.log(1)", "language": "javascript"}),
            ),
        };
        calls.push((path, body));
    }
    let mut ok = 0;
    for chunk in calls.chunks(25) {
        let results = futures::future::join_all(
            chunk
                .iter()
                .map(|(path, body)| post_as(&server, &agent, path, body.clone())),
        )
        .await;
        ok += results.iter().filter(|(status, _)| *status == 200).count();
    }
    assert_eq!(ok, 1000);
    server.wait_shipped(Duration::from_secs(120)).await;
    let graph = neo4j_client();
    assert_eq!(
        recorded_in_neo4j(&graph, &caller).await,
        (1000, 1000),
        "executions and audit events in Neo4j"
    );
    let p = [("caller", caller.as_str())];
    assert_eq!(
        neo4j_count(
            &graph,
            "MATCH (:User {id: $caller})-[r:RAN]->() RETURN count(r) AS n",
            &p
        )
        .await,
        1000
    );
}

#[tokio::test]
async fn graph_query_refuses_every_write_and_writes_nothing() {
    let server = neo4j_server();
    let graph = neo4j_client();
    let before = neo4j_count(&graph, "MATCH (n:Evil) RETURN count(n) AS n", &[]).await;
    let attempts = [
        "CREATE (n:Evil) RETURN n",
        "MERGE (n:Evil {k: 1}) RETURN n",
        "MATCH (n:GraphNode) SET n.evil = true RETURN n",
        "MATCH (n:GraphNode) DETACH DELETE n",
        "CALL { CREATE (:Evil) } IN TRANSACTIONS",
        "LOAD CSV FROM 'file:///etc/passwd' AS line CREATE (:Evil {line: line})",
        "ＣＲＥＡＴＥ (n:Evil) RETURN n",
        "MATCH (n) WITH n LIMIT 1 CALL { CREATE (:Evil) RETURN 1 AS x } RETURN x",
        "CALL apoc.load.json('file:///etc/passwd') YIELD value RETURN value",
    ];
    for cypher in attempts {
        let (status, body) = server.post("/graph_query", json!({"cypher": cypher})).await;
        assert_eq!(status, 422, "{cypher}: {body}");
        assert_eq!(body["field"], "cypher", "{cypher}: {body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("graph_query is read-only")
                || detail.starts_with("graph_query refuses")
                || detail.starts_with("Neo4j refused the query"),
            "{cypher}: {detail}"
        );
    }
    assert_eq!(
        neo4j_count(&graph, "MATCH (n:Evil) RETURN count(n) AS n", &[]).await,
        before
    );
    // Reads work, with the old platform's serialisation.
    let key = format!("q{}", uuid_like());
    let (status, _) = server
        .post("/graph_upsert", json!({"nodes": [{"key": key, "labels": ["Doc"], "properties": {"title": "t"}}, {"key": format!("{key}b")}],
            "relationships": [{"start": key, "end": format!("{key}b"), "type": "CITES", "properties": {"w": 2}}]}))
        .await;
    assert_eq!(status, 200);
    let (status, body) = server
        .post("/graph_query", json!({"cypher": "MATCH (a:GraphNode {key: $k})-[r]->(b) RETURN a, r, b.key AS other", "parameters": {"k": key}}))
        .await;
    assert_eq!(status, 200, "{body}");
    let row = &body["results"][0];
    let mut labels: Vec<&str> = row["a"]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    labels.sort_unstable();
    assert_eq!(labels, ["Doc", "GraphNode"], "{row}");
    assert_eq!(row["a"]["properties"]["title"], "t");
    assert_eq!(row["r"]["type"], "CITES");
    assert_eq!(row["r"]["properties"]["w"], 2);
    assert_eq!(row["r"]["start"], row["a"]["id"]);
    assert_eq!(row["other"], format!("{key}b"));
    // A relationship to an unknown key is an error naming it, and writes nothing.
    let (status, body) = server
        .post(
            "/graph_upsert",
            json!({"relationships": [{"start": key, "end": "nowhere_1", "type": "CITES"}]}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["detail"],
        "relationships refer to keys that do not exist: nowhere_1"
    );
}

/// A read that would run for minutes is ended by Neo4j's transaction timeout (make test
/// starts Neo4j with `db.transaction.timeout=5s`; scripts/neo4j/neo4j.sh and
/// docker-compose.yml default to 10 s), answered as a clear error, and the server and
/// Neo4j keep serving.
#[tokio::test]
async fn a_runaway_graph_query_is_stopped_by_the_transaction_timeout() {
    let server = neo4j_server();
    let (status, body) = server
        .post(
            "/graph_query",
            json!({"cypher": "UNWIND range(1, 4000000000) AS x WITH x WHERE x = -1 RETURN count(x) AS n"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    // Neo4j's own timeout (5 s, checked every 500 ms) ended it, not sandgraph's 10 s wait.
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("Neo4j refused the query") && detail.contains("TransactionTimedOut"),
        "{detail}"
    );
    let (status, body) = server
        .post("/graph_query", json!({"cypher": "RETURN 1 AS one"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["one"], 1);
}

#[tokio::test]
async fn history_filters_paginate_and_audit_is_admin_only() {
    let server = neo4j_server();
    history_contract(&server).await;
}

#[tokio::test]
async fn the_record_keeps_the_source_once_per_hash_in_neo4j() {
    let server = neo4j_server();
    let hash = common::contract::source_contract(&server).await;
    let graph = neo4j_client();
    let p = [("hash", hash.as_str())];
    assert_eq!(
        neo4j_count(
            &graph,
            "MATCH (c:Code {hash: $hash}) WHERE c.source IS NOT NULL RETURN count(c) AS n",
            &p
        )
        .await,
        1
    );
    assert_eq!(
        neo4j_count(
            &graph,
            "MATCH (:Execution)-[:OF]->(c:Code {hash: $hash}) RETURN count(*) AS n",
            &p
        )
        .await,
        2,
        "both runs link to the one Code node"
    );
}

#[tokio::test]
async fn with_source_storage_off_neo4j_keeps_no_source() {
    let server = TestServer::spawn_with(&[
        ("NEO4J_URI", &neo4j_uri()),
        ("SANDGRAPH_STORE_SOURCE", "false"),
    ]);
    common::contract::source_off_contract(&server).await;
}

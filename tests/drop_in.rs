//! Drop-in where the replaced platform's clients probe: `/health` keeps its fields with
//! their old meaning (`service: "ok"`, `neo4j`: reachable right now), and its prompt
//! catalogue is served under its own slugs. (`tests/neo4j_outage.rs` checks `neo4j`
//! turning false when the running Neo4j is stopped, and true again when it is back.)

mod common;

use common::contract::get_as;
use common::{TestServer, client_with_token, neo4j_uri};
use serde_json::Value;

const OLD_SLUGS: [&str; 7] = [
    "proceed",
    "evaluate",
    "real-a",
    "test-a",
    "improve",
    "clean",
    "synthesize",
];

async fn health(server: &TestServer) -> Value {
    let response = reqwest::get(server.url("/health")).await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn old_and_new_fields(health: &Value, neo4j: bool, status: &str) {
    assert_eq!(health["service"], "ok", "{health}");
    assert_eq!(health["neo4j"], neo4j, "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["name"], "sandgraph", "{health}");
    assert_eq!(health["neo4j_status"], status, "{health}");
    assert!(health["timestamp"].is_string() && health["version"].is_string());
}

#[tokio::test]
async fn health_says_neo4j_false_on_the_embedded_store() {
    let server = TestServer::spawn();
    old_and_new_fields(&health(&server).await, false, "not configured");
}

#[tokio::test]
async fn health_says_neo4j_true_when_neo4j_answers() {
    let server = TestServer::spawn_with(&[("NEO4J_URI", &neo4j_uri())]);
    // A ping slower than 2 s counts as unreachable, and a loaded machine can make the
    // first one (a new Bolt connection) that slow: wait for Neo4j to answer in time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut answer = health(&server).await;
    while answer["neo4j"] != true && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        answer = health(&server).await;
    }
    old_and_new_fields(&answer, true, "reachable");
}

#[tokio::test]
async fn health_says_neo4j_false_when_neo4j_is_configured_but_down() {
    // Nothing listens on port 1: configured, and down.
    let server = TestServer::spawn_with(&[("NEO4J_URI", "bolt://127.0.0.1:1")]);
    old_and_new_fields(&health(&server).await, false, "unreachable");
    server.assert_alive().await;
}

/// A Neo4j that accepts connections and never answers (hung, or a black-holed network):
/// only the first probe waits for the ping (up to its 2 s timeout); later probes answer
/// at once from the last answer while a refresh runs behind them. A liveness probe that
/// waited on Neo4j would get a healthy sandgraph restarted.
#[tokio::test]
async fn health_does_not_wait_on_a_neo4j_that_never_answers() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("bolt://{}", silent.local_addr().unwrap());
    // Accept and hold every connection without a byte of answer.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming() {
            held.push(stream);
        }
    });
    let server = TestServer::spawn_with(&[("NEO4J_URI", &uri)]);
    old_and_new_fields(&health(&server).await, false, "unreachable");
    // Well under the ping timeout: each of these probes would take 2 s if it waited.
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(1500))
        .build()
        .unwrap();
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let answer: Value = impatient
            .get(server.url("/health"))
            .send()
            .await
            .expect("/health answered within 1.5 s")
            .json()
            .await
            .unwrap();
        old_and_new_fields(&answer, false, "unreachable");
    }
    server.assert_alive().await;
}

#[tokio::test]
async fn the_old_prompt_slugs_are_served_and_listed() {
    let server = TestServer::spawn();
    let agent = client_with_token(&server.create_token("agent", "old-client"));
    let (status, listed) = get_as(&server, &agent, "/prompts").await;
    assert_eq!(status, 200, "{listed}");
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap())
        .collect();
    for slug in OLD_SLUGS {
        assert!(listed.contains(&slug), "{slug} not in {listed:?}");
        let (status, prompt) = get_as(&server, &agent, &format!("/prompts/{slug}")).await;
        assert_eq!(status, 200, "{slug}: {prompt}");
        assert_eq!(prompt["slug"], slug);
        assert!(!prompt["title"].as_str().unwrap().is_empty(), "{prompt}");
        let content = prompt["content"].as_str().unwrap();
        assert!(
            content.starts_with("# ") && content.len() > 200,
            "{slug}: {content}"
        );
    }
    let (status, missing) = get_as(&server, &agent, "/prompts/no-such-prompt").await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(
        missing["detail"],
        "no prompt named \"no-such-prompt\"; GET /prompts lists them"
    );
}

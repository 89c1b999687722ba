//! `graph_schema` describes what `graph_upsert` wrote (labels with their property keys,
//! relationship types with the labels they join and their keys, the knowledge graph's
//! constraint and indexes) and nothing of the record, against a real Neo4j (`make test`);
//! on the embedded store it answers, like every graph tool, that it needs Neo4j.

mod common;

use std::time::Duration;

use common::contract::{get_as, post_as, uuid_like};
use common::{TestServer, client_with_token, neo4j_uri};
use sandgraph::cypher_guard::{RECORD_LABELS, RECORD_RELATIONSHIP_TYPES};
use serde_json::{Value, json};

// Names of this test's own (other tests do not write them, and every run writes the same
// property keys, so the shared Neo4j's schema for them is exactly this test's).
const PERSON: &str = "SchemaTestPerson";
const COMPANY: &str = "SchemaTestCompany";
const WORKS_AT: &str = "SCHEMA_TEST_WORKS_AT";
const FOUNDED: &str = "SCHEMA_TEST_FOUNDED";

fn find<'a>(list: &'a Value, field: &str, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|items| items.iter().find(|item| item[field] == name))
        .unwrap_or_else(|| panic!("{name} missing from {list}"))
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn graph_schema_matches_what_graph_upsert_wrote_and_hides_the_record() {
    let server = TestServer::spawn_with(&[("NEO4J_URI", &neo4j_uri())]);
    let developer = client_with_token(&server.create_token("developer", "schema-writer"));
    let agent = client_with_token(&server.create_token("agent", "schema-reader"));
    // The record is in the same database: a run, shipped to Neo4j before the schema is read.
    server.python("print('record me')").await;
    let run = uuid_like();
    let key = |name: &str| format!("{name}_{run}");
    let (status, body) = post_as(
        &server,
        &developer,
        "/graph_upsert",
        json!({
            "nodes": [
                {"key": key("ada"), "labels": [PERSON], "properties": {"name": "Ada", "born": 1815}},
                {"key": key("alan"), "labels": [PERSON], "properties": {"name": "Alan", "email": "a@b"}},
                {"key": key("acme"), "labels": [COMPANY], "properties": {"name": "Acme", "city": "X"}},
            ],
            "relationships": [
                {"start": key("ada"), "end": key("acme"), "type": WORKS_AT, "properties": {"since": 1840}},
                {"start": key("alan"), "end": key("acme"), "type": WORKS_AT, "properties": {"role": "r"}},
                {"start": key("alan"), "end": key("acme"), "type": FOUNDED},
            ],
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    server.wait_shipped(Duration::from_secs(30)).await;

    let (status, schema) = get_as(&server, &agent, "/graph_schema").await;
    assert_eq!(status, 200, "{schema}");
    let labels = &schema["labels"];
    assert_eq!(
        find(labels, "label", PERSON)["property_keys"],
        json!(["born", "email", "key", "name"])
    );
    assert_eq!(
        find(labels, "label", COMPANY)["property_keys"],
        json!(["city", "key", "name"])
    );
    // Every node graph_upsert writes carries GraphNode and its key.
    let graph_node = find(labels, "label", "GraphNode");
    assert!(
        graph_node["property_keys"]
            .as_array()
            .unwrap()
            .contains(&json!("key")),
        "{graph_node}"
    );
    let types = &schema["relationship_types"];
    assert_eq!(
        find(types, "type", WORKS_AT),
        &json!({"type": WORKS_AT, "start_labels": [PERSON], "end_labels": [COMPANY],
                "property_keys": ["role", "since"]})
    );
    assert_eq!(
        find(types, "type", FOUNDED),
        &json!({"type": FOUNDED, "start_labels": [PERSON], "end_labels": [COMPANY],
                "property_keys": []})
    );
    let constraint = find(&schema["constraints"], "name", "graph_node_key");
    assert_eq!(
        (
            &constraint["entity_type"],
            &constraint["labels_or_types"],
            &constraint["properties"]
        ),
        (&json!("NODE"), &json!(["GraphNode"]), &json!(["key"]))
    );
    let index = find(&schema["indexes"], "name", "graph_node_key");
    assert_eq!(index["owning_constraint"], "graph_node_key", "{index}");
    assert!(schema["node_count"].as_u64().unwrap() >= 3, "{schema}");

    // Nothing of the record: not its labels or types, nor a constraint or index on them
    // (cypher/schema.cypher creates a dozen), though the record is in this database.
    let label_names = names(labels, "label");
    let type_names = names(types, "type");
    for record in RECORD_LABELS {
        assert!(!label_names.iter().any(|l| l == record), "{record} listed");
    }
    for record in RECORD_RELATIONSHIP_TYPES {
        assert!(!type_names.iter().any(|t| t == record), "{record} listed");
    }
    for rule in schema["constraints"]
        .as_array()
        .unwrap()
        .iter()
        .chain(schema["indexes"].as_array().unwrap())
    {
        for name in rule["labels_or_types"].as_array().unwrap() {
            let name = name.as_str().unwrap();
            assert!(
                !RECORD_LABELS.contains(&name) && !RECORD_RELATIONSHIP_TYPES.contains(&name),
                "a rule on the record is described: {rule}"
            );
        }
    }
    for hidden in ["execution_id", "audit_ts", "code_hash", "user_id"] {
        assert!(!schema.to_string().contains(hidden), "{hidden} in {schema}");
    }

    // Like every tool, it takes no argument it does not know.
    let (status, listed) = get_as(&server, &agent, "/graph_schema?no_such_argument=1").await;
    assert_eq!(status, 422, "{listed}");
}

#[tokio::test]
async fn graph_schema_on_the_embedded_store_says_it_needs_neo4j_like_graph_upsert() {
    let server = TestServer::spawn();
    let developer = client_with_token(&server.create_token("developer", "embedded-schema"));
    let (status, schema) = get_as(&server, &developer, "/graph_schema").await;
    let (upsert_status, upsert) = post_as(
        &server,
        &developer,
        "/graph_upsert",
        json!({"nodes": [{"key": "k", "labels": [PERSON]}]}),
    )
    .await;
    assert_eq!((status, upsert_status), (422, 422), "{schema} {upsert}");
    assert_eq!(
        schema["detail"],
        "graph tools need Neo4j: start the server with NEO4J_URI (see docker-compose.yml)"
    );
    assert_eq!(schema["detail"], upsert["detail"]);
    server.assert_alive().await;
}

//! The record (executions, audit events, callers, code) is out of reach of the graph
//! tools below admin, and DBMS state is out of reach of everyone, against a real Neo4j
//! (started by `make test`). Table-driven: each query with what each role gets.

mod common;

use std::time::Duration;

use common::contract::{caller_id, get_as, post_as, uuid_like};
use common::{TestServer, client_with_token, neo4j_client, neo4j_count, neo4j_uri};
use serde_json::{Value, json};

/// What a role gets for a query.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// 200 with rows.
    Rows,
    /// 403: the guard refused it (record or DBMS state).
    Refused,
    /// 422: not a query graph_query runs at all.
    Invalid,
}

use Expect::{Invalid, Refused, Rows};

struct Case {
    cypher: &'static str,
    /// For agent, developer, admin.
    expect: [Expect; 3],
}

const fn case(cypher: &'static str, agent: Expect, developer: Expect, admin: Expect) -> Case {
    Case {
        cypher,
        expect: [agent, developer, admin],
    }
}

/// Queries that read the record or DBMS state, in every shape the issue lists.
const RECORD_READS: &[Case] = &[
    // The record's labels, directly.
    case("MATCH (a:AuditEvent) RETURN a", Refused, Refused, Rows),
    case(
        "MATCH (e:Execution) RETURN e.stdout",
        Refused,
        Refused,
        Rows,
    ),
    case("MATCH (u:User) RETURN u", Refused, Refused, Rows),
    case("MATCH (c:Code) RETURN c.hash", Refused, Refused, Rows),
    case(
        "MATCH (e:Execution {id: $id}) RETURN e",
        Refused,
        Refused,
        Rows,
    ),
    case(
        "MATCH (e:Execution) WHERE e.ts > 0 RETURN e.caller_id",
        Refused,
        Refused,
        Rows,
    ),
    case(
        "MATCH (n:GraphNode|AuditEvent) RETURN n",
        Refused,
        Refused,
        Rows,
    ),
    case(
        "MATCH (n:Person) WHERE n:Execution RETURN n",
        Refused,
        Refused,
        Rows,
    ),
    // Through every node or relationship.
    case(
        "MATCH (n) RETURN labels(n), count(*)",
        Refused,
        Refused,
        Rows,
    ),
    case("MATCH (n) RETURN n", Refused, Refused, Rows),
    case("MATCH (n) RETURN count(n) AS n", Refused, Refused, Rows),
    case("MATCH (n:!GraphNode) RETURN n", Refused, Refused, Rows),
    case(
        "MATCH ()-[r]->() RETURN type(r), count(*)",
        Refused,
        Refused,
        Rows,
    ),
    case(
        "MATCH ()-[r:RAN]->() RETURN count(r) AS n",
        Refused,
        Refused,
        Rows,
    ),
    case(
        "MATCH (u)-[:RAN]->(e) RETURN e.stdout",
        Refused,
        Refused,
        Rows,
    ),
    case(
        "MATCH (n) WHERE elementId(n) = $eid RETURN n",
        Refused,
        Refused,
        Rows,
    ),
    case("MATCH (n:$($label)) RETURN n", Refused, Refused, Refused),
    // Through label functions over everything.
    case(
        "MATCH (n) WHERE 'AuditEvent' IN labels(n) RETURN n.detail",
        Refused,
        Refused,
        Rows,
    ),
    // Through UNION, subqueries and CALL {}.
    case(
        "MATCH (g:GraphNode) RETURN g.key AS x UNION MATCH (e:Execution) RETURN e.stdout AS x",
        Refused,
        Refused,
        Rows,
    ),
    case(
        "MATCH (g:GraphNode) CALL { MATCH (a:AuditEvent) RETURN a.caller_id AS who } RETURN g.key, who",
        Refused,
        Refused,
        Rows,
    ),
    case(
        "MATCH (g:GraphNode) RETURN g.key, COUNT { MATCH (e:Execution) } AS c",
        Refused,
        Refused,
        Rows,
    ),
    case(
        "MATCH (g:GraphNode) WHERE EXISTS { MATCH (a:AuditEvent) } RETURN g.key",
        Refused,
        Refused,
        Rows,
    ),
    case(
        "RETURN COLLECT { MATCH (e:Execution) RETURN e.stdout } AS x",
        Refused,
        Refused,
        Rows,
    ),
    case(
        "RETURN [(e:Execution)-->(x) | e.stdout] AS x",
        Refused,
        Refused,
        Rows,
    ),
    // Through db.* procedures and SHOW commands: DBMS state is nobody's.
    case("CALL db.labels()", Refused, Refused, Rows),
    case("CALL db.propertyKeys()", Refused, Refused, Rows),
    case("CALL db.schema.visualization()", Refused, Refused, Refused),
    case(
        "CALL db.stats.retrieve('GRAPH COUNTS')",
        Refused,
        Refused,
        Refused,
    ),
    case("CALL db.info()", Refused, Refused, Refused),
    case("CALL dbms.components()", Refused, Refused, Refused),
    case("SHOW TRANSACTIONS", Refused, Refused, Refused),
    case("SHOW SETTINGS", Refused, Refused, Refused),
    case("SHOW PROCEDURES", Refused, Refused, Refused),
    case("SHOW INDEXES", Refused, Refused, Refused),
    case("SHOW DATABASES", Refused, Refused, Refused),
    case("SHOW USERS", Refused, Refused, Refused),
    case(
        "TERMINATE TRANSACTIONS 'neo4j-transaction-1'",
        Refused,
        Refused,
        Refused,
    ),
    // Not a read at all.
    case(
        "MATCH (e:Execution) DETACH DELETE e",
        Invalid,
        Invalid,
        Invalid,
    ),
    case(
        "LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l",
        Invalid,
        Invalid,
        Invalid,
    ),
];

/// Knowledge-graph queries every role runs: paths, aggregations, parameters,
/// OPTIONAL MATCH, subqueries. Each returns at least one row.
const GRAPH_READS: &[&str] = &[
    "MATCH (p:Person {key: $alice}) RETURN p",
    "MATCH (p:Person) WHERE p.key IN [$alice, $bob] RETURN p.key ORDER BY p.key",
    "MATCH (a:Person {key: $alice})-[r:KNOWS]->(b) RETURN a, r, b",
    "MATCH path = (a:Person {key: $alice})-[*1..3]->(c) RETURN path",
    "MATCH p = shortestPath((a:Person {key: $alice})-[*]-(c:City {key: $city})) RETURN length(p) AS hops",
    "MATCH (p:Person)-[:KNOWS]->(q) RETURN p.key AS who, count(q) AS friends",
    "MATCH (n:GraphNode) RETURN count(n) AS n",
    "MATCH (n:Person) RETURN labels(n) AS labels, keys(n) AS keys LIMIT 5",
    "OPTIONAL MATCH (p:Person {key: $alice})-[:OWNS]->(x) RETURN p.key, x",
    "MATCH (p:Person {key: $alice}) CALL (p) { MATCH (p)-->(m) RETURN m } RETURN m.key",
    "MATCH (p:Person {key: $alice}) RETURN COUNT { (p)-->() } AS out",
    "MATCH (p:Person {key: $alice}) RETURN [(p)-[:KNOWS]->(q) | q.key] AS friends",
    "MATCH (a:Person) RETURN a.key AS k UNION MATCH (c:City) RETURN c.key AS k",
    "MATCH (:GraphNode)-[r]->() RETURN count(r) AS n",
    "UNWIND [1, 2, 3] AS x RETURN sum(x) AS total",
    "RETURN 1 AS one",
];

struct World {
    server: TestServer,
    clients: [(String, reqwest::Client); 3],
    params: Value,
}

async fn world() -> World {
    let server = TestServer::spawn_with(&[
        ("NEO4J_URI", &neo4j_uri()),
        ("SANDGRAPH_RATE_LIMIT", "100000/second"),
    ]);
    let suffix = uuid_like();
    let clients = ["agent", "developer", "admin"].map(|role| {
        let name = format!("scope-{role}-{suffix}");
        (
            name.clone(),
            client_with_token(&server.create_token(role, &name)),
        )
    });
    // Some record: a run by each caller, shipped to Neo4j.
    for (_, client) in &clients {
        let (status, _) = post_as(
            &server,
            client,
            "/execute_code",
            json!({"code": "print('secret output')"}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let key = |name: &str| format!("{name}_{suffix}");
    let (status, body) = post_as(
        &server,
        &clients[1].1,
        "/graph_upsert",
        json!({
            "nodes": [
                {"key": key("alice"), "labels": ["Person"], "properties": {"name": "Alice"}},
                {"key": key("bob"), "labels": ["Person"], "properties": {"name": "Bob"}},
                {"key": key("paris"), "labels": ["City"]},
            ],
            "relationships": [
                {"start": key("alice"), "end": key("bob"), "type": "KNOWS"},
                {"start": key("bob"), "end": key("paris"), "type": "LIVES_IN"},
            ],
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    server.wait_shipped(Duration::from_secs(60)).await;
    let graph = neo4j_client();
    assert!(neo4j_count(&graph, "MATCH (a:AuditEvent) RETURN count(a) AS n", &[]).await > 0);
    let mut rows = graph
        .execute(neo4rs::query(
            "MATCH (e:Execution) RETURN e.id AS id, elementId(e) AS eid LIMIT 1",
        ))
        .await
        .unwrap();
    let row = rows.next().await.unwrap().unwrap();
    let params = json!({
        "alice": key("alice"), "bob": key("bob"), "city": key("paris"),
        "id": row.get::<String>("id").unwrap(), "eid": row.get::<String>("eid").unwrap(),
        "label": "Execution",
    });
    World {
        server,
        clients,
        params,
    }
}

/// Every row of `body` as text, to check no record data came back.
fn text(body: &Value) -> String {
    body.to_string()
}

#[tokio::test]
async fn graph_query_keeps_the_record_and_dbms_state_behind_their_roles() {
    let w = world().await;
    let mut failures = Vec::new();
    for case in RECORD_READS {
        for (role, ((_, client), expect)) in ["agent", "developer", "admin"]
            .iter()
            .zip(w.clients.iter().zip(case.expect))
        {
            let (status, body) = post_as(
                &w.server,
                client,
                "/graph_query",
                json!({"cypher": case.cypher, "parameters": w.params}),
            )
            .await;
            let ok = match expect {
                Rows => status == 200,
                Refused => {
                    status == 403
                        && body["detail"]
                            .as_str()
                            .is_some_and(|d| d.starts_with("graph_query"))
                }
                Invalid => status == 422,
            };
            if !ok {
                failures.push(format!(
                    "{role} {expect:?} {:?}: {status} {body}",
                    case.cypher
                ));
            }
            if expect != Rows && text(&body).contains("secret output") {
                failures.push(format!("{role} saw record data for {:?}", case.cypher));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    w.server.assert_alive().await;
}

#[tokio::test]
async fn knowledge_graph_queries_work_for_every_role() {
    let w = world().await;
    let mut failures = Vec::new();
    for cypher in GRAPH_READS {
        for (name, client) in &w.clients {
            let (status, body) = post_as(
                &w.server,
                client,
                "/graph_query",
                json!({"cypher": cypher, "parameters": w.params}),
            )
            .await;
            let rows = body["results"].as_array().map_or(0, Vec::len);
            if status != 200 || rows == 0 {
                failures.push(format!("{name} {cypher:?}: {status} {body}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The path query returns nodes and relationships in the old platform's shape.
    let (_, body) = post_as(
        &w.server,
        &w.clients[0].1,
        "/graph_query",
        json!({"cypher": "MATCH path = (a:Person {key: $alice})-[*2]->(c) RETURN path", "parameters": w.params}),
    )
    .await;
    let path = &body["results"][0]["path"];
    assert_eq!(path["nodes"].as_array().unwrap().len(), 3, "{body}");
    assert_eq!(path["relationships"][0]["type"], "KNOWS", "{body}");
}

#[tokio::test]
async fn graph_upsert_cannot_write_record_names_and_changes_nothing_when_refused() {
    let server = TestServer::spawn_with(&[("NEO4J_URI", &neo4j_uri())]);
    let graph = neo4j_client();
    let key = format!("r{}", uuid_like());
    let attempts = [
        (
            json!({"nodes": [{"key": key, "labels": ["Execution"]}]}),
            "labels",
            "labels reserved for sandgraph's record cannot be written by graph_upsert: Execution",
        ),
        (
            json!({"nodes": [{"key": key, "labels": ["Person", "AuditEvent", "User"]}]}),
            "labels",
            "labels reserved for sandgraph's record cannot be written by graph_upsert: AuditEvent, User",
        ),
        (
            json!({"nodes": [{"key": key, "labels": ["SandgraphInternal"]}]}),
            "labels",
            "labels reserved for sandgraph's record cannot be written by graph_upsert: SandgraphInternal",
        ),
        (
            json!({"nodes": [{"key": key}, {"key": format!("{key}b")}],
                   "relationships": [{"start": key, "end": format!("{key}b"), "type": "RAN"}]}),
            "type",
            "relationship types reserved for sandgraph's record cannot be written by graph_upsert: RAN",
        ),
        (
            json!({"nodes": [{"key": key, "properties": {"key": "someone-else"}}]}),
            "properties",
            "`key` is the node's identity",
        ),
    ];
    for (body, field, detail) in attempts {
        let (status, response) = server.post("/graph_upsert", body.clone()).await;
        assert_eq!(status, 422, "{body}: {response}");
        assert_eq!(response["field"], field, "{response}");
        assert!(
            response["detail"].as_str().unwrap().contains(detail),
            "{response}"
        );
    }
    // Every attempt used `key` (and `{key}b`): a refused upsert wrote none of it.
    for k in [key.clone(), format!("{key}b")] {
        assert_eq!(
            neo4j_count(
                &graph,
                "MATCH (n:GraphNode {key: $k}) RETURN count(n) AS n",
                &[("k", &k)]
            )
            .await,
            0,
            "a refused upsert wrote {k}"
        );
    }
    // graph_upsert only ever links knowledge-graph nodes: a record id is not a key.
    let record_id: String = {
        let mut rows = graph
            .execute(neo4rs::query(
                "MATCH (e:Execution) RETURN e.id AS id LIMIT 1",
            ))
            .await
            .unwrap();
        match rows.next().await.unwrap() {
            Some(row) => row.get("id").unwrap(),
            None => "no-record-yet".to_owned(),
        }
    };
    let (status, response) = server
        .post(
            "/graph_upsert",
            json!({"nodes": [{"key": key}], "relationships": [{"start": key, "end": record_id, "type": "POINTS_AT"}]}),
        )
        .await;
    assert_eq!(status, 422, "{response}");
    assert!(
        response["detail"]
            .as_str()
            .unwrap()
            .starts_with("relationships refer to keys that do not exist"),
        "{response}"
    );
}

#[tokio::test]
async fn graph_query_refusals_are_audited() {
    let server = TestServer::spawn_with(&[("NEO4J_URI", &neo4j_uri())]);
    let name = format!("audited-{}", uuid_like());
    let agent = client_with_token(&server.create_token("agent", &name));
    let caller = caller_id(&server, &name);
    for (cypher, want) in [
        ("MATCH (a:AuditEvent) RETURN a", 403),
        ("SHOW SETTINGS", 403),
        ("RETURN 1 AS one", 200),
    ] {
        let (status, body) =
            post_as(&server, &agent, "/graph_query", json!({"cypher": cypher})).await;
        assert_eq!(status, want, "{cypher}: {body}");
    }
    server.wait_shipped(Duration::from_secs(60)).await;
    let (status, page) = get_as(
        &server,
        &server.http,
        &format!("/audit_log?caller={caller}&endpoint=graph_query"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let events = page["items"].as_array().unwrap();
    let outcomes: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["decision"].as_str().unwrap(),
                e["outcome"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("allowed", "ok"),
            ("allowed", "refused"),
            ("allowed", "refused")
        ],
        "{page}"
    );
    assert!(
        events[2]["detail"]
            .as_str()
            .unwrap()
            .contains(":AuditEvent is part of sandgraph's record"),
        "{page}"
    );
}

#[tokio::test]
async fn graph_metrics_count_only_the_knowledge_graph() {
    let server = TestServer::spawn_with(&[("NEO4J_URI", &neo4j_uri())]);
    let (status, _) = server
        .post("/execute_code", json!({"code": "print(1)"}))
        .await;
    assert_eq!(status, 200);
    server.wait_shipped(Duration::from_secs(60)).await;
    let agent = client_with_token(&server.create_token("agent", &format!("m-{}", uuid_like())));
    let (status, body) = get_as(&server, &agent, "/metrics/graph").await;
    assert_eq!(status, 200, "{body}");
    let labels: Vec<&str> = body["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    for record in ["Execution", "AuditEvent", "User", "Code"] {
        assert!(!labels.contains(&record), "{body}");
    }
    let types = body["relationship_types"].to_string();
    for record in ["\"RAN\"", "\"OF\"", "\"BY\""] {
        assert!(!types.contains(record), "{body}");
    }
    let graph = neo4j_client();
    assert_eq!(
        body["node_count"].as_i64().unwrap(),
        neo4j_count(&graph, "MATCH (n:GraphNode) RETURN count(n) AS n", &[]).await
    );
}

//! Every registered tool goes through the one pipeline on REST: an allowed call and a
//! refused call each leave exactly one audit event with the right decision and outcome.
//! The test iterates the registry, so a new tool is covered (and must get sample
//! arguments here) without a new test. Runs against a real Neo4j (`make test`).

mod common;

use std::time::Duration;

use common::contract::{caller_id, get_as, uuid_like};
use common::{TestServer, client_with_token, neo4j_uri};
use sandgraph::call::RestMethod;
use sandgraph::tools::registry;
use serde_json::{Value, json};

/// Arguments that make each tool succeed for a caller allowed to call it.
fn sample_arguments(tool: &str, known: &Known) -> Value {
    match tool {
        "execute_code" => json!({"code": "print(1)"}),
        "lint_code" => json!({"code": "x = 1\n"}),
        "run_tests" => json!({"code": "def test_a():\n    assert True\n"}),
        "generate_code" => json!({"template": "{{ a }}", "context": {"a": 1}}),
        "graph_schema" => json!({}),
        "graph_query" => json!({"cypher": "RETURN 1 AS one"}),
        "graph_upsert" => json!({"nodes": [{"key": format!("k_{}", uuid_like())}]}),
        "execution_history" => json!({"limit": "5"}),
        "get_execution" => json!({"id": known.execution_id}),
        "code_stats" => json!({"code_hash": known.code_hash}),
        "audit_log" => json!({"limit": "5"}),
        "create_token" => json!({"role": "agent", "name": "made-by-test"}),
        "list_tokens" | "list_packages" => json!({}),
        "revoke_token" => json!({"id": known.revocable_token}),
        "create_workspace" => json!({}),
        "write_file" => {
            json!({"workspace_id": known.workspace_id, "path": "a.txt", "content": "x"})
        }
        "read_file" | "delete_file" => json!({"workspace_id": known.workspace_id, "path": "a.txt"}),
        "list_files" | "delete_workspace" => json!({"workspace_id": known.workspace_id}),
        other => panic!("no sample arguments for tool {other}: add them to tests/one_call_path.rs"),
    }
}

struct Known {
    execution_id: String,
    code_hash: String,
    revocable_token: String,
    /// The calling tool's own workspace, for the workspace tools (set per tool).
    workspace_id: String,
}

/// Calls a tool needs before it can succeed, made by the same caller (and so in its
/// audit trail): a workspace of its own, and a file in it.
async fn prepare(
    tool: &str,
    server: &TestServer,
    client: &reqwest::Client,
    known: &mut Known,
) -> Vec<&'static str> {
    let needs_workspace = matches!(
        tool,
        "write_file" | "read_file" | "list_files" | "delete_file" | "delete_workspace"
    );
    if !needs_workspace {
        return Vec::new();
    }
    let (status, created) = rest(server, client, RestMethod::Post, "/workspaces", &json!({})).await;
    assert_eq!(status, 201, "{created}");
    known.workspace_id = created["workspace_id"].as_str().unwrap().to_owned();
    if !matches!(tool, "read_file" | "delete_file") {
        return vec!["create_workspace"];
    }
    let args = json!({"workspace_id": known.workspace_id, "path": "a.txt", "content": "x"});
    let (status, written) = rest(
        server,
        client,
        RestMethod::Post,
        "/workspaces/{workspace_id}/files",
        &args,
    )
    .await;
    assert_eq!(status, 200, "{written}");
    vec!["create_workspace", "write_file"]
}

/// Call a tool over REST as its spec says: path parameters from `args`, the rest in
/// the query string (GET, DELETE) or the JSON body (POST).
async fn rest(
    server: &TestServer,
    client: &reqwest::Client,
    method: RestMethod,
    path: &str,
    args: &Value,
) -> (u16, Value) {
    let mut args = args.as_object().cloned().unwrap_or_default();
    let mut url_path = path.to_owned();
    while let Some(start) = url_path.find('{') {
        let end = url_path[start..].find('}').unwrap() + start;
        // `{*path}` captures the rest of the path.
        let name = url_path[start + 1..end].trim_start_matches('*').to_owned();
        let value = args.remove(&name).unwrap();
        url_path.replace_range(start..=end, value.as_str().unwrap());
    }
    let url = server.url(&url_path);
    let request = match method {
        RestMethod::Post => client.post(url).json(&Value::Object(args)),
        RestMethod::Get | RestMethod::Delete => {
            let query: Vec<(String, String)> = args
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map(str::to_owned).unwrap_or(v.to_string()),
                    )
                })
                .collect();
            let url = format!("{url}?{}", serde_urlencoded::to_string(&query).unwrap());
            if method == RestMethod::Get {
                client.get(url)
            } else {
                client.delete(url)
            }
        }
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The audit events of `caller`, oldest first, once `want` of them are visible.
async fn events_of(server: &TestServer, caller: &str, want: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        server.wait_shipped(Duration::from_secs(60)).await;
        let (status, page) = get_as(
            server,
            &server.http,
            &format!("/audit_log?caller={caller}&limit=50"),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let mut events = page["items"].as_array().unwrap().clone();
        events.reverse();
        if events.len() >= want || std::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn every_registered_tool_leaves_one_audit_event_per_call_with_its_real_outcome() {
    let server = TestServer::spawn_with(&[
        ("NEO4J_URI", &neo4j_uri()),
        ("SANDGRAPH_RATE_LIMIT", "100000/second"),
    ]);
    // Something for the history tools to find, and a token to revoke.
    let run = server.python("print('for the record')").await;
    server.wait_shipped(Duration::from_secs(60)).await;
    let spare = format!("spare-{}", uuid_like());
    server.create_token("agent", &spare);
    let mut known = Known {
        execution_id: run["id"].as_str().unwrap().to_owned(),
        code_hash: run["code_hash"].as_str().unwrap().to_owned(),
        revocable_token: caller_id(&server, &spare),
        workspace_id: String::new(),
    };
    let mut failures = Vec::new();
    for tool in registry::all() {
        let spec = tool.spec();
        let role = spec.least_role().as_str();
        // A fresh caller per tool, so its audit trail is exactly this tool's calls.
        let name = format!("{}-{}", spec.name, uuid_like());
        let client = client_with_token(&server.create_token(role, &name));
        let caller = caller_id(&server, &name);
        let prepared = prepare(spec.name, &server, &client, &mut known).await;
        let args = sample_arguments(spec.name, &known);
        let (status, body) = rest(&server, &client, spec.rest.method, spec.rest.path, &args).await;
        if status != spec.rest.status {
            failures.push(format!("{} allowed call: {status} {body}", spec.name));
            continue;
        }
        // The refused call: below the least role if there is one, else bad arguments.
        let (refused_status, expected_decision) = if spec.least_role().as_str() == "agent" {
            let mut bad = args.as_object().cloned().unwrap_or_default();
            bad.insert("no_such_argument".into(), json!("x"));
            let (status, _) = rest(
                &server,
                &client,
                spec.rest.method,
                spec.rest.path,
                &Value::Object(bad),
            )
            .await;
            (status, "allowed")
        } else {
            let lower = format!("{}-low-{}", spec.name, uuid_like());
            let low_client = client_with_token(&server.create_token("agent", &lower));
            let (status, _) = rest(
                &server,
                &low_client,
                spec.rest.method,
                spec.rest.path,
                &args,
            )
            .await;
            let low_events = events_of(&server, &caller_id(&server, &lower), 1).await;
            if low_events.len() != 1
                || low_events[0]["decision"] != "forbidden"
                || low_events[0]["outcome"] != "refused"
                || low_events[0]["endpoint"] != spec.name
            {
                failures.push(format!(
                    "{} forbidden call audit: {low_events:?}",
                    spec.name
                ));
            }
            (status, "forbidden")
        };
        let wanted_status = if expected_decision == "forbidden" {
            403
        } else {
            422
        };
        if refused_status != wanted_status {
            failures.push(format!("{} refused call: {refused_status}", spec.name));
        }
        let want = prepared.len()
            + if expected_decision == "forbidden" {
                1
            } else {
                2
            };
        let events = events_of(&server, &caller, want).await;
        let shape: Vec<(String, String, String)> = events
            .iter()
            .map(|e| {
                (
                    e["endpoint"].as_str().unwrap_or("?").to_owned(),
                    e["decision"].as_str().unwrap_or("?").to_owned(),
                    e["outcome"].as_str().unwrap_or("-").to_owned(),
                )
            })
            .collect();
        let mut expected: Vec<(String, String, String)> = prepared
            .iter()
            .map(|name| (name.to_string(), "allowed".to_owned(), "ok".to_owned()))
            .collect();
        expected.push((spec.name.to_owned(), "allowed".to_owned(), "ok".to_owned()));
        if expected_decision == "allowed" {
            expected.push((spec.name.to_owned(), "allowed".into(), "refused".into()));
        }
        if events.iter().any(|e| !e["duration_ms"].is_number()) {
            failures.push(format!(
                "{}: an event without duration_ms: {events:?}",
                spec.name
            ));
        }
        // Events of the same millisecond come back in no fixed order (the log orders by
        // its millisecond `ts`, then by id): compare them as a set of calls.
        let (mut shape, mut expected) = (shape, expected);
        shape.sort();
        expected.sort();
        if shape != expected {
            failures.push(format!(
                "{}: audit {shape:?}, expected {expected:?}",
                spec.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_failing_history_query_is_audited_as_refused_not_ok() {
    let server = TestServer::spawn();
    let name = format!("bad-filter-{}", uuid_like());
    let dev = client_with_token(&server.create_token("developer", &name));
    let (status, body) = get_as(&server, &dev, "/execution_history?since=yesterday").await;
    assert_eq!(status, 422, "{body}");
    let events = events_of(&server, &caller_id(&server, &name), 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["decision"], "allowed");
    assert_eq!(events[0]["outcome"], "refused");
    assert!(
        events[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("since must be an RFC 3339 time"),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_foreign_origin_is_refused_at_the_mcp_endpoint() {
    let server = TestServer::spawn();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "origin-test", "version": "0"}}});
    let post = |origin: Option<&'static str>| {
        let mut request = server
            .http
            .post(server.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let evil = post(Some("https://evil.example")).await.unwrap();
    assert_eq!(evil.status().as_u16(), 403);
    let local = post(Some("http://localhost:3000")).await.unwrap();
    assert_eq!(local.status().as_u16(), 200);
    let none = post(None).await.unwrap();
    assert_eq!(
        none.status().as_u16(),
        200,
        "non-browser clients send no Origin"
    );
    server.assert_alive().await;
}

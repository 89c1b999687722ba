//! Bad input gets a 4xx JSON `{"detail": ...}` and the server keeps serving.

mod common;

use common::TestServer;
use serde_json::{Value, json};

async fn raw(
    server: &TestServer,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    // A fresh client: the server may close a connection whose body it refused unread,
    // and a pooled connection would then fail the next request of the test.
    let client = common::client_with_token(&server.admin_token);
    let mut request = client.post(server.url("/execute_code")).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("error body is not JSON: {text:?}"));
    (status, body)
}

fn detail(body: &Value) -> &str {
    body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no detail in {body}"))
}

#[tokio::test]
async fn malformed_json_is_a_400() {
    let server = TestServer::spawn();
    let (status, body) = raw(&server, Some("application/json"), "{\"code\": ").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        detail(&body).contains("Failed to parse the request body as JSON"),
        "{body}"
    );
    server.assert_alive().await;
}

#[tokio::test]
async fn missing_code_is_a_422_naming_the_field() {
    let server = TestServer::spawn();
    let (status, body) = server
        .post("/execute_code", json!({"language": "python"}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(detail(&body).contains("missing field `code`"), "{body}");
    server.assert_alive().await;
}

#[tokio::test]
async fn oversize_code_is_a_413() {
    let server = TestServer::spawn_with(&[("SANDGRAPH_MAX_CODE_BYTES", "1000")]);
    let (status, body) = server
        .post("/execute_code", json!({"code": "#".repeat(1001)}))
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        detail(&body),
        "`code` is 1001 bytes; the limit is 1000 bytes"
    );
    // A body far beyond any limit is refused before it is parsed.
    let (status, body) = raw(&server, Some("application/json"), vec![b' '; 2 << 20]).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        detail(&body).contains("larger than the server accepts"),
        "{body}"
    );
    server.assert_alive().await;
}

#[tokio::test]
async fn unknown_language_is_a_422_listing_the_supported_ones() {
    let server = TestServer::spawn();
    let (status, body) = server
        .post("/execute_code", json!({"code": "x", "language": "cobol"}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        detail(&body),
        "unsupported language \"cobol\"; supported: python, javascript"
    );
    assert_eq!(body["field"], "language");
    server.assert_alive().await;
}

#[tokio::test]
async fn timeout_out_of_range_is_a_422() {
    let server = TestServer::spawn();
    for timeout in [0.1, 0.0, -1.0, 60.5, 1e9] {
        let (status, body) = server
            .post(
                "/execute_code",
                json!({"code": "print(1)", "timeout_seconds": timeout}),
            )
            .await;
        assert_eq!(status, 422, "{timeout}: {body}");
        assert!(
            detail(&body).starts_with("timeout_seconds must be between 0.5 and 60"),
            "{body}"
        );
    }
    let (status, body) = server
        .post(
            "/execute_code",
            json!({"code": "print(1)", "timeout_seconds": "soon"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    server.assert_alive().await;
}

#[tokio::test]
async fn wrong_content_type_is_a_415() {
    let server = TestServer::spawn();
    let (status, body) = raw(&server, Some("text/plain"), "{\"code\": \"print(1)\"}").await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(
        detail(&body),
        "expected a JSON body with `Content-Type: application/json`"
    );
    let (status, _) = raw(&server, None, "{\"code\": \"print(1)\"}").await;
    assert_eq!(status, 415);
    server.assert_alive().await;
}

#[tokio::test]
async fn unknown_fields_and_paths_are_refused_clearly() {
    let server = TestServer::spawn();
    let (status, body) = server
        .post("/execute_code", json!({"code": "print(1)", "timeout": 3}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(detail(&body).contains("unknown field `timeout`"), "{body}");
    let (status, body) = server.post("/no_such_tool", json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(detail(&body), "no such endpoint: /no_such_tool");
    server.assert_alive().await;
}

/// Metric labels come from the matched route, never from the path a client sent: 30
/// random paths (no token) add no series.
#[tokio::test]
async fn unknown_paths_add_no_metric_series() {
    let server = TestServer::spawn();
    let series = |text: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter(|l| l.starts_with("sandgraph_http_requests_total{"))
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect()
    };
    let anonymous = reqwest::Client::new();
    let metrics = || server.get_open_text("/metrics");
    // One unknown path first, so the `unmatched` series exists before counting.
    anonymous.get(server.url("/warm-up")).send().await.unwrap();
    let (status, _) = server.post("/executions/abc", json!({})).await;
    assert_eq!(status, 405);
    let _ = server.get_json("/executions/some-id").await;
    metrics().await; // the scrape's own series
    let before = series(&metrics().await);
    for i in 0..30 {
        let response = anonymous
            .get(server.url(&format!("/random-{i}-{}/x", std::process::id())))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
    }
    let after = series(&metrics().await);
    assert_eq!(before, after, "new series from unknown paths");
    let text = after.iter().cloned().collect::<Vec<_>>().join("\n");
    assert!(text.contains("route=\"unmatched\""), "{text}");
    assert!(text.contains("route=\"/executions/{id}\""), "{text}");
    assert!(!text.contains("random-"), "{text}");
}

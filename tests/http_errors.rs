//! Bad input gets a 4xx JSON `{"detail": ...}` and the server keeps serving.

mod common;

use std::time::Duration;

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
    // Bodies may be as large as the biggest field needs (code, or a file as base64), so
    // keep both small to send a body past the limit.
    let server = TestServer::spawn_with(&[
        ("SANDGRAPH_MAX_CODE_BYTES", "1000"),
        ("SANDGRAPH_MAX_FILE_BYTES", "100000"),
    ]);
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
/// random paths (no token) add no series: 1,000 of them here.
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
    // Unknown paths first, so the `unmatched` series exist before counting: 401, and 429
    // once this address is past its failed-authentication burst (20).
    for _ in 0..25 {
        anonymous.get(server.url("/warm-up")).send().await.unwrap();
    }
    let (status, _) = server.post("/executions/abc", json!({})).await;
    assert_eq!(status, 405);
    let _ = server.get_json("/executions/some-id").await;
    metrics().await; // the scrape's own series
    let before = series(&metrics().await);
    for i in 0..1000 {
        let response = anonymous
            .get(server.url(&format!("/random-{i}-{}/x", std::process::id())))
            .send()
            .await
            .unwrap();
        // 401, then 429 once this address is past its failed-authentication rate.
        let status = response.status().as_u16();
        assert!(status == 401 || status == 429, "{i}: {status}");
    }
    let after = series(&metrics().await);
    assert_eq!(before, after, "new series from unknown paths");
    let text = after.iter().cloned().collect::<Vec<_>>().join("\n");
    assert!(text.contains("route=\"unmatched\""), "{text}");
    assert!(text.contains("route=\"/executions/{id}\""), "{text}");
    assert!(!text.contains("random-"), "{text}");
}

/// Read what the server sends on `stream` until it closes the connection: the raw
/// response text. Panics if the server keeps it open for `within` (a generous bound: the
/// limits under test are a second or two).
async fn read_until_closed(stream: &mut tokio::net::TcpStream, within: Duration) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut out = Vec::new();
    match tokio::time::timeout(within, stream.read_to_end(&mut out)).await {
        Ok(_) => String::from_utf8_lossy(&out).into_owned(),
        Err(_) => panic!(
            "the server kept the connection open for {within:?}; it sent {:?}",
            String::from_utf8_lossy(&out)
        ),
    }
}

fn address(server: &TestServer) -> String {
    server
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

#[tokio::test]
async fn a_client_that_sends_its_headers_too_slowly_is_disconnected() {
    use tokio::io::AsyncWriteExt as _;
    let server = TestServer::spawn_with(&[("SANDGRAPH_HTTP_HEADER_TIMEOUT_MS", "1000")]);
    // Silent: connects and sends nothing.
    let mut silent = tokio::net::TcpStream::connect(address(&server))
        .await
        .unwrap();
    // Slowloris: a byte at a time, never finishing the head.
    let mut slow = tokio::net::TcpStream::connect(address(&server))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    for byte in b"POST /execute_code HTTP/1.1\r\nHost: x\r\n" {
        if slow.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let slow_answer = read_until_closed(&mut slow, Duration::from_secs(20)).await;
    let silent_answer = read_until_closed(&mut silent, Duration::from_secs(20)).await;
    // Both are closed, with hyper's 408 for a head that did not arrive in time or nothing.
    assert!(
        slow_answer.is_empty() || slow_answer.starts_with("HTTP/1.1 408"),
        "{slow_answer:?}"
    );
    assert!(
        silent_answer.is_empty() || silent_answer.starts_with("HTTP/1.1 408"),
        "{silent_answer:?}"
    );
    server.assert_alive().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt as _;
    let server = TestServer::spawn_with(&[("SANDGRAPH_HTTP_HEADER_TIMEOUT_MS", "1000")]);
    let mut stream = tokio::net::TcpStream::connect(address(&server))
        .await
        .unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    server.assert_alive().await;
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_a_408() {
    use tokio::io::AsyncWriteExt as _;
    let server = TestServer::spawn_with(&[("SANDGRAPH_HTTP_BODY_TIMEOUT_MS", "1000")]);
    let mut stream = tokio::net::TcpStream::connect(address(&server))
        .await
        .unwrap();
    let head = format!(
        "POST /execute_code HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"code\": ",
        server.admin_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(
        answer.contains("the request body did not arrive within 1s"),
        "{answer:?}"
    );
    server.assert_alive().await;
}

#[tokio::test]
async fn connections_past_the_cap_get_a_503_with_retry_after_but_probes_answer() {
    use tokio::io::AsyncWriteExt as _;
    let server = TestServer::spawn_with(&[("SANDGRAPH_MAX_CONNECTIONS", "4")]);
    // Four idle connections take every place...
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(
            tokio::net::TcpStream::connect(address(&server))
                .await
                .unwrap(),
        );
    }
    let over_cap = |request: &'static str| {
        let address = address(&server);
        async move {
            let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            read_until_closed(&mut stream, Duration::from_secs(10)).await
        }
    };
    // ...so a fifth's request is answered 503 and the connection closed...
    let answer = over_cap("GET /prompts HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer:?}"
    );
    assert!(answer.contains("limit of open connections"), "{answer:?}");
    // ...while the probes and the scrape still answer on such a connection.
    for path in ["/health", "/health/ready", "/metrics"] {
        let request: &'static str =
            Box::leak(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_boxed_str());
        let answer = over_cap(request).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer:?}");
    }
    // A silent connection over the cap gets a second, not the header timeout.
    let mut silent = tokio::net::TcpStream::connect(address(&server))
        .await
        .unwrap();
    let answer = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
    // Past the probe places too (64), a connection gets a 503 at once, unasked.
    let mut probing = Vec::new();
    for _ in 0..64 {
        probing.push(
            tokio::net::TcpStream::connect(address(&server))
                .await
                .unwrap(),
        );
    }
    let mut extra = tokio::net::TcpStream::connect(address(&server))
        .await
        .unwrap();
    let answer = read_until_closed(&mut extra, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("limit of open connections"), "{answer:?}");
    // Freed places are usable again.
    drop(held);
    drop(probing);
    let mut ok = false;
    for _ in 0..50 {
        let client = common::client_with_token(&server.admin_token);
        if let Ok(r) = client.get(server.url("/prompts")).send().await
            && r.status() == 200
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ok,
        "the server did not serve again after the connections closed"
    );
    server.assert_alive().await;
}

#[tokio::test]
async fn a_client_that_pipelines_and_never_reads_is_disconnected_after_the_write_timeout() {
    use tokio::io::AsyncWriteExt as _;
    let server = TestServer::spawn_with(&[
        ("SANDGRAPH_MAX_CONNECTIONS", "1"),
        ("SANDGRAPH_HTTP_HEADER_TIMEOUT_MS", "1000"),
        ("SANDGRAPH_HTTP_WRITE_TIMEOUT_MS", "1000"),
    ]);
    let client = common::client_with_token(&server.admin_token);
    let served = || async {
        let client = common::client_with_token(&server.admin_token);
        matches!(client.get(server.url("/prompts")).send().await, Ok(r) if r.status() == 200)
    };
    // Wait until the start-up probe's kept-alive connection has gone (header timeout).
    let mut free = false;
    for _ in 0..50 {
        if served().await {
            free = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(free, "the server never had its one connection free");
    drop(client);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // One connection with a small receive buffer asks for /metrics 3,000 times in one go
    // and reads nothing: the server's writes stall once the buffers are full.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = socket
        .connect(address(&server).parse().unwrap())
        .await
        .unwrap();
    let requests = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(3000);
    let writer = tokio::spawn(async move {
        let _ = stuck.write_all(requests.as_bytes()).await;
        // Hold the socket open, unread, until the test ends.
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(stuck);
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The stuck client holds the only place for now...
    assert!(
        !served().await,
        "the stuck connection did not take the place"
    );
    // ...until its writes have made no progress for the write timeout.
    let mut freed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if served().await {
            freed = true;
            break;
        }
    }
    assert!(
        freed,
        "a client that never reads kept its connection past the write timeout"
    );
    writer.abort();
    server.assert_alive().await;
}

#[tokio::test]
async fn a_large_body_gets_a_second_per_64_kib_and_a_slow_mcp_body_is_a_408_too() {
    use tokio::io::AsyncWriteExt as _;
    let server = TestServer::spawn_with(&[("SANDGRAPH_HTTP_BODY_TIMEOUT_MS", "1000")]);
    // ~250 KiB sent over ~2.5 s: past the bare 1 s, within 1 s + ~4 s.
    let body = json!({"code": format!("print(7)\n#{}", "x".repeat(250 * 1024))}).to_string();
    let mut stream = tokio::net::TcpStream::connect(address(&server))
        .await
        .unwrap();
    let head = format!(
        "POST /execute_code HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.admin_token,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.as_bytes().chunks(body.len() / 10 + 1) {
        stream.write_all(chunk).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let answer = read_until_closed(&mut stream, Duration::from_secs(30)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(answer.contains("7\\n"), "{answer:?}");
    // On /mcp (rmcp reads the body there), a body that stops coming is a 408 as well.
    let mut stream = tokio::net::TcpStream::connect(address(&server))
        .await
        .unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: 200\r\n\r\n{{\"jsonrpc\": \"2.0\", ",
        server.admin_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(
        answer.contains("the request body did not arrive within 1s"),
        "{answer:?}"
    );
    server.assert_alive().await;
}

#[tokio::test]
async fn requests_past_the_in_flight_cap_get_a_503_with_retry_after() {
    let server = TestServer::spawn_with(&[("SANDGRAPH_MAX_IN_FLIGHT", "2")]);
    // Two long runs take both places.
    let long = |n: u32| {
        let client = common::client_with_token(&server.admin_token);
        let url = server.url("/execute_code");
        tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"code": format!("import time; time.sleep(3) # {n}")}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    let runs = [long(1), long(2)];
    tokio::time::sleep(Duration::from_millis(800)).await;
    let client = common::client_with_token(&server.admin_token);
    let response = client.get(server.url("/prompts")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert!(detail(&body).contains("requests in flight"), "{body}");
    // The liveness probe still answers while the server is full.
    let health = client.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    for run in runs {
        assert_eq!(run.await.unwrap().unwrap(), 200);
    }
    server.assert_alive().await;
}

#[tokio::test]
async fn idle_mcp_streams_do_not_count_as_requests_in_flight() {
    let server = TestServer::spawn_with(&[("SANDGRAPH_MAX_IN_FLIGHT", "2")]);
    let mcp = server.url("/mcp");
    let accept = "application/json, text/event-stream";
    // Three MCP clients, each with its standalone stream open (the Python SDK opens one).
    let mut streams = Vec::new();
    for n in 0..3 {
        let client = common::client_with_token(&server.admin_token);
        let init = client
            .post(&mcp)
            .header("accept", accept)
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": format!("idle-{n}"), "version": "0"}}}),
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
        let initialized = client
            .post(&mcp)
            .header("accept", accept)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .await
            .unwrap();
        assert_eq!(initialized.status().as_u16(), 202);
        let stream = client
            .get(&mcp)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status().as_u16(), 200, "stream {n}");
        streams.push(stream);
    }
    // With all three still open, a request finds a place.
    let response = server
        .http
        .get(server.url("/prompts"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    drop(streams);
    server.assert_alive().await;
}

#[tokio::test]
async fn failed_authentication_is_rate_limited_per_source_and_audited_folded() {
    let server = TestServer::spawn_with(&[
        ("SANDGRAPH_RATE_LIMIT_UNAUTHENTICATED", "1/minute burst 20"),
        ("SANDGRAPH_AUTH_FAILURE_WINDOW_MS", "500"),
    ]);
    let stranger = common::client_with_token("sg-not-a-real-token-0123456789");
    let anonymous = reqwest::Client::new();
    // The burst first, one at a time: 20 answered 401, then 429 with Retry-After.
    let mut statuses = Vec::new();
    for i in 0..40 {
        let client = if i % 4 == 0 { &anonymous } else { &stranger };
        let response = client
            .post(server.url("/execute_code"))
            .json(&json!({"code": "print(1)"}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if status == 429 {
            let wait: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(wait >= 1, "Retry-After {wait}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                detail(&body),
                "too many requests failed authentication from this address; wait before retrying"
            );
        }
        statuses.push(status);
    }
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    // Then 10,000 more from eight connections, while a valid caller is served throughout.
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (stranger, url) = (stranger.clone(), server.url("/execute_code"));
            tokio::spawn(async move {
                for _ in 0..1250 {
                    let response = stranger
                        .post(&url)
                        .json(&json!({"code": "print(1)"}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status().as_u16(), 429);
                }
            })
        })
        .collect();
    for i in 0..5 {
        let result = server.python(&format!("print({i})")).await;
        assert_eq!(result["stdout"], format!("{i}\n"));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    server.assert_alive().await;

    // A bounded number of durable writes: one folded event per window (a few windows
    // passed), not 10,040.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let page = server
        .get_json("/audit_log?event_type=unauthenticated&limit=200")
        .await;
    let events = page["items"].as_array().unwrap().clone();
    assert!(
        !events.is_empty() && events.len() < 100,
        "{} events",
        events.len()
    );
    let mut total = 0;
    let mut limited = 0;
    for event in &events {
        assert_eq!(event["caller_id"], "anonymous");
        let detail = event["detail"].as_str().unwrap();
        assert!(
            detail.contains(" from 127.0.0.1 failed authentication"),
            "{detail}"
        );
        assert!(detail.ends_with("last route /execute_code"), "{detail}");
        total += detail
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap();
        let answered = detail.split("; ").nth(1).unwrap();
        limited += answered
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap();
    }
    // Admins still see every failure, as numbers.
    assert_eq!(total, 10_040);
    assert_eq!(limited, 10_020);
}

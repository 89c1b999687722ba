//! The operations files under `deploy/` are checked, not just shipped: the alerting rules
//! pass `promtool check rules` (Debian's `prometheus` package; `make test` installs it),
//! the Grafana dashboard is valid JSON with a query per panel, and every metric either
//! file names is one that a real server's `/metrics` exports.

mod common;

use std::collections::BTreeSet;

use common::contract::get_as;
use common::{TestServer, neo4j_uri, repo_root};
use serde_json::{Value, json};

/// Metric names (`sandgraph_...`) in `text`, without the histogram series suffixes.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("sandgraph_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = &text[start..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        // A bare `sandgraph_` (no name after it) is not a metric.
        if base.len() > "sandgraph_".len() {
            names.insert(base.to_owned());
        }
        i = end;
    }
    names
}

#[test]
fn the_alerting_rules_pass_promtool() {
    let rules = repo_root().join("deploy/alerts.yml");
    let output = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("promtool is missing: `make test` installs Debian's prometheus package");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    // promtool reports how many rules it found: all of them, none skipped.
    let text = std::fs::read_to_string(&rules).unwrap();
    let alerts = text.matches("- alert:").count();
    assert!(alerts >= 6, "{alerts} alerts");
    assert!(
        stdout.contains(&format!("SUCCESS: {alerts} rules found")),
        "{stdout}"
    );
}

#[test]
fn the_dashboard_has_a_query_in_every_panel() {
    let path = repo_root().join("deploy/grafana/sandgraph.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 8);
    for panel in panels {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{panel}");
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            assert!(expr.contains("sandgraph_"), "{expr}");
        }
    }
}

#[tokio::test]
async fn every_metric_the_rules_and_the_dashboard_name_is_exported() {
    let root = repo_root();
    let mut wanted =
        metric_names(&std::fs::read_to_string(root.join("deploy/alerts.yml")).unwrap());
    wanted.extend(metric_names(
        &std::fs::read_to_string(root.join("deploy/grafana/sandgraph.json")).unwrap(),
    ));
    assert!(wanted.len() >= 15, "{wanted:?}");

    // With Neo4j (the breaker gauge exists only then), after the calls that make each
    // series appear: a run, a short call, a refusal, a rate-limited call, a bad token.
    let uri = neo4j_uri();
    let server = TestServer::spawn_with(&[
        ("NEO4J_URI", uri.as_str()),
        ("SANDGRAPH_RATE_LIMIT_GENERATE_CODE", "1/minute burst 1"),
    ]);
    let (status, _) = server
        .post("/execute_code", json!({"code": "print('hi')"}))
        .await;
    assert_eq!(status, 200);
    let template = json!({"template": "x = {{ v }}", "context": {"v": 1}});
    assert_eq!(server.post("/generate_code", template.clone()).await.0, 200);
    assert_eq!(server.post("/generate_code", template).await.0, 429);
    let agent = common::client_with_token(&server.create_token("agent", "metrics"));
    assert_eq!(get_as(&server, &agent, "/audit_log").await.0, 403);
    let stranger = common::client_with_token("sg_not_a_token");
    assert_eq!(get_as(&server, &stranger, "/prompts").await.0, 401);

    let exported = metric_names(&server.get_open_text("/metrics").await);
    let missing: Vec<_> = wanted.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "named in deploy/ but not exported: {missing:?}\nexported: {exported:?}"
    );
}

"""/metrics is valid Prometheus exposition and moves as expected; /health keeps the old
fields; requests carry an X-Request-Id."""

import httpx2
from prometheus_client.parser import text_string_to_metric_families

from conftest import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def scrape(base):
    response = httpx2.get(f"{base}/metrics")  # open: no token
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            samples[key] = sample.value
    return samples


def value(samples, name, **labels):
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == want for k, want in labels.items()))


def test_metrics_parse_and_counters_move(http_server):
    before = scrape(http_server)
    with httpx2.Client(base_url=http_server, headers=AUTH) as client:
        assert client.post("/execute_code", json={"code": "print(1)"}).status_code == 200
        assert client.post("/execute_code", json={"code": "print(1)"}).json()["cached"] is True
        assert client.post("/execute_code", json={"code": "while True: pass",
                                                    "timeout_seconds": 0.5}).status_code == 200
        assert client.post("/lint_code", json={"code": "x = 1\n"}).status_code == 200
    assert httpx2.get(f"{http_server}/prompts").status_code == 401
    after = scrape(http_server)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("sandgraph_tool_calls_total", tool="execute_code", transport="rest") == 3
    assert delta("sandgraph_tool_calls_total", tool="execute_code", outcome="timeout") == 1
    assert delta("sandgraph_tool_calls_total", tool="lint_code") == 1
    assert delta("sandgraph_tool_duration_seconds_count", tool="execute_code") == 3
    assert delta("sandgraph_sandbox_runs_total", language="python", exit_reason="timeout") == 1
    assert delta("sandgraph_sandbox_limit_hits_total", limit="timeout") == 1
    assert delta("sandgraph_cache_hits_total") == 1
    assert delta("sandgraph_auth_failures_total", reason="missing") == 1
    assert delta("sandgraph_http_requests_total", route="/execute_code", status="200") == 3
    assert ("sandgraph_outbox_depth", ()) in after
    assert 0 < value(after, "sandgraph_cache_hit_ratio") <= 1


def test_health_keeps_the_old_fields_and_requests_get_an_id(http_server):
    health = httpx2.get(f"{http_server}/health").json()
    for field in ("service", "neo4j", "timestamp", "status"):
        assert field in health
    ready = httpx2.get(f"{http_server}/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["store_writable"] is True
    echoed = httpx2.get(f"{http_server}/health", headers={"X-Request-Id": "trace-123"})
    assert echoed.headers["x-request-id"] == "trace-123"
    assert httpx2.get(f"{http_server}/health").headers["x-request-id"]

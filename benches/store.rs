//! Storage benchmarks (harness = false):
//!
//! * `outbox_commit`: latency of one durable commit of a call's two records (audit event +
//!   result) through the group-committing SQLite writer, alone and with 16 concurrent
//!   callers, i.e. the recording cost on the request path.
//! * with `NEO4J_URI` set: `ship` records/s into Neo4j through the shipper's batch write,
//!   then the history generator (`BENCH_HISTORY_RECORDS`, default 1,000,000 execution
//!   records spread over 1,000 callers and 10,000 code hashes, written straight into Neo4j
//!   in idempotent batches; re-running tops it up rather than duplicating), then p50/p95 of
//!   `execution_history` by caller and by code hash and of `code_stats`.
//!
//! ```text
//! cargo bench --bench store
//! NEO4J_URI=bolt://127.0.0.1:17687 cargo bench --bench store
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandgraph::audit::{AuditDecision, AuditEvent, Transport};
use sandgraph::config::Neo4jSettings;
use sandgraph::store::neo4j::Neo4jStore;
use sandgraph::store::sqlite::{Destination, SqliteStore};
use sandgraph::store::{ExecutionRecord, HistoryFilter, HistoryStore, Record};

fn record(i: u64, callers: u64, hashes: u64) -> ExecutionRecord {
    let ts = 1_700_000_000_000 + i as i64;
    ExecutionRecord {
        id: format!("bench-{i:09}"),
        ts,
        created_at: chrono::DateTime::from_timestamp_millis(ts)
            .unwrap()
            .to_rfc3339(),
        tool: "execute_code".into(),
        caller_id: format!("caller-{}", i % callers),
        caller_name: format!("caller {}", i % callers),
        role: "agent".into(),
        transport: "rest".into(),
        request_id: format!("req-{i}"),
        language: Some("python".into()),
        code_hash: Some(format!("{:064x}", i % hashes)),
        outcome: if i.is_multiple_of(10) {
            "error".into()
        } else {
            "ok".into()
        },
        return_code: Some(if i.is_multiple_of(10) { 1 } else { 0 }),
        duration_seconds: 0.001 + (i % 100) as f64 / 10_000.0,
        cached: false,
        limits: None,
        stdout: Some("hi\n".into()),
        stderr: Some(String::new()),
        source_kept: Some(true),
    }
}

fn audit(i: u64) -> AuditEvent {
    AuditEvent {
        id: format!("bench-audit-{i:09}"),
        at: chrono::Utc::now().to_rfc3339(),
        ts: 1_700_000_000_000 + i as i64,
        request_id: format!("req-{i}"),
        caller_id: format!("caller-{}", i % 1000),
        caller_name: "bench".into(),
        role: Some(sandgraph::auth::Role::Agent),
        endpoint: "execute_code".into(),
        transport: Transport::Rest,
        decision: AuditDecision::Allowed,
        outcome: Some("ok".into()),
        detail: None,
        duration_ms: Some(1.0),
    }
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let at = |q: f64| {
        samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.95), at(0.99))
}

async fn outbox_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        SqliteStore::open(&dir.path().join("bench.db"), Destination::History, u64::MAX).unwrap();
    let mut solo = Vec::new();
    for i in 0..2000 {
        let started = Instant::now();
        store
            .append(vec![
                Record::Audit(audit(i)),
                Record::Execution(record(i, 1000, 10_000)),
            ])
            .await
            .unwrap();
        solo.push(started.elapsed());
    }
    let (p50, p95, p99) = percentiles(solo);
    println!("| outbox commit, 1 caller | {p50:.3} | {p95:.3} | {p99:.3} | 2000 |");

    let concurrent = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let started_all = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..16u64 {
        let (store, concurrent) = (store.clone(), concurrent.clone());
        tasks.push(tokio::spawn(async move {
            for j in 0..500u64 {
                let i = 1_000_000 + worker * 1000 + j;
                let started = Instant::now();
                store
                    .append(vec![
                        Record::Audit(audit(i)),
                        Record::Execution(record(i, 1000, 10_000)),
                    ])
                    .await
                    .unwrap();
                concurrent.lock().await.push(started.elapsed());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rate = 8000.0 / started_all.elapsed().as_secs_f64();
    let samples = std::mem::take(&mut *concurrent.lock().await);
    let (p50, p95, p99) = percentiles(samples);
    println!(
        "| outbox commit, 16 callers | {p50:.3} | {p95:.3} | {p99:.3} | 8000 ({rate:.0} calls/s) |"
    );
}

async fn neo4j_benches(uri: String) {
    let store = Neo4jStore::connect(&Neo4jSettings {
        uri,
        user: "neo4j".into(),
        password: String::new(),
        database: None,
    })
    .unwrap();
    store.apply_schema().await.unwrap();

    // Shipping throughput: batches of 2000 records (the shipper's batch), 100k records.
    let total = 100_000u64;
    let started = Instant::now();
    for chunk in (0..total).collect::<Vec<_>>().chunks(2000) {
        let records: Vec<Record> = chunk
            .iter()
            .map(|&i| Record::Execution(record(10_000_000 + i, 1000, 10_000)))
            .collect();
        store.ship(&records).await.unwrap();
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    println!("| ship into Neo4j (batches of 2000) | | | | {total} records, {rate:.0} records/s |");

    // The history generator: top up to N records.
    let wanted: u64 = std::env::var("BENCH_HISTORY_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let started = Instant::now();
    for chunk in (0..wanted).collect::<Vec<_>>().chunks(5000) {
        let records: Vec<Record> = chunk
            .iter()
            .map(|&i| Record::Execution(record(i, 1000, 10_000)))
            .collect();
        store.ship(&records).await.unwrap();
    }
    println!(
        "| generate {wanted} history records | | | | {:.0} s ({:.0} records/s) |",
        started.elapsed().as_secs_f64(),
        wanted as f64 / started.elapsed().as_secs_f64()
    );

    for (name, filter) in [
        (
            "history by caller (1 of 1000)",
            HistoryFilter {
                caller: Some("caller-7".into()),
                ..Default::default()
            },
        ),
        (
            "history by code hash",
            HistoryFilter {
                code_hash: Some(format!("{:064x}", 42)),
                ..Default::default()
            },
        ),
        (
            "history, caller + since",
            HistoryFilter {
                caller: Some("caller-9".into()),
                since: Some("2023-11-14T22:13:30Z".into()),
                ..Default::default()
            },
        ),
    ] {
        let mut samples = Vec::new();
        for _ in 0..300 {
            let started = Instant::now();
            let page = store.execution_history(&filter).await.unwrap();
            samples.push(started.elapsed());
            assert!(
                !page.items.is_empty(),
                "{name}: no rows; generator did not run?"
            );
        }
        let (p50, p95, p99) = percentiles(samples);
        println!("| {name} | {p50:.2} | {p95:.2} | {p99:.2} | 300 queries |");
    }
    let mut samples = Vec::new();
    for i in 0..300u64 {
        let started = Instant::now();
        store
            .code_stats(&format!("{:064x}", i % 10_000))
            .await
            .unwrap();
        samples.push(started.elapsed());
    }
    let (p50, p95, p99) = percentiles(samples);
    println!("| code_stats (100 runs per hash) | {p50:.2} | {p95:.2} | {p99:.2} | 300 queries |");
    graph_query_guard(&store).await;
    graph_schema(&store).await;
}

/// `graph_schema`'s store side beside the history: Neo4j's catalogue plus a per-label and
/// per-type sample of the knowledge graph (never a scan of the record).
async fn graph_schema(store: &Neo4jStore) {
    let mut samples = Vec::new();
    for _ in 0..100 {
        let started = Instant::now();
        let schema = store
            .knowledge_graph_schema(sandgraph::store::graph_schema::SAMPLE)
            .await
            .unwrap();
        samples.push(started.elapsed());
        assert!(schema.labels.iter().any(|l| l.label == "BenchPerson"));
    }
    let (p50, p95, p99) = percentiles(samples);
    println!("| graph_schema (store side) | {p50:.2} | {p95:.2} | {p99:.2} | 100 calls |");
}

/// What the graph_query guard costs: the same allowed knowledge-graph queries run three
/// ways, interleaved in one run: the query alone; `EXPLAIN` for the query type then the
/// query (the pipeline before the guard); and `EXPLAIN` + plan guard + query + row check
/// (the pipeline now). The query text is never rewritten, so its plan is the same in all.
async fn graph_query_guard(store: &Neo4jStore) {
    use sandgraph::cypher_guard::GraphScope;
    use sandgraph::store::neo4j::{QueryKind, bolt, with_params};
    let nodes: Vec<serde_json::Value> = (0..200)
        .map(|i| serde_json::json!({"key": format!("bench_person_{i}"), "properties": {"n": i}}))
        .collect();
    let links: Vec<serde_json::Value> = (0..199)
        .map(|i| serde_json::json!({"start": format!("bench_person_{i}"), "end": format!("bench_person_{}", i + 1)}))
        .collect();
    store
        .write(vec![
            neo4rs::query("UNWIND $rows AS r MERGE (n:GraphNode {key: r.key}) SET n += r.properties SET n:BenchPerson")
                .param("rows", bolt(serde_json::json!(nodes)).unwrap()),
            neo4rs::query("UNWIND $rows AS r MATCH (a:GraphNode {key: r.start}) MATCH (b:GraphNode {key: r.end}) MERGE (a)-[:BENCH_NEXT]->(b)")
                .param("rows", bolt(serde_json::json!(links)).unwrap()),
        ])
        .await
        .unwrap();
    let scope = GraphScope::KnowledgeGraph;
    for (name, cypher) in [
        ("key lookup", "MATCH (p:GraphNode {key: $key}) RETURN p"),
        (
            "2-hop path",
            "MATCH path = (p:GraphNode {key: $key})-[:BENCH_NEXT*2]->(q) RETURN path",
        ),
        (
            "aggregation",
            "MATCH (p:BenchPerson)-[:BENCH_NEXT]->(q) RETURN count(q) AS n, avg(q.n) AS mean",
        ),
    ] {
        let params = || bolt(serde_json::json!({"key": "bench_person_7"})).unwrap();
        let (mut alone, mut explain_then_run, mut guarded) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..300 {
            let started = Instant::now();
            store
                .read_caller_rows(with_params(neo4rs::query(cypher), params()), 1000)
                .await
                .unwrap();
            alone.push(started.elapsed());

            let started = Instant::now();
            let explained = store.explain(cypher, params()).await.unwrap();
            assert_eq!(explained.kind, QueryKind::Read);
            store
                .read_caller_rows(with_params(neo4rs::query(cypher), params()), 1000)
                .await
                .unwrap();
            explain_then_run.push(started.elapsed());

            let started = Instant::now();
            let explained = store.explain(cypher, params()).await.unwrap();
            assert_eq!(explained.kind, QueryKind::Read);
            scope.check_plan(&explained.plan.unwrap()).unwrap();
            let rows = store
                .read_caller_rows(with_params(neo4rs::query(cypher), params()), 1000)
                .await
                .unwrap();
            scope
                .check_returned(&rows.labels, &rows.relationship_types)
                .unwrap();
            guarded.push(started.elapsed());
        }
        for (how, samples) in [
            ("query alone", alone),
            ("EXPLAIN + query (before the guard)", explain_then_run),
            ("EXPLAIN + plan guard + query + row check (now)", guarded),
        ] {
            let (p50, p95, p99) = percentiles(samples);
            println!(
                "| graph_query {name}: {how} | {p50:.2} | {p95:.2} | {p99:.2} | 300 queries |"
            );
        }
    }
    // The plan walk alone, on the 2-hop path's plan.
    let plan = store
        .explain(
            "MATCH path = (p:GraphNode {key: $key})-[:BENCH_NEXT*2]->(q) RETURN path",
            bolt(serde_json::json!({"key": "bench_person_7"})).unwrap(),
        )
        .await
        .unwrap()
        .plan
        .unwrap();
    let started = Instant::now();
    for _ in 0..100_000 {
        scope.check_plan(std::hint::black_box(&plan)).unwrap();
    }
    let per_check = started.elapsed().as_secs_f64() / 100_000.0 * 1e6;
    println!(
        "| graph_query plan guard alone (2-hop path plan) | {:.4} | | | {per_check:.2} µs per check |",
        per_check / 1000.0
    );
}

/// A typical snippet's source text (~1 KiB), distinct per `i` so its hash is new.
fn source_text(i: u64) -> String {
    let body = "def mean(xs):\n    return sum(xs) / len(xs)\n\n".repeat(20);
    format!("# run {i}\n{body}print(mean([1, 2, 3]))\n")
}

/// What storing source costs the commit on the request path, in one run with the three
/// cases interleaved (so they share the machine's load): source storage off (the record
/// says `source_kept: false`); on, with code this process has not stored lately (the
/// commit carries the source text too: every call's cost when every call's code is new);
/// and on, with code it stored lately (only the record: the common case of repeated
/// code). The commit is the pipeline's: audit event + [code] + result, one durable
/// transaction, into the embedded history and into the outbox (Neo4j deployments).
async fn outbox_commit_source() {
    use sandgraph::store::StoredCode;
    for destination in [Destination::History, Destination::Outbox] {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("bench.db"), destination, u64::MAX).unwrap();
        let (mut off, mut new_code, mut repeated) = (Vec::new(), Vec::new(), Vec::new());
        let repeated_source = source_text(u64::MAX);
        let repeated_hash = sandgraph::tools::code_hash(&repeated_source);
        store.remember_code(repeated_hash.clone());
        for i in 0..2000u64 {
            let base = 3_000_000 + i * 3;
            let mut record_off = record(base, 1000, 10_000);
            record_off.source_kept = Some(false);
            let started = Instant::now();
            store
                .append(vec![
                    Record::Audit(audit(base)),
                    Record::Execution(record_off),
                ])
                .await
                .unwrap();
            off.push(started.elapsed());

            let source = source_text(i);
            let hash = sandgraph::tools::code_hash(&source);
            let mut record_new = record(base + 1, 1000, 10_000);
            record_new.code_hash = Some(hash.clone());
            let started = Instant::now();
            let mut records = vec![Record::Audit(audit(base + 1))];
            if !store.code_recently_stored(&hash) {
                records.push(Record::Code(StoredCode::new(
                    hash.clone(),
                    Some("python".into()),
                    source,
                    None,
                )));
            }
            records.push(Record::Execution(record_new));
            store.append(records).await.unwrap();
            store.remember_code(hash);
            new_code.push(started.elapsed());

            let mut record_repeated = record(base + 2, 1000, 10_000);
            record_repeated.code_hash = Some(repeated_hash.clone());
            let started = Instant::now();
            let mut records = vec![Record::Audit(audit(base + 2))];
            assert!(store.code_recently_stored(&repeated_hash));
            records.push(Record::Execution(record_repeated));
            store.append(records).await.unwrap();
            repeated.push(started.elapsed());
        }
        let into = match destination {
            Destination::History => "embedded history",
            Destination::Outbox => "outbox",
        };
        for (how, samples) in [
            ("source storage off", off),
            ("source on, new code (+1 KiB source text)", new_code),
            ("source on, code stored lately", repeated),
        ] {
            let (p50, p95, p99) = percentiles(samples);
            println!("| commit into the {into}, {how} | {p50:.3} | {p95:.3} | {p99:.3} | 2000 |");
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("| benchmark | p50 ms | p95 ms | p99 ms | n / rate |\n|---|---|---|---|---|");
    runtime.block_on(outbox_commit());
    runtime.block_on(outbox_commit_source());
    match std::env::var("NEO4J_URI") {
        Ok(uri) => runtime.block_on(neo4j_benches(uri)),
        Err(_) => println!("(NEO4J_URI not set: Neo4j benchmarks skipped)"),
    }
}

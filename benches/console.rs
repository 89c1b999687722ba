//! The console's history page against a large history in Neo4j (harness = false): the
//! time from sending `GET /ui/history` (signed in, with and without filters) to the last
//! byte of the rendered page, over loopback, against the real server binary. That is the
//! server's time plus one loopback round trip. Each page is one `execution_history` call
//! through the pipeline (token check, a durable audit commit, the Neo4j query) and the
//! template.
//!
//! Run after `cargo bench --bench store` has filled Neo4j (BENCH_HISTORY_RECORDS,
//! default 1,000,000 records over 1,000 callers and 10,000 code hashes):
//!
//! ```text
//! NEO4J_URI=bolt://127.0.0.1:17688 cargo bench --bench console
//! ```

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{guest_dir, loadavg, machine, target_dir};

const TOKEN: &str = "sg_bench_console_admin_token_0123456789";

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let at = |q: f64| {
        samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.95), at(0.99))
}

async fn execution_records(uri: &str) -> i64 {
    let graph = neo4rs::Graph::connect(
        neo4rs::ConfigBuilder::default()
            .uri(uri)
            .user("neo4j")
            .password("")
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut rows = graph
        .execute(neo4rs::query("MATCH (e:Execution) RETURN count(e) AS n"))
        .await
        .unwrap();
    let row = rows.next().await.unwrap().unwrap();
    row.get::<i64>("n").unwrap()
}

fn main() {
    let Ok(uri) = std::env::var("NEO4J_URI") else {
        println!("(NEO4J_URI not set: the console benchmark needs Neo4j with a history in it)");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let records = runtime.block_on(execution_records(&uri));
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandgraph"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("NEO4J_URI", &uri)
        .env("SANDGRAPH_DATA_DIR", data_dir.path())
        .env("SANDGRAPH_GUEST_DIR", guest_dir())
        .env(
            "SANDGRAPH_COMPILED_CACHE_DIR",
            target_dir().join("test-compiled-guests"),
        )
        .env("SANDGRAPH_ADMIN_TOKEN", TOKEN)
        .env("SANDGRAPH_RATE_LIMIT", "1000000/second burst 1000000")
        // The generated records are dated 2023: the retention sweep (30 s after start)
        // would delete them mid-run.
        .env("SANDGRAPH_HISTORY_RETENTION_DAYS", "0")
        .env("SANDGRAPH_AUDIT_RETENTION_DAYS", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting sandgraph");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("sandgraph exited").unwrap();
        if let Some(address) = line.strip_prefix("listening on ") {
            break address.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    println!(
        "Console history page, {records} execution records in Neo4j; {}; load {}\n",
        machine(),
        loadavg()
    );
    println!("| page | p50 ms | p95 ms | p99 ms | n |\n|---|---|---|---|---|");
    let pages = [
        ("history, newest 50 (no filter)", "/ui/history".to_owned()),
        (
            "history by caller (1 of 1000)",
            "/ui/history?caller=caller-7".to_owned(),
        ),
        (
            "history by code hash",
            format!("/ui/history?code_hash={:064x}", 42),
        ),
        (
            "history by caller + since",
            "/ui/history?caller=caller-9&since=2023-11-14T22:13:30Z".to_owned(),
        ),
        (
            "history by tool + outcome",
            "/ui/history?tool=execute_code&outcome=error".to_owned(),
        ),
        (
            "code stats page (100 runs, chart)",
            format!("/ui/code/{:064x}", 42),
        ),
    ];
    runtime.block_on(async {
        for (name, path) in &pages {
            let url = format!("{base}{path}");
            let get = || {
                client
                    .get(&url)
                    .header("cookie", format!("sandgraph_session={TOKEN}"))
                    .send()
            };
            for _ in 0..20 {
                let response = get().await.unwrap();
                assert_eq!(response.status(), 200, "{path}");
                let page = response.text().await.unwrap();
                assert!(
                    page.contains("href=\"/ui/runs/") || path.starts_with("/ui/code"),
                    "{path}: no records on the page; run the store bench first"
                );
            }
            let mut samples = Vec::new();
            for _ in 0..300 {
                let started = Instant::now();
                let response = get().await.unwrap();
                let _ = response.bytes().await.unwrap();
                samples.push(started.elapsed());
            }
            let (p50, p95, p99) = percentiles(samples);
            println!("| {name} | {p50:.2} | {p95:.2} | {p99:.2} | 300 |");
        }
    });
    let after = runtime.block_on(execution_records(&uri));
    assert_eq!(
        after, records,
        "records changed while the pages were measured"
    );
    let _ = child.kill();
    let _ = child.wait();
}

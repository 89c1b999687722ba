//! Toolbox benchmarks (harness = false): `lint_code` on a 50-line file, `run_tests` with 3
//! tests and `generate_code`, each in-process (the tool function, cache off) and over
//! loopback HTTP against the release binary (cache off); then cache hits over HTTP with
//! authentication and rate limiting on: p50 at concurrency 1 and throughput with 32
//! keep-alive workers. The load generator shares the 2 cores with the server.
//!
//! ```text
//! cargo bench --bench toolbox
//! SANDGRAPH_BIN=/path/to/other/sandgraph cargo bench --bench toolbox   # HTTP rows against another build
//! ```

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandgraph::audit::{CallContext, Transport};
use sandgraph::auth::{Caller, TokenStore};
use sandgraph::config::Config;
use sandgraph::sandbox::Sandbox;
use sandgraph::store::sqlite::{Destination, SqliteStore};
use sandgraph::tools::{self, Tools};
use serde_json::{Value, json};

use common::LINT_FILE;

const TESTS_FILE: &str = "def add(a, b):\n    return a + b\n\n\ndef test_add():\n    assert add(1, 2) == 3\n\n\ndef test_negative():\n    assert add(-1, -2) == -3\n\n\ndef test_strings():\n    assert add('a', 'b') == 'ab'\n";

fn p50_p95_p99(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let at = |q: f64| {
        samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.95), at(0.99))
}

fn row(name: &str, samples: Vec<Duration>, target: &str) {
    let n = samples.len();
    let (p50, p95, p99) = p50_p95_p99(samples);
    println!("| {name} | {p50:.2} | {p95:.2} | {p99:.2} | {n} | {target} |");
}

async fn in_process(root: &std::path::Path) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let mut config = Config {
        data_dir: data.path().to_owned(),
        guest_dir: root.join("build/guest"),
        compiled_cache_dir: Some(root.join("target/test-compiled-guests")),
        ..Default::default()
    };
    config.rate_limits.default = "1000000/second".into();
    let config = Arc::new(config);
    let sandbox = Sandbox::new(config.sandbox_config())?;
    let tokens = Arc::new(TokenStore::open(&config.database_path())?);
    let store = SqliteStore::open(&config.database_path(), Destination::History, u64::MAX)?;
    let tools = Tools::new(sandbox, config.clone(), tokens, store.clone(), store, None)?;
    let ctx = CallContext::new(Caller::local_user(), Transport::McpStdio);

    let mut samples = Vec::new();
    for i in 0..120 {
        let request: tools::lint::LintRequest =
            serde_json::from_value(json!({"code": format!("{LINT_FILE}# {i}\n"), "cache": false}))?;
        let started = Instant::now();
        tools::lint::lint_code(&tools, &ctx, request).await?;
        if i >= 20 {
            samples.push(started.elapsed());
        }
    }
    row("lint_code 50 lines, in-process", samples, "<= 20 ms");

    // The parts of a ruff lint, alone: the module summary (ruff's parser, on this thread)
    // and one request to the ruff worker.
    let mut samples = Vec::new();
    for i in 0..2000 {
        let code = format!("{LINT_FILE}# {i}\n");
        let started = Instant::now();
        let summary = tools::lint_summary::summarize(&code);
        if i >= 100 {
            samples.push(started.elapsed());
        }
        assert_eq!(summary.map(|s| s.functions.len()).ok(), Some(6));
    }
    row("lint summary 50 lines (ruff's parser, host)", samples, "-");
    let mut samples = Vec::new();
    let never = sandgraph::sandbox::CancellationToken::new();
    for i in 0..1000 {
        let code = format!("{LINT_FILE}# {i}\n");
        let started = Instant::now();
        let found = tools
            .ruff
            .lint(&code, &Default::default(), Duration::from_secs(10), &never)
            .await?;
        if i >= 100 {
            samples.push(started.elapsed());
        }
        assert!(!found.is_empty());
    }
    row("ruff worker request 50 lines", samples, "-");

    let mut samples = Vec::new();
    for i in 0..60 {
        let request: tools::test::RunTestsRequest = serde_json::from_value(
            json!({"code": format!("{TESTS_FILE}# {i}\n"), "cache": false}),
        )?;
        let started = Instant::now();
        let response = tools::test::run_tests(&tools, &ctx, request).await?;
        assert_eq!(response.summary.passed, 3);
        if i >= 10 {
            samples.push(started.elapsed());
        }
    }
    row("run_tests 3 tests, in-process", samples, "<= 80 ms");

    let mut samples = Vec::new();
    for i in 0..2000 {
        let request: tools::generate::GenerateRequest = serde_json::from_value(json!({
            "template": "def {{ name }}({{ args | join(', ') }}):\n    return {{ body }}\n",
            "context": {"name": format!("f{i}"), "args": ["a", "b"], "body": "a + b"}
        }))?;
        let started = Instant::now();
        tools::generate::generate_code(&tools, &ctx, request).await?;
        if i >= 100 {
            samples.push(started.elapsed());
        }
    }
    row("generate_code, in-process", samples, "<= 1 ms");
    Ok(())
}

async fn over_http(root: &std::path::Path) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let token = "sg_bench_admin_token_0123456789";
    let bin = std::env::var_os("SANDGRAPH_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_sandgraph").into());
    let mut server = Command::new(bin)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("SANDGRAPH_DATA_DIR", data.path())
        .env("SANDGRAPH_GUEST_DIR", root.join("build/guest"))
        .env(
            "SANDGRAPH_COMPILED_CACHE_DIR",
            root.join("target/test-compiled-guests"),
        )
        .env("SANDGRAPH_ADMIN_TOKEN", token)
        // Rate limiting stays on, with a budget the benchmark cannot exhaust.
        .env("SANDGRAPH_RATE_LIMIT", "1000000/second burst 1000000")
        .env("RUST_LOG", "warn")
        .env_remove("NEO4J_URI")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().unwrap()?;
        if let Some(address) = line.strip_prefix("listening on ") {
            break address.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse()?,
    );
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()?;

    async fn timed(client: &reqwest::Client, url: &str, body: Value) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let response = client.post(url).json(&body).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "status {}",
            response.status()
        );
        response.bytes().await?;
        Ok(started.elapsed())
    }

    let mut samples = Vec::new();
    for i in 0..120 {
        let took = timed(
            &client,
            &format!("{base}/lint_code"),
            json!({"code": format!("{LINT_FILE}# {i}\n"), "cache": false}),
        )
        .await?;
        if i >= 20 {
            samples.push(took);
        }
    }
    row("lint_code 50 lines, HTTP", samples, "<= 20 ms");
    let mut samples = Vec::new();
    for i in 0..60 {
        let took = timed(
            &client,
            &format!("{base}/run_tests"),
            json!({"code": format!("{TESTS_FILE}# {i}\n"), "cache": false}),
        )
        .await?;
        if i >= 10 {
            samples.push(took);
        }
    }
    row("run_tests 3 tests, HTTP", samples, "<= 80 ms");
    let mut samples = Vec::new();
    for i in 0..2000 {
        let took = timed(
            &client,
            &format!("{base}/generate_code"),
            json!({"template": "x = {{ n }}", "context": {"n": i}}),
        )
        .await?;
        if i >= 100 {
            samples.push(took);
        }
    }
    row(
        "generate_code, HTTP",
        samples,
        "<= 1 ms (in-process target)",
    );

    // Cache hits: one identical request, auth + rate limit on.
    let hit = json!({"code": "print('cached')"});
    timed(&client, &format!("{base}/execute_code"), hit.clone()).await?;
    let mut samples = Vec::new();
    for i in 0..3000 {
        let took = timed(&client, &format!("{base}/execute_code"), hit.clone()).await?;
        if i >= 200 {
            samples.push(took);
        }
    }
    row(
        "execute_code cache hit, HTTP, 1 worker",
        samples,
        "p50 <= 1 ms",
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut workers = Vec::new();
    for _ in 0..32 {
        let (client, url, hit) = (client.clone(), format!("{base}/execute_code"), hit.clone());
        workers.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                if timed(&client, &url, hit.clone()).await.is_ok() {
                    done += 1;
                }
            }
            done
        }));
    }
    let mut total = 0;
    for w in workers {
        total += w.await?;
    }
    println!(
        "| execute_code cache hits, HTTP, 32 workers, 10 s | | | | {total} | {:.0} req/s (target >= 20,000) |",
        total as f64 / 10.0
    );
    let _ = server.kill();
    let _ = server.wait();
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!("| benchmark | p50 ms | p95 ms | p99 ms | n | target |\n|---|---|---|---|---|---|");
    runtime.block_on(in_process(&root))?;
    runtime.block_on(over_http(&root))?;
    Ok(())
}

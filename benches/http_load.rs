//! HTTP load generator for `POST /execute_code` and `POST /lint_code`.
//!
//! Starts the `sandgraph` binary cargo built for this bench (or `SANDGRAPH_BIN`, or uses
//! `--url` against a server already running), then runs each scenario with C concurrent
//! keep-alive workers for a fixed duration (or a fixed count) and reports p50/p95/p99
//! latency, throughput, errors and the server's memory: VmRSS at the end, VmHWM = peak
//! since the scenario began (reset per scenario through `/proc/PID/clear_refs`), and the
//! largest sampled PSS and anonymous RSS. RSS counts the compiled guest's file-backed pages
//! once per live instance mapping them; PSS counts each physical page once.
//!
//! ```text
//! cargo bench --bench http_load                         # every scenario
//! cargo bench --bench http_load -- py_c1 sleep          # a scenario by name, or names containing a word
//! cargo bench --bench http_load -- --duration 5
//! cargo bench --bench http_load -- --url http://127.0.0.1:8000 --pid 1234 \
//!     --header 'Authorization: Bearer X'
//! ```
//!
//! Options:
//! * `--duration SECS` (default 10): length of each timed scenario, after a 1 s warm-up.
//! * `--header 'Name: value'` (repeatable): sent with every request.
//! * `--url URL`: load an existing server instead of starting one; `--pid PID` to read
//!   its memory.
//! * `--server-env KEY=VALUE` (repeatable): extra environment for the started server.
//! * `--out FILE` (default `http_load.md`): the results file under `target/bench-results/`.
//! * `--list`: print the scenarios and exit.
//!
//! The started server gets a bench admin token (`SANDGRAPH_ADMIN_TOKEN`, sent as a bearer
//! token) and an effectively unlimited rate limit, so it can be loaded once authentication
//! and rate limiting are on; a server without them ignores both.
//!
//! "uncached" scenarios make every request's code unique (a trailing comment with a
//! counter) so a result cache can never answer them; "cached" scenarios repeat one
//! identical request.
//!
//! The `subprocess` scenarios are the executor of the platform sandgraph replaces:
//! `python3 -c "print('hi')"` spawned per request, in this process, timed with the same
//! histogram (no HTTP, so it is flattered slightly). `BENCH_PYTHON` picks the interpreter
//! (default /usr/bin/python3, else `python3` on PATH).
//!
//! The `lint` scenarios post a 50-line file to `/lint_code` (ruff workers; the
//! `lint_guest` ones on a server of their own started with `SANDGRAPH_LINTER=guest`, the
//! linter before ruff); `ruff_subprocess` is the old platform's lint path, a temporary file
//! and `ruff check` spawned per request, in this process (`BENCH_RUFF`, default the ruff
//! `make guest` put in build/guest).
//!
//! The table is printed and written to `target/bench-results/http_load.md` (or `--out`).

mod common;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use common::{LINT_FILE, loadavg, machine, repo_root, target_dir};
use hdrhistogram::Histogram;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

const BENCH_TOKEN: &str = "sgbench-0123456789abcdef0123456789abcdef";

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

struct Options {
    duration: Duration,
    headers: Vec<(String, String)>,
    url: Option<String>,
    pid: Option<u32>,
    server_env: Vec<(String, String)>,
    filters: Vec<String>,
    list: bool,
    out: String,
}

fn parse_options() -> anyhow::Result<Options> {
    let mut options = Options {
        duration: Duration::from_secs(10),
        headers: Vec::new(),
        url: None,
        pid: None,
        server_env: Vec::new(),
        filters: Vec::new(),
        list: false,
        out: "http_load.md".to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            // cargo bench passes `--bench` to every harness = false target.
            "--bench" => {}
            "--duration" => {
                let secs: f64 = value("--duration")?.parse().context("--duration")?;
                options.duration = Duration::from_secs_f64(secs);
            }
            "--header" | "-H" => {
                let h = value("--header")?;
                let (name, val) = h
                    .split_once(':')
                    .with_context(|| format!("--header {h:?}: expected 'Name: value'"))?;
                options
                    .headers
                    .push((name.trim().to_owned(), val.trim().to_owned()));
            }
            "--url" => options.url = Some(value("--url")?.trim_end_matches('/').to_owned()),
            "--pid" => options.pid = Some(value("--pid")?.parse().context("--pid")?),
            "--server-env" => {
                let kv = value("--server-env")?;
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("--server-env {kv:?}: expected KEY=VALUE"))?;
                options.server_env.push((k.to_owned(), v.to_owned()));
            }
            "--list" => options.list = true,
            "--out" => options.out = value("--out")?,
            other if other.starts_with('-') => bail!("unknown option {other}"),
            other => options.filters.push(other.to_owned()),
        }
    }
    Ok(options)
}

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Kind {
    /// Requests against the server; unique code per request unless `cached`.
    Http {
        language: &'static str,
        code: &'static str,
        expect: &'static str,
        cached: bool,
    },
    /// `count` requests fired at once, all held open (memory with many live instances).
    Burst {
        code: &'static str,
        count: usize,
        rounds: usize,
    },
    /// python `print('hi')` (uncached) while `spinners` runs of `while True: pass` from
    /// another caller keep going; only the short calls are measured.
    Spinners { spinners: usize },
    /// `python3 -c` spawned per request, in this process.
    Subprocess,
    /// `POST /lint_code` of the 50-line file, unique per request (a trailing comment).
    Lint,
    /// The old platform's lint path: the file written to a temporary file and `ruff check`
    /// spawned on it per request, in this process.
    RuffSubprocess,
    /// `GET /workspaces/{id}/files/{path}` of a `bytes`-long file written once before.
    Download { bytes: usize },
}

struct Scenario {
    name: &'static str,
    what: &'static str,
    concurrency: usize,
    kind: Kind,
    /// Extra environment for a server of this scenario's own (started for it and stopped
    /// after it); empty = the shared server.
    server_env: &'static [(&'static str, &'static str)],
}

/// The linter `lint_code` used before ruff: pyflakes + pycodestyle + mccabe in the guest.
const GUEST_LINTER: &[(&str, &str)] = &[("SANDGRAPH_LINTER", "guest")];

fn scenarios() -> Vec<Scenario> {
    let py = Kind::Http {
        language: "python",
        code: "print('hi')",
        expect: "hi\n",
        cached: false,
    };
    let js = Kind::Http {
        language: "javascript",
        code: "console.log('hi')",
        expect: "hi\n",
        cached: false,
    };
    let py_cached = Kind::Http {
        language: "python",
        code: "print('hi')",
        expect: "hi\n",
        cached: true,
    };
    vec![
        Scenario {
            name: "py_c1",
            what: "python print('hi'), uncached",
            concurrency: 1,
            kind: py,
            server_env: &[],
        },
        Scenario {
            name: "py_c8",
            what: "python print('hi'), uncached",
            concurrency: 8,
            kind: py,
            server_env: &[],
        },
        Scenario {
            name: "py_c16",
            what: "python print('hi'), uncached",
            concurrency: 16,
            kind: py,
            server_env: &[],
        },
        Scenario {
            name: "js_c1",
            what: "javascript console.log('hi'), uncached",
            concurrency: 1,
            kind: js,
            server_env: &[],
        },
        Scenario {
            name: "js_c8",
            what: "javascript console.log('hi'), uncached",
            concurrency: 8,
            kind: js,
            server_env: &[],
        },
        Scenario {
            name: "py_cached_c8",
            what: "python print('hi'), identical request repeated",
            concurrency: 8,
            kind: py_cached,
            server_env: &[],
        },
        Scenario {
            name: "py_cached_c32",
            what: "python print('hi'), identical request repeated",
            concurrency: 32,
            kind: py_cached,
            server_env: &[],
        },
        Scenario {
            name: "spinners",
            what: "python print('hi'), uncached, beside 2 x cores `while True: pass` runs of another caller",
            concurrency: 1,
            kind: Kind::Spinners {
                spinners: 2 * std::thread::available_parallelism().map_or(2, |n| n.get()),
            },
            server_env: &[],
        },
        Scenario {
            name: "ws_read_1mib",
            what: "download a 1 MiB workspace file (REST), written once before",
            concurrency: 1,
            kind: Kind::Download { bytes: 1 << 20 },
            server_env: &[],
        },
        Scenario {
            name: "sleep64",
            what: "64 x `import time; time.sleep(1)` held at once, 3 rounds",
            concurrency: 64,
            kind: Kind::Burst {
                code: "import time; time.sleep(1)",
                count: 64,
                rounds: 3,
            },
            server_env: &[],
        },
        Scenario {
            name: "subprocess_c1",
            what: "baseline: spawn `python3 -c \"print('hi')\"` per request (no HTTP)",
            concurrency: 1,
            kind: Kind::Subprocess,
            server_env: &[],
        },
        Scenario {
            name: "subprocess_c8",
            what: "baseline: spawn `python3 -c \"print('hi')\"` per request (no HTTP)",
            concurrency: 8,
            kind: Kind::Subprocess,
            server_env: &[],
        },
        Scenario {
            name: "lint_c1",
            what: "lint_code of a 50-line file (ruff server workers + the summary from ruff's parser), uncached",
            concurrency: 1,
            kind: Kind::Lint,
            server_env: &[],
        },
        Scenario {
            name: "lint_c8",
            what: "lint_code of a 50-line file (ruff server workers + the summary from ruff's parser), uncached",
            concurrency: 8,
            kind: Kind::Lint,
            server_env: &[],
        },
        Scenario {
            name: "lint_guest_c1",
            what: "before: lint_code with SANDGRAPH_LINTER=guest (pyflakes + pycodestyle + mccabe in the guest), uncached",
            concurrency: 1,
            kind: Kind::Lint,
            server_env: GUEST_LINTER,
        },
        Scenario {
            name: "lint_guest_c8",
            what: "before: lint_code with SANDGRAPH_LINTER=guest (pyflakes + pycodestyle + mccabe in the guest), uncached",
            concurrency: 8,
            kind: Kind::Lint,
            server_env: GUEST_LINTER,
        },
        Scenario {
            name: "ruff_subprocess_c1",
            what: "old platform's lint path: temp file + `ruff check` spawned per request (no HTTP)",
            concurrency: 1,
            kind: Kind::RuffSubprocess,
            server_env: &[],
        },
        Scenario {
            name: "ruff_subprocess_c8",
            what: "old platform's lint path: temp file + `ruff check` spawned per request (no HTTP)",
            concurrency: 8,
            kind: Kind::RuffSubprocess,
            server_env: &[],
        },
    ]
}

// ---------------------------------------------------------------------------------------
// The server under test
// ---------------------------------------------------------------------------------------

struct Server {
    child: Option<Child>,
    base: String,
    pid: Option<u32>,
    _data_dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn server_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SANDGRAPH_BIN") {
        return PathBuf::from(bin);
    }
    // Cargo builds the package's binaries (bench profile = release settings) before
    // running a bench and tells us where.
    PathBuf::from(env!("CARGO_BIN_EXE_sandgraph"))
}

fn start_server(options: &Options, extra_env: &[(&str, &str)]) -> anyhow::Result<Server> {
    if let Some(url) = &options.url {
        return Ok(Server {
            child: None,
            base: url.clone(),
            pid: options.pid,
            _data_dir: None,
        });
    }
    let bin = server_binary();
    let data_dir = tempfile::tempdir()?;
    let root = repo_root();
    let mut command = Command::new(&bin);
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("SANDGRAPH_DATA_DIR", data_dir.path())
        .env(
            "SANDGRAPH_GUEST_DIR",
            std::env::var_os("SANDGRAPH_GUEST_DIR")
                .unwrap_or_else(|| root.join("build/guest").into()),
        )
        .env(
            "SANDGRAPH_COMPILED_CACHE_DIR",
            std::env::var_os("SANDGRAPH_COMPILED_CACHE_DIR")
                .unwrap_or_else(|| target_dir().join("test-compiled-guests").into()),
        )
        .env("SANDGRAPH_ADMIN_TOKEN", BENCH_TOKEN)
        .env("SANDGRAPH_RATE_LIMIT", "1000000/second burst 1000000")
        .env(
            "RUST_LOG",
            std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".to_owned()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in &options.server_env {
        command.env(k, v);
    }
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = child.stdout.take().context("stdout piped")?;
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let Some(line) = lines.next() else {
            let status = child.wait()?;
            bail!("{} exited ({status}) before listening", bin.display());
        };
        if let Some(address) = line?.strip_prefix("listening on ") {
            break address.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    eprintln!(
        "server {} (pid {}) listening on {base} after {:.2} s",
        bin.display(),
        child.id(),
        started.elapsed().as_secs_f64()
    );
    Ok(Server {
        pid: Some(child.id()),
        child: Some(child),
        base,
        _data_dir: Some(data_dir),
    })
}

/// (VmRSS, VmHWM) in KiB.
fn memory(pid: Option<u32>) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    Some((
        proc_field(&status, "VmRSS:")?,
        proc_field(&status, "VmHWM:")?,
    ))
}

/// Reset the peak-RSS counter (VmHWM) so it reflects the next scenario only.
fn reset_peak(pid: Option<u32>) -> bool {
    pid.is_some_and(|pid| std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok())
}

/// A `Name:   123 kB` field of a /proc file, in KiB.
fn proc_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
}

/// Largest samples seen while a scenario ran, in KiB.
#[derive(Default, Clone, Copy)]
struct Sampled {
    rss: u64,
    /// Proportional set size: a page mapped N times counts 1/N per mapping, so the
    /// compiled guest's file pages, mapped once per live instance, count once.
    pss: u64,
    /// Anonymous memory (heap, stacks, copied-on-write guest pages).
    anon: u64,
}

/// Sample VmRSS, RssAnon and Pss (smaps_rollup) every 20 ms until stopped.
fn spawn_rss_sampler(pid: Option<u32>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Sampled> {
    std::thread::spawn(move || {
        let mut peak = Sampled::default();
        let Some(pid) = pid else { return peak };
        while !stop.load(Ordering::Relaxed) {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                peak.rss = peak.rss.max(proc_field(&status, "VmRSS:").unwrap_or(0));
                peak.anon = peak.anon.max(proc_field(&status, "RssAnon:").unwrap_or(0));
            }
            if let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
                peak.pss = peak.pss.max(proc_field(&rollup, "Pss:").unwrap_or(0));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    })
}

// ---------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Outcome {
    histogram: Option<Histogram<u64>>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    rss_kib: Option<u64>,
    peak_kib: Option<u64>,
    sampled: Option<Sampled>,
    peak_reset: bool,
    /// Server CPU time (user + system) during the timed part.
    cpu_seconds: Option<f64>,
}

/// utime + stime of `pid` and of its live children (the `ruff server` workers), in clock
/// ticks.
fn cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let pid = pid?;
    let mut ticks = own_cpu_ticks(pid)?;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                ticks += own_cpu_ticks(child).unwrap_or(0);
            }
        }
    }
    Some(ticks)
}

/// utime + stime of `pid` alone, in clock ticks.
fn own_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The kernel's USER_HZ (100 on Linux everywhere that matters).
fn clock_ticks_per_second() -> f64 {
    100.0
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

struct Shared {
    client: reqwest::Client,
    client_headers: HeaderMap,
    base: String,
    counter: AtomicU64,
    /// The download URL and size of the file the `Download` scenarios read.
    download: std::sync::OnceLock<(String, usize)>,
}

/// Create a workspace holding a `bytes`-long file; its download URL.
async fn prepare_download(shared: &Shared, bytes: usize) -> anyhow::Result<String> {
    use base64::Engine as _;
    let created = shared
        .client
        .post(format!("{}/workspaces", shared.base))
        .json(&json!({}))
        .send()
        .await?;
    let status = created.status();
    let created: Value = created.json().await?;
    let Some(id) = created["workspace_id"].as_str() else {
        bail!("create_workspace: HTTP {status}: {created}");
    };
    let content: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
    let written = shared
        .client
        .post(format!("{}/workspaces/{id}/files", shared.base))
        .json(&json!({
            "path": "big.bin",
            "content_base64": base64::engine::general_purpose::STANDARD.encode(&content),
        }))
        .send()
        .await?;
    if !written.status().is_success() {
        bail!(
            "write_file: HTTP {}: {}",
            written.status(),
            written.text().await?
        );
    }
    Ok(format!("{}/workspaces/{id}/files/big.bin", shared.base))
}

async fn download_once(shared: &Shared) -> anyhow::Result<()> {
    let (url, bytes) = shared.download.get().context("no file to download")?;
    let response = shared.client.get(url).send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if !status.is_success() || body.len() != *bytes {
        bail!("download: HTTP {status}, {} bytes", body.len());
    }
    Ok(())
}

/// One request; `Ok(())` when the run printed what was expected.
async fn http_once(
    shared: &Shared,
    language: &str,
    code: &str,
    expect: &str,
    cached: bool,
) -> anyhow::Result<()> {
    let code = if cached {
        code.to_owned()
    } else {
        let n = shared.counter.fetch_add(1, Ordering::Relaxed);
        let comment = if language == "python" { "#" } else { "//" };
        format!("{code} {comment} {n}")
    };
    let response = shared
        .client
        .post(format!("{}/execute_code", shared.base))
        .json(&json!({"code": code, "language": language, "timeout_seconds": 8}))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("HTTP {status}: {body}");
    }
    if body["return_code"] != 0 || body["stdout"] != expect {
        bail!("unexpected result: {body}");
    }
    Ok(())
}

/// One uncached `lint_code` of the 50-line file; it must report the unused `import sys`.
async fn lint_once(shared: &Shared) -> anyhow::Result<()> {
    let n = shared.counter.fetch_add(1, Ordering::Relaxed);
    let response = shared
        .client
        .post(format!("{}/lint_code", shared.base))
        .json(&json!({"code": format!("{LINT_FILE}# {n}\n")}))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("HTTP {status}: {body}");
    }
    let unused_sys = body["diagnostics"].as_array().is_some_and(|d| {
        d.iter().any(|d| {
            d["code"] == "F401" && d["message"].as_str().is_some_and(|m| m.contains("sys"))
        })
    });
    if !unused_sys || body["functions"].as_array().map(Vec::len) != Some(6) {
        bail!("unexpected lint result: {body}");
    }
    Ok(())
}

/// The old platform's lint: write the code to a temporary file, spawn `ruff check` on it.
async fn ruff_subprocess_once(shared: &Shared, ruff: &std::path::Path) -> anyhow::Result<()> {
    let n = shared.counter.fetch_add(1, Ordering::Relaxed);
    let file = tempfile::Builder::new().suffix(".py").tempfile()?;
    tokio::fs::write(file.path(), format!("{LINT_FILE}# {n}\n")).await?;
    let output = tokio::process::Command::new(ruff)
        .args(["check", "--no-cache", "--output-format", "concise"])
        .arg(file.path())
        .stdin(Stdio::null())
        .output()
        .await?;
    let text = String::from_utf8_lossy(&output.stdout);
    if output.status.code() != Some(1) || !text.contains("F401") {
        bail!("ruff check: {:?}: {text}", output.status);
    }
    Ok(())
}

/// The ruff binary `make guest` put beside the guests (`BENCH_RUFF` overrides).
fn bench_ruff() -> PathBuf {
    std::env::var_os("BENCH_RUFF").map_or_else(
        || {
            std::env::var_os("SANDGRAPH_GUEST_DIR")
                .map_or_else(|| repo_root().join("build/guest"), PathBuf::from)
                .join("ruff")
        },
        PathBuf::from,
    )
}

async fn subprocess_once(python: &str) -> anyhow::Result<()> {
    let output = tokio::process::Command::new(python)
        .args(["-c", "print('hi')"])
        .stdin(Stdio::null())
        .output()
        .await?;
    if !output.status.success() || output.stdout != b"hi\n" {
        bail!("python3 failed: {:?}", output);
    }
    Ok(())
}

fn subprocess_python() -> String {
    std::env::var("BENCH_PYTHON").unwrap_or_else(|_| {
        if std::path::Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3".to_owned()
        } else {
            "python3".to_owned()
        }
    })
}

/// C workers, each looping until `deadline`; returns the merged histogram and counts.
async fn closed_loop(
    shared: Arc<Shared>,
    scenario: &Scenario,
    duration: Duration,
    record: bool,
) -> Outcome {
    let deadline = Instant::now() + duration;
    let kind = scenario.kind;
    let python = Arc::new(subprocess_python());
    let ruff = Arc::new(bench_ruff());
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..scenario.concurrency {
        let shared = shared.clone();
        let python = python.clone();
        let ruff = ruff.clone();
        workers.push(tokio::spawn(async move {
            let mut h = new_histogram();
            let (mut ok, mut errors, mut first_error) = (0u64, 0u64, None);
            while Instant::now() < deadline {
                let t = Instant::now();
                let result = match kind {
                    Kind::Http {
                        language,
                        code,
                        expect,
                        cached,
                    } => http_once(&shared, language, code, expect, cached).await,
                    Kind::Spinners { .. } => {
                        http_once(&shared, "python", "print('hi')", "hi\n", false).await
                    }
                    Kind::Subprocess => subprocess_once(&python).await,
                    Kind::Lint => lint_once(&shared).await,
                    Kind::RuffSubprocess => ruff_subprocess_once(&shared, &ruff).await,
                    Kind::Download { .. } => download_once(&shared).await,
                    Kind::Burst { .. } => unreachable!(),
                };
                let us = (t.elapsed().as_micros() as u64).clamp(1, 600_000_000);
                match result {
                    Ok(()) => {
                        ok += 1;
                        h.saturating_record(us);
                    }
                    Err(err) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{err:#}"));
                    }
                }
            }
            (h, ok, errors, first_error)
        }));
    }
    let mut outcome = Outcome::default();
    let mut merged = new_histogram();
    for worker in workers {
        let (h, ok, errors, first_error) = worker.await.expect("worker");
        merged.add(h).expect("merge histograms");
        outcome.ok += ok;
        outcome.errors += errors;
        if outcome.first_error.is_none() {
            outcome.first_error = first_error;
        }
    }
    outcome.elapsed = started.elapsed();
    if record {
        outcome.histogram = Some(merged);
    }
    outcome
}

/// `count` requests at once, `rounds` times; each round waits for all of them.
async fn burst(shared: Arc<Shared>, code: &'static str, count: usize, rounds: usize) -> Outcome {
    let mut outcome = Outcome::default();
    let mut merged = new_histogram();
    let started = Instant::now();
    for _ in 0..rounds {
        let mut tasks = Vec::new();
        for _ in 0..count {
            let shared = shared.clone();
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let r = http_once(&shared, "python", code, "", false).await;
                (t.elapsed(), r)
            }));
        }
        for task in tasks {
            let (elapsed, result) = task.await.expect("burst task");
            match result {
                Ok(()) => {
                    outcome.ok += 1;
                    merged.saturating_record((elapsed.as_micros() as u64).max(1));
                }
                Err(err) => {
                    outcome.errors += 1;
                    outcome
                        .first_error
                        .get_or_insert_with(|| format!("{err:#}"));
                }
            }
        }
    }
    outcome.elapsed = started.elapsed();
    outcome.histogram = Some(merged);
    outcome
}

/// `count` callers' worth of `while True: pass` (3 s each, restarted as they time out),
/// from a caller of their own (an agent token made for them).
async fn start_spinners(shared: &Arc<Shared>, count: usize) -> Vec<tokio::task::JoinHandle<()>> {
    let created: Value = match shared
        .client
        .post(format!("{}/admin/tokens", shared.base))
        .json(&json!({"role": "agent", "name": "bench-spinner"}))
        .send()
        .await
    {
        Ok(response) => response.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    let mut client = reqwest::Client::builder().timeout(Duration::from_secs(60));
    if let Some(token) = created["token"].as_str() {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        client = client.default_headers(headers);
    } else {
        eprintln!("could not create a spinner token ({created}); spinning as the bench caller");
        client = client.default_headers(shared.client_headers.clone());
    }
    let client = client.build().expect("spinner client");
    let mut tasks = Vec::new();
    for _ in 0..count {
        let (client, base, shared) = (client.clone(), shared.base.clone(), shared.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = shared.counter.fetch_add(1, Ordering::Relaxed);
                let _ = client
                    .post(format!("{base}/execute_code"))
                    .json(&json!({"code": format!("while True: pass # {n}"), "timeout_seconds": 3}))
                    .send()
                    .await;
            }
        }));
    }
    // Let them all start.
    tokio::time::sleep(Duration::from_millis(500)).await;
    tasks
}

async fn run_scenario(
    shared: Arc<Shared>,
    scenario: &Scenario,
    options: &Options,
    pid: Option<u32>,
) -> Outcome {
    let in_server = !matches!(scenario.kind, Kind::Subprocess | Kind::RuffSubprocess);
    let spinning = match scenario.kind {
        Kind::Spinners { spinners } => Some(start_spinners(&shared, spinners).await),
        _ => None,
    };
    if let Kind::Download { bytes } = scenario.kind
        && shared.download.get().is_none()
    {
        match prepare_download(&shared, bytes).await {
            Ok(url) => {
                let _ = shared.download.set((url, bytes));
            }
            Err(err) => eprintln!("{}: could not prepare the file: {err:#}", scenario.name),
        }
    }
    if !matches!(scenario.kind, Kind::Burst { .. }) {
        // Warm-up: connections, allocator, page cache.
        let _ = closed_loop(shared.clone(), scenario, Duration::from_secs(1), false).await;
    }
    let peak_reset = in_server && reset_peak(pid);
    let cpu_before = if in_server { cpu_ticks(pid) } else { None };
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = spawn_rss_sampler(if in_server { pid } else { None }, stop.clone());
    let mut outcome = match scenario.kind {
        Kind::Burst {
            code,
            count,
            rounds,
        } => burst(shared, code, count, rounds).await,
        _ => closed_loop(shared, scenario, options.duration, true).await,
    };
    if let (Some(before), Some(after)) = (cpu_before, cpu_ticks(pid)) {
        outcome.cpu_seconds = Some((after - before) as f64 / clock_ticks_per_second());
    }
    stop.store(true, Ordering::Relaxed);
    for spinner in spinning.into_iter().flatten() {
        // Dropping the request: the server cancels the run.
        spinner.abort();
    }
    let sampled = sampler.join().unwrap_or_default();
    if in_server && let Some((rss, hwm)) = memory(pid) {
        outcome.rss_kib = Some(rss);
        outcome.peak_kib = Some(hwm);
        outcome.sampled = Some(sampled);
        outcome.peak_reset = peak_reset;
    }
    outcome
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

fn mib(kib: u64) -> String {
    format!("{:.0}", kib as f64 / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let options = parse_options()?;
    let selected: Vec<Scenario> = scenarios()
        .into_iter()
        .filter(|s| {
            // A word that names a scenario exactly selects only it; others match substrings.
            let all = scenarios();
            options.filters.is_empty()
                || options.filters.iter().any(|f| {
                    let exact = all.iter().any(|o| o.name == f.as_str());
                    if exact {
                        s.name == f.as_str()
                    } else {
                        s.name.contains(f.as_str())
                    }
                })
        })
        .collect();
    if options.list || selected.is_empty() {
        for s in scenarios() {
            println!("{:<16} c={:<3} {}", s.name, s.concurrency, s.what);
        }
        return Ok(());
    }
    let load_start = loadavg();
    let server = start_server(&options, &[])?;

    let mut headers = HeaderMap::new();
    if options.url.is_none() {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {BENCH_TOKEN}"))?,
        );
    }
    for (name, value) in &options.headers {
        headers.insert(
            HeaderName::from_bytes(name.as_bytes())?,
            HeaderValue::from_str(value)?,
        );
    }
    let client = reqwest::Client::builder()
        .default_headers(headers.clone())
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()?;
    let shared_for = |base: &str| {
        Arc::new(Shared {
            client: client.clone(),
            client_headers: headers.clone(),
            base: base.to_owned(),
            counter: AtomicU64::new(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() << 20)
                    .unwrap_or(0),
            ),
            download: std::sync::OnceLock::new(),
        })
    };
    let shared = shared_for(&server.base);

    // The load generator gets one thread so the server keeps (almost) both cores.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let idle = memory(server.pid);

    let mut table = String::new();
    let _ = writeln!(
        table,
        "| scenario | what | C | ok | errors | p50 ms | p95 ms | p99 ms | max ms | req/s | server CPU ms/req (+ its ruff workers) | RSS after MiB | peak RSS MiB | peak PSS MiB | peak anon MiB |"
    );
    let _ = writeln!(
        table,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut notes = Vec::new();
    let mut p50s = Vec::new();
    let mut rates: Vec<(&str, f64)> = Vec::new();
    for scenario in &selected {
        eprintln!(
            "running {} (c={}): {} ...",
            scenario.name, scenario.concurrency, scenario.what
        );
        // A scenario with an environment of its own gets a server of its own.
        let own_server = if scenario.server_env.is_empty() {
            None
        } else if options.url.is_some() {
            eprintln!(
                "{}: skipped (needs a server started with {:?})",
                scenario.name, scenario.server_env
            );
            continue;
        } else {
            Some(start_server(&options, scenario.server_env)?)
        };
        let (scenario_shared, pid) = match &own_server {
            Some(own) => (shared_for(&own.base), own.pid),
            None => (shared.clone(), server.pid),
        };
        let outcome = runtime.block_on(run_scenario(scenario_shared, scenario, &options, pid));
        drop(own_server);
        let h = outcome.histogram.as_ref().expect("timed run");
        let q = |q: f64| {
            if h.is_empty() {
                "-".to_owned()
            } else {
                format!("{:.2}", h.value_at_quantile(q) as f64 / 1000.0)
            }
        };
        let max = if h.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.2}", h.max() as f64 / 1000.0)
        };
        let rate = outcome.ok as f64 / outcome.elapsed.as_secs_f64();
        let dash = || "-".to_owned();
        let (rss, peak, pss, anon) = match (outcome.rss_kib, outcome.peak_kib, outcome.sampled) {
            (Some(rss), Some(hwm), Some(sampled)) => {
                let peak = if outcome.peak_reset {
                    hwm
                } else {
                    // VmHWM could not be reset: it is the process's lifetime peak.
                    sampled.rss.max(rss)
                };
                (mib(rss), mib(peak), mib(sampled.pss), mib(sampled.anon))
            }
            _ => (dash(), dash(), dash(), dash()),
        };
        let cpu = match outcome.cpu_seconds {
            // With spinners, most of the server's CPU is theirs: not per short call.
            Some(cpu) if outcome.ok > 0 && !matches!(scenario.kind, Kind::Spinners { .. }) => {
                format!("{:.3}", cpu * 1000.0 / outcome.ok as f64)
            }
            _ => dash(),
        };
        let line = format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} |",
            scenario.name,
            scenario.what,
            scenario.concurrency,
            outcome.ok,
            outcome.errors,
            q(0.5),
            q(0.95),
            q(0.99),
            max,
            rate,
            cpu,
            rss,
            peak,
            pss,
            anon
        );
        eprintln!("{line}");
        let _ = writeln!(table, "{line}");
        if let Some(err) = &outcome.first_error {
            let mut err = err.clone();
            err.truncate(300);
            notes.push(format!("- {}: first error: {err}", scenario.name));
        }
        if !h.is_empty() {
            p50s.push((scenario.name, h.value_at_quantile(0.5)));
        }
        rates.push((scenario.name, rate));
    }

    let mut text = String::new();
    let _ = writeln!(text, "# HTTP load (`cargo bench --bench http_load`)\n");
    let _ = writeln!(
        text,
        "- machine: {}; load average before {load_start}, after {}",
        machine(),
        loadavg()
    );
    let _ = writeln!(
        text,
        "- server: {} (pid {}); {} s per scenario after 1 s warm-up; load generator on 1 thread of the same machine",
        options
            .url
            .clone()
            .unwrap_or_else(|| server_binary().display().to_string()),
        server
            .pid
            .map(|p| p.to_string())
            .unwrap_or_else(|| "?".into()),
        options.duration.as_secs_f64()
    );
    if !options.server_env.is_empty() {
        let env: Vec<String> = options
            .server_env
            .iter()
            .map(|(k, v)| format!("`{k}={v}`"))
            .collect();
        let _ = writeln!(text, "- server environment: {}", env.join(", "));
    }
    if let Some((rss, _)) = idle {
        let _ = writeln!(text, "- server RSS idle after start: {} MiB", mib(rss));
    }
    let _ = writeln!(
        text,
        "- RSS after = VmRSS when the scenario ended; peak RSS = VmHWM since it began (reset \
         via /proc/PID/clear_refs); peak PSS and peak anon = largest of samples every 20 ms \
         (smaps_rollup Pss, status RssAnon). RSS counts the compiled guest's file pages once \
         per live instance mapping them; PSS counts them once.\n"
    );
    text.push_str(&table);
    let find = |name: &str| p50s.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    if let (Some(sub), Some(py)) = (find("subprocess_c1"), find("py_c1")) {
        let _ = writeln!(
            text,
            "\nsubprocess CPython / sandgraph over HTTP, p50 at C=1: {:.1}x",
            sub as f64 / py as f64
        );
    }
    for c in ["c1", "c8"] {
        let rate = |name: &str| rates.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        if let (Some(ruff), Some(guest), Some(old)) = (
            rate(&format!("lint_{c}")),
            rate(&format!("lint_guest_{c}")),
            rate(&format!("ruff_subprocess_{c}")),
        ) {
            let _ = writeln!(
                text,
                "\nlint_code throughput at {c}: ruff workers / guest linter {:.1}x; ruff workers / ruff subprocess per call {:.1}x",
                ruff / guest,
                ruff / old
            );
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(text, "\n{}", notes.join("\n"));
    }
    println!("\n{text}");
    let dir = target_dir().join("bench-results");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(&options.out), &text)?;
    println!("written to {}", dir.join(&options.out).display());
    drop(server);
    Ok(())
}

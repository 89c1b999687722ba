//! In-process latency of one sandbox run, and the naive baseline it replaces.
//!
//! * `execute/python_print_hi`: `Sandbox::execute(Python, "print('hi')")`, the whole
//!   per-call path (slot, scratch dir, WASI context, store, instantiation of the
//!   pre-initialised CPython component, the call, classification).
//! * `execute/python_print_hi_unpooled`, `throughput/python_print_hi_x8_unpooled`: the
//!   same on a sandbox built with `pooling: false` (wasmtime's on-demand allocator, a
//!   fresh memory mapping per run), so the pooling allocator's effect is measured in the
//!   same run.
//! * `execute/python_print_hi_in_workspace_10_files`: the same run in a workspace that
//!   holds 10 small files (`Workspaces::begin_run`, `Sandbox::execute_in`,
//!   `Workspaces::finish_run`), side by side with the plain run.
//! * `execute/javascript_console_log_hi`: the same for QuickJS (`qjs -e`).
//! * `execute/python_print_hi_baseline_guest` (only with `SANDGRAPH_BENCH_BASELINE_GUEST_DIR`
//!   naming an older guest build, e.g. one without the curated packages): `print('hi')` on
//!   that guest, side by side with the current one; the compile time and component size
//!   of both are printed too (compiled into a fresh cache dir).
//! * `execute/python_import_{sympy,networkx,yaml}`: a fresh instance whose whole program
//!   is the first import of that package (in the snapshot), and
//!   `execute/python_import_pygments_from_site`: one package that is not in the snapshot,
//!   imported from the read-only site's bytecode.
//! * `naive/python_cli_print_hi`: plain wasmtime + `wasmtime_wasi::p1` running the
//!   CPython WASI command module `build/guest/python-cli.wasm` (`python -c
//!   "print('hi')"`), a fresh `Store` and `Linker::instantiate` per call, module compiled
//!   once (cached serialised under `target/bench-compiled-guests`). Its standard library is
//!   embedded in the module (a virtual filesystem), so it needs no preopened directory.
//!
//! Besides criterion's own report (target/criterion), every timed call is recorded in a
//! histogram; a table of per-call p50/p95/p99 is printed at the end and written to
//! `target/bench-results/sandbox.md`.
//!
//! Run: `cargo bench --bench sandbox` (after `make guest`).

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use common::{guest_dir, loadavg, machine, target_dir};
use criterion::{Criterion, SamplingMode, Throughput};
use hdrhistogram::Histogram;
use sandgraph::sandbox::{
    CancellationToken, ExitReason, LOCAL_CALLER, Language, RunDir, Sandbox, SandboxConfig,
    SandboxLimits,
};
use sandgraph::store::workspaces::SqliteWorkspaceStore;
use sandgraph::workspace::{InputFile, WorkspacePath, WorkspaceSettings, Workspaces};
use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, Linker, Module, Store};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// Per-call latencies in microseconds, shared by the timing closures.
type Recorder = Arc<Mutex<Histogram<u64>>>;

/// A first `import sympy` from the mounted site instead of the snapshot.
const SYMPY_FROM_SITE: &str = "import sys\n\
for name in [m for m in sys.modules if m.split('.')[0] in ('sympy', 'mpmath')]:\n    del sys.modules[name]\n\
import sympy\n";

/// The same for networkx.
const NETWORKX_FROM_SITE: &str = "import sys\n\
for name in [m for m in sys.modules if m.split('.')[0] == 'networkx']:\n    del sys.modules[name]\n\
import networkx\n";

/// Runs per iteration of the throughput bench.
const BATCH: usize = 8;

fn recorder() -> Recorder {
    Arc::new(Mutex::new(
        Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds"),
    ))
}

fn record(recorder: &Recorder, elapsed: Duration) {
    let micros = (elapsed.as_micros() as u64).max(1);
    recorder
        .lock()
        .unwrap()
        .saturating_record(micros.min(600_000_000));
}

// ---------------------------------------------------------------------------------------
// The naive baseline: CPython WASI command module, instantiated from scratch per call.
// ---------------------------------------------------------------------------------------

struct NaivePython {
    engine: Engine,
    module: Module,
    linker: Linker<WasiP1Ctx>,
}

impl NaivePython {
    fn load(wasm_path: &Path) -> anyhow::Result<Self> {
        // wasmtime's defaults: no epoch interruption, no async, on-demand allocator.
        let engine = Engine::new(&Config::new())?;
        let wasm = std::fs::read(wasm_path)
            .with_context(|| format!("reading {} (run `make guest`)", wasm_path.display()))?;
        let mut digest = Sha256::new();
        digest.update(&wasm);
        {
            use std::hash::{DefaultHasher, Hash, Hasher};
            let mut h = DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut h);
            digest.update(h.finish().to_le_bytes());
        }
        let key = hex::encode(&digest.finalize()[..16]);
        let cache_dir = target_dir().join("bench-compiled-guests");
        let cached = cache_dir.join(format!("python-cli-{key}.cwasm"));
        let module = if cached.exists() {
            // SAFETY: written below by `Module::serialize` of this engine configuration;
            // the file name carries the engine's compatibility hash.
            unsafe { Module::deserialize_file(&engine, &cached)? }
        } else {
            eprintln!(
                "compiling {} once (cached in {})",
                wasm_path.display(),
                cache_dir.display()
            );
            let started = Instant::now();
            let module = Module::new(&engine, &wasm)?;
            eprintln!("  compiled in {:.1} s", started.elapsed().as_secs_f64());
            std::fs::create_dir_all(&cache_dir)?;
            let tmp = tempfile::NamedTempFile::new_in(&cache_dir)?;
            std::fs::write(tmp.path(), module.serialize()?)?;
            tmp.persist(&cached)?;
            module
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx)?;
        Ok(Self {
            engine,
            module,
            linker,
        })
    }

    /// One run: fresh WASI context and store, instantiate, `_start`. Returns stdout.
    fn run(&self, code: &str) -> anyhow::Result<Vec<u8>> {
        let stdout = MemoryOutputPipe::new(1 << 20);
        let stderr = MemoryOutputPipe::new(1 << 20);
        let wasi = WasiCtxBuilder::new()
            .args(&["python", "-c", code])
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build_p1();
        let mut store = Store::new(&self.engine, wasi);
        let instance = self.linker.instantiate(&mut store, &self.module)?;
        let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
        match start.call(&mut store, ()) {
            Ok(()) => {}
            Err(err) => match err.downcast_ref::<I32Exit>() {
                Some(I32Exit(0)) => {}
                _ => {
                    return Err(anyhow::Error::from(err).context(format!(
                        "python-cli failed; stderr: {}",
                        String::from_utf8_lossy(&stderr.contents())
                    )));
                }
            },
        }
        drop(store);
        Ok(stdout.contents().to_vec())
    }
}

// ---------------------------------------------------------------------------------------

struct Row {
    name: &'static str,
    what: &'static str,
    histogram: Recorder,
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(40)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8))
        .configure_from_args();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let scratch = tempfile::tempdir().expect("scratch dir");
    let cache_dir = std::env::var_os("SANDGRAPH_COMPILED_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("test-compiled-guests"));
    let load_started = Instant::now();
    let sandbox = load_sandbox(&cache_dir, scratch.path(), true);
    eprintln!(
        "sandbox loaded in {:.2} s",
        load_started.elapsed().as_secs_f64()
    );
    // The same sandbox without wasmtime's pooling allocator: a fresh memory mapping per
    // run (the "before" of the pooling change, measured in the same run).
    let unpooled_scratch = tempfile::tempdir().expect("scratch dir");
    let unpooled = load_sandbox(&cache_dir, unpooled_scratch.path(), false);

    let baseline = std::env::var_os("SANDGRAPH_BENCH_BASELINE_GUEST_DIR").map(|dir| {
        let dir = PathBuf::from(dir);
        let current = compile_once(&guest_dir(), "current guest");
        let before = compile_once(&dir, "baseline guest");
        let scratch = tempfile::tempdir().expect("scratch dir");
        let sandbox = load_sandbox_from(&baseline_guest(&dir), &cache_dir, scratch.path(), true);
        (sandbox, scratch, [current, before])
    });

    let naive = NaivePython::load(&guest_dir().join("python-cli.wasm"))
        .map_err(|e| eprintln!("naive baseline unavailable: {e:#}"))
        .ok()
        .map(Arc::new);

    // Sanity: each path prints what we think it prints.
    runtime.block_on(async {
        for (sandbox, language, code) in [
            (&sandbox, Language::Python, "print('hi')"),
            (&sandbox, Language::Javascript, "console.log('hi')"),
            (&unpooled, Language::Python, "print('hi')"),
        ] {
            let out = sandbox
                .execute(language, code, SandboxLimits::default())
                .await
                .expect("sandbox run");
            assert_eq!(out.exit_reason, ExitReason::Ok, "{language:?}: {out:?}");
            assert_eq!(out.stdout, "hi\n", "{language:?}: {out:?}");
        }
    });
    if let Some(naive) = &naive {
        let out = naive.run("print('hi')").expect("naive python-cli run");
        assert_eq!(out, b"hi\n");
    }

    let runtime = &runtime;
    let mut rows = Vec::new();
    let mut group = criterion.benchmark_group("execute");
    group.sampling_mode(SamplingMode::Flat);
    for (name, sandbox, language, code, what) in [
        (
            "python_print_hi",
            &sandbox,
            Language::Python,
            "print('hi')",
            "sandgraph `Sandbox::execute`, python `print('hi')`",
        ),
        (
            "python_print_hi_unpooled",
            &unpooled,
            Language::Python,
            "print('hi')",
            "the same with `SANDGRAPH_POOLING=false` (fresh memory mapping per run)",
        ),
        (
            "javascript_console_log_hi",
            &sandbox,
            Language::Javascript,
            "console.log('hi')",
            "sandgraph `Sandbox::execute`, javascript `console.log('hi')`",
        ),
        (
            "python_import_sympy",
            &sandbox,
            Language::Python,
            "import sympy",
            "first `import sympy` in a fresh instance (in the snapshot)",
        ),
        (
            "python_import_networkx",
            &sandbox,
            Language::Python,
            "import networkx",
            "first `import networkx` in a fresh instance (in the snapshot)",
        ),
        (
            "python_import_yaml",
            &sandbox,
            Language::Python,
            "import yaml",
            "first `import yaml` in a fresh instance (in the snapshot)",
        ),
        (
            "python_import_sympy_from_site",
            &sandbox,
            Language::Python,
            SYMPY_FROM_SITE,
            "`import sympy` with sympy and mpmath dropped from `sys.modules` first: what a first import costs from the read-only site's bytecode instead of the snapshot",
        ),
        (
            "python_import_networkx_from_site",
            &sandbox,
            Language::Python,
            NETWORKX_FROM_SITE,
            "the same for networkx",
        ),
        (
            "python_import_pygments_from_site",
            &sandbox,
            Language::Python,
            "import pygments.lexers.python",
            "first `import pygments.lexers.python`: not in the snapshot, read from the read-only site's bytecode",
        ),
    ]
    .into_iter()
    .chain(baseline.as_ref().map(|(sandbox, _, _)| {
        (
            "python_print_hi_baseline_guest",
            sandbox,
            Language::Python,
            "print('hi')",
            "`print('hi')` on the baseline guest (SANDGRAPH_BENCH_BASELINE_GUEST_DIR), same run",
        )
    }))
    {
        runtime.block_on(async {
            let out = sandbox
                .execute(language, code, SandboxLimits::default())
                .await
                .expect("sandbox run");
            assert_eq!(out.exit_reason, ExitReason::Ok, "{name}: {out:?}");
        });
        let histogram = recorder();
        let h = histogram.clone();
        let sandbox = sandbox.clone();
        group.bench_function(name, move |b| {
            b.to_async(runtime).iter_custom(|iters| {
                let sandbox = sandbox.clone();
                let h = h.clone();
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let started = Instant::now();
                        let out = sandbox
                            .execute(language, code, SandboxLimits::default())
                            .await
                            .expect("sandbox run");
                        let elapsed = started.elapsed();
                        debug_assert_eq!(out.exit_reason, ExitReason::Ok);
                        std::hint::black_box(out);
                        record(&h, elapsed);
                        total += elapsed;
                    }
                    total
                }
            })
        });
        rows.push(Row {
            name,
            what,
            histogram,
        });
    }
    // A run in a workspace holding 10 small files, side by side with the plain run above:
    // what the workspace adds (its lease and reservation in the metadata store, the walk
    // before and after, the diff) on top of the same guest work.
    let ws_dir = tempfile::tempdir().expect("workspace dir");
    let workspaces = Arc::new(load_workspaces(ws_dir.path()));
    let ws_id = runtime.block_on(async {
        let info = workspaces.create("bench").await.expect("create workspace");
        for i in 0..10 {
            let file = InputFile {
                path: WorkspacePath::parse(&format!("data/file{i}.txt")).expect("path"),
                bytes: format!("row {i}\n").repeat(20).into_bytes(),
            };
            workspaces
                .write_file("bench", &info.workspace_id, file, &CancellationToken::new())
                .await
                .expect("write file");
        }
        info.workspace_id
    });
    {
        let histogram = recorder();
        let h = histogram.clone();
        let sandbox = sandbox.clone();
        let workspaces = workspaces.clone();
        let ws_id = ws_id.clone();
        group.bench_function("python_print_hi_in_workspace_10_files", move |b| {
            b.to_async(runtime).iter_custom(|iters| {
                let sandbox = sandbox.clone();
                let workspaces = workspaces.clone();
                let ws_id = ws_id.clone();
                let h = h.clone();
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let cancel = CancellationToken::new();
                        let started = Instant::now();
                        let scope = workspaces
                            .begin_run("bench", &ws_id, Vec::new(), &cancel)
                            .await
                            .expect("begin run");
                        let dir = RunDir::Existing {
                            path: scope.dir().to_owned(),
                            budget: scope.budget(),
                        };
                        let out = sandbox
                            .execute_in(
                                "print('hi')",
                                SandboxLimits::default(),
                                dir,
                                LOCAL_CALLER,
                                scope.cancel(),
                            )
                            .await
                            .expect("sandbox run");
                        let changes = workspaces.finish_run(scope, false).await.expect("finish");
                        let elapsed = started.elapsed();
                        debug_assert_eq!(out.stdout, "hi\n");
                        debug_assert!(changes.changed.is_empty());
                        std::hint::black_box((out, changes));
                        record(&h, elapsed);
                        total += elapsed;
                    }
                    total
                }
            })
        });
        rows.push(Row {
            name: "python_print_hi_in_workspace_10_files",
            what: "the same run in a workspace holding 10 small files (lease, walk before and after, diff, usage recorded)",
            histogram,
        });
    }
    group.finish();

    // Throughput: BATCH python runs started at once on the multi-thread runtime; the
    // histogram holds the time per batch.
    let mut group = criterion.benchmark_group("throughput");
    group
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(BATCH as u64));
    for (name, sandbox, what) in [
        (
            "python_print_hi_x8",
            &sandbox,
            "8 python `print('hi')` runs at once (time per batch of 8)",
        ),
        (
            "python_print_hi_x8_unpooled",
            &unpooled,
            "the same with `SANDGRAPH_POOLING=false`",
        ),
    ] {
        let histogram = recorder();
        let h = histogram.clone();
        let sandbox = sandbox.clone();
        group.bench_function(name, move |b| {
            b.to_async(runtime).iter_custom(|iters| {
                let sandbox = sandbox.clone();
                let h = h.clone();
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let started = Instant::now();
                        let tasks: Vec<_> = (0..BATCH)
                            .map(|_| {
                                let sandbox = sandbox.clone();
                                tokio::spawn(async move {
                                    sandbox
                                        .execute(
                                            Language::Python,
                                            "print('hi')",
                                            SandboxLimits::default(),
                                        )
                                        .await
                                        .expect("sandbox run")
                                })
                            })
                            .collect();
                        for task in tasks {
                            std::hint::black_box(task.await.expect("task"));
                        }
                        let elapsed = started.elapsed();
                        record(&h, elapsed);
                        total += elapsed;
                    }
                    total
                }
            })
        });
        rows.push(Row {
            name,
            what,
            histogram,
        });
    }
    group.finish();

    if let Some(naive) = naive {
        let mut group = criterion.benchmark_group("naive");
        group.sampling_mode(SamplingMode::Flat).sample_size(20);
        let histogram = recorder();
        let h = histogram.clone();
        group.bench_function("python_cli_print_hi", move |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let out = naive.run("print('hi')").expect("naive run");
                    let elapsed = started.elapsed();
                    std::hint::black_box(out);
                    record(&h, elapsed);
                    total += elapsed;
                }
                total
            })
        });
        group.finish();
        rows.push(Row {
            name: "naive_python_cli_print_hi",
            what: "wasmtime + p1, fresh store + `Linker::instantiate` of python-cli.wasm, `python -c \"print('hi')\"`",
            histogram,
        });
    }

    criterion.final_summary();
    let guests = baseline.as_ref().map(|(_, _, guests)| guests.as_slice());
    report(&rows, guests.unwrap_or_default());
}

/// A guest build's component size and the time to compile it (both guests, into a
/// fresh cache dir, as a first start does).
struct GuestBuild {
    label: &'static str,
    python_bytes: u64,
    compile: Duration,
}

fn compile_once(dir: &Path, label: &'static str) -> GuestBuild {
    let guest = baseline_guest(dir);
    let cache = tempfile::tempdir().expect("cache dir");
    let scratch = tempfile::tempdir().expect("scratch dir");
    let started = Instant::now();
    drop(load_sandbox_from(
        &guest,
        cache.path(),
        scratch.path(),
        true,
    ));
    let compile = started.elapsed();
    let python_bytes = std::fs::metadata(dir.join("python-guest.wasm"))
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!(
        "{label} ({}): python-guest.wasm {python_bytes} bytes, loaded and compiled in {:.1} s",
        dir.display(),
        compile.as_secs_f64()
    );
    GuestBuild {
        label,
        python_bytes,
        compile,
    }
}

/// `dir` itself when it has a `packages.json`; else (a guest built before packages
/// existed) a copy of it with an empty one and the current `jshint.js`, so the current
/// sandbox can load it.
fn baseline_guest(dir: &Path) -> PathBuf {
    if dir.join("packages.json").exists() {
        return dir.to_owned();
    }
    let copy = target_dir().join("bench-baseline-guest");
    std::fs::create_dir_all(&copy).expect("baseline guest copy");
    for name in [
        "python-guest.wasm",
        "quickjs.wasm",
        "python-cli.wasm",
        "BUILD_ID",
    ] {
        let (from, to) = (dir.join(name), copy.join(name));
        let _ = std::fs::remove_file(&to);
        std::fs::hard_link(&from, &to)
            .or_else(|_| std::fs::copy(&from, &to).map(|_| ()))
            .unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
    }
    // Nor had it the JavaScript linter, which this sandbox loads: the current one's.
    let jshint = copy.join("jshint.js");
    let _ = std::fs::remove_file(&jshint);
    std::fs::copy(guest_dir().join("jshint.js"), &jshint).expect("copying jshint.js");
    std::fs::write(
        copy.join("packages.json"),
        r#"{"python": {"implementation": "CPython 3.14.0 (wasi)", "packages": []},
"javascript": {"runtime": "QuickJS-NG", "modules": []}}"#,
    )
    .expect("writing the baseline's packages.json");
    copy
}

fn load_sandbox(cache_dir: &Path, scratch: &Path, pooling: bool) -> Sandbox {
    load_sandbox_from(&guest_dir(), cache_dir, scratch, pooling)
}

fn load_sandbox_from(guest: &Path, cache_dir: &Path, scratch: &Path, pooling: bool) -> Sandbox {
    Sandbox::new(SandboxConfig {
        guest_dir: guest.to_owned(),
        cache_dir: cache_dir.to_owned(),
        scratch_dir: scratch.to_owned(),
        max_concurrent_runs: 64,
        max_runs_per_caller: 64,
        queue_timeout: Duration::from_secs(30),
        pooling,
        pool_keep_resident_bytes: 16 << 20,
        guest_threads: 0,
    })
    .expect("loading the sandbox (run `make guest` first)")
}

fn load_workspaces(root: &Path) -> Workspaces {
    let store = SqliteWorkspaceStore::open(&root.join("workspaces.db")).expect("workspace store");
    Workspaces::open(
        root.join("workspaces"),
        Arc::new(store),
        WorkspaceSettings::default(),
    )
    .expect("workspaces")
}

fn report(rows: &[Row], guests: &[GuestBuild]) {
    let ms = |us: u64| us as f64 / 1000.0;
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| benchmark | calls | p50 ms | p95 ms | p99 ms | mean ms | what |"
    );
    let _ = writeln!(table, "|---|---:|---:|---:|---:|---:|---|");
    let mut medians = Vec::new();
    for row in rows {
        let h = row.histogram.lock().unwrap();
        if h.is_empty() {
            continue;
        }
        medians.push((row.name, h.value_at_quantile(0.5)));
        let _ = writeln!(
            table,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            row.name,
            h.len(),
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.95)),
            ms(h.value_at_quantile(0.99)),
            h.mean() / 1000.0,
            row.what
        );
    }
    for (name, label) in [
        ("python_print_hi_x8", "pooled"),
        ("python_print_hi_x8_unpooled", "unpooled"),
    ] {
        if let Some((_, batch)) = medians.iter().find(|(n, _)| *n == name) {
            let _ = writeln!(
                table,
                "\nin-process python throughput, {label} ({BATCH} at once, p50 batch): {:.0} runs/s",
                BATCH as f64 / (*batch as f64 / 1e6)
            );
        }
    }
    let python = medians.iter().find(|(n, _)| *n == "python_print_hi");
    let naive = medians
        .iter()
        .find(|(n, _)| *n == "naive_python_cli_print_hi");
    if let (Some((_, p)), Some((_, n))) = (python, naive) {
        let _ = writeln!(
            table,
            "\nnaive CPython-WASI / sandgraph python, p50: {:.1}x",
            *n as f64 / *p as f64
        );
    }
    let current = medians.iter().find(|(n, _)| *n == "python_print_hi");
    let before = medians
        .iter()
        .find(|(n, _)| *n == "python_print_hi_baseline_guest");
    if let (Some((_, now)), Some((_, then))) = (current, before) {
        let _ = writeln!(
            table,
            "\npython `print('hi')` p50, current guest / baseline guest: {:+.1}%",
            (*now as f64 / *then as f64 - 1.0) * 100.0
        );
    }
    for guest in guests {
        let _ = writeln!(
            table,
            "\n{}: python-guest.wasm {:.1} MB, first start (load + compile both guests) {:.1} s",
            guest.label,
            guest.python_bytes as f64 / 1e6,
            guest.compile.as_secs_f64()
        );
    }
    let header = format!(
        "# sandbox bench (in-process)\n\n{}\n\nPer-call latencies of every timed call criterion made (warm-up included).\n\n",
        machine_line()
    );
    println!("\n{header}{table}");
    let dir = target_dir().join("bench-results");
    if let Err(err) = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(dir.join("sandbox.md"), format!("{header}{table}")))
    {
        eprintln!(
            "could not write {}: {err}",
            dir.join("sandbox.md").display()
        );
    } else {
        println!("written to {}", dir.join("sandbox.md").display());
    }
}

fn machine_line() -> String {
    format!("{}, load average at end {}", machine(), loadavg())
}

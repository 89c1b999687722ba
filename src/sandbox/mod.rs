//! The sandbox: runs untrusted code in a fresh wasmtime instance per call.
//!
//! One [`wasmtime::Engine`], one compiled (and disk-cached) artifact and one pre-linked
//! instance template per guest are built at start-up; a run creates only a `Store` with
//! its own WASI context, memory limiter, scratch directory, write quota and capped
//! stdout/stderr. A single epoch ticker thread bounds every run's time, and a semaphore
//! bounds how many run at once. This module knows nothing about HTTP, MCP or tools.

mod engine;
pub mod fair;
mod javascript;
mod limits;
mod output;
mod packages;
mod python;
mod quota;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
pub use tokio_util::sync::CancellationToken;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, InstancePre, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

pub use limits::{LimitCeilings, LimitOverrides, LimitTooHigh, SandboxLimits};
pub use packages::{
    JavascriptModule, JavascriptModules, PackageManifest, PythonPackage, PythonPackages,
};

use engine::{Artifact, ArtifactKind, EpochTicker};
use javascript::JavascriptState;
use limits::MemoryLimiter;
use output::{CappedOutput, Captured};
use packages::GuestPackages;
use python::{Outcome, PythonGuestPre, PythonState, Status};
use quota::ScratchQuota;

/// Where the guest sees its scratch directory.
pub const GUEST_SCRATCH: &str = "/scratch";

/// Exit code reported when the time limit ended a run (as GNU `timeout` does).
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit code reported when the sandbox stopped a guest with a trap.
pub const EXIT_TRAPPED: i32 = 134;
/// Exit code reported when the memory limit ended a run with a trap.
pub const EXIT_MEMORY: i32 = 137;
/// Exit code of a run its caller cancelled (128 + SIGINT, as a shell reports it).
pub const EXIT_CANCELLED: i32 = 130;

/// A guest language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// CPython 3.14 (componentize-py component).
    Python,
    /// QuickJS-NG (ES2023).
    Javascript,
}

impl Language {
    /// Every supported language, in the order the docs list them.
    pub const ALL: [Language; 2] = [Language::Python, Language::Javascript];

    /// The name callers use.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Javascript => "javascript",
        }
    }

    /// Parse a caller-supplied language name (case-insensitive; `js` accepted).
    pub fn parse(name: &str) -> Option<Language> {
        match name.to_ascii_lowercase().as_str() {
            "python" | "py" | "python3" => Some(Language::Python),
            "javascript" | "js" => Some(Language::Javascript),
            _ => None,
        }
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// Ran to the end with exit code 0.
    Ok,
    /// Ended with a non-zero exit code, an uncaught exception or a trap.
    Error,
    /// Stopped by the time limit.
    Timeout,
    /// Needed more memory than its budget.
    MemoryLimit,
    /// Succeeded, but wrote more stdout/stderr than kept; the output is truncated.
    OutputLimit,
    /// Failed after writing past its scratch-directory quota.
    FileQuota,
    /// Stopped because its caller went away or cancelled the call.
    Cancelled,
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Process-style exit code (see the `EXIT_*` constants for sandbox-imposed ends).
    pub exit_code: i32,
    /// Why the run ended.
    pub exit_reason: ExitReason,
    /// Kept stdout (lossy UTF-8).
    pub stdout: String,
    /// Kept stderr (lossy UTF-8), plus a `sandbox:` line when the sandbox ended the run.
    pub stderr: String,
    /// Total stdout bytes the guest wrote.
    pub stdout_bytes: u64,
    /// Total stderr bytes the guest wrote.
    pub stderr_bytes: u64,
    /// Whether stdout or stderr was cut at its cap.
    pub truncated: bool,
    /// Wall-clock time in the guest (instantiation included, queueing excluded).
    pub duration: Duration,
    /// The limits the run had.
    pub limits: SandboxLimits,
    /// Where the run's time went (profiling; `cargo bench --bench profile` prints it).
    pub phases: RunPhases,
}

/// Where one run's wall-clock time went, in the order it is spent. The time between the
/// call and `setup` (waiting for a slot, the hand-over to a guest thread) is not in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunPhases {
    /// The scratch directory (created, files written) and the WASI context.
    pub setup: Duration,
    /// A store, and the pre-linked guest instantiated in it (a pooled instance over the
    /// snapshot's memory image).
    pub instantiate: Duration,
    /// The call into the guest: its own work, host calls (WASI) included.
    pub guest: Duration,
    /// Dropping the store: the pooled memory reset to the snapshot (its dirty pages), the
    /// tables, the stack.
    pub teardown: Duration,
    /// Removing the scratch directory.
    pub scratch_cleanup: Duration,
    /// Classifying the end and copying the captured output out.
    pub capture: Duration,
}

impl RunPhases {
    /// The phases from the instants a run passed (`instantiated` is `None` when
    /// instantiation failed); `capture` runs until now.
    fn from_marks(
        setup: Duration,
        started: Instant,
        instantiated: Option<Instant>,
        called: Instant,
        torn_down: Instant,
        cleaned: Instant,
    ) -> Self {
        let instantiated = instantiated.unwrap_or(called);
        Self {
            setup,
            instantiate: instantiated - started,
            guest: called - instantiated,
            teardown: torn_down - called,
            scratch_cleanup: cleaned - torn_down,
            capture: cleaned.elapsed(),
        }
    }
}

/// How long a run counts as young (served before older runs at each tick).
const YOUNG_FOR: Duration = Duration::from_millis(50);

/// How long an older run steps aside at a tick while young runs are active.
const STEP_ASIDE: Duration = Duration::from_millis(1);

/// A run's place in the count of young runs: counted from its start until it grows up
/// or ends (the guard lives in the store's epoch callback, dropped with the store).
struct YoungRun {
    count: Arc<AtomicUsize>,
    young: bool,
}

impl YoungRun {
    fn start(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self { count, young: true }
    }

    fn is_young(&self) -> bool {
        self.young
    }

    fn grow_up(&mut self) {
        if std::mem::take(&mut self.young) {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether any other run is young now.
    fn others_young(&self) -> bool {
        self.count.load(Ordering::Relaxed) > usize::from(self.young)
    }
}

impl Drop for YoungRun {
    fn drop(&mut self) {
        self.grow_up();
    }
}

/// The caller of runs started without one (in-process use, benches).
pub const LOCAL_CALLER: &str = "local";

/// Why the sandbox could not run a request at all (as opposed to a run that failed).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No slot came free for the caller within the queue timeout: all were busy, or
    /// the caller held its share.
    #[error(
        "no sandbox slot came free in time: all {slots} are busy, or you already run {per_caller} at once (the most one caller may); retry shortly"
    )]
    Busy {
        /// How many runs may execute at once.
        slots: usize,
        /// How many of them one caller may hold.
        per_caller: usize,
    },
    /// The caller cancelled while the run waited for a slot (no guest started).
    #[error("the call was cancelled before its run started")]
    Cancelled,
    /// Something on the host side failed (scratch directory, instantiation).
    #[error("sandbox failure: {0:#}")]
    Internal(#[from] anyhow::Error),
}

/// Start-up settings for the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Directory holding `python-guest.wasm`, `python-site/`, `quickjs.wasm`,
    /// `packages.json` and `BUILD_ID`.
    pub guest_dir: PathBuf,
    /// Where compiled guests are cached.
    pub cache_dir: PathBuf,
    /// Parent of the per-run scratch directories.
    pub scratch_dir: PathBuf,
    /// Runs that may execute at once; others queue.
    pub max_concurrent_runs: usize,
    /// Runs one caller may execute at once; its further runs wait behind its own, and a
    /// freed slot goes to the waiting caller running the fewest.
    pub max_runs_per_caller: usize,
    /// How long a run may wait for a slot before the caller is told to retry.
    pub queue_timeout: Duration,
    /// Use wasmtime's pooling allocator, sized for `max_concurrent_runs`.
    pub pooling: bool,
    /// With pooling, bytes of each finished run's memory kept resident and reset in place.
    pub pool_keep_resident_bytes: usize,
    /// Threads that run guests (0 = one per core), apart from the threads that serve
    /// connections: a spinning guest then never delays a socket being noticed.
    pub guest_threads: usize,
}

/// A point-in-time view of the sandbox, for health checks.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxStatus {
    /// The guest build id (hash of the guest inputs).
    pub build_id: String,
    /// Languages whose guest is loaded.
    pub languages: Vec<Language>,
    /// Runs executing now.
    pub active_runs: usize,
    /// Run slots.
    pub max_concurrent_runs: usize,
    /// Whether instances come from wasmtime's pooling allocator.
    pub pooling: bool,
    /// Runs started since the process began.
    pub runs_started: u64,
}

/// A handle to the sandbox; cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    python: PythonGuestPre<PythonState>,
    javascript: InstancePre<JavascriptState>,
    packages: GuestPackages,
    /// JSHint's source (`jshint.js` of the guest build), run inside QuickJS to lint.
    jshint: Arc<str>,
    build_id: String,
    config: SandboxConfig,
    slots: Arc<fair::FairSlots>,
    active: AtomicUsize,
    /// Runs younger than [`YOUNG_FOR`] now.
    young: Arc<AtomicUsize>,
    started: AtomicU64,
    ticker: EpochTicker,
    guests: GuestThreads,
    /// Empty scratch directories of finished runs, reused by the next runs: creating and
    /// removing a directory costs ~130 µs of a run here (ext4 in a VM), more than a
    /// third of what a `print('hi')` run spends in the guest.
    spare_scratch: std::sync::Mutex<Vec<tempfile::TempDir>>,
}

/// Most empty scratch directories kept for reuse.
const SPARE_SCRATCH_DIRS: usize = 16;

/// The runtime whose threads run guests. Its workers look at newly queued runs and at
/// timers on every scheduling tick (a tick of a busy guest is one epoch slice), so a
/// short run waits at most a slice behind long ones.
struct GuestThreads(Option<tokio::runtime::Runtime>);

impl GuestThreads {
    fn start(threads: usize) -> anyhow::Result<Self> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            threads
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("sandgraph-guest")
            .global_queue_interval(1)
            .event_interval(1)
            .enable_all()
            .build()
            .context("starting the guest threads")?;
        Ok(Self(Some(runtime)))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("guest runtime present until drop")
            .handle()
    }
}

impl Drop for GuestThreads {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            // Dropping a runtime may not happen on an async thread (this may be one of
            // its own): let a plain thread do it, without waiting.
            let _ = std::thread::Builder::new()
                .name("sandgraph-guest-stop".into())
                .spawn(move || runtime.shutdown_background());
        }
    }
}

/// One Python entry point and its arguments.
enum PythonCall {
    Execute(String),
    Lint { code: String, options: String },
    Tests { args: Vec<String> },
}

/// A file the host writes into a fresh scratch directory before a run (e.g. code under
/// test).
#[derive(Debug, Clone)]
pub struct ScratchFile {
    /// A relative path of plain components separated by `/` (no `.`, `..` or empty
    /// ones); callers validate it. Parent directories are created.
    pub name: String,
    /// The file's bytes.
    pub contents: Vec<u8>,
}

/// What a run may add to an existing directory: bytes written and new entries (files,
/// directories, links). Both are charged as the guest writes and never refunded within
/// the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteBudget {
    /// Bytes the guest may write.
    pub bytes: u64,
    /// New directory entries the guest may create.
    pub entries: u64,
}

/// Where a run's `/scratch` (its working directory) comes from.
#[derive(Debug, Clone)]
pub enum RunDir {
    /// A fresh directory holding these files, deleted after the run; the guest may
    /// write the limits' `scratch_bytes`.
    Fresh(Vec<ScratchFile>),
    /// A directory the caller owns and keeps (a workspace), written within `budget`.
    /// Nothing may be running in it at the same time (the caller serialises runs).
    Existing {
        /// The host directory.
        path: PathBuf,
        /// What the run may add.
        budget: WriteBudget,
    },
}

/// What a Python entry point returned, before classification.
struct GuestEnd {
    outcome: Result<Outcome, wasmtime::Error>,
    memory_denied: bool,
    quota_exceeded: bool,
    /// What the run could write, for the note when a write was refused.
    budget: WriteBudget,
    timed_out: bool,
    cancelled: bool,
}

impl Sandbox {
    /// Load (compiling and caching on first start) both guests and start the ticker.
    pub fn new(config: SandboxConfig) -> anyhow::Result<Self> {
        let pool = config.pooling.then(|| engine::PoolSizing {
            runs: u32::try_from(config.max_concurrent_runs.max(1)).unwrap_or(u32::MAX),
            keep_resident: config.pool_keep_resident_bytes,
        });
        let engine = engine::new_engine(pool)?;
        if pool.is_some() {
            engine::verify_pool_reset(&engine).context(
                "the instance pool does not reset memory between runs on this kernel; \
                 set SANDGRAPH_POOLING=false",
            )?;
        }
        let python_wasm = config.guest_dir.join("python-guest.wasm");
        let quickjs_wasm = config.guest_dir.join("quickjs.wasm");
        let build_id = std::fs::read_to_string(config.guest_dir.join("BUILD_ID"))
            .with_context(|| {
                format!(
                    "reading {}/BUILD_ID (build the guest with `make guest`)",
                    config.guest_dir.display()
                )
            })?
            .trim()
            .to_owned();
        let packages = GuestPackages::load(&config.guest_dir)?;
        let jshint = javascript::load_linter(&config.guest_dir)?;

        let python = match engine::load_or_compile(
            &engine,
            &config.cache_dir,
            "python-guest",
            &python_wasm,
            ArtifactKind::Component,
        )? {
            Artifact::Component(component) => {
                engine::check_fits_pool("python-guest", component.resources_required())?;
                python::prepare(&engine, &component)?
            }
            Artifact::Module(_) => anyhow::bail!("python guest must be a component"),
        };
        let javascript = match engine::load_or_compile(
            &engine,
            &config.cache_dir,
            "quickjs",
            &quickjs_wasm,
            ArtifactKind::Module,
        )? {
            Artifact::Module(module) => {
                engine::check_fits_pool("quickjs", Some(module.resources_required()))?;
                javascript::prepare(&engine, &module)?
            }
            Artifact::Component(_) => anyhow::bail!("quickjs guest must be a core module"),
        };
        std::fs::create_dir_all(&config.scratch_dir)
            .with_context(|| format!("creating {}", config.scratch_dir.display()))?;
        let ticker = EpochTicker::start(&engine)?;
        let guests = GuestThreads::start(config.guest_threads)?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                python,
                javascript,
                packages,
                jshint,
                build_id,
                slots: fair::FairSlots::new(config.max_concurrent_runs, config.max_runs_per_caller),
                config,
                active: AtomicUsize::new(0),
                young: Arc::new(AtomicUsize::new(0)),
                started: AtomicU64::new(0),
                ticker,
                guests,
                spare_scratch: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }

    /// The guest build id: part of every cache key, so a new guest never serves stale results.
    pub fn build_id(&self) -> &str {
        &self.inner.build_id
    }

    /// The end of the drain: stop the epoch ticker, if no run is left (a run still in
    /// flight needs the ticks to yield and to time out, so then it keeps ticking until
    /// the process exits). Whether it stopped.
    pub fn stop_ticker(&self) -> bool {
        if self.inner.active.load(Ordering::Acquire) != 0 {
            return false;
        }
        self.inner.ticker.stop();
        true
    }

    /// Whether the epoch ticker is running.
    pub fn ticker_running(&self) -> bool {
        self.inner.ticker.is_running()
    }

    /// What each guest can import (the guest build's `packages.json`).
    pub fn packages(&self) -> &PackageManifest {
        &self.inner.packages.manifest
    }

    /// Current state for `/health`.
    pub fn status(&self) -> SandboxStatus {
        SandboxStatus {
            build_id: self.inner.build_id.clone(),
            languages: Language::ALL.to_vec(),
            active_runs: self.inner.active.load(Ordering::Relaxed),
            max_concurrent_runs: self.inner.config.max_concurrent_runs,
            pooling: self.inner.config.pooling,
            runs_started: self.inner.started.load(Ordering::Relaxed),
        }
    }

    /// Run `code` as a program in `language` under `limits`.
    pub async fn execute(
        &self,
        language: Language,
        code: &str,
        limits: SandboxLimits,
    ) -> Result<RunOutput, SandboxError> {
        self.execute_until(
            language,
            code,
            limits,
            LOCAL_CALLER,
            &CancellationToken::new(),
        )
        .await
    }

    /// [`Self::execute`] for `caller` (slots are shared fairly between callers, see
    /// [`fair`]), stopped within one epoch tick when `cancel` fires (the run then ends
    /// with [`ExitReason::Cancelled`] and its slot is free at once).
    pub async fn execute_until(
        &self,
        language: Language,
        code: &str,
        limits: SandboxLimits,
        caller: &str,
        cancel: &CancellationToken,
    ) -> Result<RunOutput, SandboxError> {
        let slot = self.acquire_slot(caller, cancel).await?;
        let code = code.to_owned();
        self.on_guest_threads(slot, cancel, move |sandbox, cancel| async move {
            match language {
                Language::Python => {
                    let call = PythonCall::Execute(code);
                    let (output, _) = sandbox
                        .run_python(call, RunDir::Fresh(Vec::new()), limits, &cancel)
                        .await?;
                    Ok(output)
                }
                Language::Javascript => sandbox.run_javascript(&code, limits, &cancel).await,
            }
        })
        .await
    }

    /// Run Python `code` with `dir` as its working directory (`/scratch`).
    pub async fn execute_in(
        &self,
        code: &str,
        limits: SandboxLimits,
        dir: RunDir,
        caller: &str,
        cancel: &CancellationToken,
    ) -> Result<RunOutput, SandboxError> {
        let slot = self.acquire_slot(caller, cancel).await?;
        let call = PythonCall::Execute(code.to_owned());
        self.on_guest_threads(slot, cancel, move |sandbox, cancel| async move {
            let (output, _) = sandbox.run_python(call, dir, limits, &cancel).await?;
            Ok(output)
        })
        .await
    }

    /// Lint JavaScript `code` with JSHint inside QuickJS: the code is parsed, never run.
    /// The JSON report (`diagnostics`, `functions`) is `None` if the run did not finish.
    pub async fn lint_javascript(
        &self,
        code: &str,
        limits: SandboxLimits,
        caller: &str,
        cancel: &CancellationToken,
    ) -> Result<(RunOutput, Option<String>), SandboxError> {
        let program = javascript::lint_program(&self.inner.jshint, code)?;
        let mut output = self
            .execute_until(Language::Javascript, &program, limits, caller, cancel)
            .await?;
        let report = javascript::take_lint_report(&mut output.stdout);
        Ok((output, report))
    }

    /// Lint Python `code` inside the guest (pyflakes, pycodestyle, mccabe, AST summary).
    /// `options` is a JSON object; the JSON report is `None` if the run did not finish.
    pub async fn lint_python(
        &self,
        code: &str,
        options: &str,
        limits: SandboxLimits,
        caller: &str,
        cancel: &CancellationToken,
    ) -> Result<(RunOutput, Option<String>), SandboxError> {
        let slot = self.acquire_slot(caller, cancel).await?;
        let call = PythonCall::Lint {
            code: code.to_owned(),
            options: options.to_owned(),
        };
        self.on_guest_threads(slot, cancel, move |sandbox, cancel| async move {
            sandbox
                .run_python(call, RunDir::Fresh(Vec::new()), limits, &cancel)
                .await
        })
        .await
    }

    /// Run pytest inside the guest with `dir` as its working directory (the files under
    /// test are in it). The JSON report is `None` if the run did not finish (timeout,
    /// memory trap).
    pub async fn run_pytest(
        &self,
        dir: RunDir,
        args: Vec<String>,
        limits: SandboxLimits,
        caller: &str,
        cancel: &CancellationToken,
    ) -> Result<(RunOutput, Option<String>), SandboxError> {
        let slot = self.acquire_slot(caller, cancel).await?;
        self.on_guest_threads(slot, cancel, move |sandbox, cancel| async move {
            sandbox
                .run_python(PythonCall::Tests { args }, dir, limits, &cancel)
                .await
        })
        .await
    }

    /// Run `work` on the guest threads. The slot moves with it and is freed when the
    /// guest has really ended; if the caller goes away (this future is dropped), the
    /// run is cancelled and stops within an epoch tick.
    async fn on_guest_threads<T, F, Fut>(
        &self,
        slot: SlotGuard,
        cancel: &CancellationToken,
        work: F,
    ) -> Result<T, SandboxError>
    where
        T: Send + 'static,
        F: FnOnce(Sandbox, CancellationToken) -> Fut,
        Fut: std::future::Future<Output = Result<T, SandboxError>> + Send + 'static,
    {
        let run_cancel = cancel.child_token();
        let _stop_if_dropped = run_cancel.clone().drop_guard();
        let run = work(self.clone(), run_cancel);
        let task = self.inner.guests.handle().spawn(async move {
            let result = run.await;
            drop(slot);
            result
        });
        match task.await {
            Ok(result) => result,
            Err(err) => Err(SandboxError::Internal(anyhow::anyhow!(
                "the guest task failed: {err}"
            ))),
        }
    }

    async fn acquire_slot(
        &self,
        caller: &str,
        cancel: &CancellationToken,
    ) -> Result<SlotGuard, SandboxError> {
        let inner = &self.inner;
        let queued = Instant::now();
        let permit = match inner.slots.acquire(caller) {
            fair::Acquire::Ready(slot) => slot,
            fair::Acquire::Queued(granted) => {
                let wait = tokio::time::timeout(inner.config.queue_timeout, granted);
                tokio::select! {
                    waited = wait => waited,
                    () = cancel.cancelled() => return Err(SandboxError::Cancelled),
                }
                .map_err(|_| SandboxError::Busy {
                    slots: inner.config.max_concurrent_runs,
                    per_caller: inner.slots.per_caller(),
                })?
                .map_err(|e| SandboxError::Internal(e.into()))?
            }
        };
        metrics::histogram!("sandgraph_sandbox_queue_wait_seconds")
            .record(queued.elapsed().as_secs_f64());
        inner.active.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("sandgraph_sandbox_active_runs").increment(1.0);
        inner.started.fetch_add(1, Ordering::Relaxed);
        Ok(SlotGuard {
            _permit: permit,
            sandbox: self.clone(),
        })
    }

    fn new_scratch(&self) -> Result<tempfile::TempDir, SandboxError> {
        let spare = self
            .inner
            .spare_scratch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        if let Some(dir) = spare {
            return Ok(dir);
        }
        tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(&self.inner.config.scratch_dir)
            .with_context(|| {
                format!(
                    "creating a scratch dir in {}",
                    self.inner.config.scratch_dir.display()
                )
            })
            .map_err(SandboxError::Internal)
    }

    /// A fresh scratch dir holding `files`.
    fn fresh_scratch(&self, files: &[ScratchFile]) -> Result<tempfile::TempDir, SandboxError> {
        let scratch = self.new_scratch()?;
        for file in files {
            // The directory is new and ours, so nothing in it is a link; `create_new`
            // refuses anything already there.
            let path = scratch.path().join(&file.name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, &file.contents))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(scratch)
    }

    /// A finished run's scratch directory: kept for the next run when the run left it
    /// empty (its times reset, so nothing of this run is left in it), else removed.
    fn recycle_scratch(&self, dir: tempfile::TempDir) {
        let empty = std::fs::read_dir(dir.path()).is_ok_and(|mut entries| entries.next().is_none());
        if !empty {
            return;
        }
        let now = std::time::SystemTime::now();
        let reset = std::fs::File::open(dir.path()).and_then(|d| {
            d.set_times(
                std::fs::FileTimes::new()
                    .set_accessed(now)
                    .set_modified(now),
            )
        });
        if reset.is_err() {
            return;
        }
        let mut spare = self
            .inner
            .spare_scratch
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if spare.len() < SPARE_SCRATCH_DIRS {
            spare.push(dir);
        }
    }

    async fn run_python(
        &self,
        call: PythonCall,
        dir: RunDir,
        limits: SandboxLimits,
        cancel: &CancellationToken,
    ) -> Result<(RunOutput, Option<String>), SandboxError> {
        let setup_started = Instant::now();
        let (scratch, path, quota, budget) = match dir {
            RunDir::Fresh(files) => {
                let scratch = self.fresh_scratch(&files)?;
                let path = scratch.path().to_owned();
                let budget = WriteBudget {
                    bytes: limits.scratch_bytes,
                    entries: u64::MAX,
                };
                (
                    Some(scratch),
                    path,
                    ScratchQuota::new(budget.bytes, None),
                    budget,
                )
            }
            RunDir::Existing { path, budget } => (
                None,
                path,
                ScratchQuota::new(budget.bytes, Some(budget.entries)),
                budget,
            ),
        };
        let stdout = CappedOutput::new(limits.stdout_bytes);
        let stderr = CappedOutput::new(limits.stderr_bytes);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .preopened_dir(&path, GUEST_SCRATCH, FsPerms::ReadWrite)
            .map_err(|e| anyhow::Error::from(e).context("preopening the scratch dir"))?;
        let packages = &self.inner.packages;
        if let (Some(site), Some(mount)) =
            (&packages.python_site, &packages.manifest.python.site_mount)
        {
            wasi.preopened_dir(site, mount, FsPerms::ReadOnly)
                .map_err(|e| anyhow::Error::from(e).context("preopening the package site"))?;
        }
        let wasi = wasi.build();
        let state = PythonState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            quota: quota.clone(),
        };
        let started = Instant::now();
        let setup = started - setup_started;
        let mut store = self.new_store(state, limits.timeout(), started);
        store.limiter(|s| &mut s.limiter);

        let pre = &self.inner.python;
        let mut instantiated = None;
        let run = async {
            let guest = pre.instantiate_async(&mut store).await?;
            instantiated = Some(Instant::now());
            let runner = guest.sandgraph_guest_runner();
            match &call {
                PythonCall::Execute(code) => runner
                    .call_execute(&mut store, code)
                    .await
                    .map(|outcome| (outcome, None)),
                PythonCall::Lint { code, options } => {
                    let report = runner.call_lint(&mut store, code, options).await?;
                    let done = Outcome {
                        status: Status::Ok,
                        exit_code: 0,
                    };
                    Ok((done, Some(report)))
                }
                PythonCall::Tests { args } => runner
                    .call_run_tests(&mut store, args)
                    .await
                    .map(|(outcome, report)| (outcome, Some(report))),
            }
        };
        let (result, timed_out, cancelled) = until(wall_limit(limits), cancel, run).await;
        let called = Instant::now();
        let (outcome, report) = match result {
            Ok((outcome, report)) => (Ok(outcome), report),
            Err(err) => (Err(err), None),
        };
        let end = GuestEnd {
            outcome,
            memory_denied: store.data().limiter.denied(),
            quota_exceeded: quota.exceeded(),
            budget,
            timed_out,
            cancelled,
        };
        drop(store);
        let duration = started.elapsed();
        let torn_down = Instant::now();
        if let Some(scratch) = scratch {
            self.recycle_scratch(scratch);
        }
        let cleaned = Instant::now();
        let mut output = classify(end, stdout.take(), stderr.take(), duration, limits);
        output.phases =
            RunPhases::from_marks(setup, started, instantiated, called, torn_down, cleaned);
        observe_run("python", &output);
        Ok((output, report))
    }

    async fn run_javascript(
        &self,
        code: &str,
        limits: SandboxLimits,
        cancel: &CancellationToken,
    ) -> Result<RunOutput, SandboxError> {
        let setup_started = Instant::now();
        let stdout = CappedOutput::new(limits.stdout_bytes);
        let stderr = CappedOutput::new(limits.stderr_bytes);
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .args(&javascript::argv(code))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build_p1();
        let state = JavascriptState {
            wasi,
            limiter: MemoryLimiter::new(limits.memory_bytes),
        };
        let started = Instant::now();
        let setup = started - setup_started;
        let mut store = self.new_store(state, limits.timeout(), started);
        store.limiter(|s| &mut s.limiter);

        let pre = &self.inner.javascript;
        let mut instantiated = None;
        let run = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instantiated = Some(Instant::now());
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call_async(&mut store, ()).await
        };
        let (result, timed_out, cancelled) = until(wall_limit(limits), cancel, run).await;
        let called = Instant::now();
        // A command module reports its exit status by trapping with `I32Exit`.
        let outcome = match result {
            Ok(()) => Ok(Outcome {
                status: Status::Ok,
                exit_code: 0,
            }),
            Err(err) => match err.downcast_ref::<I32Exit>() {
                Some(I32Exit(code)) => Ok(Outcome {
                    status: if *code == 0 {
                        Status::Ok
                    } else {
                        Status::Error
                    },
                    exit_code: *code,
                }),
                None => Err(err),
            },
        };
        let end = GuestEnd {
            outcome,
            memory_denied: store.data().limiter.denied(),
            quota_exceeded: false,
            budget: WriteBudget {
                bytes: 0,
                entries: 0,
            },
            timed_out,
            cancelled,
        };
        drop(store);
        let torn_down = Instant::now();
        let mut output = classify(end, stdout.take(), stderr.take(), started.elapsed(), limits);
        output.phases =
            RunPhases::from_marks(setup, started, instantiated, called, torn_down, torn_down);
        observe_run("javascript", &output);
        Ok(output)
    }

    /// A store whose epoch callback yields to the executor every tick (so a spinning
    /// guest cannot hold a worker thread) and interrupts the guest at its deadline.
    ///
    /// Young runs first: a run older than [`YOUNG_FOR`] that reaches a tick while
    /// younger runs are active steps aside for [`STEP_ASIDE`] instead of only yielding,
    /// so a short call beside spinning guests is not shared out round-robin with them
    /// (its latency would grow with the number of spinners). Long runs still progress
    /// between ticks; their time limit is wall-clock, so they may do less work in it
    /// while short calls keep arriving.
    fn new_store<T: 'static>(&self, state: T, timeout: Duration, started: Instant) -> Store<T> {
        let mut store = Store::new(&self.inner.engine, state);
        let deadline = started + timeout;
        let mut young = YoungRun::start(self.inner.young.clone());
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            let now = Instant::now();
            if now >= deadline {
                return Ok(UpdateDeadline::Interrupt);
            }
            if young.is_young() && now.duration_since(started) >= YOUNG_FOR {
                young.grow_up();
            }
            if !young.is_young() && young.others_young() {
                return Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::time::sleep(STEP_ASIDE)),
                ));
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store
    }
}

/// Drive a guest call until it finishes, its wall-clock backstop passes, or `cancel`
/// fires: (result, timed out, cancelled). Dropping the call's future unwinds the guest
/// (its fiber is dropped with the store), so a cancelled guest stops within one epoch
/// tick, the time it takes the executor to poll this select again.
async fn until<T>(
    wall: Duration,
    cancel: &CancellationToken,
    run: impl std::future::Future<Output = wasmtime::Result<T>>,
) -> (wasmtime::Result<T>, bool, bool) {
    tokio::select! {
        result = tokio::time::timeout(wall, run) => match result {
            Ok(result) => (result, false, false),
            Err(_) => (Err(Trap::Interrupt.into()), true, false),
        },
        () = cancel.cancelled() => (Err(Trap::Interrupt.into()), false, true),
    }
}

/// The host-side backstop for a guest blocked in a host call (e.g. `time.sleep`), where
/// epoch interruption cannot reach it: the time limit plus a margin that lets a busy
/// guest be stopped by its epoch deadline first.
fn wall_limit(limits: SandboxLimits) -> Duration {
    limits.timeout() + (engine::EPOCH_TICK * 2).max(Duration::from_millis(20))
}

struct SlotGuard {
    _permit: fair::Slot,
    sandbox: Sandbox,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.sandbox.inner.active.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("sandgraph_sandbox_active_runs").decrement(1.0);
    }
}

/// Sandbox metrics for one finished run.
fn observe_run(language: &'static str, output: &RunOutput) {
    let reason = match output.exit_reason {
        ExitReason::Ok => "ok",
        ExitReason::Error => "error",
        ExitReason::Timeout => "timeout",
        ExitReason::Cancelled => "cancelled",
        ExitReason::MemoryLimit => "memory_limit",
        ExitReason::OutputLimit => "output_limit",
        ExitReason::FileQuota => "file_quota",
    };
    metrics::counter!("sandgraph_sandbox_runs_total", "language" => language, "exit_reason" => reason)
        .increment(1);
    metrics::histogram!("sandgraph_sandbox_run_seconds", "language" => language)
        .record(output.duration.as_secs_f64());
    if !matches!(output.exit_reason, ExitReason::Ok | ExitReason::Error) {
        metrics::counter!("sandgraph_sandbox_limit_hits_total", "limit" => reason).increment(1);
    }
}

/// Decide exit code and reason from how the guest ended. Sandbox-imposed ends get a
/// `sandbox:` line on stderr so a reader of stderr alone knows what happened.
fn classify(
    end: GuestEnd,
    stdout: Captured,
    stderr: Captured,
    duration: Duration,
    limits: SandboxLimits,
) -> RunOutput {
    let truncated = stdout.truncated() || stderr.truncated();
    let mut note = None;
    let (exit_code, exit_reason) = match end.outcome {
        Ok(outcome) => match outcome.status {
            Status::MemoryError => (outcome.exit_code, ExitReason::MemoryLimit),
            _ if outcome.exit_code != 0 && end.quota_exceeded => {
                (outcome.exit_code, ExitReason::FileQuota)
            }
            _ if outcome.exit_code != 0 && end.memory_denied => {
                (outcome.exit_code, ExitReason::MemoryLimit)
            }
            _ if outcome.exit_code != 0 || outcome.status == Status::Error => {
                (outcome.exit_code.max(1), ExitReason::Error)
            }
            _ if truncated => (0, ExitReason::OutputLimit),
            _ => (0, ExitReason::Ok),
        },
        Err(_) if end.cancelled => {
            note = Some("sandbox: cancelled by the caller".to_owned());
            (EXIT_CANCELLED, ExitReason::Cancelled)
        }
        Err(err) => {
            let trap = err.downcast_ref::<Trap>().copied();
            if end.timed_out || trap == Some(Trap::Interrupt) {
                note = Some(format!(
                    "sandbox: time limit of {} ms exceeded",
                    limits.timeout_ms
                ));
                (EXIT_TIMEOUT, ExitReason::Timeout)
            } else if end.memory_denied {
                note = Some(format!(
                    "sandbox: memory limit of {} bytes exceeded",
                    limits.memory_bytes
                ));
                (EXIT_MEMORY, ExitReason::MemoryLimit)
            } else {
                let what = match trap {
                    Some(Trap::StackOverflow) => {
                        "call stack exhausted (recursion too deep)".to_owned()
                    }
                    Some(trap) => format!("guest trapped: {trap}"),
                    None => format!("guest failed: {err:#}"),
                };
                note = Some(format!("sandbox: {what}"));
                (EXIT_TRAPPED, ExitReason::Error)
            }
        }
    };
    if note.is_none() && end.quota_exceeded {
        let entries = if end.budget.entries == u64::MAX {
            String::new()
        } else {
            format!(" and {} new files or directories", end.budget.entries)
        };
        note = Some(format!(
            "sandbox: file quota exceeded: writes past the run's budget ({} bytes{entries}) were refused",
            end.budget.bytes
        ));
    }
    let mut stderr_text = String::from_utf8_lossy(&stderr.bytes).into_owned();
    if let Some(note) = note {
        if !stderr_text.is_empty() && !stderr_text.ends_with('\n') {
            stderr_text.push('\n');
        }
        stderr_text.push_str(&note);
        stderr_text.push('\n');
    }
    RunOutput {
        exit_code,
        exit_reason,
        stdout: String::from_utf8_lossy(&stdout.bytes).into_owned(),
        stderr: stderr_text,
        stdout_bytes: stdout.total,
        stderr_bytes: stderr.total,
        truncated,
        duration,
        limits,
        phases: RunPhases::default(),
    }
}

/// The default guest directory: `build/guest` next to the working directory, as the
/// Makefile builds it.
pub fn default_guest_dir() -> PathBuf {
    Path::new("build").join("guest")
}

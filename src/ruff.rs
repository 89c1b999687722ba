//! ruff, the Python linter behind `lint_code`, kept running as `ruff server` workers that
//! speak the Language Server Protocol over stdio.
//!
//! Linting parses the code and never runs it, so it needs no fresh sandbox per call: a
//! persistent native linter answers in well under a millisecond, where a `ruff check`
//! subprocess per call (what the platform we replace does) pays ~10 ms of process start.
//! Each distinct set of settings gets its own worker (ruff's LSP settings are per
//! process), at most [`MAX_WORKERS`] of them, least recently used evicted; the default
//! settings' worker stays hot. A worker is started on first use, restarted when it exits,
//! and killed when it takes longer than the caller's timeout.
//!
//! The worker runs with an empty environment in an empty directory and reads no
//! configuration file (`configurationPreference: editorOnly`); settings a caller chose are
//! first checked by `ruff check` itself, so an unknown rule code is refused with ruff's
//! own message instead of being silently replaced by the defaults.
//!
//! Each request opens its own document (`file:///lint/<n>/main.py`, so per-file rules see
//! the same name as `ruff check --stdin-filename main.py`), pulls its diagnostics
//! (`textDocument/diagnostic`) and closes it: nothing accumulates in the worker.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{OnceCell, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Most workers (distinct settings) alive at once.
pub const MAX_WORKERS: usize = 4;
/// How long a worker may take to start and answer `initialize`.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The Python version ruff parses and checks for: the guest's CPython.
const TARGET_VERSION: &str = "py314";
/// Largest LSP message accepted from a worker (diagnostics of the largest accepted code).
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// What a caller may set; `None` means ruff's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct RuffSettings {
    /// `line-length` (E501 is added to the selection when set and `select` is not).
    pub line_length: Option<u32>,
    /// `lint.mccabe.max-complexity` (C901 is added likewise).
    pub max_complexity: Option<u32>,
    /// `lint.select`: replaces ruff's default rule set.
    pub select: Option<Vec<String>>,
    /// `lint.ignore`.
    pub ignore: Vec<String>,
}

impl RuffSettings {
    /// The settings as a ruff configuration table (`ruff.toml` keys).
    fn configuration(&self) -> Value {
        let mut lint = serde_json::Map::new();
        let mut extend_select = Vec::new();
        if let Some(select) = &self.select {
            lint.insert("select".into(), json!(select));
        } else {
            if self.line_length.is_some() {
                extend_select.push("E501");
            }
            if self.max_complexity.is_some() {
                extend_select.push("C901");
            }
        }
        if !extend_select.is_empty() {
            lint.insert("extend-select".into(), json!(extend_select));
        }
        if !self.ignore.is_empty() {
            lint.insert("ignore".into(), json!(self.ignore));
        }
        if let Some(max) = self.max_complexity {
            lint.insert("mccabe".into(), json!({ "max-complexity": max }));
        }
        let mut config = serde_json::Map::new();
        config.insert("target-version".into(), json!(TARGET_VERSION));
        if let Some(length) = self.line_length {
            config.insert("line-length".into(), json!(length));
        }
        config.insert("lint".into(), Value::Object(lint));
        Value::Object(config)
    }

    /// The same settings as `ruff check` arguments.
    pub fn check_args(&self) -> Vec<String> {
        let mut args = vec![
            "check".into(),
            "--isolated".into(),
            "--no-cache".into(),
            "--output-format".into(),
            "concise".into(),
            "--target-version".into(),
            TARGET_VERSION.into(),
        ];
        if let Some(length) = self.line_length {
            args.extend(["--line-length".into(), length.to_string()]);
        }
        let config = self.configuration();
        let lint = &config["lint"];
        for (key, flag) in [
            ("select", "--select"),
            ("extend-select", "--extend-select"),
            ("ignore", "--ignore"),
        ] {
            if let Some(list) = lint.get(key).and_then(Value::as_array) {
                let joined: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
                args.extend([flag.into(), joined.join(",")]);
            }
        }
        if let Some(max) = self.max_complexity {
            args.extend([
                "--config".into(),
                format!("lint.mccabe.max-complexity = {max}"),
            ]);
        }
        args.extend(["--stdin-filename".into(), "main.py".into(), "-".into()]);
        args
    }
}

/// What ruff calls a syntax error (its LSP sends it as the code; `ruff check` prints it
/// followed by a colon).
pub const SYNTAX_ERROR: &str = "invalid-syntax";

/// One finding, positions 1-based in characters (ruff's own columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuffDiagnostic {
    /// Line of the start.
    pub line: u32,
    /// Column of the start.
    pub column: u32,
    /// Rule code (`F401`), [`SYNTAX_ERROR`] (or `None`) for a syntax error.
    pub code: Option<String>,
    /// ruff's message (without the `help:` paragraph the LSP adds).
    pub message: String,
    /// `true` for LSP severity Error (syntax errors, undefined names), else a warning.
    pub error: bool,
}

impl RuffDiagnostic {
    /// The line `ruff check --output-format concise` prints for this finding in
    /// `main.py`, without the `[*]` fix marker (the LSP does not say which fixes are safe).
    pub fn concise(&self) -> String {
        match self.code.as_deref() {
            Some(code) if code != SYNTAX_ERROR => format!(
                "main.py:{}:{}: {code} {}",
                self.line, self.column, self.message
            ),
            _ => format!(
                "main.py:{}:{}: {SYNTAX_ERROR}: {}",
                self.line, self.column, self.message
            ),
        }
    }
}

/// Why a lint did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RuffError {
    /// The caller's settings were refused by ruff (its message).
    #[error("{0}")]
    Settings(String),
    /// Longer than the timeout (the worker was restarted).
    #[error("ruff took longer than {0:?}")]
    Timeout(Duration),
    /// The caller went away.
    #[error("cancelled")]
    Cancelled,
    /// The worker died under this code twice in a row (ruff overflows its stack on some
    /// very deeply nested code): the code, not the service, is the problem.
    #[error("ruff's worker exited twice while linting this code: {0}")]
    Crashed(String),
    /// The binary is missing or the worker failed.
    #[error("{0}")]
    Failed(String),
}

/// The workers, by settings.
pub struct Ruff {
    binary: PathBuf,
    version: OnceCell<String>,
    workers: Mutex<lru::LruCache<RuffSettings, Arc<Worker>>>,
    starting: tokio::sync::Mutex<()>,
    /// Where workers run (an empty directory of ours).
    home: tempfile::TempDir,
}

impl std::fmt::Debug for Ruff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ruff")
            .field("binary", &self.binary)
            .finish()
    }
}

impl Ruff {
    /// Workers of the ruff binary at `binary`, started when first needed.
    pub fn new(binary: PathBuf) -> anyhow::Result<Self> {
        // Workers run in their own directory: a relative path would resolve there.
        let binary = std::path::absolute(&binary).unwrap_or(binary);
        Ok(Self {
            binary,
            version: OnceCell::new(),
            workers: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(MAX_WORKERS).expect("MAX_WORKERS > 0"),
            )),
            starting: tokio::sync::Mutex::new(()),
            home: tempfile::Builder::new()
                .prefix("sandgraph-ruff-")
                .tempdir()?,
        })
    }

    /// The binary's path.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// `ruff X.Y.Z`, as the binary says (asked once).
    pub async fn version(&self) -> Result<&str, RuffError> {
        self.version
            .get_or_try_init(|| async {
                let output = self
                    .command()
                    .arg("--version")
                    .output()
                    .await
                    .map_err(|e| self.missing(e))?;
                let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
                if !output.status.success() || !text.starts_with("ruff ") {
                    return Err(RuffError::Failed(format!(
                        "{} --version failed: {text}",
                        self.binary.display()
                    )));
                }
                Ok(text)
            })
            .await
            .map(String::as_str)
    }

    fn missing(&self, e: std::io::Error) -> RuffError {
        RuffError::Failed(format!(
            "cannot run ruff at {}: {e} (`make guest` installs it; SANDGRAPH_RUFF names another binary)",
            self.binary.display()
        ))
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .env_clear()
            .current_dir(self.home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Lint `code` with `settings`; the findings in ruff's order.
    pub async fn lint(
        &self,
        code: &str,
        settings: &RuffSettings,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Vec<RuffDiagnostic>, RuffError> {
        // A worker that exits under a request (killed for another request's timeout,
        // crashed) gets one retry on a fresh worker.
        let mut retried = false;
        loop {
            let worker = self.worker(settings).await?;
            let result = tokio::select! {
                result = tokio::time::timeout(timeout, worker.lint(code)) => result,
                () = cancel.cancelled() => return Err(RuffError::Cancelled),
            };
            match result {
                Ok(Ok(found)) => return Ok(found),
                Ok(Err(WorkerError::Exited(why))) if !retried => {
                    tracing::warn!(%why, "ruff worker exited; retrying on a new one");
                    self.forget(settings, &worker);
                    retried = true;
                }
                Ok(Err(WorkerError::Exited(why))) => {
                    self.forget(settings, &worker);
                    return Err(RuffError::Crashed(why));
                }
                Ok(Err(WorkerError::Protocol(why))) => return Err(RuffError::Failed(why)),
                Err(_) => {
                    tracing::warn!(?timeout, "ruff took too long; restarting its worker");
                    self.forget(settings, &worker);
                    worker.kill();
                    return Err(RuffError::Timeout(timeout));
                }
            }
        }
    }

    fn forget(&self, settings: &RuffSettings, worker: &Arc<Worker>) {
        let mut workers = self.workers.lock().expect("ruff workers lock");
        if workers
            .peek(settings)
            .is_some_and(|w| Arc::ptr_eq(w, worker))
        {
            workers.pop(settings);
        }
    }

    async fn worker(&self, settings: &RuffSettings) -> Result<Arc<Worker>, RuffError> {
        if let Some(worker) = self.live_worker(settings) {
            return Ok(worker);
        }
        // One start at a time (and never two workers for the same settings).
        let _starting = self.starting.lock().await;
        if let Some(worker) = self.live_worker(settings) {
            return Ok(worker);
        }
        if *settings != RuffSettings::default() {
            self.check_settings(settings).await?;
        }
        let worker = tokio::time::timeout(START_TIMEOUT, Worker::start(self, settings))
            .await
            .map_err(|_| {
                RuffError::Failed(format!("ruff server did not start in {START_TIMEOUT:?}"))
            })??;
        let worker = Arc::new(worker);
        self.workers
            .lock()
            .expect("ruff workers lock")
            .put(settings.clone(), worker.clone());
        Ok(worker)
    }

    fn live_worker(&self, settings: &RuffSettings) -> Option<Arc<Worker>> {
        let mut workers = self.workers.lock().expect("ruff workers lock");
        match workers.get(settings) {
            Some(worker) if worker.alive() => Some(worker.clone()),
            Some(_) => {
                workers.pop(settings);
                None
            }
            None => None,
        }
    }

    /// Let `ruff check` judge settings before a worker uses them: the LSP server would
    /// log a bad rule code and fall back to its defaults, silently.
    async fn check_settings(&self, settings: &RuffSettings) -> Result<(), RuffError> {
        let output = self
            .command()
            .args(settings.check_args())
            .output()
            .await
            .map_err(|e| self.missing(e))?;
        // Exit 0 (nothing found in the empty input) or 1 (findings even there, e.g. with
        // `select = ["ALL"]`); 2 is ruff's "configuration error".
        if output.status.code() == Some(2) {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let cause = stderr
                .lines()
                .filter_map(|l| l.trim().strip_prefix("Cause:"))
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("; ");
            let why = if cause.is_empty() {
                stderr.trim().to_owned()
            } else {
                cause
            };
            // ruff checked our command line; the caller wrote options, not flags.
            let why = why.replace(" from the CLI", "");
            return Err(RuffError::Settings(why));
        }
        if !matches!(output.status.code(), Some(0 | 1)) {
            return Err(RuffError::Failed(format!(
                "ruff check exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(())
    }
}

#[derive(Debug)]
enum WorkerError {
    Exited(String),
    Protocol(String),
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;

/// One `ruff server` process.
struct Worker {
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    next_id: AtomicU64,
    alive: Arc<AtomicBool>,
    child: Mutex<Option<Child>>,
}

impl Worker {
    async fn start(ruff: &Ruff, settings: &RuffSettings) -> Result<Worker, RuffError> {
        let mut child = ruff
            .command()
            .arg("server")
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| ruff.missing(e))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (outgoing, to_write) = mpsc::unbounded_channel::<Vec<u8>>();
        let pending: Pending = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        tokio::spawn(write_frames(stdin, to_write, alive.clone()));
        tokio::spawn(read_frames(
            stdout,
            pending.clone(),
            outgoing.clone(),
            alive.clone(),
        ));
        let worker = Worker {
            outgoing,
            pending,
            next_id: AtomicU64::new(1),
            alive,
            child: Mutex::new(Some(child)),
        };
        let init = worker
            .request(
                "initialize",
                json!({
                    "processId": std::process::id(),
                    "rootUri": null,
                    "capabilities": {
                        "general": {"positionEncodings": ["utf-32"]},
                        "textDocument": {"diagnostic": {"dynamicRegistration": false}},
                    },
                    "initializationOptions": {"settings": {
                        "configurationPreference": "editorOnly",
                        "configuration": settings.configuration(),
                        "showSyntaxErrors": true,
                        "logLevel": "error",
                    }},
                }),
            )
            .await
            .map_err(|e| RuffError::Failed(format!("ruff server: initialize: {e:?}")))?;
        if init["capabilities"]["positionEncoding"] != "utf-32" {
            return Err(RuffError::Failed(format!(
                "ruff server did not agree to utf-32 positions: {}",
                init["capabilities"]["positionEncoding"]
            )));
        }
        worker.notify("initialized", json!({}));
        Ok(worker)
    }

    fn alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    fn kill(&self) {
        self.alive.store(false, Ordering::Release);
        if let Some(mut child) = self.child.lock().expect("ruff child lock").take() {
            let _ = child.start_kill();
        }
    }

    fn notify(&self, method: &str, params: Value) {
        let _ = self.outgoing.send(frame(
            &json!({"jsonrpc": "2.0", "method": method, "params": params}),
        ));
    }

    async fn request(&self, method: &str, params: Value) -> Result<Value, WorkerError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("ruff pending lock")
            .insert(id, tx);
        // Whatever happens to this future (answer, timeout, cancel), its entry goes.
        let _entry = PendingEntry {
            pending: &self.pending,
            id,
        };
        if !self.alive()
            || self
                .outgoing
                .send(frame(
                    &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
                ))
                .is_err()
        {
            return Err(WorkerError::Exited("ruff server is not running".into()));
        }
        match rx.await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) => Err(WorkerError::Protocol(format!(
                "ruff server: {method}: {error}"
            ))),
            Err(_) => Err(WorkerError::Exited("ruff server exited".into())),
        }
    }

    async fn lint(&self, code: &str) -> Result<Vec<RuffDiagnostic>, WorkerError> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let uri = format!("file:///lint/{n}/main.py");
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": code}}),
        );
        let _close = OpenDocument {
            worker: self,
            uri: &uri,
        };
        let report = self
            .request(
                "textDocument/diagnostic",
                json!({"textDocument": {"uri": uri}}),
            )
            .await?;
        let items = report["items"]
            .as_array()
            .ok_or_else(|| WorkerError::Protocol(format!("ruff server: no items in {report}")))?;
        items.iter().map(diagnostic).collect()
    }
}

/// Closes a document when its request ends, however it ends.
struct OpenDocument<'a> {
    worker: &'a Worker,
    uri: &'a str,
}

impl Drop for OpenDocument<'_> {
    fn drop(&mut self) {
        self.worker.notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": self.uri}}),
        );
    }
}

struct PendingEntry<'a> {
    pending: &'a Pending,
    id: u64,
}

impl Drop for PendingEntry<'_> {
    fn drop(&mut self) {
        self.pending
            .lock()
            .expect("ruff pending lock")
            .remove(&self.id);
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn diagnostic(item: &Value) -> Result<RuffDiagnostic, WorkerError> {
    let start = &item["range"]["start"];
    let position = |key: &str| {
        start[key]
            .as_u64()
            .and_then(|v| u32::try_from(v + 1).ok())
            .ok_or_else(|| WorkerError::Protocol(format!("ruff server: bad range in {item}")))
    };
    let message = item["message"].as_str().unwrap_or_default();
    // The LSP message carries the fix's title as a second paragraph; `ruff check` does not.
    let message = message
        .split_once("\n\nhelp: ")
        .map_or(message, |(first, _)| first);
    Ok(RuffDiagnostic {
        line: position("line")?,
        column: position("character")?,
        code: item["code"].as_str().map(str::to_owned),
        message: message.to_owned(),
        error: item["severity"].as_u64() == Some(1),
    })
}

fn frame(message: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(message).expect("JSON value serialises");
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(&body);
    out
}

async fn write_frames(
    mut stdin: tokio::process::ChildStdin,
    mut frames: mpsc::UnboundedReceiver<Vec<u8>>,
    alive: Arc<AtomicBool>,
) {
    while let Some(bytes) = frames.recv().await {
        if stdin.write_all(&bytes).await.is_err() || stdin.flush().await.is_err() {
            break;
        }
    }
    alive.store(false, Ordering::Release);
}

async fn read_frames(
    stdout: tokio::process::ChildStdout,
    pending: Pending,
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
    alive: Arc<AtomicBool>,
) {
    let mut reader = BufReader::new(stdout);
    let why = loop {
        match read_frame(&mut reader).await {
            Ok(Some(message)) => dispatch(message, &pending, &outgoing),
            Ok(None) => break "ruff server exited".to_owned(),
            Err(e) => break format!("ruff server: {e}"),
        }
    };
    alive.store(false, Ordering::Release);
    // Fail everything still waiting: dropping the senders says "exited".
    let waiting: Vec<_> = pending.lock().expect("ruff pending lock").drain().collect();
    tracing::debug!(%why, waiting = waiting.len(), "ruff worker stopped");
}

fn dispatch(message: Value, pending: &Pending, outgoing: &mpsc::UnboundedSender<Vec<u8>>) {
    match (message.get("id"), message.get("method")) {
        // A response to one of ours.
        (Some(id), None) => {
            let Some(id) = id.as_u64() else { return };
            let Some(tx) = pending.lock().expect("ruff pending lock").remove(&id) else {
                return;
            };
            let result = match message.get("error") {
                Some(error) => Err(error.to_string()),
                None => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
            };
            let _ = tx.send(result);
        }
        // A request from the server (progress tokens, capability registration): accept.
        (Some(id), Some(_)) => {
            let _ = outgoing.send(frame(&json!({"jsonrpc": "2.0", "id": id, "result": null})));
        }
        // Notifications (diagnostics cleared on close, log messages): nothing to do.
        _ => {}
    }
}

async fn read_frame(
    reader: &mut BufReader<tokio::process::ChildStdout>,
) -> std::io::Result<Option<Value>> {
    let mut length = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let length = length
        .filter(|&n| n <= MAX_MESSAGE_BYTES)
        .ok_or_else(|| std::io::Error::other("a message without a valid Content-Length"))?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| std::io::Error::other(format!("bad JSON from ruff server: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_configuration_and_the_same_cli_flags() {
        let settings = RuffSettings {
            line_length: Some(100),
            max_complexity: Some(5),
            select: None,
            ignore: vec!["F401".into()],
        };
        assert_eq!(
            settings.configuration(),
            json!({
                "target-version": "py314",
                "line-length": 100,
                "lint": {"extend-select": ["E501", "C901"], "ignore": ["F401"],
                         "mccabe": {"max-complexity": 5}},
            })
        );
        let args = settings.check_args().join(" ");
        assert!(args.contains("--line-length 100 --extend-select E501,C901 --ignore F401"));
        assert!(args.contains("--config lint.mccabe.max-complexity = 5"));
        // An explicit selection is the caller's: nothing is added to it.
        let only_f = RuffSettings {
            select: Some(vec!["F".into()]),
            line_length: Some(100),
            ..Default::default()
        };
        assert_eq!(only_f.configuration()["lint"], json!({"select": ["F"]}));
    }

    #[test]
    fn lsp_diagnostics_become_ruff_check_lines() {
        let item = json!({
            "code": "F401", "severity": 2,
            "message": "`os` imported but unused\n\nhelp: Remove unused import: `os`",
            "range": {"start": {"line": 0, "character": 7}, "end": {"line": 0, "character": 9}},
        });
        let d = diagnostic(&item).unwrap();
        assert_eq!(d.concise(), "main.py:1:8: F401 `os` imported but unused");
        assert!(!d.error);
        let syntax = json!({
            "code": "invalid-syntax", "severity": 1, "message": "Expected `)`, found newline",
            "range": {"start": {"line": 1, "character": 11}, "end": {"line": 1, "character": 12}},
        });
        let d = diagnostic(&syntax).unwrap();
        assert_eq!(
            d.concise(),
            "main.py:2:12: invalid-syntax: Expected `)`, found newline"
        );
        assert!(d.error);
        assert!(diagnostic(&json!({"message": "x"})).is_err());
    }
}

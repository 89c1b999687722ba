//! Test harness: starts the real `sandgraph` binary on a random port with its own data
//! directory and talks HTTP to it. The compiled-guest cache is shared between tests
//! (it is keyed by guest and engine), so only the first server of a run compiles.

#![allow(dead_code)]

pub mod contract;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// A running server; killed when dropped.
pub struct TestServer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// HTTP client for it, sending the admin token.
    pub http: reqwest::Client,
    /// The bootstrap admin token the server was started with.
    pub admin_token: String,
    _data_dir: Option<tempfile::TempDir>,
    data_path: std::path::PathBuf,
}

/// The environment every test server gets: its data dir, the built guests, the shared
/// compiled-guest cache, and the embedded store unless a test asks for Neo4j (`make test`
/// exports NEO4J_URI).
pub fn server_env(command: &mut Command, data_dir: &std::path::Path) {
    let root = repo_root();
    command
        .env_remove("NEO4J_URI")
        .env("SANDGRAPH_DATA_DIR", data_dir)
        .env("SANDGRAPH_GUEST_DIR", root.join("build/guest"))
        .env(
            "SANDGRAPH_COMPILED_CACHE_DIR",
            root.join("target/test-compiled-guests"),
        );
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl TestServer {
    /// Start a server with default settings.
    pub fn spawn() -> Self {
        Self::spawn_with(&[])
    }

    /// Start a server with extra environment variables.
    pub fn spawn_with(env: &[(&str, &str)]) -> Self {
        Self::spawn_inner(env, false)
    }

    /// Start a server whose stderr (its log) goes to a file, read with [`Self::log`].
    pub fn spawn_logged(env: &[(&str, &str)]) -> Self {
        Self::spawn_inner(env, true)
    }

    /// The server's log so far (only for [`Self::spawn_logged`] servers).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_path.as_path().join("server.log")).unwrap_or_default()
    }

    fn spawn_inner(env: &[(&str, &str)], log_to_file: bool) -> Self {
        Self::spawn_in(
            tempfile::tempdir().expect("temp data dir"),
            env,
            log_to_file,
        )
    }

    /// Start a server on an existing data directory (e.g. one a killed server left).
    pub fn spawn_in(data_dir: tempfile::TempDir, env: &[(&str, &str)], log_to_file: bool) -> Self {
        Self::spawn_at(data_dir, "127.0.0.1:0", env, log_to_file)
    }

    /// [`Self::spawn_in`] listening on `bind` (a fixed port survives a restart).
    pub fn spawn_at(
        data_dir: tempfile::TempDir,
        bind: &str,
        env: &[(&str, &str)],
        log_to_file: bool,
    ) -> Self {
        let admin_token = format!("sg_test_admin_{}", std::process::id())
            + &format!(
                "{:x}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            );
        let mut command = Command::new(env!("CARGO_BIN_EXE_sandgraph"));
        command.args(["serve", "--bind", bind]);
        server_env(&mut command, data_dir.path());
        command
            .env("RUST_LOG", "warn")
            .env("SANDGRAPH_ADMIN_TOKEN", &admin_token)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        if log_to_file {
            let log = std::fs::File::create(data_dir.path().join("server.log")).expect("log file");
            command.stderr(Stdio::from(log));
        }
        let mut child = command.spawn().expect("starting sandgraph");
        let stdout = child.stdout.take().expect("stdout piped");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("sandgraph exited before listening")
                .expect("reading sandgraph stdout");
            if let Some(address) = line.strip_prefix("listening on ") {
                break address.trim().to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let http = client_with_token(&admin_token);
        Self {
            child,
            base,
            http,
            admin_token,
            data_path: data_dir.path().to_owned(),
            _data_dir: Some(data_dir),
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Run `sandgraph token create` against this server's database; returns the token.
    pub fn create_token(&self, role: &str, name: &str) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_sandgraph"))
            .args(["token", "create", "--role", role, "--name", name])
            .env("SANDGRAPH_DATA_DIR", self.data_path.as_path())
            .output()
            .expect("sandgraph token create");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// The data directory (for running admin commands against it).
    pub fn data_dir(&self) -> &std::path::Path {
        self.data_path.as_path()
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POST JSON, returning status and body (JSON, or a string if it is not JSON).
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request failed");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// GET `path` with no token (the open endpoints) and return the body as text.
    pub async fn get_open_text(&self, path: &str) -> String {
        reqwest::get(self.url(path))
            .await
            .expect("request failed")
            .text()
            .await
            .expect("text body")
    }

    /// GET `path` with the admin token and parse the JSON body.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request failed")
            .json()
            .await
            .expect("JSON body")
    }

    /// Run Python code through `/execute_code`, expecting a 200.
    pub async fn python(&self, code: &str) -> Value {
        self.execute(json!({ "code": code })).await
    }

    /// POST `/execute_code`, expecting a 200.
    pub async fn execute(&self, body: Value) -> Value {
        let (status, body) = self.post("/execute_code", body).await;
        assert_eq!(status, 200, "unexpected status, body: {body}");
        body
    }

    /// Assert the server still answers health checks and runs code.
    pub async fn assert_alive(&self) {
        let health = self
            .http
            .get(self.url("/health"))
            .send()
            .await
            .expect("health request");
        assert_eq!(health.status().as_u16(), 200);
        let result = self.python("print(6 * 7)").await;
        assert_eq!(
            result["stdout"], "42\n",
            "server no longer runs code: {result}"
        );
    }
}

/// An HTTP client that sends `token` as its bearer token.
pub fn client_with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        // The server closes a kept-alive connection idle for its header timeout (10 s by
        // default); a client must retire its idle connections sooner, or a request can
        // be sent on one at the moment the server closes it (IncompleteMessage).
        .pool_idle_timeout(Duration::from_secs(5))
        .default_headers(headers)
        .build()
        .expect("http client")
}

impl TestServer {
    /// Send SIGTERM and wait (up to `within`) for the process to exit; its exit status
    /// (None if it had to be killed) and its data dir.
    pub fn terminate(
        mut self,
        within: Duration,
    ) -> (Option<std::process::ExitStatus>, tempfile::TempDir) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let deadline = std::time::Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for sandgraph") {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self._data_dir.take().expect("data dir"))
    }

    /// Kill the server with SIGKILL (no shutdown of any kind) and keep its data dir.
    pub fn kill_keep_data(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self._data_dir.take().expect("data dir")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Neo4j the tests use. Missing is a failure, not a skip: run the suite through
/// `make test`, which starts Neo4j (scripts/neo4j/neo4j.sh run).
pub fn neo4j_uri() -> String {
    std::env::var("NEO4J_URI").expect(
        "NEO4J_URI is not set: the Neo4j tests need a real Neo4j; run them with `make test`",
    )
}

/// A direct Neo4j client for checking what the server wrote.
pub fn neo4j_client() -> neo4rs::Graph {
    let config = neo4rs::ConfigBuilder::default()
        .uri(neo4j_uri())
        .user("neo4j")
        .password("")
        .build()
        .unwrap();
    neo4rs::Graph::connect(config).unwrap()
}

/// One integer from a Cypher query returning a single `n` column.
pub async fn neo4j_count(graph: &neo4rs::Graph, cypher: &str, params: &[(&str, &str)]) -> i64 {
    let mut q = neo4rs::query(cypher);
    for (key, value) in params {
        q = q.param(key, *value);
    }
    let mut rows = graph.execute(q).await.expect("neo4j query");
    let row = rows.next().await.expect("neo4j row").expect("a row");
    row.get::<i64>("n").expect("column n")
}

/// How many Execution and AuditEvent nodes Neo4j holds for `caller`.
pub async fn recorded_in_neo4j(graph: &neo4rs::Graph, caller: &str) -> (i64, i64) {
    let p = [("caller", caller)];
    let executions = neo4j_count(
        graph,
        "MATCH (e:Execution {caller_id: $caller}) RETURN count(e) AS n",
        &p,
    )
    .await;
    let audit_events = neo4j_count(
        graph,
        "MATCH (a:AuditEvent {caller_id: $caller}) RETURN count(a) AS n",
        &p,
    )
    .await;
    (executions, audit_events)
}

impl TestServer {
    /// Wait until the outbox is empty (everything shipped to Neo4j), up to `timeout`.
    pub async fn wait_shipped(&self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let health = self.get_json("/health").await;
            if health["store"]["outbox_depth"] == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "outbox never drained: {health}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A sandbox on the built guest (`make guest`) with its compiled-guest cache, for tests
/// that call it in-process: `runs` slots (each caller may use all), `queue_timeout` for a
/// slot.
pub fn in_process_sandbox(
    scratch: &std::path::Path,
    runs: usize,
    queue_timeout: std::time::Duration,
) -> sandgraph::sandbox::Sandbox {
    let root = repo_root();
    sandgraph::sandbox::Sandbox::new(sandgraph::sandbox::SandboxConfig {
        guest_dir: root.join("build/guest"),
        cache_dir: root.join("target/test-compiled-guests"),
        scratch_dir: scratch.to_owned(),
        max_concurrent_runs: runs,
        max_runs_per_caller: runs,
        queue_timeout,
        pooling: true,
        pool_keep_resident_bytes: 16 << 20,
        guest_threads: 0,
    })
    .expect("loading the sandbox (run `make guest` first)")
}

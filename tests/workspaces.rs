//! Workspaces over REST, against the real binary and the real sandbox: the three-call
//! flow (files in, a run, files out with matching hashes), path safety, links a guest
//! makes, quotas (each a clear error, the workspace usable afterwards), ownership,
//! expiry, restart survival, deletion (also mid-run), runs with files but no workspace.
//! The same flow over MCP (resource links, images) is in tests/python/test_mcp_workspaces.py.

mod common;

use std::time::Duration;

use common::contract::{caller_id, uuid_like};
use common::{TestServer, client_with_token};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A caller of `server`: its HTTP client.
struct Caller<'a> {
    server: &'a TestServer,
    http: reqwest::Client,
}

impl<'a> Caller<'a> {
    fn admin(server: &'a TestServer) -> Self {
        Self {
            server,
            http: server.http.clone(),
        }
    }

    fn new(server: &'a TestServer, role: &str) -> Self {
        let name = format!("ws-{role}-{}", uuid_like());
        Self {
            server,
            http: client_with_token(&server.create_token(role, &name)),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.post(self.server.url(path)).json(&body))
            .await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(self.server.url(path))).await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.http.delete(self.server.url(path))).await
    }

    async fn create(&self) -> String {
        let (status, body) = self.post("/workspaces", json!({})).await;
        assert_eq!(status, 201, "{body}");
        body["workspace_id"].as_str().unwrap().to_owned()
    }

    async fn write(&self, id: &str, path: &str, content: &str) -> (u16, Value) {
        self.post(
            &format!("/workspaces/{id}/files"),
            json!({"path": path, "content": content}),
        )
        .await
    }

    async fn read(&self, id: &str, path: &str) -> (u16, Value) {
        let query = serde_urlencoded::to_string([("path", path)]).unwrap();
        self.get(&format!("/workspaces/{id}/file?{query}")).await
    }

    async fn list(&self, id: &str) -> (u16, Value) {
        self.get(&format!("/workspaces/{id}/files")).await
    }

    async fn run(&self, id: &str, code: &str) -> (u16, Value) {
        self.post("/execute_code", json!({"workspace_id": id, "code": code}))
            .await
    }

    async fn download(&self, id: &str, path: &str) -> (u16, Vec<u8>, reqwest::header::HeaderMap) {
        let response = self
            .http
            .get(self.server.url(&format!("/workspaces/{id}/files/{path}")))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, response.bytes().await.unwrap().to_vec(), headers)
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn listed_paths(listing: &Value) -> Vec<String> {
    listing["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect()
}

const FLOW_CODE: &str = r#"
import csv, json
rows = list(csv.DictReader(open("data.csv")))
total = sum(float(r["sales"]) for r in rows)
json.dump({"rows": len(rows), "total": total}, open("out.json", "w"))
bars = "".join(f'<rect x="{10 + 30 * i}" y="{100 - float(r["sales"])}" width="20" height="{r["sales"]}"/>' for i, r in enumerate(rows))
open("chart.svg", "w").write(f'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="100">{bars}</svg>')
print("total", total)
"#;

#[tokio::test]
async fn three_calls_write_data_run_on_it_and_read_the_results_back() {
    let server = TestServer::spawn();
    let me = Caller::new(&server, "agent");
    let id = me.create().await;
    assert!(id.starts_with("ws_") && id.len() == 35, "{id}");

    let csv = "month,sales\njan,10\nfeb,30\nmar,20\n";
    let (status, written) = me.write(&id, "data.csv", csv).await;
    assert_eq!(status, 200, "{written}");
    assert_eq!(written["sha256"], sha256(csv.as_bytes()));
    assert_eq!(written["mime"], "text/csv");

    let (status, run) = me.run(&id, FLOW_CODE).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["exit_reason"], "ok", "{run}");
    assert_eq!(run["stdout"], "total 60.0\n");
    assert_eq!(run["workspace_id"], id.as_str());
    let files = run["files"].as_array().unwrap();
    let by_path = |p: &str| files.iter().find(|f| f["path"] == p).cloned().unwrap();
    assert_eq!(files.len(), 2, "only what the run made: {files:?}");
    let out = by_path("out.json");
    let chart = by_path("chart.svg");
    assert_eq!(out["change"], "created");
    assert_eq!(out["mime"], "application/json");
    assert_eq!(chart["mime"], "image/svg+xml");
    assert_eq!(
        chart["uri"],
        format!("sandgraph://workspaces/{id}/files/chart.svg")
    );
    // Small text files come back inline.
    assert_eq!(out["text"], r#"{"rows": 3, "total": 60.0}"#);

    for file in [&out, &chart] {
        let path = file["path"].as_str().unwrap();
        let (status, bytes, headers) = me.download(&id, path).await;
        assert_eq!(status, 200);
        assert_eq!(sha256(&bytes), file["sha256"], "{path}");
        assert_eq!(bytes.len() as u64, file["size"].as_u64().unwrap());
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(
            headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        assert_eq!(
            file["download_path"],
            format!("/workspaces/{id}/files/{path}")
        );
        let (status, read) = me.read(&id, path).await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(read["sha256"], file["sha256"]);
        assert_eq!(
            sha256(read["content"].as_str().unwrap().as_bytes()),
            file["sha256"]
        );
    }

    // A second run changes one file and removes another.
    let (_, again) = me
        .run(
            &id,
            "import os\nopen('out.json', 'w').write('{}')\nos.remove('chart.svg')\n",
        )
        .await;
    assert_eq!(again["files"][0]["path"], "out.json");
    assert_eq!(again["files"][0]["change"], "modified");
    assert_eq!(again["removed_files"], json!(["chart.svg"]));

    let (status, listing) = me.list(&id).await;
    assert_eq!(status, 200, "{listing}");
    assert_eq!(listed_paths(&listing), vec!["data.csv", "out.json"]);
    assert_eq!(listing["workspace"]["used_files"], 2);
    assert_eq!(
        listing["workspace"]["used_bytes"],
        (csv.len() + 2) as u64,
        "{listing}"
    );
}

#[tokio::test]
async fn run_tests_in_a_workspace_reads_its_data_and_leaves_its_files() {
    let server = TestServer::spawn();
    let me = Caller::new(&server, "agent");
    let id = me.create().await;
    me.write(&id, "fixtures/expected.txt", "42\n").await;
    let (status, body) = me
        .post(
            "/run_tests",
            json!({
                "workspace_id": id,
                "code": "def answer():\n    return 42\n",
                "tests": "from solution import answer\n\ndef test_answer():\n    assert str(answer()) == open('fixtures/expected.txt').read().strip()\n",
                "files": [{"path": "conftest.py", "content": "# shared fixtures\n"}],
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["summary"]["passed"], 1, "{body}");
    let (_, listing) = me.list(&id).await;
    let paths = listed_paths(&listing);
    for expected in [
        "conftest.py",
        "fixtures/expected.txt",
        "solution.py",
        "test_solution.py",
    ] {
        assert!(paths.iter().any(|p| p == expected), "{paths:?}");
    }
}

#[tokio::test]
async fn files_without_a_workspace_live_only_for_the_run() {
    let server = TestServer::spawn();
    let me = Caller::new(&server, "agent");
    let (status, body) = me
        .post(
            "/execute_code",
            json!({
                "code": "print(open('in/data.bin', 'rb').read())\nopen('out.txt', 'w').write('made')\n",
                "files": [{"path": "in/data.bin", "content_base64": "AAEC/w=="}],
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stdout"], "b'\\x00\\x01\\x02\\xff'\n");
    assert!(body.get("workspace_id").is_none());
    let files = body["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0]["path"], "out.txt");
    assert_eq!(files[0]["sha256"], sha256(b"made"));
    assert!(
        files[0].get("uri").is_none(),
        "nothing to link to: {files:?}"
    );
    // Nothing stays behind.
    let leftovers: Vec<_> = std::fs::read_dir(server.data_dir().join("workspaces/.tmp"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // JavaScript has no filesystem here: refused, not ignored.
    let (status, body) = me
        .post(
            "/execute_code",
            json!({"code": "1", "language": "javascript", "files": [{"path": "a", "content": "x"}]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["detail"],
        "workspace_id and files need python: javascript runs here without a filesystem"
    );
}

#[tokio::test]
async fn paths_that_leave_the_workspace_are_refused_with_422() {
    let server = TestServer::spawn();
    let me = Caller::new(&server, "agent");
    let id = me.create().await;
    let cases = [
        (
            "../x",
            "path \"../x\" contains \"..\": paths must stay inside the workspace",
        ),
        (
            "a/../../etc/passwd",
            "path \"a/../../etc/passwd\" contains \"..\": paths must stay inside the workspace",
        ),
        (
            "/etc/passwd",
            "path \"/etc/passwd\" is absolute: give a path relative to the workspace root, e.g. data.csv",
        ),
        ("a\u{0}b", "path contains a NUL byte"),
    ];
    for (path, detail) in cases {
        let (status, body) = me.write(&id, path, "x").await;
        assert_eq!(
            (status, body["detail"].as_str()),
            (422, Some(detail)),
            "write {path:?}"
        );
        assert_eq!(body["field"], "path");
        let (status, body) = me.read(&id, path).await;
        assert_eq!(
            (status, body["detail"].as_str()),
            (422, Some(detail)),
            "read {path:?}"
        );
        let (status, body) = me
            .post(
                "/execute_code",
                json!({"workspace_id": id, "code": "1", "files": [{"path": path, "content": "x"}]}),
            )
            .await;
        assert_eq!(status, 422, "run {path:?}: {body}");
        assert_eq!(body["detail"], format!("files[0]: {detail}"));
    }
    // Percent-encoded `..` in a download URL is still `..`.
    let (status, _, _) = me.download(&id, "%2E%2E/sandgraph.db").await;
    assert!(status == 422 || status == 404, "{status}");
    let (_, listing) = me.list(&id).await;
    assert!(listed_paths(&listing).is_empty(), "nothing was written");
}

#[tokio::test]
async fn a_link_the_guest_makes_is_never_followed_by_the_host() {
    let server = TestServer::spawn();
    let me = Caller::new(&server, "agent");
    let id = me.create().await;
    // data/workspaces/<id>/../../sandgraph.db is the server's database.
    let (status, run) = me
        .run(
            &id,
            "import os\n\
             os.symlink('../../sandgraph.db', 'db')\n\
             os.symlink('../..', 'up')\n\
             print(sorted(os.listdir('.')))\n",
        )
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["exit_reason"], "ok", "{run}");
    assert_eq!(run["stdout"], "['db', 'up']\n");
    assert_eq!(run["files"], json!([]), "links are not files: {run}");

    let (_, listing) = me.list(&id).await;
    let kinds: Vec<(String, String)> = listing["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().into(),
                e["kind"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("db".into(), "symlink".into()),
            ("up".into(), "symlink".into())
        ],
        "listed as links, never walked into"
    );
    let link_refusal = |path: &str| {
        format!(
            "{path} is a symbolic link (or passes through one); sandgraph never follows links in a workspace"
        )
    };
    for path in ["db", "up/sandgraph.db"] {
        let (status, body) = me.read(&id, path).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert_eq!(body["detail"], link_refusal(path));
        let (status, bytes, _) = me.download(&id, path).await;
        assert_eq!(status, 422, "{path}");
        assert!(!bytes.starts_with(b"SQLite format"), "the database leaked");
    }
    // Writing at a link's name replaces the link; the database is untouched.
    let db_before = std::fs::metadata(server.data_dir().join("sandgraph.db"))
        .unwrap()
        .len();
    let (status, _) = me.write(&id, "db", "mine").await;
    assert_eq!(status, 200);
    let (status, body) = me.write(&id, "up/evil", "x").await;
    assert_eq!(status, 422, "{body}");
    assert!(!server.data_dir().join("evil").exists());
    assert!(
        std::fs::metadata(server.data_dir().join("sandgraph.db"))
            .unwrap()
            .len()
            >= db_before
    );
    let (_, read) = me.read(&id, "db").await;
    assert_eq!(read["content"], "mine");
}

#[tokio::test]
async fn quotas_give_clear_errors_and_leave_the_workspace_usable() {
    let server = TestServer::spawn_with(&[
        ("SANDGRAPH_WORKSPACE_QUOTA_BYTES", "4000"),
        ("SANDGRAPH_WORKSPACE_MAX_FILES", "5"),
        ("SANDGRAPH_WORKSPACES_PER_CALLER", "2"),
        ("SANDGRAPH_WORKSPACES_DISK_BYTES", "6000"),
    ]);
    let me = Caller::new(&server, "agent");
    let id = me.create().await;

    // Byte quota, host side.
    let (status, _) = me.write(&id, "a.txt", &"a".repeat(3000)).await;
    assert_eq!(status, 200);
    let (status, body) = me.write(&id, "b.txt", &"b".repeat(1500)).await;
    assert_eq!(status, 507, "{body}");
    assert_eq!(
        body["detail"],
        format!(
            "writing b.txt (1500 bytes) would need 1500 more bytes, but workspace {id} holds 3000 of its 4000 bytes; delete files first"
        )
    );
    // Replacing a file only needs the difference.
    let (status, body) = me.write(&id, "a.txt", &"a".repeat(3500)).await;
    assert_eq!(status, 200, "{body}");

    // Byte quota, mid-run: the write fails inside the guest; what fits stays.
    let (status, run) = me
        .run(&id, "with open('big.bin', 'wb') as f:\n    for _ in range(100):\n        f.write(b'x' * 100)\n")
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["exit_reason"], "file_quota", "{run}");
    assert!(
        run["stderr"].as_str().unwrap().ends_with(
            "sandbox: file quota exceeded: writes past the run's budget (500 bytes and 4 new files or directories) were refused\n"
        ),
        "{run}"
    );
    let (_, listing) = me.list(&id).await;
    let used = listing["workspace"]["used_bytes"].as_u64().unwrap();
    assert!(used <= 4000, "{listing}");
    let big = listing["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "big.bin")
        .unwrap();
    assert_eq!(
        big["size"].as_u64().unwrap() + 3500,
        used,
        "usage matches the files"
    );

    // Entry quota, mid-run and host side.
    let (status, _) = me.delete(&format!("/workspaces/{id}/files/big.bin")).await;
    assert_eq!(status, 204);
    let (_, run) = me
        .run(&id, "for i in range(10):\n    open(f'f{i}', 'w').close()\n")
        .await;
    assert_eq!(run["exit_reason"], "file_quota", "{run}");
    let (_, listing) = me.list(&id).await;
    assert_eq!(listing["workspace"]["used_files"], 5, "{listing}");
    let (status, body) = me.write(&id, "one-more", "x").await;
    assert_eq!(status, 507, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("holds 5 of its 5 files and directories"),
        "{body}"
    );
    // Still usable: read, run, delete, write.
    let (status, _) = me.read(&id, "a.txt").await;
    assert_eq!(status, 200);
    let (_, run) = me.run(&id, "print(len(open('a.txt').read()))").await;
    assert_eq!(run["stdout"], "3500\n");
    let (status, _) = me.delete(&format!("/workspaces/{id}/files/f0")).await;
    assert_eq!(status, 204);
    let (status, _) = me.write(&id, "one-more", "x").await;
    assert_eq!(status, 200);

    // The global disk cap: 3501 of 6000 bytes are held; another workspace cannot take
    // 3000 more.
    let other = me.create().await;
    let (status, body) = me.write(&other, "c.txt", &"c".repeat(3000)).await;
    assert_eq!(status, 507, "{body}");
    assert_eq!(
        body["detail"],
        "the server's workspace storage is full (6000 bytes across all workspaces); writing c.txt (3000 bytes) needs 3000 more bytes: delete files or workspaces you no longer need"
    );
    let (status, _) = me.write(&other, "c.txt", &"c".repeat(2000)).await;
    assert_eq!(status, 200, "what fits is still accepted");

    // The per-caller cap.
    let (status, body) = me.post("/workspaces", json!({})).await;
    assert_eq!(status, 507, "{body}");
    assert_eq!(
        body["detail"],
        "you already have 2 live workspaces, the most one caller may have; delete one with delete_workspace (or let one expire) first"
    );
    let (status, _) = me.delete(&format!("/workspaces/{other}")).await;
    assert_eq!(status, 204);
    me.create().await;
}

#[tokio::test]
async fn another_caller_even_an_admin_cannot_see_a_workspace() {
    let server = TestServer::spawn();
    let owner = Caller::new(&server, "agent");
    let id = owner.create().await;
    owner.write(&id, "secret.txt", "owner's").await;
    let not_found = format!(
        "no workspace {id}: it does not exist, has expired or was deleted (create_workspace makes a new one)"
    );
    for stranger in [Caller::new(&server, "agent"), Caller::admin(&server)] {
        let attempts = [
            stranger.read(&id, "secret.txt").await,
            stranger.write(&id, "x.txt", "x").await,
            stranger.list(&id).await,
            stranger.run(&id, "print(open('secret.txt').read())").await,
            stranger
                .post(
                    "/run_tests",
                    json!({"workspace_id": id, "code": "def test_x(): pass"}),
                )
                .await,
            stranger
                .delete(&format!("/workspaces/{id}/files/secret.txt"))
                .await,
            stranger.delete(&format!("/workspaces/{id}")).await,
        ];
        for (status, body) in attempts {
            assert_eq!(status, 404, "{body}");
            assert_eq!(body["detail"], not_found.as_str());
        }
        let (status, bytes, _) = stranger.download(&id, "secret.txt").await;
        assert_eq!(status, 404);
        assert!(!String::from_utf8_lossy(&bytes).contains("owner's"));
    }
    // The same answer as for a workspace that never existed.
    let never = "ws_0123456789abcdef0123456789abcdef";
    let (status, body) = owner.list(never).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["detail"],
        not_found.replace(&id, never),
        "existence is not revealed"
    );
    let (status, body) = owner.list("not-a-handle").await;
    assert_eq!(status, 422, "{body}");
    // The owner's workspace is intact.
    let (_, read) = owner.read(&id, "secret.txt").await;
    assert_eq!(read["content"], "owner's");
}

#[tokio::test]
async fn file_operations_are_audited_without_their_contents() {
    let server = TestServer::spawn();
    let name = format!("ws-audit-{}", uuid_like());
    let me = Caller {
        server: &server,
        http: client_with_token(&server.create_token("agent", &name)),
    };
    let id = me.create().await;
    me.write(&id, "notes.txt", "TOP-SECRET-CONTENT").await;
    me.read(&id, "notes.txt").await;
    me.run(&id, "open('out.txt', 'w').write('TOP-SECRET-OUTPUT')")
        .await;
    me.download(&id, "out.txt").await;
    let caller = caller_id(&server, &name);
    let (_, page) = Caller::admin(&server)
        .get(&format!("/audit_log?caller={caller}&limit=50"))
        .await;
    let events = page["items"].as_array().unwrap();
    let mut endpoints: Vec<&str> = events
        .iter()
        .map(|e| e["endpoint"].as_str().unwrap())
        .collect();
    endpoints.sort();
    assert_eq!(
        endpoints,
        vec![
            "create_workspace",
            "download_file",
            "execute_code",
            "read_file",
            "write_file"
        ]
    );
    let text = page.to_string();
    assert!(
        !text.contains("TOP-SECRET"),
        "contents in the audit log: {text}"
    );
    let write = events
        .iter()
        .find(|e| e["endpoint"] == "write_file")
        .unwrap();
    assert_eq!(write["detail"], format!("workspace {id}: 18 bytes"));
    let run = events
        .iter()
        .find(|e| e["endpoint"] == "execute_code")
        .unwrap();
    assert_eq!(
        run["detail"],
        format!("workspace {id}: 1 files created or changed, 0 removed")
    );
}

/// Poll until `check` holds (bounded; never asserts on how long it took).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn an_expired_workspace_is_gone_and_its_files_removed() {
    let server = TestServer::spawn_with(&[
        ("SANDGRAPH_WORKSPACE_TTL_SECONDS", "1"),
        ("SANDGRAPH_WORKSPACE_SWEEP_MS", "100"),
    ]);
    let me = Caller::new(&server, "agent");
    let id = me.create().await;
    let (status, _) = me.write(&id, "data.csv", "a,b\n").await;
    assert_eq!(status, 200);
    let dir = server.data_dir().join("workspaces").join(&id);
    assert!(dir.join("data.csv").exists());
    // Any call naming it would extend it: watch the disk, not the API.
    eventually("the janitor removes its directory", async || !dir.exists()).await;
    let (status, body) = me.list(&id).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = me.run(&id, "print(1)").await;
    assert_eq!(status, 404, "{body}");
    // Its slot is free again under the per-caller cap, and a new one works.
    let fresh = me.create().await;
    assert_eq!(me.write(&fresh, "x", "y").await.0, 200);
}

#[tokio::test]
async fn workspaces_survive_a_restart() {
    let server = TestServer::spawn();
    let token = server.create_token("agent", &format!("ws-restart-{}", uuid_like()));
    let me = Caller {
        server: &server,
        http: client_with_token(&token),
    };
    let id = me.create().await;
    me.write(&id, "keep/me.txt", "still here").await;
    let (_, before) = me.list(&id).await;
    let (status, data_dir) = server.terminate(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");

    let server = TestServer::spawn_in(data_dir, &[], false);
    let me = Caller {
        server: &server,
        http: client_with_token(&token),
    };
    let (status, read) = me.read(&id, "keep/me.txt").await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["content"], "still here");
    let (_, after) = me.list(&id).await;
    assert!(
        after["workspace"]["expires_at"].as_str() >= before["workspace"]["expires_at"].as_str()
    );
    assert_eq!(
        after["workspace"]["created_at"],
        before["workspace"]["created_at"]
    );
    let (_, run) = me.run(&id, "print(open('keep/me.txt').read())").await;
    assert_eq!(run["stdout"], "still here\n");
}

#[tokio::test]
async fn a_deleted_workspace_fails_cleanly_even_mid_run() {
    let server = TestServer::spawn();
    let me = Caller::new(&server, "agent");
    let id = me.create().await;
    let (status, _) = me.delete(&format!("/workspaces/{id}")).await;
    assert_eq!(status, 204);
    let (status, body) = me.run(&id, "print(1)").await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = me.delete(&format!("/workspaces/{id}")).await;
    assert_eq!(status, 404, "deleting twice is not found");

    // Mid-run: the run is stopped, its call says why, the content is removed.
    let id = me.create().await;
    let dir = server.data_dir().join("workspaces").join(&id);
    let long_run = me.post(
        "/execute_code",
        json!({
            "workspace_id": id,
            "timeout_seconds": 60,
            "code": "import time\nopen('started', 'w').close()\nwhile True:\n    open('log', 'a').write('x')\n    time.sleep(0.01)\n",
        }),
    );
    let delete = async {
        eventually("the run starts", async || dir.join("started").exists()).await;
        me.delete(&format!("/workspaces/{id}")).await
    };
    let ((run_status, run), (delete_status, _)) = tokio::join!(long_run, delete);
    assert_eq!(delete_status, 204);
    assert_eq!(run_status, 404, "{run}");
    assert_eq!(
        run["detail"],
        format!("workspace {id} was deleted while the run was in progress; the run was stopped")
    );
    assert!(!dir.exists(), "content removed once the run stopped");
    server.assert_alive().await;
}

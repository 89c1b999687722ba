//! Escape attempts: each must come back as a normal result whose attempt failed, and
//! the server must keep serving afterwards.

mod common;

use common::TestServer;
use serde_json::{Value, json};

fn assert_failed_with(result: &Value, needle: &str) {
    assert_eq!(result["exit_reason"], "error", "{result}");
    assert_ne!(result["return_code"], 0, "{result}");
    let stderr = result["stderr"].as_str().unwrap_or_default();
    assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
}

#[tokio::test]
async fn guest_cannot_read_host_files() {
    let server = TestServer::spawn();
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    for path in [
        "/etc/passwd",
        "/proc/self/environ",
        "/root/.bashrc",
        manifest,
    ] {
        let result = server
            .python(&format!("print(open({path:?}).read()[:100])"))
            .await;
        assert_failed_with(&result, "FileNotFoundError");
        assert_eq!(result["stdout"], "", "{path} leaked: {result}");
    }
    // The guest's whole world is its scratch directory: there is no root to list.
    let result = server
        .python("import os\nprint(sorted(os.listdir('/')))")
        .await;
    assert_failed_with(&result, "FileNotFoundError");
    server.assert_alive().await;
}

#[tokio::test]
async fn guest_cannot_traverse_out_of_scratch_with_dotdot() {
    let server = TestServer::spawn();
    let result = server
        .python("print(open('../../../../../../etc/passwd').read())")
        .await;
    assert_eq!(result["exit_reason"], "error", "{result}");
    assert_eq!(result["stdout"], "");
    let result = server
        .python("import os\nprint(os.listdir('/scratch/../..'))")
        .await;
    assert!(
        !result["stdout"].as_str().unwrap().contains("etc"),
        "{result}"
    );
    server.assert_alive().await;
}

#[tokio::test]
async fn guest_cannot_follow_a_symlink_it_created_pointing_outside_scratch() {
    let server = TestServer::spawn();
    let relative = server
        .python(
            "import os\nos.symlink('../../../../../../../etc/passwd', 'link')\n\
             print(open('link').read())",
        )
        .await;
    assert_eq!(relative["exit_reason"], "error", "{relative}");
    assert!(
        !relative["stdout"].as_str().unwrap().contains("root:"),
        "{relative}"
    );

    let directory = server
        .python("import os\nos.symlink('../../../../../../..', 'up')\nprint(os.listdir('up'))")
        .await;
    assert_failed_with(&directory, "PermissionError");

    let absolute = server
        .python("import os\nos.symlink('/etc/passwd', 'abs')\nprint(open('abs').read())")
        .await;
    assert_eq!(absolute["exit_reason"], "error", "{absolute}");
    assert!(
        !absolute["stdout"].as_str().unwrap().contains("root:"),
        "{absolute}"
    );
    server.assert_alive().await;
}

#[tokio::test]
async fn guest_cannot_open_a_socket_to_the_servers_own_port() {
    let server = TestServer::spawn();
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let result = server
        .python(&format!(
            "import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))\n\
             s.sendall(b'GET /health HTTP/1.0\\r\\n\\r\\n')\nprint(s.recv(100))"
        ))
        .await;
    assert_failed_with(&result, "PermissionError");
    let lookup = server
        .python("import socket\nprint(socket.getaddrinfo('localhost', 80))")
        .await;
    assert_eq!(lookup["exit_reason"], "error", "{lookup}");
    let js = server
        .execute(json!({"language": "javascript", "code": "console.log(typeof fetch, typeof XMLHttpRequest)"}))
        .await;
    assert_eq!(js["stdout"], "undefined undefined\n", "{js}");
    server.assert_alive().await;
}

#[tokio::test]
async fn guest_cannot_see_the_servers_environment() {
    let secret = "s3cr3t-value-the-guest-must-not-see";
    let server = TestServer::spawn_with(&[("SANDGRAPH_TEST_SECRET", secret)]);
    let result = server
        .python(
            "import os\nprint(dict(os.environ))\nprint(os.environ.get('SANDGRAPH_TEST_SECRET'))\n\
             print(os.getenv('PATH'), os.getenv('HOME'))",
        )
        .await;
    assert_eq!(result["exit_reason"], "ok", "{result}");
    assert_eq!(result["stdout"], "{}\nNone\nNone None\n");
    let js = server
        .execute(
            json!({"language": "javascript", "code": "console.log(typeof process, typeof std)"}),
        )
        .await;
    assert_eq!(js["stdout"], "undefined undefined\n", "{js}");
    assert!(!js.to_string().contains(secret));
    server.assert_alive().await;
}

#[tokio::test]
async fn guest_cannot_spawn_processes() {
    let server = TestServer::spawn();
    let system = server.python("import posix\nposix.system('id')").await;
    assert_failed_with(&system, "AttributeError");
    let os_system = server.python("import os\nos.system('id')").await;
    assert_failed_with(&os_system, "AttributeError");
    let fork = server.python("import os\nos.fork()").await;
    assert_failed_with(&fork, "AttributeError");
    let subprocess = server
        .python("import subprocess\nprint(subprocess.run(['id'], capture_output=True))")
        .await;
    assert_eq!(subprocess["exit_reason"], "error", "{subprocess}");
    assert_eq!(subprocess["stdout"], "");
    let ctypes = server
        .python("import ctypes\nctypes.CDLL(None).system(b'id')")
        .await;
    assert_failed_with(&ctypes, "ModuleNotFoundError");
    server.assert_alive().await;
}

#[tokio::test]
async fn a_run_that_patches_the_runtime_does_not_affect_the_next_run() {
    let server = TestServer::spawn();
    let patch = server
        .python(
            "import builtins, json, os, sys\n\
             json.dumps = lambda *a, **k: 'patched'\n\
             builtins.len = lambda x: -1\n\
             builtins.leaked = 'yes'\n\
             os.environ['LEAKED'] = '1'\n\
             sys.modules['evil'] = object()\n\
             sys.path.insert(0, '/evil')\n\
             open('left-behind.txt', 'w').write('x')\n\
             print('patched')",
        )
        .await;
    assert_eq!(patch["stdout"], "patched\n", "{patch}");
    let check = server
        .python(
            "import builtins, json, os, sys\n\
             print(json.dumps({}), len('ab'), hasattr(builtins, 'leaked'),\n\
                   'LEAKED' in os.environ, 'evil' in sys.modules, '/evil' in sys.path,\n\
                   os.listdir('/scratch'))",
        )
        .await;
    assert_eq!(
        check["stdout"], "{} 2 False False False False []\n",
        "{check}"
    );
}

/// Empty scratch directories are reused by later runs (creating and removing one costs
/// more than the guest's own work for a short run): one that a run emptied again, with
/// its times set, must reach the next run empty and with fresh times.
#[tokio::test]
async fn a_reused_scratch_dir_carries_nothing_of_the_run_before() {
    let server = TestServer::spawn();
    let first = server
        .python(
            "import os\n\
             open('/scratch/note.txt', 'w').write('secret')\n\
             os.mkdir('/scratch/sub')\n\
             os.rmdir('/scratch/sub')\n\
             os.remove('/scratch/note.txt')\n\
             os.utime('/scratch', (1000000000, 1000000000))\n\
             print(os.listdir('/scratch'), int(os.stat('/scratch').st_mtime))",
        )
        .await;
    assert_eq!(first["stdout"], "[] 1000000000\n", "{first}");
    for _ in 0..4 {
        let next = server
            .python(
                "import os, time\n\
                 st = os.stat('/scratch')\n\
                 print(os.listdir('/scratch'), st.st_mtime > 1600000000, st.st_atime > 1600000000)",
            )
            .await;
        assert_eq!(next["stdout"], "[] True True\n", "{next}");
    }
}

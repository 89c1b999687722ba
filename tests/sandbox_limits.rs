//! Resource limits: each ends the run with a clear `exit_reason`, and the server keeps
//! serving.

mod common;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn infinite_loop_ends_with_timeout_near_the_limit() {
    let server = TestServer::spawn();
    let result = server
        .execute(json!({"code": "while True: pass", "timeout_seconds": 1}))
        .await;
    assert_eq!(result["exit_reason"], "timeout", "{result}");
    assert_eq!(result["return_code"], 124);
    assert!(
        result["stderr"]
            .as_str()
            .unwrap()
            .contains("time limit of 1000 ms exceeded")
    );
    let took = result["duration_seconds"].as_f64().unwrap();
    // Correctness bounds, not a benchmark: the run must not end early, and must end.
    assert!((1.0..10.0).contains(&took), "took {took}s");
    server.assert_alive().await;
}

#[tokio::test]
async fn guest_blocked_in_sleep_is_stopped_by_the_time_limit() {
    let server = TestServer::spawn();
    let result = server
        .execute(json!({"code": "import time\ntime.sleep(30)", "timeout_seconds": 0.5}))
        .await;
    assert_eq!(result["exit_reason"], "timeout", "{result}");
    assert!(result["duration_seconds"].as_f64().unwrap() < 10.0);
    server.assert_alive().await;
}

#[tokio::test]
async fn huge_allocation_ends_with_memory_limit() {
    let server = TestServer::spawn();
    let result = server.python("x = 'a' * 10**9\nprint(len(x))").await;
    assert_eq!(result["exit_reason"], "memory_limit", "{result}");
    assert!(
        result["stderr"].as_str().unwrap().contains("MemoryError"),
        "{result}"
    );
    assert_eq!(result["stdout"], "");
    server.assert_alive().await;
}

#[tokio::test]
async fn per_call_memory_budget_is_enforced() {
    let server = TestServer::spawn();
    let code = "b = bytearray(48 * 1024 * 1024)\nprint('allocated')";
    let small = server
        .execute(json!({"code": code, "limits": {"memory_bytes": 16 * 1024 * 1024}}))
        .await;
    assert_eq!(small["exit_reason"], "memory_limit", "{small}");
    assert_eq!(small["limits"]["memory_bytes"], 16 * 1024 * 1024);
    let roomy = server
        .execute(json!({"code": code, "limits": {"memory_bytes": 96 * 1024 * 1024}}))
        .await;
    assert_eq!(roomy["stdout"], "allocated\n", "{roomy}");
}

#[tokio::test]
async fn writing_past_the_file_quota_fails_inside_the_guest_and_the_host_holds_at_most_the_quota() {
    let server = TestServer::spawn();
    let quota = 1_000_000u64;
    let code = "import os\n\
        try:\n\
        \x20   with open('big.bin', 'wb') as f:\n\
        \x20       for _ in range(50):\n\
        \x20           f.write(b'x' * 100_000)\n\
        \x20           f.flush()\n\
        except OSError as e:\n\
        \x20   print('refused:', type(e).__name__)\n\
        print('on disk:', os.stat('big.bin').st_size)\n\
        raise SystemExit(3)";
    let result = server
        .execute(json!({"code": code, "limits": {"scratch_bytes": quota}}))
        .await;
    assert_eq!(result["exit_reason"], "file_quota", "{result}");
    let stdout = result["stdout"].as_str().unwrap();
    assert!(stdout.contains("refused: OSError"), "{result}");
    let on_disk: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("on disk: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        on_disk <= quota,
        "host holds {on_disk} bytes, quota {quota}"
    );
    assert!(
        on_disk >= quota - 100_000,
        "quota should be usable up to its size: {on_disk}"
    );

    // Growing a file with truncate() is charged too.
    let sparse = server
        .execute(json!({
            "code": "f = open('s', 'wb')\nf.truncate(10**9)",
            "limits": {"scratch_bytes": quota}
        }))
        .await;
    assert_eq!(sparse["exit_reason"], "file_quota", "{sparse}");
    server.assert_alive().await;
}

#[tokio::test]
async fn fifty_megabyte_print_is_truncated_to_the_cap_and_flagged() {
    let server = TestServer::spawn();
    let result = server
        .python("print('x' * 50_000_000)\nprint('done')")
        .await;
    assert_eq!(result["exit_reason"], "output_limit", "{result:.300}");
    assert_eq!(result["truncated"], true);
    assert_eq!(result["return_code"], 0);
    let cap = result["limits"]["stdout_bytes"].as_u64().unwrap();
    assert_eq!(result["stdout"].as_str().unwrap().len() as u64, cap);
    assert_eq!(result["stdout_bytes"], 50_000_000 + 1 + 5);
    server.assert_alive().await;
}

#[tokio::test]
async fn stderr_has_its_own_cap() {
    let server = TestServer::spawn();
    let result = server
        .execute(json!({
            "code": "import sys\nsys.stderr.write('e' * 5000)\nprint('ok')",
            "limits": {"stderr_bytes": 100}
        }))
        .await;
    assert_eq!(result["stderr"].as_str().unwrap().len(), 100);
    assert_eq!(result["stdout"], "ok\n");
    assert_eq!(result["stderr_bytes"], 5000);
    assert_eq!(result["truncated"], true);
}

#[tokio::test]
async fn deep_recursion_ends_cleanly() {
    let server = TestServer::spawn();
    let default_limit = server.python("def f(n): return f(n + 1)\nf(0)").await;
    assert_eq!(default_limit["exit_reason"], "error", "{default_limit}");
    assert!(
        default_limit["stderr"]
            .as_str()
            .unwrap()
            .contains("RecursionError")
    );

    let raised = server
        .python("import sys\nsys.setrecursionlimit(10**7)\ndef f(n): return f(n + 1)\nf(0)")
        .await;
    assert_ne!(raised["exit_reason"], "ok", "{raised}");
    assert_ne!(raised["return_code"], 0);
    server.assert_alive().await;
}

#[tokio::test]
async fn limits_above_the_server_ceiling_are_refused() {
    let server = TestServer::spawn();
    let (status, body) = server
        .post(
            "/execute_code",
            json!({"code": "print(1)", "limits": {"memory_bytes": 1u64 << 40}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("memory_bytes"),
        "{body}"
    );
}

#[tokio::test]
async fn exit_codes_and_tracebacks_are_reported() {
    let server = TestServer::spawn();
    let exit = server.python("import sys\nprint('bye')\nsys.exit(3)").await;
    assert_eq!(exit["return_code"], 3);
    assert_eq!(exit["exit_reason"], "error");
    assert_eq!(exit["stdout"], "bye\n");
    let raised = server
        .python("def f():\n    raise ValueError('boom')\nf()")
        .await;
    assert_eq!(raised["return_code"], 1);
    let stderr = raised["stderr"].as_str().unwrap();
    assert!(
        stderr.contains("ValueError: boom") && stderr.contains("main.py\", line 2"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("sandgraph_guest"),
        "guest frames leak into tracebacks: {stderr}"
    );
    let syntax = server.python("def broken(:\n").await;
    assert_eq!(syntax["exit_reason"], "error");
    assert!(syntax["stderr"].as_str().unwrap().contains("SyntaxError"));
}

#[tokio::test]
async fn the_unpooled_sandbox_runs_and_enforces_limits_too() {
    let pooled = TestServer::spawn();
    let health = pooled.get_json("/health").await;
    assert_eq!(health["sandbox"]["pooling"], true, "{health}");

    let server = TestServer::spawn_with(&[("SANDGRAPH_POOLING", "false")]);
    let health = server.get_json("/health").await;
    assert_eq!(health["sandbox"]["pooling"], false, "{health}");
    let hi = server.python("print('hi')").await;
    assert_eq!(hi["stdout"], "hi\n", "{hi}");
    let big = server
        .execute(json!({ "code": "x = 'a' * 10**9\nprint(len(x))" }))
        .await;
    assert_eq!(big["exit_reason"], "memory_limit", "{big}");
    let again = server.python("print(2 + 2)").await;
    assert_eq!(again["stdout"], "4\n", "{again}");
}

#[test]
fn without_address_space_for_the_pool_the_server_says_what_to_change() {
    // 8 GB of address space cannot hold 64 pooled slots of ~4 GiB each.
    let data = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new("sh");
    command.args([
        "-c",
        "ulimit -v 8000000 && exec \"$0\" serve --bind 127.0.0.1:0",
        env!("CARGO_BIN_EXE_sandgraph"),
    ]);
    common::server_env(&mut command, data.path());
    let output = command
        .env("SANDGRAPH_ADMIN_TOKEN", "sg_test_admin_pool_limit_0000")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running sandgraph");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started anyway: {stderr}");
    assert!(
        stderr.contains("instance pool for 64 concurrent runs")
            && stderr.contains("SANDGRAPH_POOLING=false"),
        "{stderr}"
    );
}

#[tokio::test]
async fn one_callers_flood_waits_behind_its_own_runs_not_in_front_of_others() {
    let server = TestServer::spawn_with(&[
        ("SANDGRAPH_MAX_CONCURRENT_RUNS", "4"),
        ("SANDGRAPH_MAX_RUNS_PER_CALLER", "2"),
    ]);
    let flood_token = server.create_token("agent", "flood");
    let other_token = server.create_token("agent", "other");
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Eight 2 s runs of one caller: two at a time, so about 8 s in all.
    let flood: Vec<_> = (0..8)
        .map(|i| {
            let client = common::client_with_token(&flood_token);
            let (url, finished) = (server.url("/execute_code"), finished.clone());
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .json(&json!({"code": format!("import time; time.sleep(2) # {i}"), "timeout_seconds": 10}))
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                status
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // Another caller is served while the flood is still mostly waiting: with a plain
    // first-come queue it would wait for at least four of the flood's runs.
    let (status, result) = {
        let response = common::client_with_token(&other_token)
            .post(server.url("/execute_code"))
            .json(&json!({"code": "print('served')"}))
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<serde_json::Value>().await.unwrap(),
        )
    };
    let done_then = finished.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["stdout"], "served\n");
    assert!(
        done_then <= 2,
        "{done_then} of the flood's runs had finished first"
    );
    for run in flood {
        assert_eq!(run.await.unwrap(), 200);
    }
    server.assert_alive().await;
}

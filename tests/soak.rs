//! The long mixed soak: Locust (the project's locustfile, several callers, agent-like
//! weights) against one server while faults are injected on a schedule, then a check that
//! nothing acknowledged was lost.
//!
//! Schedule, as fractions of the run (`SOAK_SECONDS`, default 120; `make soak` runs 600):
//!
//! | phase | from | what happens |
//! |---|---|---|
//! | `steady` | 0 | plain load |
//! | `neo4j_down_1` | 0.15 | Neo4j stopped (records wait in the outbox) |
//! | `neo4j_back_1` | 0.30 | Neo4j started again |
//! | `server_killed` | 0.45 | the server SIGKILLed and restarted on the same port and data |
//! | `neo4j_down_2` | 0.60 | Neo4j stopped again |
//! | `neo4j_back_2` | 0.72 | Neo4j started again |
//! | `spinners` | 0.80 | one more caller floods 2 x cores `while True: pass` runs |
//! | `calm` | 0.95 | plain load to the end |
//!
//! Afterwards: no 5xx but the documented 503s; the outbox drains; every call the client
//! saw acknowledged (a 200) has its audit event (by `x-request-id`) and, for the tools
//! that keep one, its record (by id) in Neo4j. A table per phase (requests, throughput,
//! p50/p99 of short `execute_code` calls, 5xx, answers that never came) is printed and
//! written to `target/bench-results/soak.md`.
//!
//! It stops and starts the shared Neo4j (scripts/neo4j/neo4j.sh), so it is `#[ignore]`d
//! and `make test` runs it on its own, after everything else.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::BufRead as _;
use std::process::Command;
use std::time::{Duration, Instant};

use common::contract::caller_id;
use common::{TestServer, neo4j_client, neo4j_uri, repo_root};
use serde_json::{Value, json};

/// The phases in table order, with the fraction of the run at which each fault is
/// scheduled (a phase is counted from when its fault really began).
const PHASES: &[(&str, f64)] = &[
    ("steady", 0.0),
    ("neo4j_down_1", 0.15),
    ("neo4j_back_1", 0.30),
    ("server_killed", 0.45),
    ("neo4j_down_2", 0.60),
    ("neo4j_back_2", 0.72),
    ("spinners", 0.80),
    ("calm", 0.95),
];

/// The fraction of the run at which `phase`'s fault is scheduled.
fn scheduled(phase: &str) -> f64 {
    PHASES.iter().find(|(n, _)| *n == phase).expect("a phase").1
}

/// The data directory of the running Neo4j (neo4j.sh keeps it in its state file), so
/// a restart comes back on the same database.
fn neo4j_data_dir() -> String {
    let state = std::fs::read_to_string(repo_root().join("build/neo4j/neo4j.state"))
        .expect("build/neo4j/neo4j.state: start Neo4j with scripts/neo4j/neo4j.sh");
    state
        .lines()
        .find_map(|l| l.strip_prefix("data="))
        .expect("data= in neo4j.state")
        .to_owned()
}

fn neo4j_script(args: &[&str], data: &str) {
    let port = neo4j_uri().rsplit(':').next().unwrap().to_owned();
    let mut full: Vec<&str> = args.to_vec();
    if args[0] == "start" {
        full.extend(["--port", &port, "--http-port", "0", "--data", data]);
    }
    let status = Command::new(repo_root().join("scripts/neo4j/neo4j.sh"))
        .args(&full)
        .status()
        .expect("running scripts/neo4j/neo4j.sh");
    assert!(status.success(), "neo4j.sh {args:?} failed");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One line of the client's log (locustfile.py, LOCUST_ACK_LOG).
#[derive(Debug, serde::Deserialize)]
struct Ack {
    t: f64,
    name: String,
    status: u16,
    ms: f64,
    request_id: Option<String>,
    id: Option<String>,
}

fn server_env(neo4j: &str) -> Vec<(&'static str, String)> {
    vec![
        ("NEO4J_URI", neo4j.to_owned()),
        ("SANDGRAPH_RATE_LIMIT", "100000/second".to_owned()),
        ("RUST_LOG", "error".to_owned()),
    ]
}

fn spawn(data: tempfile::TempDir, bind: &str, neo4j: &str) -> TestServer {
    let env = server_env(neo4j);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestServer::spawn_at(data, bind, &env, true)
}

#[tokio::test]
#[ignore = "stops and starts the shared Neo4j; `make test` runs it alone (test-soak)"]
async fn soak_with_faults_loses_no_acknowledged_call() {
    let seconds: f64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120.0);
    let users: u32 = std::env::var("SOAK_USERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let neo4j = neo4j_uri();
    let neo4j_data = neo4j_data_dir();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut server = spawn(tempfile::tempdir().unwrap(), &bind, &neo4j);
    let run = common::contract::uuid_like();
    let names: Vec<String> = (0..4).map(|i| format!("soak-{run}-{i}")).collect();
    // Three agents and a developer (the history reads are the developer's; an agent's
    // are refused with 403, as documented).
    let tokens: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| server.create_token(if i == 3 { "developer" } else { "agent" }, n))
        .collect();
    let callers: Vec<String> = names.iter().map(|n| caller_id(&server, n)).collect();
    let spinner = server.create_token("agent", &format!("soak-{run}-spinner"));

    let out = repo_root().join("target/soak");
    std::fs::create_dir_all(&out).unwrap();
    let ack_log = out.join("acks.jsonl");
    let _ = std::fs::remove_file(&ack_log);
    // Locust through the project's own runner (it installs Locust in its venv). Its exit
    // status is not the verdict: requests during the server's restart fail on purpose.
    let mut locust = Command::new(repo_root().join("locust-compatible/run_headless.sh"))
        .args([
            &format!("http://{bind}"),
            &format!("{}", seconds as u64),
            &users.to_string(),
            "4",
        ])
        .env("LOCUST_TOKENS", tokens.join(","))
        .env("LOCUST_ACK_LOG", &ack_log)
        .env("LOCUST_JS_RATIO", "0.1")
        // The graph tools need Neo4j and the soak stops it on purpose; the record is
        // what is checked here.
        .env("LOCUST_WEIGHTS", "graph=0")
        .env("LOCUST_TIMEOUT", "60")
        .env("OUT", out.join("locust"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("starting locust-compatible/run_headless.sh");
    // The schedule starts with the first request (Locust takes a few seconds to start).
    let waiting_since = Instant::now();
    while std::fs::metadata(&ack_log).map_or(true, |m| m.len() == 0) {
        assert!(
            waiting_since.elapsed() < Duration::from_secs(120),
            "Locust made no request in 120 s (see target/soak/locust/locust.log)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    let epoch_started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();

    let at = |fraction: f64| started + Duration::from_secs_f64(seconds * fraction);
    let sleep_until = |when: Instant| tokio::time::sleep_until(when.into());
    let now_epoch = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    // The phases begin when their fault really starts (a Neo4j start takes seconds), so
    // each request is counted in the phase it really met.
    let mut began: Vec<(&str, f64)> = vec![("steady", epoch_started)];
    let mut mark = |phase: &'static str| began.push((phase, now_epoch()));
    // The schedule.
    sleep_until(at(scheduled("neo4j_down_1"))).await;
    mark("neo4j_down_1");
    neo4j_script(&["stop"], &neo4j_data);
    sleep_until(at(scheduled("neo4j_back_1"))).await;
    neo4j_script(&["start"], &neo4j_data);
    mark("neo4j_back_1");
    sleep_until(at(scheduled("server_killed"))).await;
    mark("server_killed");
    let data = server.kill_keep_data();
    server = spawn(data, &bind, &neo4j);
    sleep_until(at(scheduled("neo4j_down_2"))).await;
    mark("neo4j_down_2");
    neo4j_script(&["stop"], &neo4j_data);
    sleep_until(at(scheduled("neo4j_back_2"))).await;
    neo4j_script(&["start"], &neo4j_data);
    mark("neo4j_back_2");
    sleep_until(at(scheduled("spinners"))).await;
    mark("spinners");
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let spin_until = at(scheduled("calm"));
    let spinners: Vec<_> = (0..2 * cores)
        .map(|i| {
            let client = common::client_with_token(&spinner);
            let url = server.url("/execute_code");
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < spin_until {
                    n += 1;
                    let _ = client
                        .post(&url)
                        .json(&json!({"code": format!("while True: pass # {i} {n}"), "timeout_seconds": 2}))
                        .send()
                        .await;
                }
            })
        })
        .collect();
    for spinner in spinners {
        let _ = spinner.await;
    }
    mark("calm");
    let locust_status = tokio::task::spawn_blocking(move || locust.wait())
        .await
        .unwrap()
        .expect("waiting for locust");

    // Everything acknowledged reaches Neo4j once it is back.
    server.wait_shipped(Duration::from_secs(180)).await;
    let acks: Vec<Ack> = std::io::BufReader::new(
        std::fs::File::open(&ack_log).expect("the client's log (LOCUST_ACK_LOG)"),
    )
    .lines()
    .map(|line| serde_json::from_str(&line.unwrap()).expect("an ack line"))
    .collect();
    assert!(
        acks.len() > 100,
        "only {} requests were made (locust: {locust_status:?})",
        acks.len()
    );

    let graph = neo4j_client();
    let ids_of = |cypher: &'static str| {
        let graph = graph.clone();
        let callers = callers.clone();
        async move {
            let mut rows = graph
                .execute(neo4rs::query(cypher).param("callers", callers))
                .await
                .unwrap();
            let mut out = HashSet::new();
            while let Some(row) = rows.next().await.unwrap() {
                if let Ok(id) = row.get::<String>("id") {
                    out.insert(id);
                }
            }
            out
        }
    };
    let audited =
        ids_of("MATCH (a:AuditEvent) WHERE a.caller_id IN $callers RETURN a.request_id AS id")
            .await;
    let recorded =
        ids_of("MATCH (e:Execution) WHERE e.caller_id IN $callers RETURN e.id AS id").await;

    // The verdict and the per-phase table.
    let phase_of = |t: f64| {
        began
            .iter()
            .rev()
            .find(|(_, from)| t >= *from)
            .map_or("steady", |(name, _)| name)
    };
    #[derive(Default)]
    struct Phase {
        requests: u64,
        ok: u64,
        unavailable: u64,
        refused: u64,
        server_errors: u64,
        no_answer: u64,
        short_ms: Vec<f64>,
        first: f64,
        last: f64,
    }
    let mut phases: BTreeMap<usize, (&str, Phase)> = BTreeMap::new();
    let mut failures = Vec::new();
    let (mut acknowledged, mut audit_found, mut records_expected, mut records_found) =
        (0u64, 0u64, 0u64, 0u64);
    for ack in &acks {
        let name = phase_of(ack.t);
        let index = PHASES.iter().position(|(n, _)| *n == name).unwrap();
        let (_, phase) = phases.entry(index).or_insert((name, Phase::default()));
        if phase.requests == 0 {
            phase.first = ack.t;
        }
        phase.requests += 1;
        phase.last = ack.t;
        match ack.status {
            0 => phase.no_answer += 1,
            503 => phase.unavailable += 1,
            400..=499 => phase.refused += 1,
            s if s >= 500 => {
                phase.server_errors += 1;
                failures.push(format!("{} answered {s} in {name}", ack.name));
            }
            _ => {}
        }
        // Any 2xx is an acknowledgement (a 201 or 202 as much as a 200).
        if !(200..300).contains(&ack.status) {
            continue;
        }
        phase.ok += 1;
        if ack.name.starts_with("/execute_code") {
            phase.short_ms.push(ack.ms);
        }
        acknowledged += 1;
        match &ack.request_id {
            Some(rid) if audited.contains(rid) => audit_found += 1,
            other => failures.push(format!(
                "{} acknowledged in {name} (request id {other:?}) has no audit event in Neo4j",
                ack.name
            )),
        }
        if let Some(id) = &ack.id {
            records_expected += 1;
            if recorded.contains(id) {
                records_found += 1;
            } else {
                failures.push(format!(
                    "{} acknowledged in {name} (id {id}) has no record in Neo4j",
                    ack.name
                ));
            }
        }
    }
    let pct = |v: &mut Vec<f64>, q: f64| -> String {
        if v.is_empty() {
            return "-".to_owned();
        }
        v.sort_by(f64::total_cmp);
        format!("{:.1}", v[((v.len() - 1) as f64 * q).round() as usize])
    };
    let mut table = format!(
        "# soak ({seconds:.0} s, {users} Locust users over {} callers, debug={})\n\n\
         | phase | requests | req/s | 2xx | 4xx | 503 | other 5xx | no answer | execute_code p50 ms | p99 ms |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        callers.len(),
        cfg!(debug_assertions),
    );
    for (name, phase) in phases.values_mut() {
        let span = (phase.last - phase.first).max(1.0);
        let (p50, p99) = (
            pct(&mut phase.short_ms, 0.5),
            pct(&mut phase.short_ms, 0.99),
        );
        table += &format!(
            "| {name} | {} | {:.1} | {} | {} | {} | {} | {} | {p50} | {p99} |\n",
            phase.requests,
            phase.requests as f64 / span,
            phase.ok,
            phase.refused,
            phase.unavailable,
            phase.server_errors,
            phase.no_answer,
        );
    }
    table += "\n4xx: agents' history reads refused (403) as documented; no answer: requests \
               cut off while the server was killed (never acknowledged).\n";
    table += &format!(
        "\nacknowledged calls: {acknowledged}; with their audit event in Neo4j: {audit_found}; \
         records expected: {records_expected}, found: {records_found}\n"
    );
    println!("{table}");
    let _ = std::fs::create_dir_all(repo_root().join("target/bench-results"));
    let _ = std::fs::write(repo_root().join("target/bench-results/soak.md"), &table);
    let health: Value = server.get_json("/health").await;
    assert_eq!(health["status"], "ok", "{health}");
    assert!(
        failures.is_empty(),
        "{} problems, the first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert_eq!(audit_found, acknowledged);
    assert_eq!(records_found, records_expected);
}

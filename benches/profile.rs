//! Where a fresh run's time goes: `print('hi')` in Python and `console.log('hi')` in
//! JavaScript, run one after another on a pooled sandbox, each run's phases
//! ([`sandgraph::sandbox::RunPhases`]) recorded. Prints p50/mean per phase and the rest
//! of the call (a slot, the hand-over to a guest thread and back), and writes
//! `target/bench-results/profile.md`.
//!
//! ```text
//! cargo bench --bench profile                 # 3,000 runs per language
//! PROFILE_RUNS=20000 cargo bench --bench profile
//! ```
//!
//! For a CPU profile of the same loop: `perf record -g -- target/release/deps/profile-*`.

mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use common::{guest_dir, loadavg, machine, target_dir};
use sandgraph::sandbox::{ExitReason, Language, RunPhases, Sandbox, SandboxConfig, SandboxLimits};

fn micros(mut values: Vec<Duration>) -> (f64, f64) {
    values.sort();
    let p50 = values[values.len() / 2].as_secs_f64() * 1e6;
    let mean = values.iter().map(Duration::as_secs_f64).sum::<f64>() / values.len() as f64 * 1e6;
    (p50, mean)
}

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::var("PROFILE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let scratch = tempfile::tempdir()?;
    let sandbox = Sandbox::new(SandboxConfig {
        guest_dir: guest_dir(),
        cache_dir: target_dir().join("test-compiled-guests"),
        scratch_dir: scratch.path().to_owned(),
        max_concurrent_runs: 64,
        max_runs_per_caller: 64,
        queue_timeout: Duration::from_secs(30),
        pooling: true,
        pool_keep_resident_bytes: 16 << 20,
        guest_threads: 0,
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Where a fresh run's time goes (`cargo bench --bench profile`)\n"
    );
    let _ = writeln!(
        text,
        "- machine: {}; load average {}; {runs} runs per language, one at a time, after 200 warm-up runs\n",
        machine(),
        loadavg()
    );
    let _ = writeln!(
        text,
        "| phase | python p50 µs | python mean µs | javascript p50 µs | javascript mean µs |"
    );
    let _ = writeln!(text, "|---|---:|---:|---:|---:|");
    let mut columns = Vec::new();
    for (language, code) in [
        (Language::Python, "print('hi')"),
        (Language::Javascript, "console.log('hi')"),
    ] {
        let mut phases: Vec<RunPhases> = Vec::with_capacity(runs);
        let mut totals = Vec::with_capacity(runs);
        runtime.block_on(async {
            for i in 0..runs + 200 {
                let started = Instant::now();
                let out = sandbox
                    .execute(language, code, SandboxLimits::default())
                    .await
                    .expect("sandbox run");
                let total = started.elapsed();
                assert_eq!(out.exit_reason, ExitReason::Ok, "{out:?}");
                assert_eq!(out.stdout, "hi\n");
                if i >= 200 {
                    phases.push(out.phases);
                    totals.push(total);
                }
            }
        });
        let pick = |f: fn(&RunPhases) -> Duration| micros(phases.iter().map(f).collect());
        let rest: Vec<Duration> = phases
            .iter()
            .zip(&totals)
            .map(|(p, t)| {
                t.saturating_sub(
                    p.setup + p.instantiate + p.guest + p.teardown + p.scratch_cleanup + p.capture,
                )
            })
            .collect();
        columns.push(vec![
            pick(|p| p.setup),
            pick(|p| p.instantiate),
            pick(|p| p.guest),
            pick(|p| p.teardown),
            pick(|p| p.scratch_cleanup),
            pick(|p| p.capture),
            micros(rest),
            micros(totals),
        ]);
    }
    let names = [
        "setup: scratch dir + WASI context",
        "instantiate: store + pooled instance",
        "guest: the call (guest work + WASI calls)",
        "teardown: drop the store (memory reset to the snapshot)",
        "scratch dir removed",
        "capture: classify + copy output",
        "rest: slot + hand-over to a guest thread and back",
        "**total** (`Sandbox::execute`)",
    ];
    for (i, name) in names.iter().enumerate() {
        let (pp, pm) = columns[0][i];
        let (jp, jm) = columns[1][i];
        let _ = writeln!(text, "| {name} | {pp:.0} | {pm:.0} | {jp:.0} | {jm:.0} |");
    }
    println!("{text}");
    let dir = target_dir().join("bench-results");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("profile.md"), &text)?;
    Ok(())
}

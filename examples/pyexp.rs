//! Throwaway: run code in the sandbox N times, print output and timings.
use std::path::PathBuf;
use std::time::Instant;
use sandgraph::sandbox::{Language, Sandbox, SandboxConfig, SandboxLimits};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let lang = if args[1] == "js" { Language::Javascript } else { Language::Python };
    let code = std::fs::read_to_string(&args[2]).unwrap_or_else(|_| args[2].clone());
    let n: usize = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(1);
    let guest = std::env::var("GUEST").unwrap_or("build/guest".into());
    let t = Instant::now();
    let sb = Sandbox::new(SandboxConfig {
        guest_dir: PathBuf::from(guest),
        cache_dir: PathBuf::from("target/exp-compiled"),
        scratch_dir: std::env::temp_dir().join("pyexp"),
        max_concurrent_runs: 2,
        queue_timeout: std::time::Duration::from_secs(5),
        pooling: true,
        pool_keep_resident_bytes: 16 << 20,
    }).unwrap();
    eprintln!("load {:?}", t.elapsed());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut times = vec![];
    for i in 0..n {
        let mut limits = SandboxLimits::default();
        limits.timeout_ms = 60_000;
        let out = rt.block_on(sb.execute(lang, &code, limits)).unwrap();
        times.push(out.duration.as_secs_f64() * 1000.0);
        if i == 0 { print!("{}", out.stdout); eprint!("{}", out.stderr); eprintln!("{:?} {}", out.exit_reason, out.exit_code); }
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    eprintln!("n={} p50={:.3}ms min={:.3}ms max={:.3}ms", n, times[n / 2], times[0], times[n - 1]);
}

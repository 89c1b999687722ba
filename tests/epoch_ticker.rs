//! The epoch ticker is part of the drain: the app stops it last, and only when no run is
//! left (a run in flight needs the ticks to yield, to be cancelled and to time out).

mod common;

use std::time::{Duration, Instant};

use sandgraph::sandbox::{CancellationToken, ExitReason, Language, SandboxLimits};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ticker_stops_only_once_no_run_is_left() {
    let scratch = tempfile::tempdir().unwrap();
    let sandbox = common::in_process_sandbox(scratch.path(), 4, Duration::from_secs(30));
    assert!(sandbox.ticker_running());

    let cancel = CancellationToken::new();
    let spinner = {
        let (sandbox, cancel) = (sandbox.clone(), cancel.clone());
        tokio::spawn(async move {
            let limits = SandboxLimits {
                timeout_ms: 30_000,
                ..SandboxLimits::default()
            };
            sandbox
                .execute_until(
                    Language::Python,
                    "while True: pass",
                    limits,
                    "test",
                    &cancel,
                )
                .await
        })
    };
    let started = Instant::now();
    while sandbox.status().active_runs == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the run never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A run is in flight: the ticker must keep ticking.
    assert!(!sandbox.stop_ticker());
    assert!(sandbox.ticker_running());

    // Cancellation still reaches the guest (it needs the ticks), and then the ticker stops.
    cancel.cancel();
    let output = spinner.await.unwrap().unwrap();
    assert_eq!(output.exit_reason, ExitReason::Cancelled);
    assert_eq!(sandbox.status().active_runs, 0);
    assert!(sandbox.stop_ticker());
    assert!(!sandbox.ticker_running());
}

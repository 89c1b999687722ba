//! Tracing set-up: human-readable or JSON lines on stderr (stdout belongs to MCP stdio),
//! filtered by `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Install the global subscriber. Safe to call once per process.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if let Err(err) = result {
        eprintln!("logging already initialised: {err}");
    }
}

/// Install the Prometheus recorder; the handle renders `/metrics`. Call once, at start.
pub fn install_metrics(
    shutdown: &crate::shutdown::Shutdown,
) -> anyhow::Result<metrics_exporter_prometheus::PrometheusHandle> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0, 60.0,
        ])?
        .install_recorder()?;
    // Histograms are kept in buckets that need periodic upkeep.
    let upkeep = handle.clone();
    let stop = shutdown.begun();
    shutdown.spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => upkeep.run_upkeep(),
                () = &mut stop => return,
            }
        }
    });
    Ok(handle)
}

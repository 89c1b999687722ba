//! Moves outbox records into Neo4j: oldest first, in batches, deleting them only after
//! Neo4j committed; exponential backoff with jitter while Neo4j fails. Records survive
//! restarts because the outbox is in SQLite; redelivery is harmless (MERGE on id).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::neo4j::Neo4jStore;
use super::sqlite::SqliteStore;
use crate::shutdown::Shutdown;

/// Records per Neo4j transaction.
const BATCH: usize = 2000;
/// How long an idle shipper sleeps before looking again.
const IDLE: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Shipping counters, for health and metrics.
#[derive(Default)]
pub struct ShipperStats {
    /// Records shipped.
    pub shipped: AtomicU64,
    /// Failed shipping attempts.
    pub failures: AtomicU64,
}

/// How long the shipper keeps shipping after the drain began (then the outbox keeps the
/// rest for the next start: nothing is lost either way).
const FINAL_FLUSH: Duration = Duration::from_secs(5);

/// Sleep `wait`, or less once the drain has begun (then retry at a brisk pace until
/// [`FINAL_FLUSH`] is over).
async fn pause(shutdown: &Shutdown, wait: Duration) {
    let wait = if shutdown.is_begun() {
        wait.min(Duration::from_millis(200))
    } else {
        wait
    };
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        () = shutdown.begun() => {}
    }
}

/// Start the shipper task; it runs until the drain, then ships what it can for
/// [`FINAL_FLUSH`] and stops.
pub fn spawn(
    store: Arc<SqliteStore>,
    neo4j: Arc<Neo4jStore>,
    stats: Arc<ShipperStats>,
    shutdown: Shutdown,
) {
    let task_shutdown = shutdown.clone();
    shutdown.spawn(async move {
        let shutdown = task_shutdown;
        let mut attempt = 0u32;
        let mut flush_until: Option<std::time::Instant> = None;
        loop {
            if shutdown.is_begun() {
                let deadline =
                    *flush_until.get_or_insert_with(|| std::time::Instant::now() + FINAL_FLUSH);
                if store.outbox_depth() == 0 || std::time::Instant::now() >= deadline {
                    tracing::info!(left = store.outbox_depth(), "shipper stopped");
                    return;
                }
            }
            let batch = {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.outbox_batch(BATCH)).await
            };
            let batch = match batch {
                Ok(Ok(batch)) => batch,
                Ok(Err(err)) => {
                    tracing::error!(error = format!("{err:#}"), "reading the outbox failed");
                    pause(&shutdown, MAX_BACKOFF).await;
                    continue;
                }
                Err(err) => {
                    tracing::error!(error = %err, "outbox reader panicked");
                    pause(&shutdown, MAX_BACKOFF).await;
                    continue;
                }
            };
            let Some(last_seq) = batch.last().map(|(seq, _)| *seq) else {
                pause(&shutdown, IDLE).await;
                continue;
            };
            let records: Vec<_> = batch.into_iter().map(|(_, r)| r).collect();
            let started = std::time::Instant::now();
            let shipped = neo4j.ship(&records).await;
            metrics::histogram!("sandgraph_neo4j_ship_seconds")
                .record(started.elapsed().as_secs_f64());
            match shipped {
                Ok(()) => {
                    metrics::counter!("sandgraph_neo4j_shipped_records_total")
                        .increment(records.len() as u64);
                    attempt = 0;
                    stats
                        .shipped
                        .fetch_add(records.len() as u64, Ordering::Relaxed);
                    let store = store.clone();
                    let deleted =
                        tokio::task::spawn_blocking(move || store.outbox_delete_through(last_seq))
                            .await;
                    if !matches!(deleted, Ok(Ok(()))) {
                        tracing::error!(
                            "deleting shipped outbox records failed; they will be re-shipped (harmless)"
                        );
                    }
                }
                Err(err) => {
                    stats.failures.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("sandgraph_neo4j_ship_failures_total").increment(1);
                    attempt = attempt.saturating_add(1);
                    let wait = backoff(attempt);
                    tracing::warn!(
                        error = format!("{err:#}"),
                        retry_in_ms = wait.as_millis() as u64,
                        depth = store.outbox_depth(),
                        "shipping to Neo4j failed"
                    );
                    pause(&shutdown, wait).await;
                }
            }
        }
    });
}

/// 100 ms doubling per attempt up to [`MAX_BACKOFF`], with ±50% jitter so many servers
/// do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(100)
        .saturating_mul(1 << attempt.min(10))
        .min(MAX_BACKOFF);
    let jitter: f64 = 0.5 + rand::random::<f64>();
    base.mul_f64(jitter).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= Duration::from_millis(300));
        assert!(backoff(20) <= MAX_BACKOFF);
        assert!(backoff(20) >= MAX_BACKOFF / 2);
    }
}

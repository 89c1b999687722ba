//! `GET /health`: liveness and status, open to anyone. It keeps the replaced platform's
//! fields with their old meaning (`service: "ok"`, `neo4j`: whether Neo4j answers right
//! now) beside sandgraph's own, so the old platform's probes and clients keep working.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::store::neo4j::Neo4jStore;
use crate::tools::Tools;

/// How long one answer to "is Neo4j reachable?" is reused.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// A ping that takes longer than this counts as unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks Neo4j whether it is reachable at most once per [`FRESH_FOR`], however often
/// `/health` is probed: the endpoint is open, so a stranger's flood of probes must not
/// become a flood of Neo4j round trips. A liveness probe must not wait on Neo4j either:
/// past the first probe, `/health` answers at once with the last answer while one
/// refresh runs behind it (so a hanging Neo4j shows as `false` a ping timeout later,
/// and the probe itself never hangs).
#[derive(Default)]
pub struct Neo4jProbe {
    last: std::sync::Mutex<Option<(Instant, bool)>>,
    refreshing: AtomicBool,
}

impl Neo4jProbe {
    /// Whether Neo4j answered its latest ping (false when none is configured).
    pub async fn reachable(self: &Arc<Self>, tools: &Tools) -> bool {
        let Some(neo4j) = &tools.neo4j else {
            return false;
        };
        let last = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        match last {
            Some((at, answer)) if at.elapsed() < FRESH_FOR => answer,
            Some((_, answer)) => {
                if !self.refreshing.swap(true, Ordering::AcqRel) {
                    let (probe, neo4j) = (self.clone(), neo4j.clone());
                    tools.shutdown.spawn(async move {
                        probe.record(ping(&neo4j).await);
                    });
                }
                answer
            }
            // The first probe waits for its ping (at most PING_TIMEOUT).
            None => {
                let answer = ping(neo4j).await;
                self.record(answer);
                answer
            }
        }
    }

    fn record(&self, answer: bool) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), answer));
        self.refreshing.store(false, Ordering::Release);
    }
}

async fn ping(neo4j: &Neo4jStore) -> bool {
    tokio::time::timeout(PING_TIMEOUT, neo4j.ping())
        .await
        .unwrap_or(false)
}

/// What `neo4j_status` says.
fn neo4j_status(configured: bool, reachable: bool) -> &'static str {
    match (configured, reachable) {
        (false, _) => "not configured",
        (true, true) => "reachable",
        (true, false) => "unreachable",
    }
}

/// `GET /health`.
pub async fn health(
    State(tools): State<Tools>,
    Extension(probe): Extension<Arc<Neo4jProbe>>,
) -> Json<Value> {
    let reachable = probe.reachable(&tools).await;
    Json(json!({
        "status": "ok",
        // The replaced platform's fields, with their old meaning.
        "service": "ok",
        "neo4j": reachable,
        "name": "sandgraph",
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "neo4j_status": neo4j_status(tools.neo4j.is_some(), reachable),
        "store": {
            "backend": tools.history.backend(),
            "outbox_depth": tools.store.outbox_depth(),
            "outbox_limit": tools.store.outbox_limit(),
        },
        "sandbox": tools.sandbox.status(),
        "cache": tools.cache.stats(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neo4j_status_names_all_three_states() {
        assert_eq!(neo4j_status(false, false), "not configured");
        assert_eq!(neo4j_status(true, true), "reachable");
        assert_eq!(neo4j_status(true, false), "unreachable");
    }
}

//! Shutdown as a type (mini-redis's `Shutdown`, with tokio-util's tokens): background
//! tasks are spawned through it and stop when it fires; in-flight runs hold a child of
//! its *runs* token, which fires only when the drain's grace period is over.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The process's shutdown: two stages and the background tasks that wait on them.
#[derive(Clone, Default)]
pub struct Shutdown {
    /// Fires when the drain begins: stop accepting, stop background loops.
    begun: CancellationToken,
    /// Fires when in-flight runs must stop (end of the grace period).
    runs: CancellationToken,
    tasks: TaskTracker,
}

impl Shutdown {
    /// A shutdown that has not begun.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves when the drain begins.
    pub fn begun(&self) -> impl Future<Output = ()> + Send + 'static {
        self.begun.clone().cancelled_owned()
    }

    /// Whether the drain has begun.
    pub fn is_begun(&self) -> bool {
        self.begun.is_cancelled()
    }

    /// A token for one call's run: it fires if the caller cancels (the transport
    /// cancels it) or when the grace period ends.
    pub fn run_token(&self) -> CancellationToken {
        self.runs.child_token()
    }

    /// The token that ends in-flight runs and MCP streams at the end of the grace period.
    pub fn runs_token(&self) -> CancellationToken {
        self.runs.clone()
    }

    /// Spawn a background task that the drain waits for.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task);
    }

    /// Begin the drain.
    pub fn begin(&self) {
        self.begun.cancel();
    }

    /// End in-flight runs.
    pub fn stop_runs(&self) {
        self.runs.cancel();
    }

    /// Wait (at most `within`) for every background task to finish; whether they did.
    pub async fn wait_for_tasks(&self, within: Duration) -> bool {
        self.tasks.close();
        tokio::time::timeout(within, self.tasks.wait())
            .await
            .is_ok()
    }
}

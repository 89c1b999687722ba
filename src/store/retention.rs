//! Retention: execution records older than `history_retention_days` and audit events
//! older than `audit_retention_days` (longer by default) are deleted in bounded batches —
//! `CALL { ... } IN TRANSACTIONS` in Neo4j, a few thousand rows per transaction in SQLite —
//! so live writes are never held up for long; source texts no record uses any more go
//! with them. Every sweep that deleted something is itself audited (who: `retention`;
//! what and how many: in the event's detail), never silent.

use std::sync::Arc;
use std::time::Duration;

use super::sqlite::SqliteStore;
use super::{HistoryStore, Record};
use crate::audit::{AuditDecision, AuditEvent, Transport};
use crate::shutdown::Shutdown;

/// Rows deleted per transaction.
pub const BATCH: usize = 1000;
/// How often the sweep runs, and how long after start the first one does.
const EVERY: Duration = Duration::from_secs(3600);
const FIRST_AFTER: Duration = Duration::from_secs(30);
const DAY_MS: i64 = 24 * 3600 * 1000;

/// What to delete: records strictly older than these times (epoch milliseconds).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cutoffs {
    /// Execution records (and then unreferenced source texts).
    pub executions_before: Option<i64>,
    /// Audit events.
    pub audit_before: Option<i64>,
}

impl Cutoffs {
    /// The cutoffs of a policy at `now_ms` (0 days: keep forever).
    pub fn at(now_ms: i64, history_days: u32, audit_days: u32) -> Self {
        let before = |days: u32| (days > 0).then(|| now_ms - i64::from(days) * DAY_MS);
        Self {
            executions_before: before(history_days),
            audit_before: before(audit_days),
        }
    }
}

/// What one sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Execution records.
    pub executions: u64,
    /// Audit events.
    pub audit_events: u64,
    /// Source texts no remaining record referenced.
    pub code: u64,
}

impl Swept {
    fn any(&self) -> bool {
        self.executions + self.audit_events + self.code > 0
    }
}

/// The audit event of a sweep: who (the `retention` task), what and how many.
pub fn audit_event(swept: &Swept, cutoffs: &Cutoffs, days: (u32, u32)) -> AuditEvent {
    let time = |ms: Option<i64>| {
        ms.and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "never".to_owned())
    };
    let mut event = AuditEvent::unauthenticated(
        "retention",
        Transport::Internal,
        &uuid::Uuid::new_v4().to_string(),
        &format!(
            "deleted {} execution records older than {} days (before {}), {} audit events older \
             than {} days (before {}), {} source texts no record used",
            swept.executions,
            days.0,
            time(cutoffs.executions_before),
            swept.audit_events,
            days.1,
            time(cutoffs.audit_before),
            swept.code
        ),
    );
    event.caller_id = "sandgraph".to_owned();
    event.caller_name = "retention".to_owned();
    event.decision = AuditDecision::Allowed;
    event.outcome = Some("ok".to_owned());
    event
}

/// Run one sweep over `history` and audit it through `records`; what it deleted.
pub async fn sweep(
    history: &dyn HistoryStore,
    records: &SqliteStore,
    cutoffs: Cutoffs,
    days: (u32, u32),
) -> anyhow::Result<Swept> {
    let swept = history
        .delete_expired(cutoffs, BATCH)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if swept.code > 0 {
        // Hashes this process stored lately may be among the deleted texts.
        records.forget_recent_code();
    }
    if swept.any() {
        tracing::info!(
            executions = swept.executions,
            audit_events = swept.audit_events,
            code = swept.code,
            "retention sweep deleted expired records"
        );
        records
            .append(vec![Record::Audit(audit_event(&swept, &cutoffs, days))])
            .await?;
    }
    Ok(swept)
}

/// Start the hourly sweep (unless both retention periods are 0, i.e. keep forever).
pub fn spawn(
    history: Arc<dyn HistoryStore>,
    records: Arc<SqliteStore>,
    history_days: u32,
    audit_days: u32,
    shutdown: Shutdown,
) {
    if history_days == 0 && audit_days == 0 {
        return;
    }
    let task_shutdown = shutdown.clone();
    shutdown.spawn(async move {
        let mut wait = FIRST_AFTER;
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = task_shutdown.begun() => return,
            }
            wait = EVERY;
            let cutoffs = Cutoffs::at(crate::audit::now().1, history_days, audit_days);
            if let Err(err) = sweep(
                history.as_ref(),
                &records,
                cutoffs,
                (history_days, audit_days),
            )
            .await
            {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "retention sweep failed; retrying in an hour"
                );
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_days_keeps_forever() {
        let cutoffs = Cutoffs::at(100 * DAY_MS, 0, 30);
        assert_eq!(cutoffs.executions_before, None);
        assert_eq!(cutoffs.audit_before, Some(70 * DAY_MS));
    }

    #[test]
    fn the_sweeps_event_says_who_what_and_how_many() {
        let swept = Swept {
            executions: 3,
            audit_events: 5,
            code: 2,
        };
        let event = audit_event(&swept, &Cutoffs::at(100 * DAY_MS, 90, 365), (90, 365));
        assert_eq!(event.caller_name, "retention");
        assert_eq!(event.endpoint, "retention");
        let detail = event.detail.unwrap();
        assert!(
            detail.starts_with("deleted 3 execution records older than 90 days"),
            "{detail}"
        );
        assert!(detail.contains("5 audit events") && detail.contains("2 source texts"));
    }
}

//! Retention deletes exactly the expired records — execution records past
//! `history_retention_days`, audit events past `audit_retention_days`, and source texts no
//! remaining record uses — on both stores, and audits the sweep (who, what, how many).

mod common;

use sandgraph::audit::{AuditDecision, AuditEvent, Transport};
use sandgraph::config::Neo4jSettings;
use sandgraph::store::neo4j::Neo4jStore;
use sandgraph::store::retention::{Cutoffs, Swept, sweep};
use sandgraph::store::sqlite::{Destination, SqliteStore};
use sandgraph::store::{AuditFilter, ExecutionRecord, HistoryStore, Record, StoredCode};

const DAY: i64 = 24 * 3600 * 1000;

fn execution(id: &str, ts: i64, hash: &str) -> ExecutionRecord {
    ExecutionRecord {
        id: id.to_owned(),
        ts,
        created_at: chrono::DateTime::from_timestamp_millis(ts)
            .unwrap()
            .to_rfc3339(),
        tool: "execute_code".into(),
        caller_id: "retention-test".into(),
        caller_name: "retention test".into(),
        role: "developer".into(),
        transport: "rest".into(),
        request_id: format!("req-{id}"),
        language: Some("python".into()),
        code_hash: Some(hash.to_owned()),
        outcome: "ok".into(),
        return_code: Some(0),
        duration_seconds: 0.001,
        cached: false,
        limits: None,
        stdout: None,
        stderr: None,
        source_kept: Some(true),
    }
}

fn audit(id: &str, ts: i64) -> AuditEvent {
    AuditEvent {
        id: id.to_owned(),
        at: chrono::DateTime::from_timestamp_millis(ts)
            .unwrap()
            .to_rfc3339(),
        ts,
        request_id: format!("req-{id}"),
        caller_id: "retention-test".into(),
        caller_name: "retention test".into(),
        role: None,
        endpoint: "execute_code".into(),
        transport: Transport::Rest,
        decision: AuditDecision::Allowed,
        outcome: Some("ok".into()),
        detail: None,
        duration_ms: None,
    }
}

fn code(hash: &str) -> StoredCode {
    StoredCode::new(
        hash.to_owned(),
        Some("python".into()),
        format!("print('{hash}')"),
        None,
    )
}

/// Unique names per run: the Neo4j database is shared.
fn names() -> (String, String, String) {
    let run = common::contract::uuid_like();
    (
        format!("ret-{run}"),
        format!("{:0>64}", format!("a{run}")),
        format!("{:0>64}", format!("b{run}")),
    )
}

/// Two executions past 90 days (one with a text only it uses, one whose text a recent run
/// shares), one recent; audit events past 365 days, past 90 (kept), recent.
fn records(prefix: &str, only_old: &str, shared: &str, now: i64) -> Vec<Record> {
    vec![
        Record::Code(code(only_old)),
        Record::Code(code(shared)),
        Record::Execution(execution(
            &format!("{prefix}-old-1"),
            now - 100 * DAY,
            only_old,
        )),
        Record::Execution(execution(
            &format!("{prefix}-old-2"),
            now - 95 * DAY,
            shared,
        )),
        Record::Execution(execution(&format!("{prefix}-new"), now - DAY, shared)),
        Record::Audit(audit(&format!("{prefix}-audit-old"), now - 400 * DAY)),
        Record::Audit(audit(&format!("{prefix}-audit-mid"), now - 100 * DAY)),
        Record::Audit(audit(&format!("{prefix}-audit-new"), now - DAY)),
    ]
}

const EXPECTED: Swept = Swept {
    executions: 2,
    audit_events: 1,
    code: 1,
};

async fn check_what_is_left(
    history: &dyn HistoryStore,
    prefix: &str,
    only_old: &str,
    shared: &str,
) {
    for gone in ["old-1", "old-2"] {
        assert!(
            history
                .get_execution(&format!("{prefix}-{gone}"))
                .await
                .unwrap()
                .is_none()
        );
    }
    let kept = history
        .get_execution(&format!("{prefix}-new"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        kept.code.unwrap().hash,
        shared,
        "the shared text stays with its record"
    );
    assert!(history.get_code(only_old).await.unwrap().is_none());
    let events = history
        .audit_log(&AuditFilter {
            caller: Some("retention-test".into()),
            limit: Some(200),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut left: Vec<String> = events
        .items
        .iter()
        .filter(|e| e.id.starts_with(prefix))
        .map(|e| e.id.clone())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [format!("{prefix}-audit-mid"), format!("{prefix}-audit-new")]
    );
}

#[tokio::test]
async fn retention_deletes_exactly_the_expired_records_on_the_embedded_store_and_audits_it() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        SqliteStore::open(&dir.path().join("sandgraph.db"), Destination::History, 1000).unwrap();
    let (prefix, only_old, shared) = names();
    let now = chrono::Utc::now().timestamp_millis();
    store
        .append(records(&prefix, &only_old, &shared, now))
        .await
        .unwrap();

    let cutoffs = Cutoffs::at(now, 90, 365);
    let swept = sweep(store.as_ref(), &store, cutoffs, (90, 365))
        .await
        .unwrap();
    assert_eq!(swept, EXPECTED);
    check_what_is_left(store.as_ref(), &prefix, &only_old, &shared).await;

    let sweeps = store
        .audit_log(&AuditFilter {
            endpoint: Some("retention".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(sweeps.items.len(), 1, "the sweep is audited once");
    let event = &sweeps.items[0];
    assert_eq!(
        (event.caller_name.as_str(), event.transport),
        ("retention", Transport::Internal)
    );
    let detail = event.detail.as_deref().unwrap();
    assert!(
        detail.starts_with("deleted 2 execution records older than 90 days")
            && detail.contains("1 audit events older than 365 days")
            && detail.contains("1 source texts"),
        "{detail}"
    );

    // Nothing more has expired: nothing deleted, nothing audited.
    let again = sweep(store.as_ref(), &store, cutoffs, (90, 365))
        .await
        .unwrap();
    assert_eq!(again, Swept::default());
    let sweeps = store
        .audit_log(&AuditFilter {
            endpoint: Some("retention".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(sweeps.items.len(), 1);
}

#[tokio::test]
async fn retention_deletes_exactly_the_expired_records_in_neo4j_and_audits_it() {
    let neo4j = Neo4jStore::connect(&Neo4jSettings {
        uri: common::neo4j_uri(),
        user: "neo4j".into(),
        password: String::new(),
        database: None,
    })
    .unwrap();
    neo4j.apply_schema().await.unwrap();
    let (prefix, only_old, shared) = names();
    let now = chrono::Utc::now().timestamp_millis();
    neo4j
        .ship(&records(&prefix, &only_old, &shared, now))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outbox =
        SqliteStore::open(&dir.path().join("sandgraph.db"), Destination::Outbox, 1000).unwrap();

    let swept = sweep(&neo4j, &outbox, Cutoffs::at(now, 90, 365), (90, 365))
        .await
        .unwrap();
    assert_eq!(
        swept, EXPECTED,
        "nothing but this test's expired records (the database is shared)"
    );
    check_what_is_left(&neo4j, &prefix, &only_old, &shared).await;

    // The sweep's audit event goes to Neo4j through the outbox, like every record.
    let queued = outbox.outbox_batch(10).unwrap();
    assert_eq!(queued.len(), 1);
    match &queued[0].1 {
        Record::Audit(event) => {
            assert_eq!(event.endpoint, "retention");
            assert!(
                event
                    .detail
                    .as_deref()
                    .unwrap()
                    .starts_with("deleted 2 execution records")
            );
        }
        other => panic!("expected the sweep's audit event, got {other:?}"),
    }
}

//! The Neo4j backend: schema application, idempotent batch shipping of records, history
//! and audit queries, and the graph tools' database access. Every call is bounded by a
//! timeout (neo4rs's pool would otherwise wait forever), and a circuit breaker makes a
//! dead Neo4j cost callers nothing: while it is open, calls fail at once.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use neo4rs::bolt::Bolt;
use neo4rs::{BoltType, ConfigBuilder, Graph, Query, query};
use serde_json::{Map, Value};

use super::{
    AuditFilter, CodeStats, ExecutionDetail, ExecutionRecord, HistoryFilter, HistoryStore, Page,
    QueryError, Record, StoredCode, Window,
};
use crate::audit::AuditEvent;
use crate::config::Neo4jSettings;
use crate::cypher_guard::PlanOperator;

const SCHEMA: &str = include_str!("../../cypher/schema.cypher");
const SHIP_EXECUTIONS: &str = include_str!("../../cypher/ship_executions.cypher");
const SHIP_AUDIT: &str = include_str!("../../cypher/ship_audit.cypher");
const SHIP_CODE: &str = include_str!("../../cypher/ship_code.cypher");
const CODE_STATS: &str = include_str!("../../cypher/code_stats.cypher");

/// How long one Neo4j operation may take before it counts as a failure.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a transiently refused write is tried again, and the pause before the
/// first retry (the n-th waits n times as long).
const WRITE_RETRIES: u32 = 2;
const WRITE_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Consecutive failures before the breaker opens, and how long it stays open.
const BREAKER_THRESHOLD: u32 = 3;
const BREAKER_OPEN_FOR: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

/// The breaker's state, for health and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail at once until the cool-down passes.
    Open,
}

/// A Neo4j connection pool with a breaker.
pub struct Neo4jStore {
    graph: Graph,
    breaker: Mutex<Breaker>,
}

/// Convert a JSON value to a Bolt parameter.
pub fn bolt(value: Value) -> anyhow::Result<BoltType> {
    BoltType::try_from(value).map_err(|e| anyhow::anyhow!("unsupported parameter value: {e}"))
}

/// Convert a Bolt value to JSON, serialising nodes as `{id, labels, properties}` and
/// relationships as `{id, type, properties, start, end}` (the old platform's shape).
pub fn to_json(value: &BoltType) -> Value {
    match value {
        BoltType::Null(_) => Value::Null,
        BoltType::Boolean(b) => Value::Bool(b.value),
        BoltType::Integer(i) => Value::from(i.value),
        BoltType::Float(f) => serde_json::Number::from_f64(f.value)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        BoltType::String(s) => Value::String(s.value.clone()),
        BoltType::List(list) => Value::Array(list.value.iter().map(to_json).collect()),
        BoltType::Map(map) => map_to_json(map),
        BoltType::Node(node) => serde_json::json!({
            "id": node.id.value,
            "labels": node.labels.value.iter().map(to_json).collect::<Vec<_>>(),
            "properties": map_to_json(&node.properties),
        }),
        BoltType::Relation(rel) => serde_json::json!({
            "id": rel.id.value,
            "type": rel.typ.value,
            "properties": map_to_json(&rel.properties),
            "start": rel.start_node_id.value,
            "end": rel.end_node_id.value,
        }),
        BoltType::UnboundedRelation(rel) => serde_json::json!({
            "id": rel.id.value,
            "type": rel.typ.value,
            "properties": map_to_json(&rel.properties),
        }),
        BoltType::Path(path) => serde_json::json!({
            "nodes": path.nodes.value.iter().map(to_json).collect::<Vec<_>>(),
            "relationships": path.rels.value.iter().map(to_json).collect::<Vec<_>>(),
        }),
        BoltType::Bytes(bytes) => Value::String(hex::encode(&bytes.value)),
        other => Value::String(format!("{other:?}")),
    }
}

fn map_to_json(map: &neo4rs::BoltMap) -> Value {
    Value::Object(
        map.value
            .iter()
            .map(|(k, v)| (k.value.clone(), to_json(v)))
            .collect::<Map<_, _>>(),
    )
}

impl Neo4jStore {
    /// Create the pool (connections are made lazily) for `settings`.
    pub fn connect(settings: &Neo4jSettings) -> anyhow::Result<Self> {
        let mut config = ConfigBuilder::default()
            .uri(settings.uri.clone())
            .user(settings.user.clone())
            .password(settings.password.clone())
            .max_connections(16);
        if let Some(db) = &settings.database {
            config = config.db(db.clone());
        }
        let graph = Graph::connect(config.build()?).context("configuring the Neo4j client")?;
        Ok(Self {
            graph,
            breaker: Mutex::default(),
        })
    }

    /// The breaker's state now.
    pub fn breaker_state(&self) -> BreakerState {
        let breaker = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        match breaker.open_until {
            Some(until) if Instant::now() < until => BreakerState::Open,
            _ => BreakerState::Closed,
        }
    }

    /// Run `operation` through the breaker and the timeout.
    async fn guarded<T, F>(&self, what: &str, operation: F) -> anyhow::Result<T>
    where
        F: std::future::Future<Output = Result<T, neo4rs::Error>>,
    {
        self.guarded_as(Origin::Sandgraph, what, operation).await
    }

    /// [`Self::guarded`] for a query a caller wrote: when it outlives the timeout, that
    /// is the query's doing, not a sign that Neo4j is down, so it does not count towards
    /// the circuit breaker (else a few runaway `graph_query` calls would open the breaker
    /// and stall record shipping for everyone) and fails with [`QueryTimedOut`].
    async fn guarded_as<T, F>(&self, origin: Origin, what: &str, operation: F) -> anyhow::Result<T>
    where
        F: std::future::Future<Output = Result<T, neo4rs::Error>>,
    {
        if self.breaker_state() == BreakerState::Open {
            anyhow::bail!(
                "Neo4j is unreachable (circuit open after repeated failures); retry shortly"
            );
        }
        let result = match tokio::time::timeout(OPERATION_TIMEOUT, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(anyhow::Error::from(err).context(format!("Neo4j {what}"))),
            Err(_) if origin == Origin::Caller => Err(QueryTimedOut(OPERATION_TIMEOUT).into()),
            Err(_) => Err(anyhow::anyhow!(
                "Neo4j {what} timed out after {OPERATION_TIMEOUT:?}"
            )),
        };
        let mut breaker = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        match &result {
            Ok(_) => *breaker = Breaker::default(),
            Err(err) if is_connection_failure(err) => {
                breaker.failures += 1;
                if breaker.failures >= BREAKER_THRESHOLD {
                    breaker.open_until = Some(Instant::now() + BREAKER_OPEN_FOR);
                }
            }
            Err(_) => {}
        }
        result
    }

    /// Apply `cypher/schema.cypher` (every statement is `IF NOT EXISTS`).
    ///
    /// Servers starting together race on the same statements: Neo4j then refuses the
    /// loser's `IF NOT EXISTS` with an "already exists" error, which means the rule is
    /// there, so it counts as applied (not as Neo4j being unready).
    pub async fn apply_schema(&self) -> anyhow::Result<()> {
        for statement in statements(SCHEMA) {
            match self
                .guarded("schema", self.graph.run(query(&statement)))
                .await
            {
                Err(err) if neo4j_code(&err).is_some_and(is_already_exists) => {}
                result => {
                    result.with_context(|| format!("applying schema statement {statement:?}"))?;
                }
            }
        }
        Ok(())
    }

    /// Whether Neo4j answers a trivial query now.
    pub async fn ping(&self) -> bool {
        self.guarded("ping", async {
            let mut rows = self.graph.execute(query("RETURN 1 AS one")).await?;
            rows.next().await
        })
        .await
        .is_ok()
    }

    /// Write `records` in one transaction (idempotent: MERGE on id).
    pub async fn ship(&self, records: &[Record]) -> anyhow::Result<()> {
        let (mut executions, mut audits, mut code) = (Vec::new(), Vec::new(), Vec::new());
        for record in records {
            match record {
                Record::Execution(r) => executions.push(serde_json::to_value(r)?),
                Record::Audit(e) => audits.push(serde_json::to_value(e)?),
                Record::Code(c) => code.push(serde_json::to_value(c)?),
            }
        }
        let executions = bolt(Value::Array(executions))?;
        let audits = bolt(Value::Array(audits))?;
        let code = (!code.is_empty())
            .then(|| bolt(Value::Array(code)))
            .transpose()?;
        self.guarded("ship", async {
            let mut txn = self.graph.start_txn().await?;
            if let Some(code) = code {
                txn.run(query(SHIP_CODE).param("rows", code)).await?;
            }
            txn.run(query(SHIP_EXECUTIONS).param("rows", executions))
                .await?;
            txn.run(query(SHIP_AUDIT).param("rows", audits)).await?;
            txn.commit().await.map(|_| ())
        })
        .await
    }

    /// Run one of sandgraph's own read queries and collect rows as JSON maps.
    pub(crate) async fn read_rows(
        &self,
        q: Query,
        max_rows: usize,
    ) -> anyhow::Result<(Vec<Map<String, Value>>, bool)> {
        let rows = self.read_rows_as(Origin::Sandgraph, q, max_rows).await?;
        Ok((rows.rows, rows.truncated))
    }

    /// Run a caller's read query (`graph_query`): rows as JSON maps, plus every label and
    /// relationship type of the nodes, relationships and paths the rows carry (the
    /// guard's last layer looks at them).
    pub async fn read_caller_rows(&self, q: Query, max_rows: usize) -> anyhow::Result<CallerRows> {
        self.read_rows_as(Origin::Caller, q, max_rows).await
    }

    async fn read_rows_as(
        &self,
        origin: Origin,
        q: Query,
        max_rows: usize,
    ) -> anyhow::Result<CallerRows> {
        self.guarded_as(origin, "query", async {
            let mut stream = self.graph.execute_read(q).await?;
            let mut out = CallerRows::default();
            while let Some(row) = stream.next().await? {
                if out.rows.len() == max_rows {
                    out.truncated = true;
                    break;
                }
                let mut map = Map::new();
                for key in row.keys() {
                    let value: BoltType = row
                        .get(&key.value)
                        .unwrap_or(BoltType::Null(neo4rs::BoltNull));
                    collect_names(&value, &mut out.labels, &mut out.relationship_types);
                    map.insert(key.value.clone(), to_json(&value));
                }
                out.rows.push(map);
            }
            Ok(out)
        })
        .await
    }

    /// What Neo4j's planner says about a caller's query, without running it: its type
    /// and its plan (`EXPLAIN` in a READ-mode transaction).
    pub async fn explain(&self, cypher: &str, params: BoltType) -> anyhow::Result<Explained> {
        let q = with_params(query(&format!("EXPLAIN {cypher}")), params);
        self.guarded_as(Origin::Caller, "explain", async {
            let stream = self.graph.execute_read(q).await?;
            let summary = stream.finish().await?;
            let kind = match summary.query_type() {
                neo4rs::summary::Type::Read => QueryKind::Read,
                neo4rs::summary::Type::Write => QueryKind::Write,
                neo4rs::summary::Type::ReadWrite => QueryKind::ReadWrite,
                neo4rs::summary::Type::SchemaOnly => QueryKind::Schema,
                neo4rs::summary::Type::Unknown => QueryKind::Unknown,
            };
            let plan = summary.plan().map(plan_operator);
            Ok(Explained { kind, plan })
        })
        .await
    }

    /// Size and vocabulary of the knowledge graph alone: `:GraphNode` nodes, the
    /// relationships leaving them (only `graph_upsert` writes those), and the labels
    /// and types Neo4j knows minus the record's.
    pub async fn knowledge_graph_counts(&self) -> anyhow::Result<KnowledgeGraphCounts> {
        let q = query(
            "CALL { MATCH (n:GraphNode) RETURN count(n) AS nodes } \
             CALL { MATCH (:GraphNode)-[r]->() RETURN count(r) AS rels } \
             CALL { CALL db.labels() YIELD label RETURN collect(label) AS labels } \
             CALL { CALL db.relationshipTypes() YIELD relationshipType RETURN collect(relationshipType) AS types } \
             RETURN nodes, rels, labels, types",
        );
        let (rows, _) = self.read_rows(q, 1).await?;
        let row = rows.into_iter().next().unwrap_or_default();
        let names = |key: &str, reserved: fn(&str) -> bool| -> Vec<String> {
            row.get(key)
                .and_then(Value::as_array)
                .map(|names| {
                    names
                        .iter()
                        .filter_map(Value::as_str)
                        .filter(|n| !reserved(n))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(KnowledgeGraphCounts {
            nodes: row.get("nodes").and_then(Value::as_u64).unwrap_or(0),
            relationships: row.get("rels").and_then(Value::as_u64).unwrap_or(0),
            labels: names("labels", crate::cypher_guard::is_record_label),
            relationship_types: names("types", crate::cypher_guard::is_record_relationship_type),
        })
    }

    /// The knowledge graph's schema (`graph_schema`): Neo4j's catalogue of labels,
    /// types, constraints and indexes, and the property keys of at most `sample` nodes
    /// per label and `sample` relationships per type; the record is filtered out by
    /// [`super::graph_schema::RawSchema::into_schema`].
    pub async fn knowledge_graph_schema(
        &self,
        sample: usize,
    ) -> anyhow::Result<super::graph_schema::GraphSchema> {
        use super::graph_schema::{RawSchema, RelationshipSchema, SchemaRule};
        let counts = self.knowledge_graph_counts().await?;
        // Per label and per type, so a small label is described even beside a large
        // one: one label (type) scan each, at most `sample` entities each, in one query.
        let labels = &counts.labels[..counts.labels.len().min(SCHEMA_NAMES)];
        let types = &counts.relationship_types[..counts.relationship_types.len().min(SCHEMA_NAMES)];
        let names_cut =
            labels.len() < counts.labels.len() || types.len() < counts.relationship_types.len();
        let node_rows = if labels.is_empty() {
            Vec::new()
        } else {
            let branches: Vec<String> = labels
                .iter()
                .enumerate()
                .map(|(i, label)| {
                    format!(
                        "MATCH (n:GraphNode:{}) WITH n LIMIT {sample} \
                         UNWIND keys(n) AS key RETURN $names[{i}] AS label, \
                         collect(DISTINCT key) AS keys",
                        quoted(label)
                    )
                })
                .collect();
            let q = query(&format!(
                "CALL {{ {} }} RETURN label, keys",
                branches.join(" UNION ALL ")
            ))
            .param("names", labels.to_vec());
            self.read_rows(q, usize::MAX).await?.0
        };
        let rel_rows = if types.is_empty() {
            Vec::new()
        } else {
            let branches: Vec<String> = types
                .iter()
                .enumerate()
                .map(|(i, rel_type)| {
                    format!(
                        "MATCH (a:GraphNode)-[r:{}]->(b:GraphNode) WITH a, r, b LIMIT {sample} \
                         RETURN $names[{i}] AS type, collect(DISTINCT labels(a)) AS starts, \
                         collect(DISTINCT labels(b)) AS ends, collect(DISTINCT keys(r)) AS keys",
                        quoted(rel_type)
                    )
                })
                .collect();
            let q = query(&format!(
                "CALL {{ {} }} RETURN type, starts, ends, keys",
                branches.join(" UNION ALL ")
            ))
            .param("names", types.to_vec());
            self.read_rows(q, usize::MAX).await?.0
        };
        let (constraint_rows, _) = self
            .read_rows(
                query("SHOW CONSTRAINTS YIELD name, type, entityType, labelsOrTypes, properties"),
                SCHEMA_RULES,
            )
            .await?;
        let (index_rows, _) = self
            .read_rows(
                query(
                    "SHOW INDEXES YIELD name, type, entityType, labelsOrTypes, properties, \
                     state, owningConstraint",
                ),
                SCHEMA_RULES,
            )
            .await?;
        let text = |row: &Map<String, Value>, key: &str| {
            row.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_default()
        };
        let flat = |row: &Map<String, Value>, key: &str| -> Vec<String> {
            fn strings(value: &Value, out: &mut Vec<String>) {
                match value {
                    Value::String(s) => out.push(s.clone()),
                    Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
                    _ => {}
                }
            }
            let mut out = Vec::new();
            if let Some(value) = row.get(key) {
                strings(value, &mut out);
            }
            out
        };
        let rule = |row: &Map<String, Value>| SchemaRule {
            name: text(row, "name"),
            rule_type: text(row, "type"),
            entity_type: text(row, "entityType"),
            labels_or_types: flat(row, "labelsOrTypes"),
            properties: flat(row, "properties"),
            state: row.get("state").and_then(Value::as_str).map(str::to_owned),
            owning_constraint: row
                .get("owningConstraint")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        let raw = RawSchema {
            labels: counts.labels,
            relationship_types: counts.relationship_types,
            node_keys: node_rows
                .iter()
                .map(|row| (text(row, "label"), flat(row, "keys")))
                .collect(),
            relationship_keys: rel_rows
                .iter()
                .map(|row| RelationshipSchema {
                    rel_type: text(row, "type"),
                    start_labels: flat(row, "starts"),
                    end_labels: flat(row, "ends"),
                    property_keys: flat(row, "keys"),
                })
                .collect(),
            constraints: constraint_rows.iter().map(rule).collect(),
            indexes: index_rows.iter().map(rule).collect(),
            node_count: counts.nodes,
            relationship_count: counts.relationships,
            names_cut,
        };
        Ok(raw.into_schema(sample))
    }

    /// Run a write query (graph_upsert) in one transaction. The statements are
    /// idempotent (MERGE), so a transaction Neo4j ended for a reason it calls transient
    /// (a deadlock, a lock wait past its timeout while a schema change ran) is retried in
    /// a new one, as Neo4j's own drivers do for managed transactions, a bounded number of
    /// times.
    pub async fn write(&self, queries: Vec<Query>) -> anyhow::Result<()> {
        retrying(
            || self.write_once(queries.clone()),
            |err| neo4j_code(err).is_some_and(is_retryable),
            WRITE_RETRY_PAUSE,
        )
        .await
    }

    async fn write_once(&self, queries: Vec<Query>) -> anyhow::Result<()> {
        self.guarded("write", async {
            let mut txn = self.graph.start_txn().await?;
            for q in queries {
                txn.run(q).await?;
            }
            txn.commit().await.map(|_| ())
        })
        .await
    }

    async fn page<T: serde::de::DeserializeOwned>(
        &self,
        label: &str,
        mut conditions: Vec<String>,
        mut params: Vec<(String, Value)>,
        window: &Window,
        key: impl Fn(&T) -> (i64, String),
    ) -> Result<Page<T>, QueryError> {
        if let Some(since) = window.since_ms {
            conditions.push("x.ts >= $since".into());
            params.push(("since".into(), since.into()));
        }
        if let Some(until) = window.until_ms {
            conditions.push("x.ts < $until".into());
            params.push(("until".into(), until.into()));
        }
        if let Some((ts, id)) = &window.before {
            conditions.push("(x.ts < $bts OR (x.ts = $bts AND x.id < $bid))".into());
            params.push(("bts".into(), (*ts).into()));
            params.push(("bid".into(), id.clone().into()));
        }
        // `x.ts IS NOT NULL` lets the planner answer from the ts index when no other
        // filter narrows the match.
        conditions.push("x.ts IS NOT NULL".into());
        // With an equality filter on the first property of a `(property, ts)` index,
        // ordering by that (constant) property first lets Neo4j read the index in order
        // and stop after a page; ordered by `ts` alone it sorts every match (400k rows
        // for `tool = execute_code`: 300 ms instead of 12).
        let lead = TS_INDEX_LEADS
            .iter()
            .find(|(l, _)| *l == label)
            .and_then(|(_, leads)| {
                leads
                    .iter()
                    .find(|lead| params.iter().any(|(name, _)| name == *lead))
            })
            .map(|lead| format!("x.{lead} DESC, "))
            .unwrap_or_default();
        let cypher = format!(
            "MATCH (x:{label}) WHERE {} WITH x ORDER BY {lead}x.ts DESC, x.id DESC LIMIT {} RETURN x {{.*}} AS x",
            conditions.join(" AND "),
            window.limit
        );
        let mut q = query(&cypher);
        for (name, value) in params {
            q = q.param(&name, bolt(value).map_err(QueryError::Unavailable)?);
        }
        let (rows, _) = self
            .read_rows(q, window.limit as usize)
            .await
            .map_err(QueryError::Unavailable)?;
        let mut items = Vec::new();
        for mut row in rows {
            let value = row.remove("x").unwrap_or(Value::Null);
            items.push(
                serde_json::from_value::<T>(value)
                    .map_err(|e| QueryError::Unavailable(e.into()))?,
            );
        }
        let last = items.last().map(&key);
        let next_cursor = window.next_cursor(
            items.len(),
            last.as_ref().map(|(ts, id)| (*ts, id.as_str())),
        );
        Ok(Page { items, next_cursor })
    }
}

/// How Neo4j's planner classifies a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// Reads only.
    Read,
    /// Writes only.
    Write,
    /// Reads and writes.
    ReadWrite,
    /// Schema changes.
    Schema,
    /// Neo4j did not say.
    Unknown,
}

/// The planner's verdict on a query it did not run.
#[derive(Debug, Clone)]
pub struct Explained {
    /// Read, write, ...
    pub kind: QueryKind,
    /// The operator tree (absent if Neo4j sent none).
    pub plan: Option<PlanOperator>,
}

/// Per label, the properties that lead a `(property, ts)` index in
/// `cypher/schema.cypher`, in the order a history or audit page prefers them.
const TS_INDEX_LEADS: &[(&str, &[&str])] = &[
    ("Execution", &["caller_id", "code_hash", "tool"]),
    ("AuditEvent", &["request_id", "caller_id", "decision"]),
];

/// Most constraints or indexes `graph_schema` reads (sandgraph creates a dozen).
const SCHEMA_RULES: usize = 1000;
/// Most labels (and, separately, relationship types) `graph_schema` samples.
const SCHEMA_NAMES: usize = 200;

/// A label or type as a Cypher identifier: backquoted, backquotes doubled.
fn quoted(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Counts of the knowledge graph (`/metrics/graph`).
#[derive(Debug, Clone, Default)]
pub struct KnowledgeGraphCounts {
    /// `:GraphNode` nodes.
    pub nodes: u64,
    /// Relationships between them.
    pub relationships: u64,
    /// Labels in use outside the record.
    pub labels: Vec<String>,
    /// Relationship types in use outside the record.
    pub relationship_types: Vec<String>,
}

/// A caller's rows and what kinds of entity they carry.
#[derive(Debug, Clone, Default)]
pub struct CallerRows {
    /// One map per row.
    pub rows: Vec<Map<String, Value>>,
    /// Whether rows past the cap were dropped.
    pub truncated: bool,
    /// Labels of every node in the rows (inside lists, maps and paths too).
    pub labels: BTreeSet<String>,
    /// Types of every relationship in the rows.
    pub relationship_types: BTreeSet<String>,
}

/// Convert one Bolt plan map (`operatorType`, `args.Details`, `children`).
fn plan_operator(map: &HashMap<String, Bolt>) -> PlanOperator {
    let name = match map.get("operatorType") {
        Some(Bolt::String(s)) => s.split('@').next().unwrap_or_default().to_owned(),
        _ => String::new(),
    };
    let details = match map.get("args") {
        Some(Bolt::Dictionary(args)) => match args.get("Details") {
            Some(Bolt::String(s)) => s.clone(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let children = match map.get("children") {
        Some(Bolt::List(list)) => list
            .iter()
            .filter_map(|child| match child {
                Bolt::Dictionary(child) => Some(plan_operator(child)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    PlanOperator {
        name,
        details,
        children,
    }
}

/// Gather the labels and relationship types of every entity inside `value`.
fn collect_names(value: &BoltType, labels: &mut BTreeSet<String>, types: &mut BTreeSet<String>) {
    match value {
        BoltType::Node(node) => {
            for label in &node.labels.value {
                if let BoltType::String(s) = label {
                    labels.insert(s.value.clone());
                }
            }
        }
        BoltType::Relation(rel) => {
            types.insert(rel.typ.value.clone());
        }
        BoltType::UnboundedRelation(rel) => {
            types.insert(rel.typ.value.clone());
        }
        BoltType::Path(path) => {
            for item in path.nodes.value.iter().chain(&path.rels.value) {
                collect_names(item, labels, types);
            }
        }
        BoltType::List(list) => {
            for item in &list.value {
                collect_names(item, labels, types);
            }
        }
        BoltType::Map(map) => {
            for item in map.value.values() {
                collect_names(item, labels, types);
            }
        }
        _ => {}
    }
}

/// Why a graph operation run on a caller's behalf failed, in terms that need no driver
/// types: the tools map each to one answer.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A parameter value Neo4j cannot take.
    #[error("{0}")]
    BadParameter(String),
    /// Neo4j's own refusal (syntax, access mode, its transaction timeout): the caller's
    /// to fix.
    #[error("{message} ({code})")]
    Refused {
        /// Neo4j's message.
        message: String,
        /// Neo4j's status code.
        code: String,
    },
    /// The caller's query outlived sandgraph's wait.
    #[error(transparent)]
    TimedOut(#[from] QueryTimedOut),
    /// Neo4j is down or the connection failed.
    #[error("Neo4j unavailable: {0:#}")]
    Unavailable(anyhow::Error),
}

impl GraphError {
    fn classify(err: anyhow::Error) -> Self {
        let err = match err.downcast::<QueryTimedOut>() {
            Ok(timed_out) => return GraphError::TimedOut(timed_out),
            Err(err) => err,
        };
        if let Some(neo4rs::Error::Neo4j(neo)) = err.downcast_ref::<neo4rs::Error>() {
            return GraphError::Refused {
                message: neo.message().to_owned(),
                code: neo.code().to_owned(),
            };
        }
        GraphError::Unavailable(err)
    }
}

fn json_params(params: &Map<String, Value>) -> Result<BoltType, GraphError> {
    bolt(Value::Object(params.clone())).map_err(|e| GraphError::BadParameter(e.to_string()))
}

impl Neo4jStore {
    /// [`Self::explain`] with JSON parameters and a typed error.
    pub async fn explain_caller(
        &self,
        cypher: &str,
        params: &Map<String, Value>,
    ) -> Result<Explained, GraphError> {
        let params = json_params(params)?;
        self.explain(cypher, params)
            .await
            .map_err(GraphError::classify)
    }

    /// Run a caller's read query with JSON parameters (READ mode, at most `max_rows`).
    pub async fn read_caller(
        &self,
        cypher: &str,
        params: &Map<String, Value>,
        max_rows: usize,
    ) -> Result<CallerRows, GraphError> {
        let q = with_params(query(cypher), json_params(params)?);
        self.read_caller_rows(q, max_rows)
            .await
            .map_err(GraphError::classify)
    }

    /// Which of `keys` name no knowledge-graph node.
    pub async fn missing_graph_keys(&self, keys: &[&str]) -> Result<Vec<String>, GraphError> {
        let keys =
            bolt(serde_json::json!(keys)).map_err(|e| GraphError::BadParameter(e.to_string()))?;
        let q = query("UNWIND $keys AS k OPTIONAL MATCH (n:GraphNode {key: k}) WITH k, n WHERE n IS NULL RETURN collect(k) AS missing").param("keys", keys);
        let (rows, _) = self.read_rows(q, 1).await.map_err(GraphError::classify)?;
        Ok(rows
            .first()
            .and_then(|r| r.get("missing"))
            .and_then(|m| serde_json::from_value(m.clone()).ok())
            .unwrap_or_default())
    }

    /// Run `statements` (Cypher text, the JSON list bound to `$rows`) in one write
    /// transaction.
    pub async fn write_rows(&self, statements: Vec<(String, Value)>) -> Result<(), GraphError> {
        let mut queries = Vec::new();
        for (cypher, rows) in statements {
            let rows = bolt(rows).map_err(|e| GraphError::BadParameter(e.to_string()))?;
            queries.push(query(&cypher).param("rows", rows));
        }
        self.write(queries).await.map_err(GraphError::classify)
    }
}

/// Attach a JSON-object parameter map to a query.
pub fn with_params(mut q: Query, params: BoltType) -> Query {
    if let BoltType::Map(map) = params {
        for (key, value) in map.value {
            q = q.param(&key.value, value);
        }
    }
    q
}

/// Split a `.cypher` file into statements, dropping `//` comment lines.
fn statements(text: &str) -> Vec<String> {
    let cleaned: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    cleaned
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Connection-level failures (as opposed to a query Neo4j rejected) trip the breaker.
/// Who wrote the query an operation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Sandgraph,
    Caller,
}

/// A caller's query ran longer than sandgraph waits for it.
#[derive(Debug, thiserror::Error)]
#[error("the query ran longer than {0:?}; sandgraph stopped waiting for it")]
pub struct QueryTimedOut(pub Duration);

/// Run `operation`, and again after a growing pause while it fails in a way `retryable`
/// accepts, at most [`WRITE_RETRIES`] more times.
async fn retrying<T, F, Fut>(
    mut operation: F,
    retryable: impl Fn(&anyhow::Error) -> bool,
    pause: Duration,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut attempt = 0;
    loop {
        match operation().await {
            Err(err) if attempt < WRITE_RETRIES && retryable(&err) => {
                attempt += 1;
                tracing::info!(
                    error = format!("{err:#}"),
                    attempt,
                    "retrying a Neo4j write"
                );
                tokio::time::sleep(pause * attempt).await;
            }
            result => return result,
        }
    }
}

/// Neo4j's status code for `err`, when Neo4j itself refused.
fn neo4j_code(err: &anyhow::Error) -> Option<&str> {
    match err.downcast_ref::<neo4rs::Error>() {
        Some(neo4rs::Error::Neo4j(neo)) => Some(neo.code()),
        _ => None,
    }
}

/// A schema rule that is already there (another server created it first).
fn is_already_exists(code: &str) -> bool {
    code.starts_with("Neo.ClientError.Schema.") && code.ends_with("AlreadyExists")
}

/// A refusal that a new transaction may not meet: Neo4j's transient class (deadlocks,
/// lock waits) and its transaction timeout, which here means waiting on locks.
fn is_retryable(code: &str) -> bool {
    code.starts_with("Neo.TransientError.") || code.contains("TransactionTimedOut")
}

fn is_connection_failure(err: &anyhow::Error) -> bool {
    if err.is::<QueryTimedOut>() {
        return false;
    }
    if let Some(neo) = err.downcast_ref::<neo4rs::Error>() {
        return !matches!(neo, neo4rs::Error::Neo4j(_));
    }
    true
}

fn eq(
    conditions: &mut Vec<String>,
    params: &mut Vec<(String, Value)>,
    property: &str,
    value: &Option<String>,
) {
    if let Some(v) = value {
        conditions.push(format!("x.{property} = ${property}"));
        params.push((property.to_owned(), Value::String(v.clone())));
    }
}

#[async_trait]
impl HistoryStore for Neo4jStore {
    async fn execution_history(
        &self,
        filter: &HistoryFilter,
    ) -> Result<Page<ExecutionRecord>, QueryError> {
        let window = Window::new(&filter.since, &filter.until, filter.limit, &filter.cursor)?;
        let (mut conditions, mut params) = (Vec::new(), Vec::new());
        eq(&mut conditions, &mut params, "caller_id", &filter.caller);
        eq(&mut conditions, &mut params, "tool", &filter.tool);
        eq(&mut conditions, &mut params, "language", &filter.language);
        eq(&mut conditions, &mut params, "code_hash", &filter.code_hash);
        eq(&mut conditions, &mut params, "outcome", &filter.outcome);
        self.page(
            "Execution",
            conditions,
            params,
            &window,
            |r: &ExecutionRecord| (r.ts, r.id.clone()),
        )
        .await
    }

    async fn get_execution(&self, id: &str) -> Result<Option<ExecutionDetail>, QueryError> {
        let q = query(
            "MATCH (x:Execution {id: $id}) OPTIONAL MATCH (x)-[:OF]->(c:Code) \
             WHERE c.source IS NOT NULL RETURN x {.*} AS x, c {.*} AS c",
        )
        .param("id", id);
        let (mut rows, _) = self
            .read_rows(q, 1)
            .await
            .map_err(QueryError::Unavailable)?;
        let Some(mut row) = rows.pop() else {
            return Ok(None);
        };
        let record = serde_json::from_value(row.remove("x").unwrap_or(Value::Null))
            .map_err(|e| QueryError::Unavailable(e.into()))?;
        let code = match row.remove("c") {
            None | Some(Value::Null) => None,
            Some(c) => {
                Some(serde_json::from_value(c).map_err(|e| QueryError::Unavailable(e.into()))?)
            }
        };
        Ok(Some(ExecutionDetail { record, code }))
    }

    async fn get_code(&self, hash: &str) -> Result<Option<StoredCode>, QueryError> {
        let q = query("MATCH (c:Code {hash: $hash}) WHERE c.source IS NOT NULL RETURN c {.*} AS c")
            .param("hash", hash);
        let (mut rows, _) = self
            .read_rows(q, 1)
            .await
            .map_err(QueryError::Unavailable)?;
        rows.pop()
            .and_then(|mut row| row.remove("c"))
            .map(|v| serde_json::from_value(v).map_err(|e| QueryError::Unavailable(e.into())))
            .transpose()
    }

    async fn complete_execution_ids(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        // Both forms are answered from an index: the id constraint's range index
        // (STARTS WITH) or the ts index (newest first).
        let cypher = if prefix.is_empty() {
            "MATCH (x:Execution) WHERE x.ts IS NOT NULL WITH x ORDER BY x.ts DESC LIMIT $limit RETURN x.id AS key"
        } else {
            "MATCH (x:Execution) WHERE x.id STARTS WITH $prefix WITH x ORDER BY x.id LIMIT $limit RETURN x.id AS key"
        };
        self.keys(cypher, prefix, limit).await
    }

    async fn complete_code_hashes(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        self.keys(
            "MATCH (c:Code) WHERE c.hash STARTS WITH $prefix AND c.source IS NOT NULL \
             WITH c ORDER BY c.hash LIMIT $limit RETURN c.hash AS key",
            prefix,
            limit,
        )
        .await
    }

    async fn code_stats(&self, code_hash: &str) -> Result<CodeStats, QueryError> {
        let q = query(CODE_STATS).param("hash", code_hash);
        let (mut rows, _) = self
            .read_rows(q, 1)
            .await
            .map_err(QueryError::Unavailable)?;
        let row = rows.pop().unwrap_or_default();
        let int = |k: &str| row.get(k).and_then(Value::as_u64).unwrap_or(0);
        let text = |k: &str| row.get(k).and_then(Value::as_str).map(str::to_owned);
        let (runs, failures) = (int("runs"), int("failures"));
        Ok(CodeStats {
            code_hash: code_hash.to_owned(),
            runs,
            callers: int("callers"),
            failures,
            failure_rate: if runs == 0 {
                0.0
            } else {
                failures as f64 / runs as f64
            },
            p50_duration_seconds: row.get("p50").and_then(Value::as_f64),
            first_seen: text("first_seen"),
            last_seen: text("last_seen"),
        })
    }

    async fn audit_log(&self, filter: &AuditFilter) -> Result<Page<AuditEvent>, QueryError> {
        let window = Window::new(&filter.since, &filter.until, filter.limit, &filter.cursor)?;
        let (mut conditions, mut params) = (Vec::new(), Vec::new());
        eq(&mut conditions, &mut params, "caller_id", &filter.caller);
        eq(&mut conditions, &mut params, "decision", &filter.event_type);
        eq(&mut conditions, &mut params, "endpoint", &filter.endpoint);
        eq(&mut conditions, &mut params, "outcome", &filter.outcome);
        eq(
            &mut conditions,
            &mut params,
            "request_id",
            &filter.request_id,
        );
        self.page(
            "AuditEvent",
            conditions,
            params,
            &window,
            |e: &AuditEvent| (e.ts, e.id.clone()),
        )
        .await
    }

    async fn delete_expired(
        &self,
        cutoffs: super::retention::Cutoffs,
        batch: usize,
    ) -> Result<super::retention::Swept, QueryError> {
        let mut swept = super::retention::Swept::default();
        if let Some(before) = cutoffs.executions_before {
            swept.executions = self
                .drain(
                    "MATCH (x:Execution) WHERE x.ts < $before WITH x LIMIT $chunk \
                     CALL { WITH x DETACH DELETE x } IN TRANSACTIONS OF $batch ROWS \
                     RETURN count(*) AS n",
                    before,
                    batch,
                )
                .await?;
            // Code nodes whose every record is gone (a Code node and its first record
            // are shipped in one transaction, so none is briefly unlinked).
            swept.code = self
                .drain(
                    "MATCH (x:Code) WHERE NOT (x)<-[:OF]-() AND $before IS NOT NULL \
                     WITH x LIMIT $chunk \
                     CALL { WITH x DELETE x } IN TRANSACTIONS OF $batch ROWS \
                     RETURN count(*) AS n",
                    before,
                    batch,
                )
                .await?;
        }
        if let Some(before) = cutoffs.audit_before {
            swept.audit_events = self
                .drain(
                    "MATCH (x:AuditEvent) WHERE x.ts < $before WITH x LIMIT $chunk \
                     CALL { WITH x DETACH DELETE x } IN TRANSACTIONS OF $batch ROWS \
                     RETURN count(*) AS n",
                    before,
                    batch,
                )
                .await?;
        }
        Ok(swept)
    }

    fn backend(&self) -> &'static str {
        "neo4j"
    }
}

impl Neo4jStore {
    /// Run a retention statement (an auto-commit query whose `CALL { ... } IN
    /// TRANSACTIONS` commits every `batch` rows) in chunks of ten batches, each well inside
    /// the operation timeout, until a chunk comes back short; the rows it deleted.
    async fn drain(&self, cypher: &str, before: i64, batch: usize) -> Result<u64, QueryError> {
        let chunk = (batch * 10) as i64;
        let mut total = 0;
        loop {
            let q = query(cypher)
                .param("before", before)
                .param("chunk", chunk)
                .param("batch", batch as i64);
            let deleted = self
                .guarded("retention", async {
                    let mut rows = self.graph.execute(q).await?;
                    let row = rows.next().await?;
                    Ok(row.and_then(|r| r.get::<i64>("n").ok()).unwrap_or(0))
                })
                .await
                .map_err(QueryError::Unavailable)?;
            total += deleted.max(0) as u64;
            if deleted < chunk {
                return Ok(total);
            }
        }
    }

    async fn keys(
        &self,
        cypher: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let q = query(cypher)
            .param("prefix", prefix)
            .param("limit", limit as i64);
        let (rows, _) = self
            .read_rows(q, limit)
            .await
            .map_err(QueryError::Unavailable)?;
        Ok(rows
            .into_iter()
            .filter_map(|mut row| match row.remove("key") {
                Some(Value::String(key)) => Some(key),
                _ => None,
            })
            .collect())
    }
}

/// Group helper for graph_upsert: items keyed by a label/type signature.
pub(crate) fn group_by<T>(items: Vec<(String, T)>) -> HashMap<String, Vec<T>> {
    let mut groups: HashMap<String, Vec<T>> = HashMap::new();
    for (key, item) in items {
        groups.entry(key).or_default().push(item);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_splits_into_statements_without_comments() {
        let statements = statements(SCHEMA);
        assert!(statements.len() >= 10);
        assert!(
            statements
                .iter()
                .all(|s| s.starts_with("CREATE ") && s.contains("IF NOT EXISTS"))
        );
    }

    #[test]
    fn schema_races_and_lock_waits_are_told_apart_from_real_refusals() {
        assert!(is_already_exists(
            "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists"
        ));
        assert!(is_already_exists(
            "Neo.ClientError.Schema.ConstraintWithNameAlreadyExists"
        ));
        assert!(!is_already_exists(
            "Neo.ClientError.Schema.ConstraintValidationFailed"
        ));
        assert!(is_retryable(
            "Neo.TransientError.Transaction.DeadlockDetected"
        ));
        assert!(is_retryable(
            "Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration"
        ));
        assert!(!is_retryable("Neo.ClientError.Statement.SyntaxError"));
        assert!(!is_retryable(
            "Neo.ClientError.Schema.ConstraintValidationFailed"
        ));
    }

    #[tokio::test]
    async fn a_transient_refusal_is_retried_a_bounded_number_of_times() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let flaky = || {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                if n < 2 {
                    anyhow::bail!("transient")
                }
                Ok(n)
            }
        };
        let transient = |err: &anyhow::Error| err.to_string() == "transient";
        let value = retrying(flaky, transient, Duration::from_millis(1)).await;
        assert_eq!(value.unwrap(), 2, "the third try succeeds");

        calls.store(0, std::sync::atomic::Ordering::SeqCst);
        let always = || {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { anyhow::bail!("transient") as anyhow::Result<()> }
        };
        assert!(
            retrying(always, transient, Duration::from_millis(1))
                .await
                .is_err()
        );
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            1 + WRITE_RETRIES
        );

        calls.store(0, std::sync::atomic::Ordering::SeqCst);
        let refused = || {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { anyhow::bail!("syntax error") as anyhow::Result<()> }
        };
        assert!(
            retrying(refused, transient, Duration::from_millis(1))
                .await
                .is_err()
        );
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "not retried"
        );
    }

    #[test]
    fn only_sandgraphs_own_failures_count_towards_the_breaker() {
        // A caller's runaway query must not open the breaker...
        let runaway = anyhow::Error::from(QueryTimedOut(OPERATION_TIMEOUT));
        assert!(!is_connection_failure(&runaway));
        assert!(!is_connection_failure(&runaway.context("graph_query")));
        // ...but sandgraph's own timeouts and I/O errors do.
        assert!(is_connection_failure(&anyhow::anyhow!(
            "Neo4j ship timed out after 10s"
        )));
        let io = neo4rs::Error::IOError {
            detail: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert!(is_connection_failure(&anyhow::Error::from(io)));
    }
}

//! `graph_upsert` and `graph_query`: a knowledge graph in Neo4j with the old platform's
//! contract. `graph_query` is read-only for real: Neo4j's planner must classify it as a
//! read (`EXPLAIN`), it runs in a READ-mode session (Neo4j itself refuses writes), file
//! and procedure loaders are refused up front, rows are capped and time is bounded.

use std::collections::{BTreeSet, HashSet};

use super::{ToolError, Tools, new_id};
use crate::audit::CallContext;
use crate::auth::Endpoint;
use crate::call::{Hints, RestMethod, RestRoute, Source, Tool, ToolSpec};
use crate::cypher_guard::{
    GraphScope, Refused, TextRefusal, check_text, is_record_label, is_record_relationship_type,
};
use crate::store::ExecutionRecord;
use crate::store::neo4j::{GraphError, Neo4jStore, QueryKind, group_by};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Most rows `graph_query` returns; the response says when it cut.
pub const MAX_ROWS: usize = 1000;
/// Most nodes plus relationships in one upsert.
pub const MAX_UPSERT_ITEMS: usize = 10_000;

/// A node to create or update, identified by `key`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphNode {
    /// Unique key (`^[A-Za-z_][A-Za-z0-9_\-:]{0,63}$`).
    pub key: String,
    /// Labels to add (same pattern).
    #[serde(default)]
    pub labels: Vec<String>,
    /// Properties to set.
    #[serde(default)]
    pub properties: Map<String, Value>,
}

/// A relationship between two keys.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphRelationship {
    /// Key of the start node.
    pub start: String,
    /// Key of the end node.
    pub end: String,
    /// Relationship type (same pattern as keys).
    #[serde(rename = "type")]
    pub rel_type: String,
    /// Properties to set.
    #[serde(default)]
    pub properties: Map<String, Value>,
}

/// Arguments of `graph_upsert`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphUpsertRequest {
    /// Nodes to merge by key.
    #[serde(default)]
    pub nodes: Vec<GraphNode>,
    /// Relationships to merge between existing or given keys.
    #[serde(default)]
    pub relationships: Vec<GraphRelationship>,
}

/// What an upsert wrote.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct GraphMetrics {
    /// Nodes merged.
    pub node_count: usize,
    /// Relationships merged.
    pub relationship_count: usize,
    /// Distinct labels given.
    pub labels: Vec<String>,
    /// Distinct relationship types given.
    pub relationship_types: Vec<String>,
    /// 2 * relationships / nodes (0 with no nodes).
    pub average_degree: f64,
}

/// Result of `graph_upsert`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct GraphUpsertResponse {
    /// Id of this call.
    pub id: String,
    /// What was written.
    pub metrics: GraphMetrics,
}

/// Arguments of `graph_query`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphQueryRequest {
    /// A read-only Cypher query.
    pub cypher: String,
    /// Query parameters (a JSON object).
    #[serde(default)]
    pub parameters: Map<String, Value>,
}

/// Result of `graph_query`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct GraphQueryResponse {
    /// Id of this call (its record in the history).
    pub id: String,
    /// SHA-256 of the query text.
    pub code_hash: String,
    /// One object per row: column -> value (nodes as `{id, labels, properties}`,
    /// relationships as `{id, type, properties, start, end}`).
    pub results: Vec<Map<String, Value>>,
    /// Whether rows beyond the cap were dropped.
    pub truncated: bool,
}

fn check_name(field: &'static str, name: &str) -> Result<(), ToolError> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':'));
    if ok {
        Ok(())
    } else {
        Err(ToolError::invalid(
            field,
            format!("{field} {name:?} must match ^[A-Za-z_][A-Za-z0-9_\\-:]{{0,63}}$"),
        ))
    }
}

/// The knowledge graph never takes the record's names: a node labelled `:Execution` or
/// a `[:RAN]` relationship written here would blur the line `graph_query`'s guard draws
/// (see `cypher_guard`). Nor may properties overwrite a node's `key`.
fn check_reserved(
    request: &GraphUpsertRequest,
    labels: &BTreeSet<String>,
    types: &BTreeSet<String>,
) -> Result<(), ToolError> {
    let reserved_labels: Vec<&str> = labels
        .iter()
        .map(String::as_str)
        .filter(|l| is_record_label(l))
        .collect();
    if !reserved_labels.is_empty() {
        return Err(ToolError::invalid(
            "labels",
            format!(
                "labels reserved for sandgraph's record cannot be written by graph_upsert: {} (reserved: {}, and any name starting with \"Sandgraph\")",
                reserved_labels.join(", "),
                crate::cypher_guard::RECORD_LABELS.join(", ")
            ),
        ));
    }
    let reserved_types: Vec<&str> = types
        .iter()
        .map(String::as_str)
        .filter(|t| is_record_relationship_type(t))
        .collect();
    if !reserved_types.is_empty() {
        return Err(ToolError::invalid(
            "type",
            format!(
                "relationship types reserved for sandgraph's record cannot be written by graph_upsert: {} (reserved: {}, and any name starting with \"SANDGRAPH\")",
                reserved_types.join(", "),
                crate::cypher_guard::RECORD_RELATIONSHIP_TYPES.join(", ")
            ),
        ));
    }
    if let Some(node) = request
        .nodes
        .iter()
        .find(|n| n.properties.contains_key("key"))
    {
        return Err(ToolError::invalid(
            "properties",
            format!(
                "node {:?}: `key` is the node's identity; set it with the node's `key` field, not in properties",
                node.key
            ),
        ));
    }
    Ok(())
}

pub(super) fn neo4j(tools: &Tools) -> Result<&Neo4jStore, ToolError> {
    tools.neo4j.as_deref().ok_or_else(|| {
        ToolError::invalid(
            "store",
            "graph tools need Neo4j: start the server with NEO4J_URI (see docker-compose.yml)",
        )
    })
}

pub(super) fn unavailable(err: anyhow::Error) -> ToolError {
    ToolError::Busy {
        detail: format!("Neo4j unavailable: {err:#}"),
    }
}

/// `graph_upsert`.
pub struct GraphUpsert;

/// Name, role, hints and route of `graph_upsert`.
pub static GRAPHUPSERT_SPEC: ToolSpec = ToolSpec {
    name: "graph_upsert",
    title: "Write to the knowledge graph",
    description: "Merge nodes (by key, with labels and properties) and relationships (start key, \
end key, type, properties) into the Neo4j knowledge graph (developer role or higher). A \
relationship to a key that does not exist is an error listing the keys. The record's labels \
(Execution, AuditEvent, User, Code, ...) and relationship types (RAN, OF, BY) are reserved.",
    endpoint: Endpoint::GraphUpsert,
    hints: Hints {
        read_only: false,
        // MERGE sets properties: an existing node's values are overwritten.
        destructive: true,
        idempotent: true,
        open_world: false,
    },
    rest: RestRoute {
        method: RestMethod::Post,
        path: "/graph_upsert",
        status: 200,
    },
};

#[async_trait::async_trait]
impl Tool for GraphUpsert {
    type Request = GraphUpsertRequest;
    type Response = GraphUpsertResponse;

    fn spec(&self) -> &'static ToolSpec {
        &GRAPHUPSERT_SPEC
    }

    async fn run(
        &self,
        tools: &Tools,
        _ctx: &CallContext,
        request: GraphUpsertRequest,
    ) -> Result<GraphUpsertResponse, ToolError> {
        upsert(tools, request).await
    }
}

/// Admit, run and remember one `graph_upsert` call (the pipeline in [`crate::call`]).
pub async fn graph_upsert(
    tools: &Tools,
    ctx: &CallContext,
    request: GraphUpsertRequest,
) -> Result<GraphUpsertResponse, ToolError> {
    crate::call::call_typed(tools, ctx, &GraphUpsert, request).await
}

async fn upsert(
    tools: &Tools,
    request: GraphUpsertRequest,
) -> Result<GraphUpsertResponse, ToolError> {
    let store = neo4j(tools)?;
    if request.nodes.len() + request.relationships.len() > MAX_UPSERT_ITEMS {
        return Err(ToolError::TooLarge {
            detail: format!("at most {MAX_UPSERT_ITEMS} nodes and relationships per call"),
        });
    }
    let mut labels = BTreeSet::new();
    for node in &request.nodes {
        check_name("key", &node.key)?;
        for label in &node.labels {
            check_name("label", label)?;
            labels.insert(label.clone());
        }
    }
    let mut types = BTreeSet::new();
    for rel in &request.relationships {
        check_name("type", &rel.rel_type)?;
        types.insert(rel.rel_type.clone());
    }
    check_reserved(&request, &labels, &types)?;

    // A relationship to a key that exists neither here nor in the graph is an error.
    let given: HashSet<&str> = request.nodes.iter().map(|n| n.key.as_str()).collect();
    let wanted: BTreeSet<&str> = request
        .relationships
        .iter()
        .flat_map(|r| [r.start.as_str(), r.end.as_str()])
        .filter(|k| !given.contains(k))
        .collect();
    if !wanted.is_empty() {
        let wanted: Vec<&str> = wanted.into_iter().collect();
        let missing = store
            .missing_graph_keys(&wanted)
            .await
            .map_err(|e| graph_error("relationships", "upsert", e))?;
        if !missing.is_empty() {
            return Err(ToolError::invalid(
                "relationships",
                format!(
                    "relationships refer to keys that do not exist: {}",
                    missing.join(", ")
                ),
            ));
        }
    }

    let mut statements = Vec::new();
    let nodes = group_by(
        request
            .nodes
            .iter()
            .map(|n| {
                let mut sorted = n.labels.clone();
                sorted.sort();
                sorted.dedup();
                let set: String = sorted.iter().map(|l| format!(":`{l}`")).collect();
                (set, json!({"key": n.key, "properties": n.properties}))
            })
            .collect(),
    );
    for (label_set, rows) in nodes {
        let cypher = format!(
            "UNWIND $rows AS r MERGE (n:GraphNode {{key: r.key}}) SET n += r.properties SET n{label_set}"
        );
        let cypher = if label_set.is_empty() {
            "UNWIND $rows AS r MERGE (n:GraphNode {key: r.key}) SET n += r.properties".to_owned()
        } else {
            cypher
        };
        statements.push((cypher, json!(rows)));
    }
    let rels = group_by(
        request
            .relationships
            .iter()
            .map(|r| {
                (
                    r.rel_type.clone(),
                    json!({"start": r.start, "end": r.end, "properties": r.properties}),
                )
            })
            .collect(),
    );
    for (rel_type, rows) in rels {
        let cypher = format!(
            "UNWIND $rows AS r MATCH (a:GraphNode {{key: r.start}}) MATCH (b:GraphNode {{key: r.end}}) MERGE (a)-[x:`{rel_type}`]->(b) SET x += r.properties"
        );
        statements.push((cypher, json!(rows)));
    }
    store
        .write_rows(statements)
        .await
        .map_err(|e| graph_error("nodes", "upsert", e))?;
    let node_count = request.nodes.len();
    let relationship_count = request.relationships.len();
    Ok(GraphUpsertResponse {
        id: new_id(),
        metrics: GraphMetrics {
            node_count,
            relationship_count,
            labels: labels.into_iter().collect(),
            relationship_types: types.into_iter().collect(),
            average_degree: if node_count == 0 {
                0.0
            } else {
                2.0 * relationship_count as f64 / node_count as f64
            },
        },
    })
}

/// `graph_query`.
pub struct GraphQuery;

/// Name, role, hints and route of `graph_query`.
pub static GRAPHQUERY_SPEC: ToolSpec = ToolSpec {
    name: "graph_query",
    title: "Query the knowledge graph",
    description: "Run a read-only Cypher query against the knowledge graph: the nodes \
graph_upsert wrote (label GraphNode plus their own labels) and their relationships; start from a \
label, e.g. MATCH (n:GraphNode {key: $key}). Writes, LOAD CSV, procedures, SHOW commands, \
`MATCH (n)` over every node and sandgraph's own record (Execution, AuditEvent, User, Code) are \
refused with a message saying why; at most 1000 rows. Nodes come back as {id, labels, properties}, \
relationships as {id, type, properties, start, end}.",
    endpoint: Endpoint::GraphQuery,
    hints: Hints::READ_ONLY,
    rest: RestRoute {
        method: RestMethod::Post,
        path: "/graph_query",
        status: 200,
    },
};

#[async_trait::async_trait]
impl Tool for GraphQuery {
    type Request = GraphQueryRequest;
    type Response = GraphQueryResponse;

    fn spec(&self) -> &'static ToolSpec {
        &GRAPHQUERY_SPEC
    }

    fn source(&self, request: &GraphQueryRequest) -> Option<Source> {
        Some(Source::code(&request.cypher))
    }

    async fn run(
        &self,
        tools: &Tools,
        ctx: &CallContext,
        request: GraphQueryRequest,
    ) -> Result<GraphQueryResponse, ToolError> {
        query_graph(tools, ctx, &request).await
    }
}

/// Admit, run and remember one `graph_query` call (the pipeline in [`crate::call`]).
pub async fn graph_query(
    tools: &Tools,
    ctx: &CallContext,
    request: GraphQueryRequest,
) -> Result<GraphQueryResponse, ToolError> {
    crate::call::call_typed(tools, ctx, &GraphQuery, request).await
}

async fn query_graph(
    tools: &Tools,
    ctx: &CallContext,
    request: &GraphQueryRequest,
) -> Result<GraphQueryResponse, ToolError> {
    let store = neo4j(tools)?;
    tools.check_size("cypher", &request.cypher)?;
    check_text(&request.cypher).map_err(|refusal| match refusal {
        TextRefusal::Invalid(detail) => ToolError::invalid("cypher", detail),
        TextRefusal::Forbidden(detail) => ToolError::Forbidden { detail },
    })?;
    let scope = GraphScope::for_role(ctx.caller.role);
    let explained = store
        .explain_caller(&request.cypher, &request.parameters)
        .await
        .map_err(|e| graph_error("cypher", "query", e))?;
    let not_a_read = || {
        ToolError::invalid(
            "cypher",
            format!(
                "graph_query is read-only: Neo4j classifies this query as {:?}",
                explained.kind
            ),
        )
    };
    if matches!(
        explained.kind,
        QueryKind::Write | QueryKind::ReadWrite | QueryKind::Schema
    ) {
        return Err(not_a_read());
    }
    // No plan, no verdict: fail closed.
    let plan = explained
        .plan
        .as_ref()
        .ok_or_else(|| ToolError::Internal(anyhow::anyhow!("Neo4j sent no plan for an EXPLAIN")))?;
    scope.check_plan(plan).map_err(refused)?;
    // Some procedures are classified as neither read nor write: refused above if the
    // plan guard knows why, and here otherwise.
    if explained.kind != QueryKind::Read {
        return Err(not_a_read());
    }
    let rows = store
        .read_caller(&request.cypher, &request.parameters, MAX_ROWS)
        .await
        .map_err(|e| graph_error("cypher", "query", e))?;
    scope
        .check_returned(&rows.labels, &rows.relationship_types)
        .map_err(refused)?;
    Ok(GraphQueryResponse {
        id: new_id(),
        code_hash: super::code_hash(&request.cypher),
        results: rows.rows,
        truncated: rows.truncated,
    })
}

fn refused(refusal: Refused) -> ToolError {
    ToolError::Forbidden { detail: refusal.0 }
}

/// Neo4j's refusals (syntax, access mode) and runaway queries are the caller's to fix
/// (422); anything else means Neo4j is unavailable (503).
fn graph_error(field: &'static str, what: &str, err: GraphError) -> ToolError {
    match err {
        GraphError::BadParameter(detail) => ToolError::invalid("parameters", detail),
        GraphError::Refused { message, code } => ToolError::invalid(
            field,
            format!("Neo4j refused the {what}: {message} ({code})"),
        ),
        GraphError::TimedOut(timed_out) => {
            ToolError::invalid(field, format!("graph_query: {timed_out}"))
        }
        GraphError::Unavailable(err) => unavailable(err),
    }
}

impl crate::call::ToolResponse for GraphUpsertResponse {
    fn record(&self, ctx: &CallContext, tool: &str) -> Option<ExecutionRecord> {
        Some(ExecutionRecord {
            stdout: serde_json::to_string(&self.metrics).ok(),
            ..super::base_record(ctx, tool, &self.id)
        })
    }
}

impl crate::call::ToolResponse for GraphQueryResponse {
    fn record(&self, ctx: &CallContext, tool: &str) -> Option<ExecutionRecord> {
        Some(ExecutionRecord {
            language: Some("cypher".to_owned()),
            code_hash: Some(self.code_hash.clone()),
            stdout: Some(format!(
                "{} rows{}",
                self.results.len(),
                if self.truncated { " (truncated)" } else { "" }
            )),
            ..super::base_record(ctx, tool, &self.id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_sandgraph_stopped_waiting_for_is_the_callers_error() {
        let err = GraphError::TimedOut(crate::store::neo4j::QueryTimedOut(
            std::time::Duration::from_secs(10),
        ));
        match graph_error("cypher", "query", err) {
            ToolError::Invalid { field, detail } => {
                assert_eq!(field, "cypher");
                assert_eq!(
                    detail,
                    "graph_query: the query ran longer than 10s; sandgraph stopped waiting for it"
                );
            }
            other => panic!("expected a 422, got {other:?}"),
        }
        // Anything else that is not Neo4j's own answer means Neo4j is unavailable.
        assert!(matches!(
            graph_error(
                "cypher",
                "query",
                GraphError::Unavailable(anyhow::anyhow!("connection reset"))
            ),
            ToolError::Busy { .. }
        ));
    }

    #[test]
    fn names_follow_the_contract_pattern() {
        assert!(check_name("key", "user-42:x").is_ok());
        assert!(check_name("key", "9lives").is_err());
        assert!(check_name("label", "a`b").is_err());
        assert!(check_name("key", &"x".repeat(65)).is_err());
    }
}

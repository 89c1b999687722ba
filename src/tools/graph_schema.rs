//! `graph_schema`: what the knowledge graph holds (labels, relationship types, property
//! keys per label, constraints, indexes), so an agent writes Cypher for `graph_query`
//! without guessing. Never the record: the store side filters its labels, types,
//! constraints and indexes out (`store::graph_schema`).

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ToolError, Tools};
use crate::audit::CallContext;
use crate::auth::Endpoint;
use crate::call::{Hints, RestMethod, RestRoute, Tool, ToolSpec};
use crate::store::graph_schema::{GraphSchema, SAMPLE};

/// Arguments of `graph_schema`: none.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphSchemaRequest {}

/// `graph_schema`.
pub struct GraphSchemaTool;

/// Name, role, hints and route of `graph_schema`.
pub static GRAPH_SCHEMA_SPEC: ToolSpec = ToolSpec {
    name: "graph_schema",
    title: "Describe the knowledge graph",
    description: "The knowledge graph's labels (each with its property keys), relationship types \
(with the labels they join and their property keys), constraints and indexes, from Neo4j's own \
catalogue. Call it before writing Cypher for graph_query. Every node graph_upsert wrote carries \
the label GraphNode and a unique `key`. Property keys come from at most 1000 nodes per label \
and 1000 relationships per type (`sampled` says when the graph is larger).",
    endpoint: Endpoint::GraphQuery,
    hints: Hints::READ_ONLY,
    rest: RestRoute {
        method: RestMethod::Get,
        path: "/graph_schema",
        status: 200,
    },
};

#[async_trait::async_trait]
impl Tool for GraphSchemaTool {
    type Request = GraphSchemaRequest;
    type Response = GraphSchema;

    fn spec(&self) -> &'static ToolSpec {
        &GRAPH_SCHEMA_SPEC
    }

    async fn run(
        &self,
        tools: &Tools,
        _ctx: &CallContext,
        _request: GraphSchemaRequest,
    ) -> Result<GraphSchema, ToolError> {
        let neo4j = super::graph::neo4j(tools)?;
        neo4j
            .knowledge_graph_schema(SAMPLE)
            .await
            .map_err(super::graph::unavailable)
    }
}

fn braces(keys: &[String]) -> String {
    if keys.is_empty() {
        String::new()
    } else {
        format!(" {{{}}}", keys.join(", "))
    }
}

fn alternatives(labels: &[String]) -> String {
    if labels.is_empty() {
        "(:GraphNode)".to_owned()
    } else {
        format!("(:{})", labels.join("|"))
    }
}

impl crate::call::ToolResponse for GraphSchema {
    /// The schema as Cypher-shaped lines an LLM reads at a glance.
    fn render(&self) -> Option<String> {
        let mut text = format!(
            "Knowledge graph: {} nodes, {} relationships{}.\nNode labels:\n",
            self.node_count,
            self.relationship_count,
            if self.sampled {
                " (property keys from a sample)"
            } else {
                ""
            }
        );
        for label in &self.labels {
            let _ = writeln!(text, "  (:{}{})", label.label, braces(&label.property_keys));
        }
        text.push_str("Relationship types:\n");
        for rel in &self.relationship_types {
            let _ = writeln!(
                text,
                "  {}-[:{}{}]->{}",
                alternatives(&rel.start_labels),
                rel.rel_type,
                braces(&rel.property_keys),
                alternatives(&rel.end_labels)
            );
        }
        text.push_str("Constraints and indexes:\n");
        for rule in self.constraints.iter().chain(&self.indexes) {
            let _ = writeln!(
                text,
                "  {} {} on {}({})",
                rule.rule_type,
                rule.name,
                if rule.labels_or_types.is_empty() {
                    "every label or type".to_owned()
                } else {
                    rule.labels_or_types.join(", ")
                },
                rule.properties.join(", ")
            );
        }
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::ToolResponse;
    use crate::store::graph_schema::{LabelSchema, RelationshipSchema};

    #[test]
    fn renders_the_schema_as_cypher_patterns() {
        let schema = GraphSchema {
            labels: vec![LabelSchema {
                label: "Person".into(),
                property_keys: vec!["key".into(), "name".into()],
            }],
            relationship_types: vec![RelationshipSchema {
                rel_type: "KNOWS".into(),
                start_labels: vec!["Person".into()],
                end_labels: vec![],
                property_keys: vec![],
            }],
            node_count: 2,
            relationship_count: 1,
            ..GraphSchema::default()
        };
        let text = schema.render().unwrap();
        assert!(text.contains("  (:Person {key, name})\n"), "{text}");
        assert!(
            text.contains("  (:Person)-[:KNOWS]->(:GraphNode)\n"),
            "{text}"
        );
        assert!(text.starts_with("Knowledge graph: 2 nodes, 1 relationships.\n"));
    }
}

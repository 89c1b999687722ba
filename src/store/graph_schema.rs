//! What the knowledge graph looks like, for `graph_schema`: its labels, relationship
//! types, the property keys each carries, and the constraints and indexes Neo4j keeps on
//! them. Assembled from Neo4j's own catalogue (`db.labels()`, `db.relationshipTypes()`,
//! `SHOW CONSTRAINTS`, `SHOW INDEXES`) and a bounded sample of the nodes and
//! relationships `graph_upsert` wrote, then filtered here, in one place, so that nothing
//! of the record (its labels, relationship types, their constraints and indexes) is ever
//! described to a caller: agents may not read the record, so they are not told its shape.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cypher_guard::{KNOWLEDGE_GRAPH_LABEL, is_record_label, is_record_relationship_type};

/// Most nodes per label (and relationships per type) whose property keys are read per
/// call: the catalogue procedures are cheap, a scan of a large graph is not. The answer
/// says when the graph is larger (`sampled`).
pub const SAMPLE: usize = 1000;

/// One node label of the knowledge graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LabelSchema {
    /// The label (every node `graph_upsert` writes also carries `GraphNode`).
    pub label: String,
    /// Property keys seen on nodes with this label (`key` included), sorted.
    pub property_keys: Vec<String>,
}

/// One relationship type of the knowledge graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RelationshipSchema {
    /// The relationship type.
    #[serde(rename = "type")]
    pub rel_type: String,
    /// Labels seen on its start nodes (besides `GraphNode`), sorted.
    pub start_labels: Vec<String>,
    /// Labels seen on its end nodes (besides `GraphNode`), sorted.
    pub end_labels: Vec<String>,
    /// Property keys seen on relationships of this type, sorted.
    pub property_keys: Vec<String>,
}

/// A constraint or index, as `SHOW CONSTRAINTS` / `SHOW INDEXES` describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SchemaRule {
    /// Its name.
    pub name: String,
    /// Neo4j's type, e.g. `UNIQUENESS`, `RANGE`, `LOOKUP`, `TEXT`.
    #[serde(rename = "type")]
    pub rule_type: String,
    /// `NODE` or `RELATIONSHIP`.
    pub entity_type: String,
    /// The labels or relationship types it covers (empty for a lookup index: all of them).
    pub labels_or_types: Vec<String>,
    /// The properties it covers (empty for a lookup index).
    pub properties: Vec<String>,
    /// Indexes only: `ONLINE`, `POPULATING` or `FAILED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Indexes only: the constraint that owns it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owning_constraint: Option<String>,
}

/// The shape of the knowledge graph.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GraphSchema {
    /// Node labels in use, sorted, each with its property keys.
    pub labels: Vec<LabelSchema>,
    /// Relationship types in use, sorted, each with the labels it joins and its keys.
    pub relationship_types: Vec<RelationshipSchema>,
    /// Constraints on the knowledge graph.
    pub constraints: Vec<SchemaRule>,
    /// Indexes on the knowledge graph (lookup indexes included).
    pub indexes: Vec<SchemaRule>,
    /// Nodes in the knowledge graph.
    pub node_count: u64,
    /// Relationships between them.
    pub relationship_count: u64,
    /// Whether property keys and endpoint labels may come from a sample (at most
    /// 1000 nodes per label and 1000 relationships per type) rather than every one.
    pub sampled: bool,
}

/// What the queries return, before the record is filtered out.
#[derive(Debug, Clone, Default)]
pub struct RawSchema {
    /// `db.labels()`.
    pub labels: Vec<String>,
    /// `db.relationshipTypes()`.
    pub relationship_types: Vec<String>,
    /// Sampled nodes: (label, property keys) per label.
    pub node_keys: Vec<(String, Vec<String>)>,
    /// Sampled relationships, per type (labels unfiltered, names unsorted).
    pub relationship_keys: Vec<RelationshipSchema>,
    /// `SHOW CONSTRAINTS`.
    pub constraints: Vec<SchemaRule>,
    /// `SHOW INDEXES`.
    pub indexes: Vec<SchemaRule>,
    /// `:GraphNode` nodes.
    pub node_count: u64,
    /// Relationships leaving them.
    pub relationship_count: u64,
    /// Whether some labels or types were not sampled at all (too many of them).
    pub names_cut: bool,
}

/// Whether a constraint or index touches the record: any label or type it names is the
/// record's. A lookup index (no labels or types) covers everything and says nothing of
/// the record's shape, so it stays.
fn describes_record(rule: &SchemaRule) -> bool {
    let reserved = if rule.entity_type == "RELATIONSHIP" {
        is_record_relationship_type
    } else {
        is_record_label
    };
    rule.labels_or_types.iter().any(|name| reserved(name))
}

fn sorted(names: impl IntoIterator<Item = String>) -> Vec<String> {
    names
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

impl RawSchema {
    /// The knowledge graph's schema: the record's labels, types, constraints and indexes
    /// removed, names sorted.
    pub fn into_schema(self, sample: usize) -> GraphSchema {
        let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (label, label_keys) in self.node_keys {
            keys.entry(label).or_default().extend(label_keys);
        }
        let labels = sorted(self.labels.into_iter().filter(|l| !is_record_label(l)))
            .into_iter()
            .map(|label| LabelSchema {
                property_keys: keys
                    .remove(&label)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                label,
            })
            .collect();
        let mut by_type: BTreeMap<String, [BTreeSet<String>; 3]> = BTreeMap::new();
        for sampled in self.relationship_keys {
            let entry = by_type.entry(sampled.rel_type).or_default();
            let plain = |labels: Vec<String>| {
                labels
                    .into_iter()
                    .filter(|l| l != KNOWLEDGE_GRAPH_LABEL && !is_record_label(l))
            };
            entry[0].extend(plain(sampled.start_labels));
            entry[1].extend(plain(sampled.end_labels));
            entry[2].extend(sampled.property_keys);
        }
        let relationship_types = sorted(
            self.relationship_types
                .into_iter()
                .filter(|t| !is_record_relationship_type(t)),
        )
        .into_iter()
        .map(|rel_type| {
            let [start, end, keys] = by_type.remove(&rel_type).unwrap_or_default();
            RelationshipSchema {
                rel_type,
                start_labels: start.into_iter().collect(),
                end_labels: end.into_iter().collect(),
                property_keys: keys.into_iter().collect(),
            }
        })
        .collect();
        let keep = |rules: Vec<SchemaRule>| -> Vec<SchemaRule> {
            let mut kept: Vec<SchemaRule> =
                rules.into_iter().filter(|r| !describes_record(r)).collect();
            kept.sort_by(|a, b| a.name.cmp(&b.name));
            kept
        };
        let sample = sample as u64;
        GraphSchema {
            labels,
            relationship_types,
            constraints: keep(self.constraints),
            indexes: keep(self.indexes),
            sampled: self.names_cut || self.node_count > sample || self.relationship_count > sample,
            node_count: self.node_count,
            relationship_count: self.relationship_count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, entity: &str, on: &[&str]) -> SchemaRule {
        SchemaRule {
            name: name.to_owned(),
            rule_type: "RANGE".to_owned(),
            entity_type: entity.to_owned(),
            labels_or_types: on.iter().map(|s| s.to_string()).collect(),
            properties: vec!["key".to_owned()],
            state: None,
            owning_constraint: None,
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_record_is_never_described() {
        let raw = RawSchema {
            labels: names(&[
                "Person",
                "Execution",
                "GraphNode",
                "AuditEvent",
                "Code",
                "User",
            ]),
            relationship_types: names(&["KNOWS", "RAN", "OF", "BY", "SANDGRAPHX"]),
            node_keys: vec![("Person".into(), names(&["key", "name"]))],
            relationship_keys: vec![RelationshipSchema {
                rel_type: "KNOWS".into(),
                start_labels: names(&["GraphNode", "Person"]),
                end_labels: names(&["GraphNode", "Company"]),
                property_keys: names(&["since"]),
            }],
            constraints: vec![
                rule("graph_node_key", "NODE", &["GraphNode"]),
                rule("execution_id", "NODE", &["Execution"]),
            ],
            indexes: vec![
                rule("lookup", "NODE", &[]),
                rule("execution_ts", "NODE", &["Execution"]),
                rule("ran_ts", "RELATIONSHIP", &["RAN"]),
                rule("knows_since", "RELATIONSHIP", &["KNOWS"]),
            ],
            node_count: 3,
            relationship_count: 1,
            names_cut: false,
        };
        let schema = raw.into_schema(SAMPLE);
        let labels: Vec<&str> = schema.labels.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["GraphNode", "Person"]);
        assert_eq!(schema.labels[1].property_keys, names(&["key", "name"]));
        assert_eq!(schema.relationship_types.len(), 1);
        let knows = &schema.relationship_types[0];
        assert_eq!(
            (&knows.start_labels, &knows.end_labels, &knows.property_keys),
            (
                &names(&["Person"]),
                &names(&["Company"]),
                &names(&["since"])
            )
        );
        let constraints: Vec<&str> = schema.constraints.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(constraints, ["graph_node_key"]);
        let indexes: Vec<&str> = schema.indexes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(indexes, ["knows_since", "lookup"]);
        assert!(!schema.sampled);
    }

    #[test]
    fn a_graph_larger_than_the_sample_says_so() {
        let raw = RawSchema {
            node_count: 11,
            ..RawSchema::default()
        };
        assert!(raw.into_schema(10).sampled);
        let raw = RawSchema {
            names_cut: true,
            ..RawSchema::default()
        };
        assert!(raw.into_schema(10).sampled);
    }
}

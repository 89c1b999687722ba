//! What a caller's Cypher may touch. sandgraph keeps two graphs in one Neo4j database:
//! the *knowledge graph* that agents build with `graph_upsert` and read with
//! `graph_query`, and the *record* (executions, audit events, callers, code) that only
//! the history and audit tools serve, each behind its role. On Neo4j Community there is
//! one user database, so the boundary is drawn here, in layers (docs/security.md):
//!
//! 1. **Names are reserved**: the record's labels and relationship types
//!    ([`RECORD_LABELS`], [`RECORD_RELATIONSHIP_TYPES`]) can never be written by
//!    `graph_upsert`, and no relationship joins a knowledge-graph node to a record node.
//!    So every node that does not carry a record label is knowledge graph, and every
//!    expansion from a knowledge-graph node stays inside it.
//! 2. **The lexical check** ([`check_text`]) refuses what must never run (file and URL
//!    loaders, batched writes, `SHOW`/`TERMINATE` commands, `dbms.*`), before Neo4j sees
//!    the text.
//! 3. **The planner's own plan** ([`check_plan`]): Neo4j's `EXPLAIN` says which operators
//!    would run. Every node or relationship a query reads enters the plan through a leaf
//!    operator (a label or type scan, an index seek, a count-store read, a procedure);
//!    the guard refuses plans whose leaves read record labels, read *every* node or
//!    relationship, look entities up by internal id, call procedures off the allow-list,
//!    or run `SHOW` commands. Filters and expansions that name a record label are refused
//!    too. The query text is never rewritten, so allowed queries keep their plans.
//! 4. **Neo4j itself**: the query runs in a READ-mode transaction (Neo4j refuses writes),
//!    with a row cap and a time bound.
//! 5. **The rows** ([`GraphScope::check_returned`]): a node or relationship that comes
//!    back with a record label or type is refused even if every layer above missed it.

use std::collections::BTreeSet;

use unicode_normalization::UnicodeNormalization;

use crate::auth::Role;

/// Labels of the record's nodes. `graph_upsert` refuses them, and `graph_query` refuses
/// to read them for roles below admin. Future record labels must be added here (or use
/// the [`RESERVED_PREFIX`]).
pub const RECORD_LABELS: &[&str] = &[
    "Execution",
    "AuditEvent",
    "User",
    "Code",
    "Session",
    "Cell",
    "Workspace",
];

/// Relationship types of the record: `(:User)-[:RAN]->(:Execution)-[:OF]->(:Code)`,
/// `(:AuditEvent)-[:BY]->(:User)`.
pub const RECORD_RELATIONSHIP_TYPES: &[&str] = &["RAN", "OF", "BY"];

/// Labels and types starting with this (any case) are reserved for sandgraph's own use.
pub const RESERVED_PREFIX: &str = "sandgraph";

/// The label every node `graph_upsert` writes carries.
pub const KNOWLEDGE_GRAPH_LABEL: &str = "GraphNode";

/// Procedures admins may call through `graph_query`: schema descriptions only. Roles
/// below admin call none (the schema procedures would describe the record too).
/// (`db.schema.visualization` returns virtual nodes with negative ids, which the driver
/// cannot decode, so it is not offered.)
const ADMIN_PROCEDURES: &[&str] = &[
    "db.labels",
    "db.relationshipTypes",
    "db.propertyKeys",
    "db.schema.nodeTypeProperties",
    "db.schema.relTypeProperties",
];

/// Whether `name` (a label) belongs to the record.
pub fn is_record_label(name: &str) -> bool {
    RECORD_LABELS.contains(&name) || is_reserved_prefix(name)
}

/// Whether `name` (a relationship type) belongs to the record.
pub fn is_record_relationship_type(name: &str) -> bool {
    RECORD_RELATIONSHIP_TYPES.contains(&name) || is_reserved_prefix(name)
}

fn is_reserved_prefix(name: &str) -> bool {
    name.len() >= RESERVED_PREFIX.len()
        && name.as_bytes()[..RESERVED_PREFIX.len()].eq_ignore_ascii_case(RESERVED_PREFIX.as_bytes())
}

/// What one caller may read through the graph tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphScope {
    /// The knowledge graph only (agents and developers: developers read the record
    /// through the history tools, which are typed, indexed and audited).
    KnowledgeGraph,
    /// Knowledge graph and record (admins). DBMS state stays private even here.
    Everything,
}

/// Why a query was refused by the guard: the caller asked for something its scope does
/// not cover (403), or for something no caller gets (also 403: the answer is a policy,
/// not a malformed request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// One operator of Neo4j's plan: its name (without the `@neo4j` suffix), its `Details`
/// argument, and its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOperator {
    /// e.g. `NodeByLabelScan`.
    pub name: String,
    /// e.g. `n:GraphNode` (absent on some operators).
    pub details: String,
    /// Inputs of this operator.
    pub children: Vec<PlanOperator>,
}

impl PlanOperator {
    /// Every operator of the tree, depth first.
    fn walk(&self) -> Vec<&PlanOperator> {
        let mut out = vec![self];
        let mut i = 0;
        while i < out.len() {
            out.extend(out[i].children.iter());
            i += 1;
        }
        out
    }
}

/// Keywords and procedures refused before the query reaches Neo4j: they read files or
/// URLs, run other Cypher, or batch writes — none of which a read-only query needs.
const DENIED_TEXT: &[&str] = &[
    "LOAD CSV",
    "IN TRANSACTIONS",
    "APOC.LOAD",
    "APOC.IMPORT",
    "APOC.EXPORT",
    "APOC.PERIODIC",
    "APOC.CYPHER",
    "APOC.DO",
    "APOC.TRIGGER",
    "APOC.SYSTEMDB",
];

/// Clause keywords that read or change the database server's state (as whole words,
/// not property names such as `n.show`).
const DENIED_COMMANDS: &[&str] = &["SHOW", "TERMINATE"];

const DBMS_STATE: &str = "it exposes the database server's state (transactions, settings, \
statistics, users, databases, procedures), which graph_query never returns";

/// Layer 2: refuse what must never run, judged on the NFKC-normalised, upper-cased text
/// with runs of white space folded (so fullwidth letters or odd spacing cannot hide a
/// keyword).
pub fn check_text(cypher: &str) -> Result<(), TextRefusal> {
    let normalised: String = cypher.nfkc().collect::<String>().to_uppercase();
    if normalised != cypher.to_uppercase() {
        return Err(TextRefusal::Invalid(
            "graph_query refuses compatibility Unicode characters (e.g. fullwidth letters); write the query in plain text".into(),
        ));
    }
    let folded = normalised.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(word) = DENIED_TEXT.iter().find(|w| folded.contains(**w)) {
        return Err(TextRefusal::Invalid(format!(
            "graph_query is read-only: `{word}` is not allowed"
        )));
    }
    let words = clause_words(&folded);
    if let Some(word) = DENIED_COMMANDS.iter().find(|w| words.contains(**w)) {
        return Err(TextRefusal::Forbidden(format!(
            "graph_query refuses `{word}` commands: {DBMS_STATE}"
        )));
    }
    if folded.contains("DBMS.") {
        return Err(TextRefusal::Forbidden(format!(
            "graph_query refuses `dbms.*` procedures: {DBMS_STATE}"
        )));
    }
    Ok(())
}

/// Why [`check_text`] refused a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextRefusal {
    /// Not something graph_query runs (422).
    Invalid(String),
    /// DBMS state (403).
    Forbidden(String),
}

/// The bare words of a query outside string literals and backquoted names, skipping
/// words that follow a `.` (property or namespace access).
fn clause_words(text: &str) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    let mut chars = text.chars().peekable();
    let mut previous = ' ';
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                // Skip to the matching quote (backslash escapes in strings).
                let quote = c;
                while let Some(d) = chars.next() {
                    if d == '\\' && quote != '`' {
                        chars.next();
                    } else if d == quote {
                        break;
                    }
                }
                previous = quote;
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut word = String::from(c);
                while let Some(&d) = chars.peek() {
                    if d.is_alphanumeric() || d == '_' {
                        word.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if previous != '.' {
                    words.insert(word);
                }
                previous = 'a';
            }
            c if c.is_whitespace() => {}
            c => previous = c,
        }
    }
    words
}

impl GraphScope {
    /// The scope of a role.
    pub fn for_role(role: Role) -> Self {
        match role {
            Role::Admin => GraphScope::Everything,
            Role::Agent | Role::Developer => GraphScope::KnowledgeGraph,
        }
    }

    fn hides_record(self) -> bool {
        self == GraphScope::KnowledgeGraph
    }

    /// Layer 3: refuse a plan that would read outside this scope or expose DBMS state.
    pub fn check_plan(self, plan: &PlanOperator) -> Result<(), Refused> {
        for operator in plan.walk() {
            self.check_operator(operator)?;
        }
        Ok(())
    }

    fn check_operator(self, op: &PlanOperator) -> Result<(), Refused> {
        let name = op.name.as_str();
        if name.starts_with("Show")
            || name.starts_with("Terminate")
            || name.contains("AdministrationCommand")
            || name.contains("SystemProcedure")
        {
            return Err(Refused(format!(
                "graph_query refuses this query (plan operator {name}): {DBMS_STATE}"
            )));
        }
        if is_write_operator(name) {
            return Err(Refused(format!(
                "graph_query is read-only: the plan contains the write operator {name}"
            )));
        }
        if name.contains("ProcedureCall") {
            return self.check_procedure(&op.details);
        }
        if op.details.contains("NestedPlan") {
            return Err(Refused(
                "graph_query cannot inspect a nested plan expression in this query; write the subquery as CALL { ... } or a MATCH instead".into(),
            ));
        }
        if op.details.contains("$all(") || op.details.contains("$any(") {
            return Err(Refused(
                "graph_query refuses dynamic labels and types (`:$(...)`): the guard must see which labels a query reads; write the label out".into(),
            ));
        }
        let names = label_names(&op.details);
        if self.hides_record() {
            if let Some(label) = names.iter().find(|n| is_record_label(n)) {
                return Err(Refused(record_refusal(&format!(":{label}"))));
            }
            if let Some(kind) = names.iter().find(|n| is_record_relationship_type(n)) {
                return Err(Refused(record_refusal(&format!("[:{kind}]"))));
            }
            if reads_everything(name) {
                return Err(Refused(format!(
                    "graph_query: this query reads every node or relationship, or looks one up by internal id (plan operator {name}), which would reach sandgraph's record; start from a knowledge-graph label, e.g. MATCH (n:{KNOWLEDGE_GRAPH_LABEL}) or MATCH (n:YourLabel {{key: $key}})"
                )));
            }
            if name.contains("CountFromCountStore") && names.is_empty() {
                return Err(Refused(format!(
                    "graph_query: counting every node or relationship includes sandgraph's record; count a label instead, e.g. MATCH (n:{KNOWLEDGE_GRAPH_LABEL}) RETURN count(n)"
                )));
            }
        }
        if (name.contains("Scan") || name.contains("Seek") || name.contains("CountStore"))
            && !is_known_leaf(name)
        {
            return Err(Refused(format!(
                "graph_query: the planner chose {name}, an operator the guard does not know, so it refuses the query; please report it"
            )));
        }
        Ok(())
    }

    fn check_procedure(self, details: &str) -> Result<(), Refused> {
        let procedure = details.split('(').next().unwrap_or_default().trim();
        let allowed = match self {
            GraphScope::Everything => ADMIN_PROCEDURES.contains(&procedure),
            GraphScope::KnowledgeGraph => false,
        };
        if allowed {
            return Ok(());
        }
        Err(Refused(match self {
            GraphScope::KnowledgeGraph => format!(
                "graph_query runs no procedures for this role (`{procedure}` refused): procedures describe the whole database, sandgraph's record included; read the knowledge graph with MATCH"
            ),
            GraphScope::Everything => format!(
                "graph_query refuses procedure `{procedure}`: only {} are allowed; others may {DBMS_STATE}",
                ADMIN_PROCEDURES.join(", ")
            ),
        }))
    }

    /// Layer 5: refuse rows carrying record nodes or relationships.
    pub fn check_returned(
        self,
        labels: &BTreeSet<String>,
        types: &BTreeSet<String>,
    ) -> Result<(), Refused> {
        if !self.hides_record() {
            return Ok(());
        }
        if let Some(label) = labels.iter().find(|l| is_record_label(l)) {
            return Err(Refused(record_refusal(&format!(":{label}"))));
        }
        if let Some(kind) = types.iter().find(|t| is_record_relationship_type(t)) {
            return Err(Refused(record_refusal(&format!("[:{kind}]"))));
        }
        Ok(())
    }
}

fn record_refusal(what: &str) -> String {
    format!(
        "graph_query: {what} is part of sandgraph's record (executions, audit events, callers, code), not the knowledge graph; the record is read with execution_history, get_execution, code_stats (developer) and audit_log (admin). Reserved labels: {}; reserved relationship types: {}",
        RECORD_LABELS.join(", "),
        RECORD_RELATIONSHIP_TYPES.join(", ")
    )
}

/// Operators that read every node or relationship, or one by internal id.
fn reads_everything(name: &str) -> bool {
    name.contains("AllNodesScan")
        || name.contains("AllRelationshipsScan")
        || name.contains("ById")
        || name.contains("ByElementId")
}

fn is_write_operator(name: &str) -> bool {
    const WRITES: &[&str] = &[
        "Create",
        "Merge",
        "LockingMerge",
        "Delete",
        "DetachDelete",
        "Set",
        "Remove",
        "LoadCSV",
        "Transaction",
        "Foreach",
    ];
    WRITES.iter().any(|w| name.starts_with(w))
}

/// Store-reading leaves the guard knows and judges by the labels in their details (or,
/// for the all-reading ones, refuses below admin).
fn is_known_leaf(name: &str) -> bool {
    const LEAVES: &[&str] = &[
        "NodeByLabelScan",
        "UnionNodeByLabelsScan",
        "IntersectionNodeByLabelsScan",
        "SubtractionNodeByLabelsScan",
        "NodeIndexSeek",
        "NodeUniqueIndexSeek",
        "NodeIndexSeekByRange",
        "NodeUniqueIndexSeekByRange",
        "NodeIndexScan",
        "NodeIndexContainsScan",
        "NodeIndexEndsWithScan",
        "MultiNodeIndexSeek",
        "AssertingMultiNodeIndexSeek",
        "DirectedRelationshipTypeScan",
        "UndirectedRelationshipTypeScan",
        "DirectedUnionRelationshipTypesScan",
        "UndirectedUnionRelationshipTypesScan",
        "DirectedRelationshipIndexSeek",
        "UndirectedRelationshipIndexSeek",
        "DirectedRelationshipUniqueIndexSeek",
        "UndirectedRelationshipUniqueIndexSeek",
        "DirectedRelationshipIndexSeekByRange",
        "UndirectedRelationshipIndexSeekByRange",
        "DirectedRelationshipUniqueIndexSeekByRange",
        "UndirectedRelationshipUniqueIndexSeekByRange",
        "DirectedRelationshipIndexScan",
        "UndirectedRelationshipIndexScan",
        "DirectedRelationshipIndexContainsScan",
        "UndirectedRelationshipIndexContainsScan",
        "DirectedRelationshipIndexEndsWithScan",
        "UndirectedRelationshipIndexEndsWithScan",
        "NodeCountFromCountStore",
        "RelationshipCountFromCountStore",
        "AllNodesScan",
        "DirectedAllRelationshipsScan",
        "UndirectedAllRelationshipsScan",
        "NodeByIdSeek",
        "NodeByElementIdSeek",
        "DirectedRelationshipByIdSeek",
        "UndirectedRelationshipByIdSeek",
        "DirectedRelationshipByElementIdSeek",
        "UndirectedRelationshipByElementIdSeek",
    ];
    let base = name.strip_prefix("Partitioned").unwrap_or(name);
    LEAVES.contains(&base)
}

/// The label and relationship-type names in an operator's details: every name that
/// follows `:`, `|`, `&` or `!` (label expressions, `(:L)` patterns, `[:T]`), with
/// backquoted names unquoted and backquoted variables (which may contain `:`) skipped
/// whole. Property keys of map literals can be caught too; the guard errs on refusing.
fn label_names(details: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let chars: Vec<char> = details.chars().collect();
    let mut i = 0;
    let mut after_label_operator = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '`' {
            let mut name = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == '`' {
                    if chars.get(i + 1) == Some(&'`') {
                        name.push('`');
                        i += 2;
                        continue;
                    }
                    break;
                }
                name.push(chars[i]);
                i += 1;
            }
            i += 1;
            if after_label_operator {
                names.insert(name);
            }
            after_label_operator = false;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            if after_label_operator {
                names.insert(chars[start..i].iter().collect());
            }
            after_label_operator = false;
            continue;
        }
        if matches!(c, ':' | '|' | '&' | '!') {
            // `::` is a type annotation (`x :: STRING`), not a label.
            if c == ':' && chars.get(i + 1) == Some(&':') {
                i += 2;
                after_label_operator = false;
                continue;
            }
            after_label_operator = true;
        } else if !c.is_whitespace() && c != '(' {
            after_label_operator = false;
        }
        i += 1;
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(name: &str, details: &str) -> PlanOperator {
        PlanOperator {
            name: name.into(),
            details: details.into(),
            children: vec![],
        }
    }

    fn under_results(child: PlanOperator) -> PlanOperator {
        PlanOperator {
            name: "ProduceResults".into(),
            details: "n".into(),
            children: vec![child],
        }
    }

    #[test]
    fn label_names_come_from_label_positions_only() {
        let names = |d: &str| label_names(d).into_iter().collect::<Vec<_>>();
        assert_eq!(names("n:GraphNode"), ["GraphNode"]);
        assert_eq!(names("n:GraphNode|Execution"), ["Execution", "GraphNode"]);
        assert_eq!(names("n:Person&GraphNode"), ["GraphNode", "Person"]);
        assert_eq!(names("NOT n:Execution"), ["Execution"]);
        assert_eq!(names("count( (:Execution) ) AS `count(*)`"), ["Execution"]);
        assert_eq!(names("count( () ) AS `count(n)`"), Vec::<String>::new());
        assert_eq!(names("(anon_0)-[r:RAN]->(anon_1)"), ["RAN"]);
        assert_eq!(
            names("UNIQUE e:Execution(id) WHERE id = $autostring_0, cache[e.id]"),
            ["Execution"]
        );
        // A backquoted variable holding a colon is one token; the label after it counts.
        assert_eq!(names("`x:GraphNode`:Execution"), ["Execution"]);
        assert_eq!(names("n:`Odd label`"), ["Odd label"]);
        // Type annotations are not labels.
        assert_eq!(
            names("db.labels() :: (label :: STRING)"),
            Vec::<String>::new()
        );
        assert_eq!(names("n.key AS `n.key`"), Vec::<String>::new());
    }

    #[test]
    fn knowledge_graph_scope_refuses_record_labels_everything_scans_and_id_lookups() {
        let scope = GraphScope::KnowledgeGraph;
        for (op, details) in [
            ("NodeByLabelScan", "a:AuditEvent"),
            (
                "NodeUniqueIndexSeek",
                "UNIQUE e:Execution(id) WHERE id = $x",
            ),
            ("UnionNodeByLabelsScan", "n:GraphNode|User"),
            ("NodeCountFromCountStore", "count( (:Code) ) AS c"),
            ("NodeCountFromCountStore", "count( () ) AS c"),
            ("RelationshipCountFromCountStore", "count( ()-[]->() ) AS c"),
            ("DirectedRelationshipTypeScan", "(a)-[r:RAN]->(b)"),
            ("AllNodesScan", "n"),
            ("DirectedAllRelationshipsScan", "(a)-[r]->(b)"),
            ("NodeByIdSeek", "n WHERE id(n) = $x"),
            ("NodeByElementIdSeek", "n WHERE elementId(n) = $x"),
            ("NodeByLabelScan", "n:SandgraphFuture"),
            ("Filter", "n:$all($l)"),
            ("ProcedureCall", "db.labels() :: (label :: STRING)"),
            ("ShowTransactions", "defaultColumns, allTransactions"),
            ("NodeByFancyNewScan", "n:GraphNode"),
        ] {
            let plan = under_results(leaf(op, details));
            assert!(scope.check_plan(&plan).is_err(), "{op} {details}");
        }
        for (op, details) in [
            ("NodeByLabelScan", "n:GraphNode"),
            ("NodeByLabelScan", "p:Person"),
            ("IntersectionNodeByLabelsScan", "n:Person&GraphNode"),
            ("NodeCountFromCountStore", "count( (:Person) ) AS c"),
            (
                "RelationshipCountFromCountStore",
                "count( (:GraphNode)-[]->() ) AS c",
            ),
            ("DirectedRelationshipTypeScan", "(a)-[r:KNOWS]->(b)"),
            ("Expand(All)", "(a)-[anon_0]->(b)"),
            ("Unwind", "$autolist_0 AS x"),
        ] {
            let plan = under_results(leaf(op, details));
            assert_eq!(scope.check_plan(&plan), Ok(()), "{op} {details}");
        }
    }

    #[test]
    fn everything_scope_reads_the_record_but_never_dbms_state() {
        let scope = GraphScope::Everything;
        for (op, details) in [
            ("AllNodesScan", "n"),
            ("NodeByLabelScan", "a:AuditEvent"),
            ("ProcedureCall", "db.labels() :: (label :: STRING)"),
        ] {
            assert_eq!(scope.check_plan(&under_results(leaf(op, details))), Ok(()));
        }
        for (op, details) in [
            ("ShowSettings", "allSettings, defaultColumns"),
            ("ShowTransactions", "defaultColumns"),
            (
                "ProcedureCall",
                "db.stats.retrieve($autostring_0) :: (section :: STRING, data :: MAP)",
            ),
            ("AdministrationCommand", ""),
        ] {
            assert!(scope.check_plan(&under_results(leaf(op, details))).is_err());
        }
    }

    #[test]
    fn a_deep_record_leaf_is_found() {
        let plan = under_results(PlanOperator {
            name: "Union".into(),
            details: String::new(),
            children: vec![
                leaf("NodeByLabelScan", "g:GraphNode"),
                PlanOperator {
                    name: "Projection".into(),
                    details: "e.stdout AS x".into(),
                    children: vec![leaf("NodeByLabelScan", "e:Execution")],
                },
            ],
        });
        let err = GraphScope::KnowledgeGraph.check_plan(&plan).unwrap_err();
        assert!(
            err.0.contains(":Execution is part of sandgraph's record"),
            "{err}"
        );
    }

    #[test]
    fn text_check_refuses_loaders_commands_and_disguised_keywords() {
        for cypher in [
            "LOAD CSV FROM 'file:///etc/passwd' AS l RETURN l",
            "load   csv from 'x' as l return l",
            "CALL { CREATE (n) } IN TRANSACTIONS",
            "CALL apoc.load.json('http://x')",
            "ＣＲＥＡＴＥ (n)",
        ] {
            assert!(
                matches!(check_text(cypher), Err(TextRefusal::Invalid(_))),
                "{cypher}"
            );
        }
        for cypher in [
            "SHOW TRANSACTIONS",
            "show settings yield *",
            "CALL dbms.procedures()",
            "TERMINATE TRANSACTIONS 'neo4j-transaction-1'",
        ] {
            assert!(
                matches!(check_text(cypher), Err(TextRefusal::Forbidden(_))),
                "{cypher}"
            );
        }
        for cypher in [
            "MATCH (n:GraphNode {key: $k}) RETURN n",
            "MATCH (n:Film) RETURN n.show AS show_time",
            "MATCH (n:Film) WHERE n.title = 'SHOW ME' RETURN n",
        ] {
            assert_eq!(check_text(cypher), Ok(()), "{cypher}");
        }
    }

    #[test]
    fn reserved_names_include_the_prefix_in_any_case() {
        assert!(is_record_label("Execution"));
        assert!(is_record_label("SANDGRAPHThing"));
        assert!(!is_record_label("execution"), "labels are case-sensitive");
        assert!(!is_record_label("Person"));
        assert!(is_record_relationship_type("RAN"));
        assert!(!is_record_relationship_type("KNOWS"));
    }
}

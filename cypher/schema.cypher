// sandgraph's Neo4j schema, applied idempotently at start-up (one statement per `;`).
// Uniqueness on every record id and on the nodes records link to.
CREATE CONSTRAINT execution_id IF NOT EXISTS FOR (e:Execution) REQUIRE e.id IS UNIQUE;
CREATE CONSTRAINT audit_event_id IF NOT EXISTS FOR (a:AuditEvent) REQUIRE a.id IS UNIQUE;
CREATE CONSTRAINT code_hash IF NOT EXISTS FOR (c:Code) REQUIRE c.hash IS UNIQUE;
CREATE CONSTRAINT user_id IF NOT EXISTS FOR (u:User) REQUIRE u.id IS UNIQUE;
CREATE CONSTRAINT graph_node_key IF NOT EXISTS FOR (n:GraphNode) REQUIRE n.key IS UNIQUE;
// Indexes on exactly what the history and audit queries filter and sort by.
CREATE INDEX execution_ts IF NOT EXISTS FOR (e:Execution) ON (e.ts);
CREATE INDEX execution_caller_ts IF NOT EXISTS FOR (e:Execution) ON (e.caller_id, e.ts);
CREATE INDEX execution_code_hash_ts IF NOT EXISTS FOR (e:Execution) ON (e.code_hash, e.ts);
CREATE INDEX execution_tool_ts IF NOT EXISTS FOR (e:Execution) ON (e.tool, e.ts);
CREATE INDEX execution_language IF NOT EXISTS FOR (e:Execution) ON (e.language);
CREATE INDEX audit_ts IF NOT EXISTS FOR (a:AuditEvent) ON (a.ts);
CREATE INDEX audit_caller_ts IF NOT EXISTS FOR (a:AuditEvent) ON (a.caller_id, a.ts);
CREATE INDEX audit_decision_ts IF NOT EXISTS FOR (a:AuditEvent) ON (a.decision, a.ts);
CREATE INDEX audit_request_ts IF NOT EXISTS FOR (a:AuditEvent) ON (a.request_id, a.ts);

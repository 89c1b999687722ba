// Ship audit events: idempotent (MERGE on id), linked to their caller.
UNWIND $rows AS r
MERGE (a:AuditEvent {id: r.id})
SET a += r
MERGE (u:User {id: r.caller_id})
ON CREATE SET u.name = r.caller_name
MERGE (a)-[:BY]->(u)

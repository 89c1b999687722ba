// Ship execution records: idempotent (MERGE on id), so redelivery is harmless.
UNWIND $rows AS r
MERGE (e:Execution {id: r.id})
SET e += r
MERGE (u:User {id: r.caller_id})
SET u.name = r.caller_name, u.role = r.role
MERGE (u)-[:RAN]->(e)
WITH e, r
WHERE r.code_hash IS NOT NULL
MERGE (c:Code {hash: r.code_hash})
MERGE (e)-[:OF]->(c)

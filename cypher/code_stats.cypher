// Statistics for one code hash. `e.ts IS NOT NULL` lets the planner use the composite
// (code_hash, ts) index; without it Neo4j scans every :Execution.
MATCH (e:Execution)
WHERE e.code_hash = $hash AND e.ts IS NOT NULL
RETURN count(e) AS runs,
       count(DISTINCT e.caller_id) AS callers,
       sum(CASE WHEN e.outcome <> 'ok' THEN 1 ELSE 0 END) AS failures,
       percentileCont(e.duration_seconds, 0.5) AS p50,
       min(e.created_at) AS first_seen,
       max(e.created_at) AS last_seen

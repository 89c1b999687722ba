// Statistics for one code hash (uses execution_code_hash_ts).
MATCH (e:Execution)
WHERE e.code_hash = $hash
RETURN count(e) AS runs,
       count(DISTINCT e.caller_id) AS callers,
       sum(CASE WHEN e.outcome <> 'ok' THEN 1 ELSE 0 END) AS failures,
       percentileCont(e.duration_seconds, 0.5) AS p50,
       min(e.created_at) AS first_seen,
       max(e.created_at) AS last_seen

"""Every history query sandgraph sends to Neo4j is answered from an index, not a label
scan. The query texts below are exactly what src/store/neo4j.rs builds (see `page`) and
cypher/code_stats.cypher; if one changes, change it here too."""

import os
from pathlib import Path

import pytest
from neo4j import GraphDatabase

ROOT = Path(__file__).resolve().parents[2]


# The properties leading a `(property, ts)` index, per label, in page's order of preference
# (TS_INDEX_LEADS in src/store/neo4j.rs): a page filtered by one orders by it first.
TS_INDEX_LEADS = {"Execution": ["caller_id", "code_hash", "tool"],
                  "AuditEvent": ["request_id", "caller_id", "decision"]}


def page_query(label, conditions):
    where = " AND ".join(conditions + ["x.ts IS NOT NULL"])
    lead = next((p for p in TS_INDEX_LEADS[label]
                 if any(c.startswith(f"x.{p} = ") for c in conditions)), None)
    order = (f"x.{lead} DESC, " if lead else "") + "x.ts DESC, x.id DESC"
    return (f"MATCH (x:{label}) WHERE {where} WITH x ORDER BY {order} "
            f"LIMIT 50 RETURN x {{.*}} AS x")


QUERIES = {
    "history by caller": (page_query("Execution", ["x.caller_id = $caller_id"]), {"caller_id": "u"}),
    "history by code hash": (page_query("Execution", ["x.code_hash = $code_hash"]), {"code_hash": "h"}),
    "history by tool": (page_query("Execution", ["x.tool = $tool"]), {"tool": "execute_code"}),
    "history, no filter": (page_query("Execution", []), {}),
    "history by caller and time": (
        page_query("Execution", ["x.caller_id = $caller_id", "x.ts >= $since"]),
        {"caller_id": "u", "since": 0}),
    "audit by caller": (page_query("AuditEvent", ["x.caller_id = $caller_id"]), {"caller_id": "u"}),
    "audit by event type": (page_query("AuditEvent", ["x.decision = $decision"]), {"decision": "allowed"}),
    "code stats": ((ROOT / "cypher" / "code_stats.cypher").read_text(), {"hash": "h"}),
    "execution by id": ("MATCH (x:Execution {id: $id}) RETURN x {.*} AS x", {"id": "i"}),
}


def operators(plan):
    yield plan.operator_type if hasattr(plan, "operator_type") else plan["operatorType"]
    children = plan.children if hasattr(plan, "children") else plan.get("children", [])
    for child in children:
        yield from operators(child)


@pytest.fixture(scope="module")
def driver():
    uri = os.environ.get("NEO4J_URI")
    if not uri:
        pytest.fail("NEO4J_URI is not set: these tests need the real Neo4j `make test` starts")
    with GraphDatabase.driver(uri, auth=None) as driver:
        # The schema is applied by any sandgraph server started against this Neo4j; apply
        # it here too so this test does not depend on test order.
        statements = (ROOT / "cypher" / "schema.cypher").read_text()
        statements = "\n".join(l for l in statements.splitlines() if not l.strip().startswith("//"))
        with driver.session() as session:
            for statement in filter(None, (s.strip() for s in statements.split(";"))):
                session.run(statement).consume()
            session.run("CALL db.awaitIndexes(60)").consume()
        yield driver


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_history_query_uses_an_index(driver, name):
    cypher, params = QUERIES[name]
    with driver.session() as session:
        summary = session.run("EXPLAIN " + cypher, params).consume()
    ops = list(operators(summary.plan))
    assert not any(op.startswith("NodeByLabelScan") or op.startswith("AllNodesScan") for op in ops), (name, ops)
    assert any("Index" in op for op in ops), (name, ops)

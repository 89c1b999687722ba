"""Every tool over MCP (stdio and streamable HTTP) goes through the one pipeline: an
allowed call and a refused call each leave exactly one audit event with the right decision
and outcome; `tools/list` shows a caller only the tools its role may call. The tool list
comes from the server, so a new tool is covered (and needs sample arguments below)."""

import anyio
import pytest

from test_mcp_access import create_token
from test_mcp_clients import http_session, stdio_session

pytestmark = pytest.mark.anyio

WORKSPACE_TOOLS = {"create_workspace", "write_file", "list_files", "read_file", "delete_file",
                   "delete_workspace"}
AGENT_TOOLS = {"execute_code", "lint_code", "run_tests", "generate_code", "list_packages",
               "graph_schema", "graph_query"} | WORKSPACE_TOOLS
DEVELOPER_TOOLS = AGENT_TOOLS | {"graph_upsert", "execution_history", "get_execution",
                                 "code_stats"}
ADMIN_TOOLS = DEVELOPER_TOOLS | {"audit_log", "create_token", "list_tokens", "revoke_token"}


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def tool_names(session):
    return {tool.name for tool in (await session.list_tools()).tools}


async def test_tools_list_shows_each_role_only_its_tools(http_server, data_dir):
    for role, expected in (("agent", AGENT_TOOLS), ("developer", DEVELOPER_TOOLS),
                           ("admin", ADMIN_TOOLS)):
        with anyio.fail_after(60):
            async with http_session(http_server, token=create_token(data_dir, role)) as session:
                assert await tool_names(session) == expected, role


async def test_tools_carry_titles_and_truthful_hints(http_server):
    with anyio.fail_after(60):
        async with http_session(http_server) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    for tool in tools.values():
        assert tool.title, tool.name
        assert tool.annotations.read_only_hint is not None, tool.name
    # With a workspace, a run writes (and may delete) files there.
    assert tools["execute_code"].annotations.read_only_hint is False
    assert tools["lint_code"].annotations.read_only_hint is True
    assert tools["read_file"].annotations.read_only_hint is True
    assert tools["delete_workspace"].annotations.destructive_hint is True
    assert tools["graph_upsert"].annotations.read_only_hint is False
    assert tools["revoke_token"].annotations.destructive_hint is True
    assert tools["create_token"].annotations.idempotent_hint is False
    assert all(not t.annotations.open_world_hint for t in tools.values())


def sample_arguments(name, known):
    samples = {
        "execute_code": {"code": "print(1)"},
        "lint_code": {"code": "x = 1\n"},
        "run_tests": {"code": "def test_a():\n    assert True\n"},
        "generate_code": {"template": "{{ a }}", "context": {"a": 1}},
        "graph_schema": {},
        "list_packages": {},
        "graph_query": {"cypher": "RETURN 1 AS one"},
        "graph_upsert": {"nodes": [{"key": "k1"}]},
        "execution_history": {"limit": 5},
        "get_execution": {"id": known.get("execution_id")},
        "code_stats": {"code_hash": known.get("code_hash")},
        "audit_log": {"limit": 5},
        "create_token": {"role": "agent", "name": "made-over-mcp"},
        "list_tokens": {},
        "revoke_token": {"id": known.get("token_id")},
        "create_workspace": {},
        "write_file": {"workspace_id": known.get("workspace_id"), "path": "a.txt",
                       "content": "x"},
        "list_files": {"workspace_id": known.get("workspace_id")},
        "read_file": {"workspace_id": known.get("workspace_id"), "path": "a.txt"},
        "delete_file": {"workspace_id": known.get("workspace_id"), "path": "a.txt"},
        "delete_workspace": {"workspace_id": known.get("workspace_id")},
    }
    assert name in samples, f"no sample arguments for {name}: add them to {__file__}"
    return samples[name]


# On the embedded store the graph tools answer "needs Neo4j": refused, not ok.
EMBEDDED_REFUSES = {"graph_schema", "graph_query", "graph_upsert"}


async def audit_events(session, endpoint):
    result = await session.call_tool("audit_log", {"endpoint": endpoint, "limit": 50})
    assert not result.is_error, result.content
    return result.structured_content["items"]  # newest first


async def check_every_tool(session):
    names = [tool.name for tool in (await session.list_tools()).tools]
    assert set(names) == ADMIN_TOOLS
    known = {}
    failures = []
    for name in names:
        before = len(await audit_events(session, name))
        args = sample_arguments(name, known)
        ok = await session.call_tool(name, args)
        if name == "execute_code":
            known["execution_id"] = ok.structured_content["id"]
            known["code_hash"] = ok.structured_content["code_hash"]
        if name == "create_token":
            known["token_id"] = ok.structured_content["info"]["id"]
        if name == "create_workspace":
            known["workspace_id"] = ok.structured_content["workspace_id"]
        bad = await session.call_tool(name, {**args, "no_such_argument": 1})
        assert bad.is_error, name
        events = await audit_events(session, name)
        # audit_log's own queries are audit_log calls too: the one before, counted here.
        expected_new = 3 if name == "audit_log" else 2
        if len(events) - before != expected_new:
            failures.append(f"{name}: {len(events) - before} new events, expected {expected_new}")
            continue
        refused, allowed = events[0], events[1]
        want_ok = "refused" if name in EMBEDDED_REFUSES else "ok"
        if ok.is_error != (want_ok == "refused"):
            failures.append(f"{name}: allowed call answered {ok.content}")
        if (allowed["decision"], allowed["outcome"]) not in (("allowed", want_ok),
                                                             ("cache_hit", want_ok)):
            failures.append(f"{name}: allowed call audited as {allowed}")
        if (refused["decision"], refused["outcome"]) != ("allowed", "refused"):
            failures.append(f"{name}: refused call audited as {refused}")
    assert not failures, "\n".join(failures)


async def test_every_tool_is_audited_once_per_call_over_streamable_http(http_server):
    with anyio.fail_after(120):
        async with http_session(http_server) as session:
            await check_every_tool(session)


async def test_every_tool_is_audited_once_per_call_over_stdio(binary, data_dir):
    with anyio.fail_after(120):
        async with stdio_session(binary, data_dir) as session:
            await check_every_tool(session)

"""Tokens and rate limits apply to MCP over streamable HTTP exactly as to REST."""

import json
import subprocess

import anyio
import httpx2
import pytest

from conftest import BINARY, server_env
from test_mcp_clients import http_session

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def create_token(data_dir, role):
    out = subprocess.run(
        [str(BINARY), "token", "create", "--role", role, "--name", f"mcp-{role}"],
        env=server_env(data_dir), capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


def initialize_status(base_url, token):
    headers = {"Accept": "application/json, text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}}
    response = httpx2.post(f"{base_url}/mcp", json=body, headers=headers)
    return response.status_code, response.headers, response.text


async def test_mcp_without_a_valid_token_is_refused_with_401(http_server):
    status, headers, body = initialize_status(http_server, None)
    assert status == 401
    assert headers["www-authenticate"] == 'Bearer realm="sandgraph"'
    assert json.loads(body)["detail"].startswith("missing bearer token")
    status, headers, body = initialize_status(http_server, "sg_wrong")
    assert status == 401
    assert json.loads(body)["detail"] == "invalid or revoked token"
    # The SDK client surfaces the refusal instead of hanging.
    with pytest.raises(Exception):
        with anyio.fail_after(30):
            async with http_session(http_server, token="sg_wrong") as session:
                await session.list_tools()


async def test_every_role_may_use_the_tools_over_mcp(http_server, data_dir):
    for role in ("agent", "developer", "admin"):
        token = create_token(data_dir, role)
        with anyio.fail_after(60):
            async with http_session(http_server, token=token) as session:
                result = await session.call_tool("execute_code", {"code": f"print('{role}')"})
                assert not result.is_error
                assert result.structured_content["stdout"] == f"{role}\n"
                prompts = await session.list_prompts()
                assert prompts.prompts


@pytest.fixture
def limited_server(binary, data_dir):
    import os
    import threading
    env = server_env(data_dir)
    env["SANDGRAPH_RATE_LIMIT_GENERATE_CODE"] = "2/minute"
    process = subprocess.Popen([str(binary), "serve", "--bind", "127.0.0.1:0"], env=env,
                               stdout=subprocess.PIPE, text=True)
    try:
        base = None
        for line in process.stdout:
            if line.startswith("listening on "):
                base = line.split("listening on ", 1)[1].strip()
                break
        threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_rate_limit_over_mcp_is_a_tool_error_naming_the_wait(limited_server, data_dir):
    first, second = create_token(data_dir, "agent"), create_token(data_dir, "agent")
    args = {"template": "{{ 1 + 1 }}"}
    with anyio.fail_after(60):
        async with http_session(limited_server, token=first) as session:
            assert not (await session.call_tool("generate_code", args)).is_error
            assert not (await session.call_tool("generate_code", args)).is_error
            limited = await session.call_tool("generate_code", args)
            assert limited.is_error
            body = json.loads(limited.content[0].text)
            assert body["error"] == "rate_limited"
            assert body["detail"].startswith("Rate limit exceeded; retry in ")
            assert 1 <= body["retry_after_seconds"] <= 60
        async with http_session(limited_server, token=second) as session:
            assert not (await session.call_tool("generate_code", args)).is_error


async def test_role_table_over_mcp(http_server, data_dir):
    """The MCP tools that need more than `agent` refuse lower roles with a tool error
    naming the role needed, exactly as REST answers 403."""
    least = {"execution_history": "developer", "code_stats": "developer",
             "audit_log": "admin", "execute_code": "agent", "lint_code": "agent"}
    args = {"execution_history": {}, "code_stats": {"code_hash": "0" * 64}, "audit_log": {},
            "execute_code": {"code": "print(1)"}, "lint_code": {"code": "x = 1\n"}}
    rank = {"agent": 0, "developer": 1, "admin": 2}
    for role in ("agent", "developer", "admin"):
        token = create_token(data_dir, role)
        with anyio.fail_after(60):
            async with http_session(http_server, token=token) as session:
                for tool, needed in least.items():
                    result = await session.call_tool(tool, args[tool])
                    if rank[role] >= rank[needed]:
                        assert not result.is_error, (role, tool, result.content)
                    else:
                        assert result.is_error, (role, tool)
                        body = json.loads(result.content[0].text)
                        assert body["error"] == "forbidden"
                        assert body["detail"].endswith(f"it needs {needed} or higher"), body

"""The Python `mcp` SDK, as an agent would use it, against `sandgraph mcp` (stdio) and
`sandgraph serve` (streamable HTTP at /mcp)."""

import json
from contextlib import asynccontextmanager

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

from conftest import ADMIN_TOKEN, server_env

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@asynccontextmanager
async def stdio_session(binary, data_dir):
    params = StdioServerParameters(command=str(binary), args=["mcp"], env=server_env(data_dir))
    async with stdio_client(params) as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            init = await session.initialize()
            assert init.server_info.name == "sandgraph"
            # The one protocol version sandgraph advertises (and is tested with).
            assert init.protocol_version == "2025-11-25", init.protocol_version
            yield session


@asynccontextmanager
async def http_session(base_url, token=ADMIN_TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else None
    http_client = create_mcp_http_client(headers=headers)
    async with http_client, streamable_http_client(
        f"{base_url}/mcp", http_client=http_client
    ) as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            yield session


async def check_execute_code(session: ClientSession):
    tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert "execute_code" in tools
    tool = tools["execute_code"]
    assert tool.input_schema["required"] == ["code"]
    assert {"code", "language", "timeout_seconds"} <= set(tool.input_schema["properties"])
    output_props = tool.output_schema["properties"]
    for field in ("id", "return_code", "stdout", "stderr", "duration_seconds", "exit_reason",
                  "code_hash", "truncated", "limits"):
        assert field in output_props, field

    result = await session.call_tool("execute_code", {"code": "print('hi from mcp')"})
    assert not result.is_error
    structured = result.structured_content
    assert structured["stdout"] == "hi from mcp\n"
    assert structured["return_code"] == 0
    assert structured["exit_reason"] == "ok"
    assert len(structured["code_hash"]) == 64
    # The text content is what an LLM reads: how the run ended, then its output.
    text = result.content[0].text
    assert text.startswith("exit_reason: ok (return code 0, "), text
    assert text.endswith("--- stdout ---\nhi from mcp\n"), text
    # Standard JSON Schema only: no schemars integer formats that client SDKs warn about.
    for listed in tools.values():
        for schema in (listed.input_schema, listed.output_schema or {}):
            assert '"format": "uint' not in json.dumps(schema), listed.name
            assert '"format": "int' not in json.dumps(schema), listed.name
            assert '"format": "double"' not in json.dumps(schema), listed.name

    js = await session.call_tool(
        "execute_code", {"code": "console.log(6 * 7)", "language": "javascript"}
    )
    assert js.structured_content["stdout"] == "42\n"

    loop = await session.call_tool(
        "execute_code", {"code": "while True: pass", "timeout_seconds": 0.5}
    )
    assert not loop.is_error
    assert loop.structured_content["exit_reason"] == "timeout"

    bad = await session.call_tool("execute_code", {"code": "x", "language": "cobol"})
    assert bad.is_error
    body = json.loads(bad.content[0].text)
    assert body["detail"] == 'unsupported language "cobol"; supported: python, javascript'
    assert body["field"] == "language"

    # Still serving after the refusal.
    again = await session.call_tool("execute_code", {"code": "print(1)"})
    assert again.structured_content["stdout"] == "1\n"


async def test_stdio_client_lists_tools_and_executes_code(binary, data_dir):
    with anyio.fail_after(120):
        async with stdio_session(binary, data_dir) as session:
            await check_execute_code(session)


async def test_streamable_http_client_lists_tools_and_executes_code(http_server):
    with anyio.fail_after(120):
        async with http_session(http_server) as session:
            await check_execute_code(session)


async def test_every_tool_prompt_and_resource_over_streamable_http(http_server):
    with anyio.fail_after(120):
        async with http_session(http_server) as session:
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert {"execute_code", "lint_code", "run_tests", "generate_code"} <= names

            lint = await session.call_tool(
                "lint_code", {"code": "import os\n\ndef f():\n    return y\n"}
            )
            assert not lint.is_error
            codes = {d["code"]: d["line"] for d in lint.structured_content["diagnostics"]}
            assert codes["F401"] == 1 and codes["F821"] == 4
            assert lint.structured_content["imports"] == ["os"]

            tests = await session.call_tool(
                "run_tests",
                {"code": "def test_ok():\n    assert 1 + 1 == 2\n\ndef test_bad():\n    assert 1 == 2\n"},
            )
            assert not tests.is_error
            assert tests.structured_content["summary"]["passed"] == 1
            assert tests.structured_content["summary"]["failed"] == 1

            generated = await session.call_tool(
                "generate_code", {"template": "print({{ n }})", "context": {"n": 3}}
            )
            assert generated.structured_content["output"] == "print(3)"
            missing = await session.call_tool("generate_code", {"template": "{{ nope }}"})
            assert missing.is_error
            assert json.loads(missing.content[0].text)["detail"] == (
                "template variables missing from context: nope"
            )

            prompts = {p.name for p in (await session.list_prompts()).prompts}
            assert {"execute-code", "lint-code", "run-tests", "sandbox-limits"} <= prompts
            prompt = await session.get_prompt("sandbox-limits")
            assert "wall-clock time" in prompt.messages[0].content.text

            resources = {str(r.uri) for r in (await session.list_resources()).resources}
            assert "sandgraph://prompts/history-and-audit" in resources
            read = await session.read_resource("sandgraph://prompts/run-tests")
            assert read.contents[0].text.startswith("# run_tests")

            # What code can import: the tool (structured and as text) and the resource.
            listed = await session.call_tool("list_packages", {"language": "python"})
            names = {p["name"] for p in listed.structured_content["python"]["packages"]}
            assert {"sympy", "networkx", "PyYAML", "hypothesis"} <= names
            assert "javascript" not in listed.structured_content
            assert "- sympy 1.14.0 (import isympy, sympy)" in listed.content[0].text
            assert "sandgraph://packages" in resources
            packages = await session.read_resource("sandgraph://packages")
            assert packages.contents[0].mime_type == "application/json"
            body = json.loads(packages.contents[0].text)
            assert {p["name"] for p in body["python"]["packages"]} == names
            assert body["javascript"]["runtime"] == "QuickJS-NG"

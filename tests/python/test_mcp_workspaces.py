"""Workspaces through the Python `mcp` SDK, as an agent uses them: write data.csv, run the
chart example of the `workspaces-and-charts` prompt on it (it also writes out.json), then
read both back as resources. The SVG arrives as PNG image content, the result's file list
carries resource links whose contents match its sha256s, and nobody else can read them."""

import base64
import hashlib
import struct

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from test_mcp_access import create_token
from test_mcp_clients import http_session, stdio_session

pytestmark = pytest.mark.anyio

CSV = "month,sales\njan,10\nfeb,30\nmar,20\napr,25\n"
OUT_JSON = "\nimport json\njson.dump({'months': len(values), 'total': sum(values)}, open('out.json', 'w'))\n"
TEMPLATE = "sandgraph://workspaces/{workspace_id}/files/{+path}"


@pytest.fixture
def anyio_backend():
    return "asyncio"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def png_size(data: bytes):
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), data[:16]
    return struct.unpack(">II", data[16:24])


def chart_example(prompt_text: str, nth: int = 0) -> str:
    start = -1
    for _ in range(nth + 1):
        start = prompt_text.index("```python\n", start + 1)
    start += len("```python\n")
    return prompt_text[start:prompt_text.index("```", start)]


def resource_bytes(contents) -> bytes:
    if getattr(contents, "text", None) is not None:
        return contents.text.encode()
    return base64.b64decode(contents.blob)


async def three_call_flow(session):
    created = await session.call_tool("create_workspace", {})
    assert not created.is_error, created.content
    workspace = created.structured_content["workspace_id"]
    assert created.structured_content["quota_bytes"] > 0
    assert created.structured_content["expires_at"]

    written = await session.call_tool(
        "write_file", {"workspace_id": workspace, "path": "data.csv", "content": CSV})
    assert not written.is_error, written.content
    assert written.structured_content["sha256"] == sha256(CSV.encode())

    prompt = await session.get_prompt("workspaces-and-charts")
    code = chart_example(prompt.messages[0].content.text) + OUT_JSON
    result = await session.call_tool("execute_code", {"workspace_id": workspace, "code": code})
    assert not result.is_error, result.content
    structured = result.structured_content
    assert structured["exit_reason"] == "ok", structured["stderr"]
    assert structured["stdout"] == "total 85.0\n"

    files = {f["path"]: f for f in structured["files"]}
    assert set(files) == {"chart.svg", "out.json"}, files
    assert files["chart.svg"]["mime"] == "image/svg+xml"

    # The chart comes back as a picture a chat client shows: PNG, rendered at its size.
    images = [c for c in result.content if c.type == "image"]
    assert len(images) == 1, result.content
    assert images[0].mime_type == "image/png"
    assert png_size(base64.b64decode(images[0].data)) == (480, 300)

    # Every file is a resource link whose content matches the listed sha256 (beside
    # them, a developer or admin also gets a link to the call's own record).
    links = {c.uri: c for c in result.content
             if c.type == "resource_link" and c.uri.startswith("sandgraph://workspaces/")}
    assert set(links) == {f["uri"] for f in files.values()}
    for file in files.values():
        assert file["uri"] == f"sandgraph://workspaces/{workspace}/files/{file['path']}"
        assert links[file["uri"]].mime_type == file["mime"]
        read = await session.read_resource(file["uri"])
        contents = read.contents[0]
        assert contents.mime_type == file["mime"]
        assert sha256(resource_bytes(contents)) == file["sha256"], file["path"]
    assert files["out.json"]["text"] == '{"months": 4, "total": 85.0}'

    # The text an LLM reads names the files.
    text = result.content[0].text
    assert f"workspace: {workspace}" in text and "created chart.svg" in text, text

    templates = await session.list_resource_templates()
    assert TEMPLATE in {t.uri_template for t in templates.resource_templates}
    return workspace, files


async def test_three_call_flow_over_streamable_http(http_server, data_dir):
    with anyio.fail_after(120):
        async with http_session(http_server) as session:
            workspace, files = await three_call_flow(session)
            # A picture the guest writes as PNG bytes comes back as they are.
            png = await session.call_tool("execute_code", {"workspace_id": workspace, "code": (
                "import struct, zlib\n"
                "def chunk(kind, data):\n"
                "    body = kind + data\n"
                "    return struct.pack('>I', len(data)) + body + struct.pack('>I', zlib.crc32(body))\n"
                "raw = b''.join(b'\\x00' + b'\\xff\\x00\\x00' * 3 for _ in range(2))\n"
                "open('dot.png', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 3, 2, 8, 2, 0, 0, 0))"
                " + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))\n")})
            images = [c for c in png.content if c.type == "image"]
            assert len(images) == 1, png.content
            data = base64.b64decode(images[0].data)
            assert png_size(data) == (3, 2)
            assert sha256(data) == png.structured_content["files"][0]["sha256"]
            # The prompt's second example draws with pygal (a package in the guest); its
            # SVG (CSS-styled) comes back rendered at its size.
            prompt = await session.get_prompt("workspaces-and-charts")
            code = chart_example(prompt.messages[0].content.text, nth=1)
            assert "import csv, pygal" in code, code
            drawn = await session.call_tool("execute_code", {"workspace_id": workspace, "code": code})
            assert drawn.structured_content["exit_reason"] == "ok", drawn.structured_content["stderr"]
            assert [f["path"] for f in drawn.structured_content["files"]] == ["sales.svg"]
            images = [c for c in drawn.content if c.type == "image"]
            assert len(images) == 1, drawn.content
            assert png_size(base64.b64decode(images[0].data)) == (640, 400)

        # Another caller: no such workspace, on every way in.
        other = create_token(data_dir, "agent")
        async with http_session(http_server, token=other) as stranger:
            with pytest.raises(MCPError):
                await stranger.read_resource(files["out.json"]["uri"])
            for name, args in (("read_file", {"path": "data.csv"}), ("list_files", {}),
                               ("execute_code", {"code": "print(open('data.csv').read())"})):
                refused = await stranger.call_tool(name, {"workspace_id": workspace, **args})
                assert refused.is_error, name
                assert '"error":"not_found"' in refused.content[0].text, refused.content

        async with http_session(http_server) as session:
            # Paths that leave the workspace are refused, in a resource URI too.
            for bad in ("../x", "/etc/passwd", "a\x00b"):
                refused = await session.call_tool(
                    "write_file", {"workspace_id": workspace, "path": bad, "content": "x"})
                assert refused.is_error and '"field":"path"' in refused.content[0].text, bad
            with pytest.raises(MCPError):
                await session.read_resource(
                    f"sandgraph://workspaces/{workspace}/files/..%2Fsandgraph.db")
            deleted = await session.call_tool("delete_workspace", {"workspace_id": workspace})
            assert not deleted.is_error, deleted.content
            with pytest.raises(MCPError):
                await session.read_resource(files["out.json"]["uri"])


async def test_three_call_flow_over_stdio(binary, data_dir):
    with anyio.fail_after(120):
        async with stdio_session(binary, data_dir) as session:
            await three_call_flow(session)

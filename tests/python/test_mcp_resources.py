"""The record as MCP resources: `sandgraph://executions/{id}` and `sandgraph://code/{hash}`
templates with completions, a `resource_link` to its own record in every tool result, and
all of it behind the history role (agents never see the record), audited."""

import json

import anyio
import httpx2
import pytest
from mcp.types import ResourceLink, ResourceTemplateReference

from conftest import ADMIN_TOKEN
from test_mcp_access import create_token
from test_mcp_clients import http_session

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def links(result):
    return [block for block in result.content if isinstance(block, ResourceLink)]


def audit(base_url, endpoint):
    response = httpx2.get(
        f"{base_url}/audit_log", params={"endpoint": endpoint, "limit": 200},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_a_developer_reads_a_run_and_its_code_through_the_links(http_server, data_dir):
    token = create_token(data_dir, "developer")
    code = "print('resource test')\n"
    with anyio.fail_after(60):
        async with http_session(http_server, token=token) as session:
            templates = (await session.list_resource_templates()).resource_templates
            assert {t.uri_template for t in templates} >= {
                "sandgraph://executions/{id}", "sandgraph://code/{hash}"}

            result = await session.call_tool("execute_code", {"code": code})
            assert not result.is_error
            run_id = result.structured_content["id"]
            code_hash = result.structured_content["code_hash"]
            [link] = links(result)
            assert str(link.uri) == f"sandgraph://executions/{run_id}"

            record = await session.read_resource(link.uri)
            detail = json.loads(record.contents[0].text)
            assert detail["id"] == run_id
            assert detail["code"]["source"] == code
            assert detail["source_kept"] is True

            source = await session.read_resource(f"sandgraph://code/{code_hash}")
            assert source.contents[0].text == code
            assert source.contents[0].mime_type == "text/x-python"

            tests = "from solution import f\n\ndef test_f():\n    assert f() == 1\n"
            tested = await session.call_tool(
                "run_tests", {"code": "def f():\n    return 1\n", "tests": tests})
            both = await session.read_resource(
                f"sandgraph://code/{tested.structured_content['code_hash']}")
            assert [c.text for c in both.contents] == ["def f():\n    return 1\n", tests]

            ids = await session.complete(
                ResourceTemplateReference(type="ref/resource", uri="sandgraph://executions/{id}"),
                {"name": "id", "value": run_id[:8]})
            assert run_id in ids.completion.values
            newest = await session.complete(
                ResourceTemplateReference(type="ref/resource", uri="sandgraph://executions/{id}"),
                {"name": "id", "value": ""})
            assert newest.completion.values, "an empty prefix offers the newest ids"
            hashes = await session.complete(
                ResourceTemplateReference(type="ref/resource", uri="sandgraph://code/{hash}"),
                {"name": "hash", "value": code_hash[:6]})
            assert code_hash in hashes.completion.values

            with pytest.raises(Exception, match="no resource"):
                await session.read_resource("sandgraph://executions/no-such-run")
    reads = [e for e in audit(http_server, "read_resource") if e["role"] == "developer"]
    assert {e["outcome"] for e in reads} == {"ok", "refused"}
    assert len(reads) == 4, reads
    assert len(audit(http_server, "complete")) == 3


async def test_an_agent_gets_no_links_no_templates_and_no_record(http_server, data_dir):
    token = create_token(data_dir, "agent")
    with anyio.fail_after(60):
        async with http_session(http_server, token=token) as session:
            result = await session.call_tool("execute_code", {"code": "print(1)"})
            assert not result.is_error
            assert links(result) == [], "an agent's result links to no record it cannot read"
            templates = (await session.list_resource_templates()).resource_templates
            # Only its own workspaces' files: none of the record's templates.
            assert [t.uri_template for t in templates] == [
                "sandgraph://workspaces/{workspace_id}/files/{+path}"]
            run_id = result.structured_content["id"]
            with pytest.raises(Exception, match="may not call read_resource"):
                await session.read_resource(f"sandgraph://executions/{run_id}")
            with pytest.raises(Exception, match="may not call read_resource"):
                await session.read_resource(
                    f"sandgraph://code/{result.structured_content['code_hash']}")
            with pytest.raises(Exception, match="may not call complete"):
                await session.complete(
                    ResourceTemplateReference(type="ref/resource", uri="sandgraph://executions/{id}"),
                    {"name": "id", "value": ""})
            # The prompts stay readable.
            prompts = (await session.list_resources()).resources
            assert prompts
            await session.read_resource(prompts[0].uri)
    refused = [e for e in audit(http_server, "read_resource") if e["decision"] == "forbidden"]
    assert len(refused) == 2

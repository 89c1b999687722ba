"""The official TypeScript MCP SDK (tests/typescript, installed by `make test` with npm)
connects over streamable HTTP, lists and calls tools, and prints no warning, in
particular none of ajv's `unknown format "uint32"` schema warnings."""

import json
import subprocess

from conftest import ADMIN_TOKEN, ROOT

CLIENT = ROOT / "tests" / "typescript" / "client.mjs"


def test_typescript_sdk_connects_and_calls_tools_without_a_warning(http_server):
    if not (CLIENT.parent / "node_modules" / "@modelcontextprotocol" / "sdk").exists():
        raise AssertionError("tests/typescript/node_modules missing: run `make test` (npm ci)")
    out = subprocess.run(["node", str(CLIENT), http_server, ADMIN_TOKEN],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["warnings"] == [], summary["warnings"]
    assert out.stderr == "", out.stderr
    assert "execute_code" in summary["tools"] and "audit_log" in summary["tools"]
    assert summary["stdout"] == "hi from typescript\n"
    assert summary["text"].startswith("exit_reason: ok"), summary
    assert summary["lintError"] is False
    assert summary["historyItems"] == 1
    # The one protocol version sandgraph advertises, which both SDKs are tested with.
    assert summary["protocolVersion"] == "2025-11-25", summary

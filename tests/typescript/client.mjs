// The official TypeScript MCP SDK as a user would run it against sandgraph's streamable
// HTTP endpoint: connect, list tools, call a few. Every console warning the SDK prints
// (e.g. ajv's `unknown format "uint32" ignored in schema`) is collected; the summary is
// one JSON line on stdout. Usage: node client.mjs <base-url> <token>
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [base, token] = process.argv.slice(2);
const warnings = [];
for (const level of ["warn", "error", "log", "info", "debug"]) {
  console[level] = (...args) => warnings.push(`${level}: ${args.map(String).join(" ")}`);
}

const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "sandgraph-ts-test", version: "1.0.0" });
await client.connect(transport);
const { tools } = await client.listTools();
const run = await client.callTool({
  name: "execute_code",
  arguments: { code: "print('hi from typescript')" },
});
const lint = await client.callTool({ name: "lint_code", arguments: { code: "import os\n" } });
const history = await client.callTool({ name: "execution_history", arguments: { limit: 1 } });
await client.close();
process.stdout.write(
  JSON.stringify({
    protocolVersion: transport.protocolVersion ?? null,
    tools: tools.map((t) => t.name),
    stdout: run.structuredContent?.stdout,
    text: run.content?.[0]?.text,
    lintError: lint.isError ?? false,
    historyItems: history.structuredContent?.items?.length,
    warnings,
  }) + "\n",
);

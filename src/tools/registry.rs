//! Every tool, once. REST routes, MCP tools, schemas and the role table are generated
//! from this list; adding a tool is a new file under `tools/` and one line here.

use std::sync::{Arc, OnceLock};

use crate::call::DynTool;

use super::{
    execute, generate, graph, graph_schema, history, lint, packages, test, tokens, workspace,
};

/// The tools, in the order MCP lists them: built once, shared by every transport.
pub fn all() -> &'static [Arc<dyn DynTool>] {
    static TOOLS: OnceLock<Vec<Arc<dyn DynTool>>> = OnceLock::new();
    TOOLS.get_or_init(build)
}

fn build() -> Vec<Arc<dyn DynTool>> {
    vec![
        Arc::new(execute::ExecuteCode),
        Arc::new(lint::LintCode),
        Arc::new(test::RunTests),
        Arc::new(generate::GenerateCode),
        // In the order an agent uses them (the MCP one-call-path test relies on it:
        // created first, deleted last).
        Arc::new(workspace::CreateWorkspace),
        Arc::new(workspace::WriteFile),
        Arc::new(workspace::ListFiles),
        Arc::new(workspace::ReadFile),
        Arc::new(workspace::DeleteFile),
        Arc::new(workspace::DeleteWorkspace),
        Arc::new(graph_schema::GraphSchemaTool),
        Arc::new(packages::ListPackages),
        Arc::new(graph::GraphQuery),
        Arc::new(graph::GraphUpsert),
        Arc::new(history::ExecutionHistory),
        Arc::new(history::GetExecution),
        Arc::new(history::CodeStatsTool),
        Arc::new(history::AuditLog),
        Arc::new(tokens::CreateToken),
        Arc::new(tokens::ListTokens),
        Arc::new(tokens::RevokeToken),
    ]
}

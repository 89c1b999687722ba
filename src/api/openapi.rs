//! `/openapi.json`: an OpenAPI 3.1 description of the REST API, generated from the tool
//! registry (each tool's `ToolSpec`, `RestRoute` and the same schemars schemas MCP
//! advertises), plus the few routes outside it. One source of truth: a tool added to the
//! registry appears here, with its role, its error bodies and its rate-limit answer.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use super::error::ErrorBody;
use crate::auth::Endpoint;
use crate::call::{DynTool, RestMethod, schema_for};
use crate::tools::registry;

/// The document, built once (the registry does not change while the process runs).
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

/// Schemas shared by every operation, hoisted from the `$defs` of each tool's schemas.
#[derive(Default)]
struct Components {
    schemas: BTreeMap<String, Value>,
}

impl Components {
    /// Move `schema`'s `$defs` into the components (reusing an equal one, renaming on a
    /// clash) and register the root itself under its title; returns a `$ref` to it.
    fn add(&mut self, mut schema: Map<String, Value>) -> Value {
        schema.remove("$schema");
        let defs = match schema.remove("$defs") {
            Some(Value::Object(defs)) => defs,
            _ => Map::new(),
        };
        let mut renames = BTreeMap::new();
        for (name, definition) in &defs {
            renames.insert(name.clone(), self.name_for(name, definition, &defs));
        }
        let mut root = Value::Object(schema);
        rewrite_refs(&mut root, &renames);
        for (name, mut definition) in defs {
            rewrite_refs(&mut definition, &renames);
            self.schemas.insert(renames[&name].clone(), definition);
        }
        let title = root
            .get("title")
            .and_then(Value::as_str)
            .map(sanitise)
            .unwrap_or_else(|| "Body".to_owned());
        let name = self.unique(&title, &root);
        self.schemas.insert(name.clone(), root);
        reference(&name)
    }

    /// The component name for a definition: its own (sanitised) if free or identical.
    fn name_for(&self, name: &str, definition: &Value, defs: &Map<String, Value>) -> String {
        // Compare with refs rewritten the identity way, since names are what may clash.
        let mut candidate = definition.clone();
        let identity: BTreeMap<String, String> =
            defs.keys().map(|k| (k.clone(), sanitise(k))).collect();
        rewrite_refs(&mut candidate, &identity);
        self.unique(&sanitise(name), &candidate)
    }

    fn unique(&self, base: &str, schema: &Value) -> String {
        let mut name = base.to_owned();
        let mut n = 2;
        while let Some(existing) = self.schemas.get(&name) {
            if existing == schema {
                break;
            }
            name = format!("{base}{n}");
            n += 1;
        }
        name
    }
}

/// Component names may hold only `A-Za-z0-9._-`.
fn sanitise(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn rewrite_refs(value: &mut Value, renames: &BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get_mut("$ref")
                && let Some(name) = target.strip_prefix("#/$defs/")
            {
                let name = renames.get(name).cloned().unwrap_or_else(|| sanitise(name));
                *target = format!("#/components/schemas/{name}");
            }
            map.values_mut().for_each(|v| rewrite_refs(v, renames));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_refs(v, renames)),
        _ => {}
    }
}

fn tag(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::ExecuteCode
        | Endpoint::LintCode
        | Endpoint::RunTests
        | Endpoint::GenerateCode => "code",
        Endpoint::GraphQuery | Endpoint::GraphUpsert => "graph",
        Endpoint::History => "history",
        Endpoint::AuditLog => "audit",
        Endpoint::Prompts => "prompts",
        Endpoint::Tokens => "tokens",
        Endpoint::Workspaces => "workspaces",
    }
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": reference("ErrorBody") } },
    })
}

fn with_header(mut response: Value, header: &str, description: &str) -> Value {
    response["headers"] = json!({
        header: { "description": description, "schema": { "type": "integer", "minimum": 0 } }
    });
    response
}

/// The error answers every authenticated operation can give.
fn common_errors(responses: &mut Map<String, Value>) {
    responses.insert(
        "401".into(),
        with_header(
            error("missing, invalid or revoked bearer token"),
            "WWW-Authenticate",
            "`Bearer realm=\"sandgraph\"`",
        ),
    );
    // WWW-Authenticate is a string; fix its schema after the shared helper.
    responses["401"]["headers"]["WWW-Authenticate"]["schema"] = json!({ "type": "string" });
    responses.insert(
        "403".into(),
        error("the caller's role may not call this (the message names the role it needs)"),
    );
    responses.insert(
        "429".into(),
        with_header(
            error("over the caller's rate limit for this endpoint: `{\"detail\": \"Rate limit exceeded\"}`"),
            "Retry-After",
            "seconds until the next call is allowed",
        ),
    );
    responses.insert(
        "503".into(),
        with_header(
            error("the server is saturated (no sandbox slot in time, the outbox full, the history store down); retry"),
            "Retry-After",
            "seconds to wait before retrying",
        ),
    );
    responses.insert(
        "500".into(),
        error("a server-side failure (logged, never detailed)"),
    );
}

/// The names a route binds from its path (axum's `{name}` and catch-all `{*name}`).
fn path_parameters(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|part| part.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
        .map(|name| name.trim_start_matches('*').to_owned())
        .collect()
}

/// An axum route as an OpenAPI path template: a catch-all `{*path}` is `{path}` (its
/// value is percent-encoded, slashes included, as OpenAPI clients send it).
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

/// Move the arguments a POST route binds from its path out of the body schema (the REST
/// adapter fills them in from the path), as path parameters.
fn split_path_arguments(path: &str, schema: &mut Map<String, Value>) -> Vec<Value> {
    let in_path = path_parameters(path);
    if in_path.is_empty() {
        return Vec::new();
    }
    let mut path_only = Map::new();
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        let mut moved = Map::new();
        for name in &in_path {
            if let Some(property) = properties.remove(name) {
                moved.insert(name.clone(), property);
            }
        }
        path_only.insert("properties".into(), Value::Object(moved));
    }
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|name| {
            !name
                .as_str()
                .is_some_and(|n| in_path.iter().any(|p| p == n))
        });
    }
    parameters(path, &path_only)
}

/// Query and path parameters from an argument schema's properties (GET and DELETE).
fn parameters(path: &str, schema: &Map<String, Value>) -> Vec<Value> {
    let in_path = path_parameters(path);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(Value::Object(properties)) = schema.get("properties") else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let mut property = property.clone();
            let description = property
                .as_object_mut()
                .and_then(|p| p.remove("description"))
                .unwrap_or(Value::Null);
            // Query values arrive as text, so `null` cannot be sent: an absent parameter
            // is the `None`.
            strip_null(&mut property);
            let location = if in_path.contains(name) {
                "path"
            } else {
                "query"
            };
            let mut parameter = json!({
                "name": name,
                "in": location,
                "required": location == "path" || required.contains(&name.as_str()),
                "schema": property,
            });
            if let Value::String(text) = description {
                parameter["description"] = Value::String(text);
            }
            parameter
        })
        .collect()
}

/// `{"type": ["string", "null"], "default": null}` -> `{"type": "string"}` (query
/// parameters: absent is the `None`, and a `null` default would break the schema).
fn strip_null(schema: &mut Value) {
    if let Some(object) = schema.as_object_mut()
        && object.get("default").is_some_and(Value::is_null)
    {
        object.remove("default");
    }
    if let Some(Value::Array(types)) = schema.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types[0].clone();
            schema["type"] = only;
        }
    }
}

fn operation(tool: &dyn DynTool, components: &mut Components) -> (String, Value) {
    let spec = tool.spec();
    let method = match spec.rest.method {
        RestMethod::Post => "post",
        RestMethod::Get => "get",
        RestMethod::Delete => "delete",
    };
    let role = spec.least_role().as_str();
    let mut op = json!({
        "operationId": spec.name,
        "summary": spec.title,
        "description": format!("{}\n\nLeast role: `{role}`. Also the MCP tool `{}`.", spec.description, spec.name),
        "tags": [tag(spec.endpoint)],
        "x-sandgraph-role": role,
        "security": [{ "bearer": [] }],
    });
    let mut responses = Map::new();
    let mut input = tool.input_schema();
    match spec.rest.method {
        RestMethod::Post => {
            let in_path = split_path_arguments(spec.rest.path, &mut input);
            if !in_path.is_empty() {
                op["parameters"] = Value::Array(in_path);
            }
            let body = components.add(input);
            op["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": body } },
            });
            responses.insert("400".into(), error("the body is not valid JSON"));
            responses.insert(
                "413".into(),
                error("a source text (or the body) is larger than the server accepts"),
            );
            responses.insert(
                "415".into(),
                error("the body is not `Content-Type: application/json`"),
            );
        }
        RestMethod::Get | RestMethod::Delete => {
            op["parameters"] = Value::Array(parameters(spec.rest.path, &input));
        }
    }
    responses.insert(
        "422".into(),
        error("an argument is missing, unknown, ill-typed or out of range (`field` names it)"),
    );
    if !path_parameters(spec.rest.path).is_empty() {
        responses.insert("404".into(), error("no such record"));
    }
    common_errors(&mut responses);
    let success = if spec.rest.status == 204 {
        json!({ "description": "done (no body)" })
    } else {
        let output = components.add(tool.output_schema());
        json!({
            "description": "the result",
            "content": { "application/json": { "schema": output } },
        })
    };
    responses.insert(spec.rest.status.to_string(), success);
    op["responses"] = Value::Object(responses);
    (method.to_owned(), op)
}

fn build() -> Value {
    let mut components = Components::default();
    let error_body = components.add(schema_for::<ErrorBody>(true));
    debug_assert_eq!(error_body, reference("ErrorBody"));
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for tool in registry::all() {
        let (method, op) = operation(tool.as_ref(), &mut components);
        paths
            .entry(openapi_path(tool.spec().rest.path))
            .or_default()
            .insert(method, op);
    }
    let open = |summary: &str, description: &str, schema: Value, content_type: &str| {
        json!({ "get": {
            "summary": summary,
            "description": description,
            "tags": ["operations"],
            "security": [],
            "responses": { "200": {
                "description": summary,
                "content": { content_type: { "schema": schema } },
            }},
        }})
    };
    let object = json!({ "type": "object" });
    paths.insert(
        "/health".into(),
        as_map(open(
            "Liveness and status",
            "The server, the sandbox (guest build, active runs), the cache and the store (backend, outbox depth), with the replaced platform's `service: \"ok\"` and `neo4j` (true when Neo4j answers right now). No token needed.",
            object.clone(),
            "application/json",
        )),
    );
    let mut ready = open(
        "Readiness",
        "200 when the store takes writes and Neo4j answers (or the outbox is below 80% of its bound); 503 otherwise, with the same body. No token needed.",
        object.clone(),
        "application/json",
    );
    ready["get"]["responses"]["503"] = json!({
        "description": "not ready (see `checks` and `warnings`)",
        "content": { "application/json": { "schema": object } },
    });
    paths.insert("/health/ready".into(), as_map(ready));
    paths.insert(
        "/metrics".into(),
        as_map(open(
            "Prometheus metrics",
            "The Prometheus text exposition. No token needed.",
            json!({ "type": "string" }),
            "text/plain",
        )),
    );
    let prompt_summaries = components.add(schema_for::<Vec<crate::tools::prompts::PromptSummary>>(
        true,
    ));
    let prompt = components.add(schema_for::<crate::tools::prompts::Prompt>(true));
    let authed = |id: &str, summary: &str, tag: &str, schema: Value, parameters: Value| {
        let mut responses = Map::new();
        common_errors(&mut responses);
        responses.insert(
            "200".into(),
            json!({ "description": summary, "content": { "application/json": { "schema": schema } } }),
        );
        let mut op = json!({
            "operationId": id,
            "summary": summary,
            "tags": [tag],
            "x-sandgraph-role": "agent",
            "security": [{ "bearer": [] }],
            "parameters": parameters,
        });
        if !parameters_empty(&op) {
            responses.insert("404".into(), error("no such prompt"));
        }
        op["responses"] = Value::Object(responses);
        as_map(json!({ "get": op }))
    };
    paths.insert(
        "/prompts".into(),
        authed(
            "list_prompts",
            "The prompts",
            "prompts",
            prompt_summaries,
            json!([]),
        ),
    );
    paths.insert(
        "/prompts/{slug}".into(),
        authed(
            "get_prompt",
            "One prompt with its text",
            "prompts",
            prompt,
            json!([{ "name": "slug", "in": "path", "required": true, "schema": { "type": "string" } }]),
        ),
    );
    // A workspace file's bytes, beside delete_file on the same path (not a tool: the
    // body is the file, not JSON).
    let mut download = authed(
        "download_file",
        "A file in one of your workspaces, as its bytes (its MIME type in Content-Type)",
        "workspaces",
        json!({}),
        json!([
            { "name": "workspace_id", "in": "path", "required": true, "schema": { "type": "string" } },
            { "name": "path", "in": "path", "required": true, "schema": { "type": "string" },
              "description": "The file's path in the workspace, percent-encoded (slashes too)" },
        ]),
    );
    download["get"]["responses"]["200"]["content"] = json!({ "*/*": { "schema": {} } });
    download["get"]["responses"]["404"] = error("no such workspace (yours) or file");
    download["get"]["responses"]["422"] = error("the path is not a valid workspace path");
    paths
        .entry(openapi_path("/workspaces/{workspace_id}/files/{*path}"))
        .or_default()
        .extend(download);
    let mut graph_metrics = authed(
        "graph_metrics",
        "Size of the knowledge graph (node and relationship counts, labels, types; never the record)",
        "graph",
        object,
        json!([]),
    );
    graph_metrics["get"]["responses"]["422"] = error("the server runs without Neo4j");
    paths.insert("/metrics/graph".into(), graph_metrics);

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "sandgraph",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Run, lint and test code in wasmtime sandboxes; render templates; \
    query and grow a knowledge graph; read the record of every call. The same tools are served \
    over MCP (streamable HTTP at `/mcp`, and stdio) with the same schemas. Every operation but \
    the health and metrics probes needs `Authorization: Bearer <token>`; each names its least \
    role (`x-sandgraph-role`: agent < developer < admin). Errors are `{\"detail\": ...}`.",
        },
        "servers": [{ "url": "/" }],
        "tags": [
            { "name": "code", "description": "Run, lint and test code; render templates (agent)" },
            { "name": "graph", "description": "The knowledge graph (Neo4j)" },
            { "name": "history", "description": "The record of runs (developer)" },
            { "name": "audit", "description": "Every call, allowed or not (admin)" },
            { "name": "tokens", "description": "Bearer tokens (admin)" },
            { "name": "workspaces", "description": "Private directories that last across calls (agent)" },
            { "name": "prompts", "description": "How to use the tools" },
            { "name": "operations", "description": "Probes and metrics (no token)" },
        ],
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An opaque `sg_...` token (`sandgraph token create`, or `POST /admin/tokens` as admin).",
                },
            },
        },
    })
}

fn parameters_empty(op: &Value) -> bool {
    op["parameters"].as_array().is_none_or(Vec::is_empty)
}

fn as_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    out.push(target.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_registered_tool_is_an_operation_with_its_route_and_role() {
        let doc = document();
        for tool in registry::all() {
            let spec = tool.spec();
            let method = match spec.rest.method {
                RestMethod::Post => "post",
                RestMethod::Get => "get",
                RestMethod::Delete => "delete",
            };
            let op = &doc["paths"][openapi_path(spec.rest.path)][method];
            assert_eq!(op["operationId"], spec.name, "{}", spec.rest.path);
            assert_eq!(op["x-sandgraph-role"], spec.least_role().as_str());
            for status in ["401", "403", "422", "429", "503"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{} {status}",
                    spec.name
                );
            }
            assert!(op["responses"][spec.rest.status.to_string()].is_object());
        }
    }

    #[test]
    fn path_arguments_of_a_post_are_path_parameters_not_body_fields() {
        let doc = document();
        let op = &doc["paths"]["/workspaces/{workspace_id}/files"]["post"];
        assert_eq!(op["parameters"][0]["name"], "workspace_id");
        assert_eq!(op["parameters"][0]["in"], "path");
        let body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        let body = &doc["components"]["schemas"][body];
        assert!(body["properties"]["workspace_id"].is_null(), "{body}");
        assert!(
            !body["required"]
                .as_array()
                .is_some_and(|r| r.contains(&json!("workspace_id")))
        );
        // A catch-all is an ordinary path parameter in OpenAPI.
        let delete = &doc["paths"]["/workspaces/{workspace_id}/files/{path}"];
        assert_eq!(delete["delete"]["operationId"], "delete_file");
        assert_eq!(delete["get"]["operationId"], "download_file");
    }

    #[test]
    fn every_reference_resolves_to_a_component() {
        let doc = document();
        let mut targets = Vec::new();
        refs(doc, &mut targets);
        assert!(!targets.is_empty());
        for target in targets {
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{target} is not a component reference"));
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{target} does not resolve"
            );
        }
        let text = doc.to_string();
        assert!(!text.contains("$defs"), "every $defs entry is hoisted");
    }

    #[test]
    fn query_parameters_come_from_the_argument_schema() {
        let doc = document();
        let op = &doc["paths"]["/executions/{id}"]["get"];
        let params = op["parameters"].as_array().unwrap();
        assert_eq!(params.len(), 1);
        assert_eq!(params[0]["in"], "path");
        assert_eq!(params[0]["required"], true);
        let history = &doc["paths"]["/execution_history"]["get"]["parameters"];
        let names: Vec<&str> = history
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for name in [
            "caller",
            "tool",
            "language",
            "code_hash",
            "outcome",
            "since",
            "until",
            "limit",
            "cursor",
        ] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        assert!(
            history
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["in"] == "query" && p["required"] == false)
        );
    }

    #[test]
    fn a_name_clash_between_different_definitions_is_renamed() {
        let mut components = Components::default();
        let first = json!({"title": "A", "$defs": {"X": {"type": "string"}}, "properties": {"x": {"$ref": "#/$defs/X"}}});
        let second = json!({"title": "B", "$defs": {"X": {"type": "integer"}}, "properties": {"x": {"$ref": "#/$defs/X"}}});
        components.add(as_map(first));
        components.add(as_map(second));
        assert_eq!(components.schemas["X"], json!({"type": "string"}));
        assert_eq!(components.schemas["X2"], json!({"type": "integer"}));
        assert_eq!(
            components.schemas["B"]["properties"]["x"]["$ref"],
            "#/components/schemas/X2"
        );
    }
}

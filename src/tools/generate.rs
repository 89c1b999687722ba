//! `generate_code`: render a Jinja2-compatible template (minijinja) with a JSON context.
//! Strict undefined (a missing variable is a 4xx naming it), no loader (so `include`,
//! `import` and `extends` of files are refused), fuel-bounded render time and a capped
//! output size.

use std::fmt;

use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ToolError, Tools, new_id};
use crate::audit::CallContext;
use crate::auth::Endpoint;
use crate::call::{Hints, RestMethod, RestRoute, Source, Tool, ToolSpec};

/// Template instructions one render may execute: far beyond any real code template,
/// far below a loop of a billion iterations.
const RENDER_FUEL: u64 = 20_000_000;
/// Largest output a render may produce.
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// Arguments of `generate_code`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    /// A Jinja2 template (minijinja dialect).
    pub template: String,
    /// Variables for the template (a JSON object). Default `{}`.
    #[serde(default)]
    pub context: Map<String, Value>,
    /// The language of the generated code (a label, returned as given). Default `python`.
    #[serde(default = "super::execute::default_language")]
    pub language: String,
}

/// Result of `generate_code`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct GenerateResponse {
    /// Id of this render.
    pub id: String,
    /// The `language` label of the request.
    pub language: String,
    /// The rendered text.
    pub output: String,
    /// SHA-256 (hex) of the template.
    pub code_hash: String,
}

/// A writer that refuses to grow past [`MAX_OUTPUT_BYTES`].
struct CappedString {
    text: String,
    overflowed: bool,
}

impl fmt::Write for CappedString {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.text.len() + s.len() > MAX_OUTPUT_BYTES {
            self.overflowed = true;
            return Err(fmt::Error);
        }
        self.text.push_str(s);
        Ok(())
    }
}

/// Whether `path` (`a.b.c`) resolves in the context.
fn context_has(context: &Map<String, Value>, path: &str) -> bool {
    let mut parts = path.split('.');
    let Some(first) = parts.next() else {
        return false;
    };
    let mut value = match context.get(first) {
        Some(value) => value,
        None => return false,
    };
    for part in parts {
        match value {
            Value::Object(map) => match map.get(part) {
                Some(next) => value = next,
                None => return false,
            },
            // Attribute access on non-objects (e.g. `items.length`) is left to the renderer.
            _ => return true,
        }
    }
    true
}

fn render(request: &GenerateRequest) -> Result<String, ToolError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(RENDER_FUEL));
    let template = env
        .template_from_str(&request.template)
        .map_err(|e| ToolError::invalid("template", format!("template syntax error: {e}")))?;

    let mut missing: Vec<String> = template
        .undeclared_variables(true)
        .into_iter()
        .filter(|name| {
            env.globals()
                .all(|(global, _)| global != name.split('.').next().unwrap_or_default())
        })
        .filter(|name| !context_has(&request.context, name))
        .collect();
    if !missing.is_empty() {
        missing.sort();
        return Err(ToolError::invalid(
            "context",
            format!(
                "template variables missing from context: {}",
                missing.join(", ")
            ),
        ));
    }

    let mut out = CappedString {
        text: String::new(),
        overflowed: false,
    };
    let context = minijinja::Value::from(minijinja::value::Serde(&request.context));
    match template.render_captured_to(context, FmtWriter(&mut out)) {
        Ok(_) => Ok(out.text),
        Err(_) if out.overflowed => Err(ToolError::TooLarge {
            detail: format!("rendered output exceeds {MAX_OUTPUT_BYTES} bytes"),
        }),
        Err(e) => Err(render_error(e)),
    }
}

fn render_error(e: minijinja::Error) -> ToolError {
    match e.kind() {
        ErrorKind::OutOfFuel => ToolError::invalid(
            "template",
            "template rendering stopped: it exceeded the render-time budget (loops too long?)",
        ),
        ErrorKind::TemplateNotFound | ErrorKind::BadInclude => ToolError::invalid(
            "template",
            format!("templates cannot include, import or extend other templates or files: {e}"),
        ),
        ErrorKind::UndefinedError => {
            ToolError::invalid("context", format!("undefined variable in template: {e}"))
        }
        _ => ToolError::invalid("template", format!("template error: {e}")),
    }
}

/// Adapts a `fmt::Write` to the `io::Write` minijinja renders into.
struct FmtWriter<'a>(&'a mut CappedString);

impl std::io::Write for FmtWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = std::str::from_utf8(buf).map_err(std::io::Error::other)?;
        fmt::Write::write_str(self.0, text).map_err(|_| std::io::Error::other("output limit"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Render the request's template.
async fn generate_code_unrecorded(
    tools: &Tools,
    _ctx: &CallContext,
    request: GenerateRequest,
) -> Result<GenerateResponse, ToolError> {
    tools.check_size("template", &request.template)?;
    if request.language.is_empty() || request.language.len() > 32 {
        return Err(ToolError::invalid(
            "language",
            "language must be 1 to 32 characters",
        ));
    }
    // Rendering is CPU work bounded by fuel; keep it off the async workers.
    let (request, output) = tokio::task::spawn_blocking(move || {
        let output = render(&request);
        (request, output)
    })
    .await
    .map_err(|e| ToolError::Internal(e.into()))?;
    Ok(GenerateResponse {
        id: new_id(),
        code_hash: super::code_hash(&request.template),
        language: request.language,
        output: output?,
    })
}

/// `generate_code`.
pub struct GenerateCode;

/// Name, role, hints and route of `generate_code`.
pub static GENERATECODE_SPEC: ToolSpec = ToolSpec {
    name: "generate_code",
    title: "Render a Jinja2 template",
    description: "Render a Jinja2 template with a JSON context (strict: every variable must \
be given; no include/import of files; bounded render time and 1 MiB output).",
    endpoint: Endpoint::GenerateCode,
    hints: Hints::READ_ONLY,
    rest: RestRoute {
        method: RestMethod::Post,
        path: "/generate_code",
        status: 200,
    },
};

#[async_trait::async_trait]
impl Tool for GenerateCode {
    type Request = GenerateRequest;
    type Response = GenerateResponse;

    fn spec(&self) -> &'static ToolSpec {
        &GENERATECODE_SPEC
    }

    fn source(&self, request: &GenerateRequest) -> Option<Source> {
        Some(Source::code(&request.template))
    }

    async fn run(
        &self,
        tools: &Tools,
        ctx: &CallContext,
        request: GenerateRequest,
    ) -> Result<GenerateResponse, ToolError> {
        generate_code_unrecorded(tools, ctx, request).await
    }
}

/// Admit, run and remember one `generate_code` call (the pipeline in [`crate::call`]).
pub async fn generate_code(
    tools: &Tools,
    ctx: &CallContext,
    request: GenerateRequest,
) -> Result<GenerateResponse, ToolError> {
    crate::call::call_typed(tools, ctx, &GenerateCode, request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(template: &str, context: Value) -> GenerateRequest {
        GenerateRequest {
            template: template.to_owned(),
            context: context.as_object().cloned().unwrap_or_default(),
            language: "python".to_owned(),
        }
    }

    #[test]
    fn renders_with_context() {
        let out = render(&request(
            "def {{ name }}({{ args | join(', ') }}):\n    return {{ body }}",
            serde_json::json!({"name": "add", "args": ["a", "b"], "body": "a + b"}),
        ))
        .unwrap();
        assert_eq!(out, "def add(a, b):\n    return a + b");
    }

    #[test]
    fn missing_variables_are_named() {
        let err = render(&request(
            "{{ a }} {{ user.name }} {{ b }}",
            serde_json::json!({"b": 1, "user": {}}),
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "template variables missing from context: a, user.name"
        );
    }

    #[test]
    fn loop_variables_and_set_are_not_missing() {
        let out = render(&request(
            "{% set x = 2 %}{% for i in range(3) %}{{ i * x }}{% endfor %}",
            serde_json::json!({}),
        ))
        .unwrap();
        assert_eq!(out, "024");
    }

    #[test]
    fn include_and_import_are_refused() {
        for template in [
            "{% include 'x.txt' %}",
            "{% import '/etc/passwd' as p %}",
            "{% extends 'base' %}",
        ] {
            let err = render(&request(template, serde_json::json!({}))).unwrap_err();
            assert!(
                err.to_string().contains("cannot include"),
                "{template}: {err}"
            );
        }
    }

    #[test]
    fn a_billion_iterations_are_stopped() {
        let err = render(&request(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            serde_json::json!({}),
        ))
        .unwrap_err();
        assert!(err.to_string().contains("render-time budget"), "{err}");
    }

    #[test]
    fn output_is_capped() {
        let err = render(&request(
            "{% for i in range(100000) %}{{ s }}{% endfor %}",
            serde_json::json!({"s": "x".repeat(1000)}),
        ))
        .unwrap_err();
        assert!(matches!(err, ToolError::TooLarge { .. }), "{err}");
    }
}

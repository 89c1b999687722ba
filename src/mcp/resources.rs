//! MCP resource templates over the record: one table, one row per template (URI
//! template, the argument it binds, the endpoint whose role and rate limit it takes, a
//! reader and a completer). Adding a template is one row. Reads and completions pass
//! through [`crate::call::audited`], so they are role-gated and audited exactly like the
//! history tools (developer and up: agents never see the record).

use std::future::Future;
use std::pin::Pin;

use rmcp::model::ResourceContents;

use crate::auth::Endpoint;
use crate::store::StoredCode;
use crate::tools::{ToolError, Tools};

/// A boxed future borrowing the tools.
pub type Reply<'a, T> = Pin<Box<dyn Future<Output = Result<T, ToolError>> + Send + 'a>>;

/// Reads the resource named by the argument (the URI with `prefix` removed).
pub type Reader = for<'a> fn(&'a Tools, &'a str, &'a str) -> Reply<'a, Vec<ResourceContents>>;

/// Values of the template's argument starting with a prefix.
pub type Completer = for<'a> fn(&'a Tools, &'a str) -> Reply<'a, Vec<String>>;

/// One resource template.
pub struct Template {
    /// RFC 6570 template, e.g. `sandgraph://executions/{id}`.
    pub uri_template: &'static str,
    /// The template up to its argument.
    pub prefix: &'static str,
    /// Its one argument's name (what completions complete).
    pub argument: &'static str,
    /// Programmatic name.
    pub name: &'static str,
    /// Title.
    pub title: &'static str,
    /// What it holds.
    pub description: &'static str,
    /// MIME type of its contents (when uniform).
    pub mime_type: Option<&'static str>,
    /// Whose role and rate limit a read takes.
    pub endpoint: Endpoint,
    /// Read one.
    pub read: Reader,
    /// Complete the argument.
    pub complete: Option<Completer>,
}

/// Most completion values returned at once.
const COMPLETIONS: usize = 20;

/// The record's resource templates.
pub static TEMPLATES: &[Template] = &[
    Template {
        uri_template: "sandgraph://executions/{id}",
        prefix: "sandgraph://executions/",
        argument: "id",
        name: "execution",
        title: "A recorded run",
        description: "One execution/lint/test/generation record (JSON, as get_execution returns \
it), with its source text when the server keeps it. Developer role or higher.",
        mime_type: Some("application/json"),
        endpoint: Endpoint::History,
        read: |tools, uri, id| Box::pin(read_execution(tools, uri, id)),
        complete: Some(|tools, prefix| {
            Box::pin(async move {
                Ok(tools
                    .history
                    .complete_execution_ids(prefix, COMPLETIONS)
                    .await?)
            })
        }),
    },
    Template {
        uri_template: "sandgraph://code/{hash}",
        prefix: "sandgraph://code/",
        argument: "hash",
        name: "code",
        title: "Source text of a code hash",
        description: "The source text stored for a code hash (SHA-256, as records carry it in \
code_hash); run_tests' separate tests follow as a second content. Developer role or higher.",
        mime_type: None,
        endpoint: Endpoint::History,
        read: |tools, uri, hash| Box::pin(read_code(tools, uri, hash)),
        complete: Some(|tools, prefix| {
            Box::pin(async move {
                Ok(tools
                    .history
                    .complete_code_hashes(&prefix.to_ascii_lowercase(), COMPLETIONS)
                    .await?)
            })
        }),
    },
];

/// The template a URI belongs to, and the argument it carries.
pub fn find(uri: &str) -> Option<(&'static Template, &str)> {
    TEMPLATES.iter().find_map(|template| {
        uri.strip_prefix(template.prefix)
            .filter(|argument| !argument.is_empty() && !argument.contains('/'))
            .map(|argument| (template, argument))
    })
}

/// The URI of a record's resource.
pub fn execution_uri(id: &str) -> String {
    format!("sandgraph://executions/{id}")
}

fn not_found(uri: &str) -> ToolError {
    ToolError::NotFound {
        detail: format!("no resource {uri:?}"),
    }
}

async fn read_execution(
    tools: &Tools,
    uri: &str,
    id: &str,
) -> Result<Vec<ResourceContents>, ToolError> {
    let detail = tools
        .history
        .get_execution(id)
        .await?
        .ok_or_else(|| not_found(uri))?;
    let text = serde_json::to_string_pretty(&detail)
        .map_err(|e| ToolError::Internal(anyhow::anyhow!("serialising a record: {e}")))?;
    Ok(vec![
        ResourceContents::text(text, uri).with_mime_type("application/json"),
    ])
}

async fn read_code(
    tools: &Tools,
    uri: &str,
    hash: &str,
) -> Result<Vec<ResourceContents>, ToolError> {
    let code = tools
        .history
        .get_code(&hash.to_ascii_lowercase())
        .await?
        .ok_or_else(|| not_found(uri))?;
    let mime = source_mime_type(&code);
    let mut contents = vec![ResourceContents::text(code.source, uri).with_mime_type(mime)];
    if let Some(tests) = code.tests {
        contents.push(ResourceContents::text(tests, format!("{uri}#tests")).with_mime_type(mime));
    }
    Ok(contents)
}

/// The MIME type of a source text in its language.
pub fn source_mime_type(code: &StoredCode) -> &'static str {
    match code.language.as_deref() {
        Some("python") => "text/x-python",
        Some("javascript") => "text/javascript",
        _ => "text/plain",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_map_to_their_template_and_argument() {
        let (template, id) = find("sandgraph://executions/abc-1").unwrap();
        assert_eq!((template.name, id), ("execution", "abc-1"));
        let (template, hash) = find("sandgraph://code/00ff").unwrap();
        assert_eq!((template.name, hash), ("code", "00ff"));
        assert!(find("sandgraph://executions/").is_none());
        assert!(find("sandgraph://executions/a/b").is_none());
        assert!(find("sandgraph://prompts/limits").is_none());
        assert_eq!(
            find(&execution_uri("x")).map(|(t, _)| t.name),
            Some("execution")
        );
    }

    #[test]
    fn every_template_starts_with_its_prefix_and_names_its_argument() {
        for template in TEMPLATES {
            assert_eq!(
                template.uri_template,
                format!("{}{{{}}}", template.prefix, template.argument)
            );
        }
    }
}

//! `list_packages`: which third-party packages (and versions) each guest can import, so
//! an agent can check before it writes code. The list is the guest build's manifest
//! (`build/guest/packages.json`), written from what actually imported in the guest.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ToolError, Tools};
use crate::audit::CallContext;
use crate::auth::Endpoint;
use crate::call::{Hints, RestMethod, RestRoute, Tool, ToolResponse, ToolSpec};
use crate::sandbox::{JavascriptModules, Language, PythonPackages};

/// Arguments of `list_packages`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListPackagesRequest {
    /// Only this language's guest (`python` or `javascript`). Default: both.
    #[serde(default)]
    pub language: Option<String>,
}

/// Result of `list_packages`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ListPackagesResponse {
    /// The Python guest's interpreter and packages (absent when another language was asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<PythonPackages>,
    /// The JavaScript guest's runtime and bundled modules (absent when another language
    /// was asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub javascript: Option<JavascriptModules>,
}

impl ToolResponse for ListPackagesResponse {
    fn render(&self) -> Option<String> {
        let mut text = String::new();
        if let Some(python) = &self.python {
            text.push_str(&format!(
                "Python ({}), beyond the standard library:\n",
                python.implementation
            ));
            for package in &python.packages {
                text.push_str(&format!(
                    "- {} {} (import {}): {}\n",
                    package.name,
                    package.version,
                    package.modules.join(", "),
                    package.summary
                ));
            }
        }
        if let Some(javascript) = &self.javascript {
            if javascript.modules.is_empty() {
                text.push_str(&format!(
                    "JavaScript ({}): the standard library only (no modules bundled).\n",
                    javascript.runtime
                ));
            } else {
                text.push_str(&format!("JavaScript ({}) modules:\n", javascript.runtime));
                for module in &javascript.modules {
                    text.push_str(&format!(
                        "- {} {} (import from \"{}\"): {}\n",
                        module.name, module.version, module.specifier, module.summary
                    ));
                }
            }
        }
        Some(text)
    }
}

/// `list_packages`.
pub struct ListPackages;

/// Name, role, hints and route of `list_packages`.
pub static LIST_PACKAGES_SPEC: ToolSpec = ToolSpec {
    name: "list_packages",
    title: "List the packages code can import",
    description: "Which third-party packages and versions each guest can import (Python: the \
curated set, e.g. sympy, networkx, pyyaml, openpyxl, hypothesis, plus any the operator added; \
JavaScript: bundled modules). Check here before writing code that imports a library: anything \
else is not installed and cannot be installed at run time (no network).",
    endpoint: Endpoint::Prompts,
    hints: Hints::READ_ONLY,
    rest: RestRoute {
        method: RestMethod::Get,
        path: "/packages",
        status: 200,
    },
};

#[async_trait::async_trait]
impl Tool for ListPackages {
    type Request = ListPackagesRequest;
    type Response = ListPackagesResponse;

    fn spec(&self) -> &'static ToolSpec {
        &LIST_PACKAGES_SPEC
    }

    async fn run(
        &self,
        tools: &Tools,
        _ctx: &CallContext,
        request: ListPackagesRequest,
    ) -> Result<ListPackagesResponse, ToolError> {
        let only = match request.language.as_deref() {
            None => None,
            Some(name) => Some(super::execute::parse_language(name)?),
        };
        let manifest = tools.sandbox.packages();
        let wanted = |language| only.is_none_or(|only| only == language);
        Ok(ListPackagesResponse {
            python: wanted(Language::Python).then(|| manifest.python.clone()),
            javascript: wanted(Language::Javascript).then(|| manifest.javascript.clone()),
        })
    }
}

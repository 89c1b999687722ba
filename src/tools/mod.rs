//! The tools, one file each. A tool takes a typed request, validates it, runs it
//! (usually in the sandbox) and returns a typed response or a [`ToolError`]. Tools know
//! nothing about HTTP or MCP; `api/` and `mcp/` adapt them.

pub mod execute;
pub mod generate;
pub mod lint;
pub mod prompts;
pub mod test;

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::sandbox::{LimitTooHigh, Sandbox, SandboxError};

/// Shared state every tool call gets; cheap to clone.
#[derive(Clone)]
pub struct Tools {
    /// The sandbox all code runs in.
    pub sandbox: Sandbox,
    /// The server configuration.
    pub config: Arc<Config>,
}

impl Tools {
    /// Bundle the sandbox and configuration.
    pub fn new(sandbox: Sandbox, config: Arc<Config>) -> Self {
        Self { sandbox, config }
    }

    /// Refuse source text over the configured size limit.
    pub(crate) fn check_size(&self, field: &'static str, text: &str) -> Result<(), ToolError> {
        let limit = self.config.max_code_bytes;
        if text.len() > limit {
            return Err(ToolError::TooLarge {
                detail: format!(
                    "`{field}` is {} bytes; the limit is {limit} bytes",
                    text.len()
                ),
            });
        }
        Ok(())
    }
}

/// Why a tool call was refused or failed. Each variant maps to one HTTP status and to an
/// MCP tool error with the same message.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// A field is missing, malformed or out of range (HTTP 422).
    #[error("{detail}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong and what is accepted.
        detail: String,
    },
    /// An input is larger than the server accepts (HTTP 413).
    #[error("{detail}")]
    TooLarge {
        /// Which input and the limit.
        detail: String,
    },
    /// The server is saturated; retry (HTTP 503).
    #[error("{detail}")]
    Busy {
        /// Why.
        detail: String,
    },
    /// A server-side failure (HTTP 500); details are logged, not returned.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl ToolError {
    /// A 422 for `field`.
    pub fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        ToolError::Invalid {
            field,
            detail: detail.into(),
        }
    }
}

impl From<SandboxError> for ToolError {
    fn from(err: SandboxError) -> Self {
        match err {
            SandboxError::Busy { .. } => ToolError::Busy {
                detail: err.to_string(),
            },
            SandboxError::Internal(err) => ToolError::Internal(err),
        }
    }
}

impl From<LimitTooHigh> for ToolError {
    fn from(err: LimitTooHigh) -> Self {
        ToolError::invalid("limits", err.to_string())
    }
}

/// Hex SHA-256 of a code text: how history and stats identify "the same code".
pub fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// A new record id.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

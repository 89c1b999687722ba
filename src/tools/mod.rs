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

use crate::audit::{AuditDecision, AuditEvent, AuditSink, CallContext};
use crate::auth::{Endpoint, TokenStore};
use crate::cache::{CacheKey, Provenance, ResultCache};
use crate::config::Config;
use crate::rate_limit::{RateLimits, retry_after_seconds};
use crate::sandbox::{ExitReason, LimitTooHigh, Sandbox, SandboxError};

/// A result the cache can hold.
#[derive(Debug, Clone)]
pub enum CachedResult {
    /// `execute_code`
    Execute(execute::ExecuteResponse),
    /// `lint_code`
    Lint(lint::LintResponse),
    /// `run_tests`
    Tests(test::RunTestsResponse),
}

/// Shared state every tool call gets; cheap to clone.
#[derive(Clone)]
pub struct Tools {
    /// The sandbox all code runs in.
    pub sandbox: Sandbox,
    /// The server configuration.
    pub config: Arc<Config>,
    /// Bearer tokens.
    pub tokens: Arc<TokenStore>,
    /// Per-caller rate limits.
    pub rate_limits: Arc<RateLimits>,
    /// The result cache.
    pub cache: Arc<ResultCache<CachedResult>>,
    /// Where access decisions go.
    pub audit: Arc<dyn AuditSink>,
}

impl Tools {
    /// Bundle the parts every tool needs.
    pub fn new(
        sandbox: Sandbox,
        config: Arc<Config>,
        tokens: Arc<TokenStore>,
        audit: Arc<dyn AuditSink>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            rate_limits: Arc::new(RateLimits::new(&config.rate_limits)?),
            cache: Arc::new(ResultCache::new(&config.cache)),
            sandbox,
            config,
            tokens,
            audit,
        })
    }

    /// Decide whether the call may proceed: the caller's role, then its rate limit.
    /// Every decision is recorded as an audit event.
    pub fn admit(&self, ctx: &CallContext, endpoint: Endpoint) -> Result<(), ToolError> {
        if !ctx.caller.may(endpoint) {
            let detail = format!(
                "role {} may not call {}; it needs {} or higher",
                ctx.caller.role.as_str(),
                endpoint.name(),
                endpoint.required_role().as_str()
            );
            self.audit.record(AuditEvent::new(
                ctx,
                endpoint.name(),
                AuditDecision::Forbidden,
                Some(detail.clone()),
            ));
            return Err(ToolError::Forbidden { detail });
        }
        if let Err(wait) = self.rate_limits.check(endpoint, &ctx.caller.id) {
            let retry_after = retry_after_seconds(wait);
            self.audit.record(AuditEvent::new(
                ctx,
                endpoint.name(),
                AuditDecision::RateLimited,
                Some(format!("retry after {retry_after} s")),
            ));
            return Err(ToolError::RateLimited {
                retry_after_seconds: retry_after,
            });
        }
        self.audit.record(AuditEvent::new(
            ctx,
            endpoint.name(),
            AuditDecision::Allowed,
            None,
        ));
        Ok(())
    }

    /// Run `compute` through the result cache unless `use_cache` is false. Results whose
    /// `exit_reason` is `timeout` are never stored (they depend on machine load); every
    /// other finished result is deterministic for its key and is stored.
    pub(crate) async fn cached<Fut>(
        &self,
        ctx: &CallContext,
        endpoint: Endpoint,
        use_cache: bool,
        key_inputs: &impl serde::Serialize,
        compute: impl FnOnce() -> Fut,
    ) -> Result<(CachedResult, bool), ToolError>
    where
        Fut: std::future::Future<Output = Result<CachedResult, ToolError>>,
    {
        if !use_cache {
            return compute().await.map(|r| (r, false));
        }
        let key = CacheKey::of(&(endpoint.name(), self.sandbox.build_id(), key_inputs));
        let (result, provenance) = self
            .cache
            .get_or_compute(key, admit_to_cache, compute)
            .await?;
        let cached = provenance == Provenance::Cached;
        if cached {
            self.audit.record(AuditEvent::new(
                ctx,
                endpoint.name(),
                AuditDecision::CacheHit,
                None,
            ));
        }
        Ok((result, cached))
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

/// Whether a result may be cached, and its size in bytes.
fn admit_to_cache(result: &CachedResult) -> Option<usize> {
    let (reason, bytes) = match result {
        CachedResult::Execute(r) => (r.exit_reason, serde_json::to_vec(r).map(|v| v.len())),
        CachedResult::Lint(r) => (ExitReason::Ok, serde_json::to_vec(r).map(|v| v.len())),
        CachedResult::Tests(r) => (r.exit_reason, serde_json::to_vec(r).map(|v| v.len())),
    };
    if reason == ExitReason::Timeout {
        return None;
    }
    bytes.ok()
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
    /// The caller's role lacks the right (HTTP 403).
    #[error("{detail}")]
    Forbidden {
        /// Which role is needed.
        detail: String,
    },
    /// The caller is over its rate limit for this endpoint (HTTP 429).
    #[error("Rate limit exceeded; retry in {retry_after_seconds} s")]
    RateLimited {
        /// Seconds until the next call is allowed.
        retry_after_seconds: u64,
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

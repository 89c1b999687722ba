//! Token management (admin): `create_token`, `list_tokens`, `revoke_token`. Tokens live
//! as SHA-256 hashes in the embedded database; a new token's secret is in the answer
//! once and nowhere else (never in a record, a log line or an audit event).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ToolError, Tools};
use crate::audit::CallContext;
use crate::auth::{Endpoint, Role, TokenInfo};
use crate::call::{Hints, RestMethod, RestRoute, Tool, ToolResponse, ToolSpec};

/// Arguments of `create_token`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// `agent`, `developer` or `admin`.
    pub role: String,
    /// A name to recognise it by in the audit log (1 to 100 characters).
    pub name: String,
}

/// A new token: the secret (shown only now) and its listing.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CreatedToken {
    /// The bearer token. Store it now: only its hash is kept.
    pub token: String,
    /// Its listing.
    pub info: TokenInfo,
}

/// Arguments of `list_tokens` (none).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTokensRequest {}

/// Every token (never a secret).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TokenList {
    /// Tokens, oldest first.
    pub tokens: Vec<TokenInfo>,
}

/// Arguments of `revoke_token`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeTokenRequest {
    /// The token id (from `list_tokens`).
    pub id: String,
}

/// What `revoke_token` did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Revoked {
    /// The id of the token now refused everywhere.
    pub revoked: String,
}

impl ToolResponse for CreatedToken {}
impl ToolResponse for TokenList {}
impl ToolResponse for Revoked {}

/// Token work is a blocking SQLite call: off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ToolError::Internal(e.into()))?
        .map_err(ToolError::Internal)
}

/// `create_token`.
pub struct CreateToken;

/// Name, role, hints and route of `create_token`.
pub static CREATE_TOKEN_SPEC: ToolSpec = ToolSpec {
    name: "create_token",
    title: "Create a bearer token",
    description: "Mint a bearer token for a role (agent, developer or admin) and a name (admin \
only). The token is in this answer once; only its hash is stored.",
    endpoint: Endpoint::Tokens,
    hints: Hints {
        read_only: false,
        destructive: false,
        idempotent: false,
        open_world: false,
    },
    rest: RestRoute {
        method: RestMethod::Post,
        path: "/admin/tokens",
        status: 201,
    },
};

#[async_trait::async_trait]
impl Tool for CreateToken {
    type Request = CreateTokenRequest;
    type Response = CreatedToken;

    fn spec(&self) -> &'static ToolSpec {
        &CREATE_TOKEN_SPEC
    }

    async fn run(
        &self,
        tools: &Tools,
        _ctx: &CallContext,
        request: CreateTokenRequest,
    ) -> Result<CreatedToken, ToolError> {
        let role = Role::parse(&request.role).ok_or_else(|| {
            ToolError::invalid(
                "role",
                format!(
                    "unknown role {:?}; use agent, developer or admin",
                    request.role
                ),
            )
        })?;
        if request.name.is_empty() || request.name.chars().count() > 100 {
            return Err(ToolError::invalid(
                "name",
                "name must be 1 to 100 characters",
            ));
        }
        let store = tools.tokens.clone();
        let (info, token) = blocking(move || store.create(&request.name, role)).await?;
        Ok(CreatedToken { token, info })
    }
}

/// `list_tokens`.
pub struct ListTokens;

/// Name, role, hints and route of `list_tokens`.
pub static LIST_TOKENS_SPEC: ToolSpec = ToolSpec {
    name: "list_tokens",
    title: "List bearer tokens",
    description: "Every token's id, name, role, creation and revocation time (admin only; never \
a secret).",
    endpoint: Endpoint::Tokens,
    hints: Hints::READ_ONLY,
    rest: RestRoute {
        method: RestMethod::Get,
        path: "/admin/tokens",
        status: 200,
    },
};

#[async_trait::async_trait]
impl Tool for ListTokens {
    type Request = ListTokensRequest;
    type Response = TokenList;

    fn spec(&self) -> &'static ToolSpec {
        &LIST_TOKENS_SPEC
    }

    async fn run(
        &self,
        tools: &Tools,
        _ctx: &CallContext,
        _request: ListTokensRequest,
    ) -> Result<TokenList, ToolError> {
        let store = tools.tokens.clone();
        let tokens = blocking(move || store.list()).await?;
        Ok(TokenList { tokens })
    }
}

/// `revoke_token`.
pub struct RevokeToken;

/// Name, role, hints and route of `revoke_token`.
pub static REVOKE_TOKEN_SPEC: ToolSpec = ToolSpec {
    name: "revoke_token",
    title: "Revoke a bearer token",
    description: "Revoke a token by id (admin only); it is refused at once on every transport.",
    endpoint: Endpoint::Tokens,
    hints: Hints {
        read_only: false,
        destructive: true,
        idempotent: true,
        open_world: false,
    },
    rest: RestRoute {
        method: RestMethod::Delete,
        path: "/admin/tokens/{id}",
        status: 204,
    },
};

#[async_trait::async_trait]
impl Tool for RevokeToken {
    type Request = RevokeTokenRequest;
    type Response = Revoked;

    fn spec(&self) -> &'static ToolSpec {
        &REVOKE_TOKEN_SPEC
    }

    async fn run(
        &self,
        tools: &Tools,
        _ctx: &CallContext,
        request: RevokeTokenRequest,
    ) -> Result<Revoked, ToolError> {
        let store = tools.tokens.clone();
        let id = request.id.clone();
        if blocking(move || store.revoke(&id)).await? {
            Ok(Revoked {
                revoked: request.id,
            })
        } else {
            Err(ToolError::NotFound {
                detail: format!("no active token with id {:?}", request.id),
            })
        }
    }
}

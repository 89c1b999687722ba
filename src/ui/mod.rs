//! The web console at `/ui`, for developers and admins, and the API docs page at `/docs`.
//! Server-rendered (minijinja templates and a stylesheet embedded in the binary; no
//! script on the console pages), so it needs nothing at run time but this process.
//!
//! **Sign-in.** A token is exchanged for a cookie holding it (`HttpOnly`,
//! `SameSite=Strict`, `Path=/ui`, `Secure` when the request came over TLS, as a proxy's
//! `X-Forwarded-Proto: https` says); every page authenticates it again, so a revoked
//! token is signed out at once. Agent tokens are refused at sign-in: agents never see the
//! record. **CSRF.** Every state-changing form carries a token derived from the session
//! (SHA-256 of the session token with a domain prefix), checked in constant time; the
//! sign-in form, which has no session yet, uses a random per-visit value mirrored in a
//! cookie. **One call path.** Every read and write a page does is a registry tool called
//! through [`crate::call`] (transport `console`), so it is role-gated exactly like the API
//! and audited once.

mod chart;
mod highlight;

use std::sync::OnceLock;

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::{Environment, Value as Tpl};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::{AuditEvent, CallContext, Transport};
use crate::auth::{Caller, Endpoint, Role};
use crate::call::{self, Args, Rendering};
use crate::tools::{ToolError, Tools, registry};

/// A template context from `name => value` pairs (or bare names), each value serialised
/// as minijinja sees it (its safe strings stay safe).
macro_rules! context {
    ($($key:ident $(=> $value:expr)?),* $(,)?) => {{
        let mut map = std::collections::BTreeMap::<&'static str, Tpl>::new();
        $( map.insert(stringify!($key), Tpl::from(minijinja::value::Serde(&context!(@value $key $(=> $value)?)))); )*
        Tpl::from(map)
    }};
    (@value $key:ident) => { $key };
    (@value $key:ident => $value:expr) => { $value };
}

/// The session cookie (its value is the bearer token).
const SESSION: &str = "sandgraph_session";
/// The sign-in form's CSRF cookie.
const LOGIN_CSRF: &str = "sandgraph_login";

const STYLESHEET: &str = include_str!("static/console.css");
const DOCS_SCRIPT: &str = include_str!("static/docs.js");

/// The console's routes, to be nested at `/ui`, and `/docs`.
pub fn routes() -> Router<Tools> {
    Router::new()
        .route("/ui", get(home))
        .route("/ui/", get(home))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/history", get(history))
        .route("/ui/runs/{id}", get(run))
        .route("/ui/code/{hash}", get(code))
        .route("/ui/audit", get(audit))
        .route("/ui/tokens", get(tokens).post(create_token))
        .route("/ui/tokens/{id}/revoke", post(revoke_token))
        .route("/ui/health", get(health))
        .route("/ui/static/console.css", get(stylesheet))
        .route("/ui/static/docs.js", get(docs_script))
        .route("/docs", get(docs))
}

/// Whether `path` belongs to the console or the docs (they authenticate by cookie, or
/// not at all, instead of by bearer token).
pub fn is_console_path(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/") || path == "/docs"
}

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("templates/base.html")),
            ("login.html", include_str!("templates/login.html")),
            ("history.html", include_str!("templates/history.html")),
            ("run.html", include_str!("templates/run.html")),
            ("code.html", include_str!("templates/code.html")),
            ("audit.html", include_str!("templates/audit.html")),
            ("tokens.html", include_str!("templates/tokens.html")),
            ("health.html", include_str!("templates/health.html")),
            ("error.html", include_str!("templates/error.html")),
            ("docs.html", include_str!("templates/docs.html")),
        ] {
            // The templates are part of the binary; a broken one is a build bug that
            // the console's tests catch.
            if let Err(err) = env.add_template(name, source) {
                tracing::error!(template = name, error = %err, "console template does not parse");
            }
        }
        env
    })
}

/// Security headers for every console page: no framing, no foreign scripts or styles
/// (the pages have no inline script or style), no caching of the record.
fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn render(status: StatusCode, name: &str, ctx: Tpl) -> Response {
    let html = templates()
        .get_template(name)
        .and_then(|template| template.render(ctx));
    match html {
        Ok(html) => secure((status, axum::response::Html(html)).into_response()),
        Err(err) => {
            tracing::error!(
                template = name,
                error = format!("{err:#}"),
                "rendering a console page failed"
            );
            secure(
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log",
                )
                    .into_response(),
            )
        }
    }
}

/// A signed-in caller and its CSRF token.
struct Session {
    caller: Caller,
    csrf: String,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The CSRF token of a session: a one-way function of its bearer token.
fn csrf_for(token: &str) -> String {
    hex::encode(Sha256::digest(format!("sandgraph console csrf\0{token}")))
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Whether the request reached us over TLS (directly or through a proxy that says so).
fn over_tls(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"));
    forwarded_proto || forwarded
}

fn set_cookie(
    headers: &HeaderMap,
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<u32>,
) -> HeaderValue {
    let mut text = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if over_tls(headers) {
        text.push_str("; Secure");
    }
    if let Some(seconds) = max_age {
        text.push_str(&format!("; Max-Age={seconds}"));
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl Session {
    /// The session of a request: its cookie's token, authenticated now.
    fn of(tools: &Tools, headers: &HeaderMap) -> Option<Session> {
        let token = cookie(headers, SESSION)?;
        let caller = crate::store::blocking(|| tools.tokens.authenticate(token))
            .ok()
            .flatten()?;
        // An agent token never gets a session (refused at sign-in); a cookie minted
        // for a token whose role changed is no session either.
        (caller.role >= Role::Developer).then(|| Session {
            caller,
            csrf: csrf_for(token),
        })
    }

    fn context(&self) -> CallContext {
        CallContext::new(self.caller.clone(), Transport::Console)
    }

    /// Call a registry tool as this caller, through the one pipeline.
    async fn call(&self, tools: &Tools, name: &str, args: Args) -> Result<Value, ToolError> {
        let tool = registry::all()
            .iter()
            .find(|tool| tool.spec().name == name)
            .ok_or_else(|| ToolError::Internal(anyhow::anyhow!("no tool named {name}")))?;
        let mut ctx = self.context();
        ctx.cancel = tools.shutdown.run_token();
        tool.call(tools, &ctx, args, Rendering::JsonOnly)
            .await
            .map(|called| called.body)
    }

    fn page(&self, active: &str) -> Tpl {
        Tpl::from(minijinja::value::Serde(json!({
            "name": self.caller.name,
            "role": self.caller.role.as_str(),
            "admin": self.caller.role >= Role::Admin,
            "csrf": self.csrf,
            "active": active,
        })))
    }
}

fn to_login() -> Response {
    secure(Redirect::to("/ui/login").into_response())
}

fn error_page(session: Option<&Session>, error: ToolError) -> Response {
    let (status, title) = match &error {
        ToolError::Forbidden { .. } => (StatusCode::FORBIDDEN, "Not allowed"),
        ToolError::NotFound { .. } => (StatusCode::NOT_FOUND, "Not found"),
        ToolError::Invalid { .. } | ToolError::Unreadable { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "That did not work")
        }
        ToolError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "Slow down"),
        ToolError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong"),
    };
    let detail = match &error {
        ToolError::Internal(err) => {
            tracing::error!(error = format!("{err:#}"), "console call failed");
            "internal error; see the server log".to_owned()
        }
        other => other.to_string(),
    };
    render(
        status,
        "error.html",
        context! { page => session.map(|s| s.page("")), title, detail },
    )
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn docs_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        DOCS_SCRIPT,
    )
        .into_response()
}

async fn home(State(tools): State<Tools>, headers: HeaderMap) -> Response {
    match Session::of(&tools, &headers) {
        Some(_) => secure(Redirect::to("/ui/history").into_response()),
        None => to_login(),
    }
}

async fn login_page(State(tools): State<Tools>, headers: HeaderMap) -> Response {
    if Session::of(&tools, &headers).is_some() {
        return secure(Redirect::to("/ui/history").into_response());
    }
    login_form(&headers, StatusCode::OK, None)
}

fn login_form(headers: &HeaderMap, status: StatusCode, error: Option<String>) -> Response {
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    let mut response = render(status, "login.html", context! { csrf => nonce, error });
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(headers, LOGIN_CSRF, &nonce, "/ui/login", Some(600)),
    );
    response
}

#[derive(Default, Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

async fn login(
    State(tools): State<Tools>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    // A body that is not a form carries no CSRF token: refused like a wrong one.
    let form = form.map(|Form(form)| form).unwrap_or_default();
    let expected = cookie(&headers, LOGIN_CSRF).unwrap_or_default();
    if expected.is_empty() || !same(expected, &form.csrf) {
        return login_form(
            &headers,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired; please try again.".to_owned()),
        );
    }
    let token = form.token.trim();
    let caller = crate::store::blocking(|| tools.tokens.authenticate(token));
    let caller = match caller {
        Ok(Some(caller)) => caller,
        Ok(None) => {
            let request_id = uuid::Uuid::new_v4().to_string();
            tools.audit.record(AuditEvent::unauthenticated(
                "console_sign_in",
                Transport::Console,
                &request_id,
                if token.is_empty() {
                    "missing token"
                } else {
                    "invalid token"
                },
            ));
            return login_form(
                &headers,
                StatusCode::UNAUTHORIZED,
                Some("That token is not valid (or was revoked).".to_owned()),
            );
        }
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "token lookup failed");
            return login_form(
                &headers,
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("Internal error; see the server log.".to_owned()),
            );
        }
    };
    // The sign-in is audited, and refused below developer like the history tools are.
    let ctx = CallContext::new(caller, Transport::Console);
    if let Err(error) = call::audited(&tools, &ctx, Endpoint::History, "console_sign_in", async {
        Ok(())
    })
    .await
    {
        let message = match error {
            ToolError::Forbidden { .. } => format!(
                "The console is for developers and admins; a {} token cannot sign in.",
                ctx.caller.role.as_str()
            ),
            other => other.to_string(),
        };
        return login_form(&headers, StatusCode::FORBIDDEN, Some(message));
    }
    let mut response = secure(Redirect::to("/ui/history").into_response());
    let response_headers = response.headers_mut();
    response_headers.append(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION, token, "/ui", None),
    );
    response_headers.append(
        header::SET_COOKIE,
        set_cookie(&headers, LOGIN_CSRF, "", "/ui/login", Some(0)),
    );
    response
}

/// A form whose only field is its CSRF token (missing is the same as wrong).
#[derive(Default, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// The session of a state-changing request, if its CSRF token matches.
fn checked(tools: &Tools, headers: &HeaderMap, csrf: &str) -> Result<Session, Box<Response>> {
    let Some(session) = Session::of(tools, headers) else {
        return Err(Box::new(to_login()));
    };
    if !same(&session.csrf, csrf) {
        return Err(Box::new(render(
            StatusCode::FORBIDDEN,
            "error.html",
            context! {
                page => session.page(""),
                title => "Form expired",
                detail => "This form's security token did not match; reload the page and try again.",
            },
        )));
    }
    Ok(session)
}

async fn logout(
    State(tools): State<Tools>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    // A body that is not a form carries no CSRF token: refused like a wrong one.
    let form = form.map(|Form(form)| form).unwrap_or_default();
    if let Err(refused) = checked(&tools, &headers, &form.csrf) {
        return *refused;
    }
    let mut response = secure(Redirect::to("/ui/login").into_response());
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION, "", "/ui", Some(0)),
    );
    response
}

/// A console query string for a tool: empty fields dropped (an empty filter means "any"),
/// `datetime-local` times read as UTC.
fn tool_query(raw: Option<String>, times: &[&str]) -> (String, Vec<(String, String)>) {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let kept: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(key, value)| {
            let value = value.trim().to_owned();
            if times.contains(&key.as_str()) {
                let value = local_time_as_utc(&value).unwrap_or(value);
                (key, value)
            } else {
                (key, value)
            }
        })
        .collect();
    (serde_urlencoded::to_string(&kept).unwrap_or_default(), kept)
}

fn local_time_as_utc(value: &str) -> Option<String> {
    if chrono::DateTime::parse_from_rfc3339(value).is_ok() {
        return Some(value.to_owned());
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| chrono::NaiveDateTime::parse_from_str(value, format).ok())
        .map(|t| t.and_utc().to_rfc3339())
}

/// The filter values to show back in a form (the times as `datetime-local` wants them).
fn form_values(kept: &[(String, String)]) -> Value {
    let mut map = serde_json::Map::new();
    for (key, value) in kept {
        let shown = chrono::DateTime::parse_from_rfc3339(value)
            .ok()
            .filter(|_| key == "since" || key == "until")
            .map(|t| t.naive_utc().format("%Y-%m-%dT%H:%M").to_string())
            .unwrap_or_else(|| value.clone());
        map.insert(key.clone(), Value::String(shown));
    }
    Value::Object(map)
}

/// The link to the next page: the same filters and `cursor`.
fn next_link(base: &str, kept: &[(String, String)], cursor: Option<&str>) -> Option<String> {
    let cursor = cursor?;
    let mut pairs: Vec<(String, String)> = kept
        .iter()
        .filter(|(k, _)| k != "cursor")
        .cloned()
        .collect();
    pairs.push(("cursor".into(), cursor.to_owned()));
    Some(format!(
        "{base}?{}",
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    ))
}

/// Extra display fields for a record.
fn decorate(record: &mut Value) {
    let duration = record["duration_seconds"].as_f64().unwrap_or(0.0);
    record["duration"] = json!(chart::seconds(duration));
    if let Some(at) = record["created_at"].as_str() {
        record["when"] = json!(short_time(at));
    }
    if let Some(at) = record["at"].as_str() {
        record["when"] = json!(short_time(at));
    }
    if let Some(ms) = record["duration_ms"].as_f64() {
        record["ms"] = json!(format!("{ms:.1}"));
    }
}

fn short_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

const TOOLS_WITH_RECORDS: &[&str] = &[
    "execute_code",
    "lint_code",
    "run_tests",
    "generate_code",
    "graph_query",
    "graph_upsert",
];
const OUTCOMES: &[&str] = &[
    "ok",
    "error",
    "timeout",
    "memory_limit",
    "output_limit",
    "file_quota",
    "cancelled",
];

async fn history(
    State(tools): State<Tools>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(session) = Session::of(&tools, &headers) else {
        return to_login();
    };
    let (query, kept) = tool_query(raw, &["since", "until"]);
    let page = match session
        .call(&tools, "execution_history", Args::Query(query))
        .await
    {
        Ok(page) => page,
        Err(error) => return error_page(Some(&session), error),
    };
    let mut items = page["items"].as_array().cloned().unwrap_or_default();
    items.iter_mut().for_each(decorate);
    let next = next_link("/ui/history", &kept, page["next_cursor"].as_str());
    render(
        StatusCode::OK,
        "history.html",
        context! {
            page => session.page("history"),
            items,
            next,
            filters => form_values(&kept),
            filtered => kept.iter().any(|(k, _)| k != "cursor"),
            tools => TOOLS_WITH_RECORDS,
            outcomes => OUTCOMES,
            languages => ["python", "javascript", "cypher", "jinja"],
        },
    )
}

async fn run(State(tools): State<Tools>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(session) = Session::of(&tools, &headers) else {
        return to_login();
    };
    let query = serde_urlencoded::to_string([("id", &id)]).unwrap_or_default();
    let mut record = match session
        .call(&tools, "get_execution", Args::Query(query))
        .await
    {
        Ok(record) => record,
        Err(error) => return error_page(Some(&session), error),
    };
    decorate(&mut record);
    let language = record["code"]["language"]
        .as_str()
        .or(record["language"].as_str())
        .map(str::to_owned);
    let syntax = match record["tool"].as_str() {
        Some("generate_code") => Some("jinja".to_owned()),
        _ => language,
    };
    let source = record["code"]["source"]
        .as_str()
        .map(|s| Tpl::from_safe_string(highlight::highlight(s, syntax.as_deref())));
    let tests = record["code"]["tests"]
        .as_str()
        .map(|s| Tpl::from_safe_string(highlight::highlight(s, syntax.as_deref())));
    let limits: Option<Value> = record["limits"]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok());
    // The call's own audit trail is the audit log's, so admins only.
    let trail = if session.caller.role >= Role::Admin {
        let request_id = record["request_id"].as_str().unwrap_or_default();
        let query = serde_urlencoded::to_string([("request_id", request_id)]).unwrap_or_default();
        match session.call(&tools, "audit_log", Args::Query(query)).await {
            Ok(page) => {
                let mut items = page["items"].as_array().cloned().unwrap_or_default();
                items.iter_mut().for_each(decorate);
                Some(items)
            }
            Err(error) => return error_page(Some(&session), error),
        }
    } else {
        None
    };
    render(
        StatusCode::OK,
        "run.html",
        context! {
            page => session.page("history"),
            record,
            source,
            tests,
            limits,
            trail,
        },
    )
}

async fn code(
    State(tools): State<Tools>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Response {
    let Some(session) = Session::of(&tools, &headers) else {
        return to_login();
    };
    let stats_query = serde_urlencoded::to_string([("code_hash", &hash)]).unwrap_or_default();
    let mut stats = match session
        .call(&tools, "code_stats", Args::Query(stats_query.clone()))
        .await
    {
        Ok(stats) => stats,
        Err(error) => return error_page(Some(&session), error),
    };
    let runs_query = format!("{stats_query}&limit=200");
    let runs = match session
        .call(&tools, "execution_history", Args::Query(runs_query))
        .await
    {
        Ok(page) => page,
        Err(error) => return error_page(Some(&session), error),
    };
    let mut items = runs["items"].as_array().cloned().unwrap_or_default();
    let mut points: Vec<chart::Point> = items
        .iter()
        .map(|r| chart::Point {
            ts: r["ts"].as_i64().unwrap_or(0),
            duration: r["duration_seconds"].as_f64().unwrap_or(0.0),
            ok: r["outcome"] == "ok",
        })
        .collect();
    let chart = chart::duration_chart(&mut points).map(Tpl::from_safe_string);
    items.iter_mut().for_each(decorate);
    stats["failure_percent"] = json!(format!(
        "{:.1}",
        stats["failure_rate"].as_f64().unwrap_or(0.0) * 100.0
    ));
    stats["median"] = json!(stats["p50_duration_seconds"].as_f64().map(chart::seconds));
    if let Some(first) = stats["first_seen"].as_str() {
        stats["first"] = json!(short_time(first));
    }
    if let Some(last) = stats["last_seen"].as_str() {
        stats["last"] = json!(short_time(last));
    }
    let more = runs["next_cursor"].is_string();
    render(
        StatusCode::OK,
        "code.html",
        context! { page => session.page("history"), stats, chart, items, more, hash },
    )
}

async fn audit(
    State(tools): State<Tools>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(session) = Session::of(&tools, &headers) else {
        return to_login();
    };
    let (query, kept) = tool_query(raw, &["since", "until"]);
    let page = match session.call(&tools, "audit_log", Args::Query(query)).await {
        Ok(page) => page,
        Err(error) => return error_page(Some(&session), error),
    };
    let mut items = page["items"].as_array().cloned().unwrap_or_default();
    items.iter_mut().for_each(decorate);
    let next = next_link("/ui/audit", &kept, page["next_cursor"].as_str());
    render(
        StatusCode::OK,
        "audit.html",
        context! {
            page => session.page("audit"),
            items,
            next,
            filters => form_values(&kept),
            filtered => kept.iter().any(|(k, _)| k != "cursor"),
            decisions => ["allowed", "cache_hit", "forbidden", "rate_limited", "unauthenticated"],
        },
    )
}

async fn tokens(State(tools): State<Tools>, headers: HeaderMap) -> Response {
    let Some(session) = Session::of(&tools, &headers) else {
        return to_login();
    };
    tokens_page(&tools, &session, None).await
}

async fn tokens_page(tools: &Tools, session: &Session, created: Option<Value>) -> Response {
    let list = match session
        .call(tools, "list_tokens", Args::Query(String::new()))
        .await
    {
        Ok(list) => list,
        Err(error) => return error_page(Some(session), error),
    };
    let mut items = list["tokens"].as_array().cloned().unwrap_or_default();
    for item in &mut items {
        if let Some(at) = item["created_at"].as_str() {
            item["created"] = json!(short_time(at));
        }
        if let Some(at) = item["revoked_at"].as_str() {
            item["revoked"] = json!(short_time(at));
        }
    }
    render(
        if created.is_some() {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        "tokens.html",
        context! {
            page => session.page("tokens"),
            items,
            created,
            roles => ["agent", "developer", "admin"],
        },
    )
}

#[derive(Default, Deserialize)]
struct CreateTokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

async fn create_token(
    State(tools): State<Tools>,
    headers: HeaderMap,
    form: Result<Form<CreateTokenForm>, FormRejection>,
) -> Response {
    // A body that is not a form carries no CSRF token: refused like a wrong one.
    let form = form.map(|Form(form)| form).unwrap_or_default();
    let session = match checked(&tools, &headers, &form.csrf) {
        Ok(session) => session,
        Err(refused) => return *refused,
    };
    let args = Args::Json(json!({ "name": form.name.trim(), "role": form.role }));
    match session.call(&tools, "create_token", args).await {
        Ok(created) => tokens_page(&tools, &session, Some(created)).await,
        Err(error) => error_page(Some(&session), error),
    }
}

async fn revoke_token(
    State(tools): State<Tools>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    // A body that is not a form carries no CSRF token: refused like a wrong one.
    let form = form.map(|Form(form)| form).unwrap_or_default();
    let session = match checked(&tools, &headers, &form.csrf) {
        Ok(session) => session,
        Err(refused) => return *refused,
    };
    let query = serde_urlencoded::to_string([("id", &id)]).unwrap_or_default();
    match session
        .call(&tools, "revoke_token", Args::Query(query))
        .await
    {
        Ok(_) => secure(Redirect::to("/ui/tokens").into_response()),
        Err(error) => error_page(Some(&session), error),
    }
}

async fn health(State(tools): State<Tools>, headers: HeaderMap) -> Response {
    let Some(session) = Session::of(&tools, &headers) else {
        return to_login();
    };
    let neo4j = match &tools.neo4j {
        Some(neo4j) => Some(json!({
            "reachable": neo4j.ping().await,
            "breaker": neo4j.breaker_state(),
        })),
        None => None,
    };
    let body = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "sandbox": tools.sandbox.status(),
        "cache": tools.cache.stats(),
        "store": {
            "backend": tools.history.backend(),
            "outbox_depth": tools.store.outbox_depth(),
            "outbox_limit": tools.store.outbox_limit(),
        },
        "neo4j": neo4j,
        "source_kept": tools.config.store_source,
    });
    render(
        StatusCode::OK,
        "health.html",
        context! { page => session.page("health"), health => body },
    )
}

/// `/docs`: every operation of `/openapi.json` with its arguments, answers and a form to
/// try it (the script sends the call with a token typed into the page; nothing is
/// stored).
async fn docs(State(tools): State<Tools>, headers: HeaderMap) -> Response {
    let document = crate::api::openapi::document();
    let mut operations = Vec::new();
    if let Some(paths) = document["paths"].as_object() {
        for (path, methods) in paths {
            for (method, op) in methods.as_object().into_iter().flatten() {
                let body_schema =
                    op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                        .as_str()
                        .and_then(|r| r.rsplit('/').next())
                        .map(|name| document["components"]["schemas"][name].clone());
                let example = body_schema.as_ref().map(example_body);
                let mut responses: Vec<(String, String)> = op["responses"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(status, r)| {
                        (
                            status.clone(),
                            r["description"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect();
                responses.sort();
                operations.push(json!({
                    "id": op["operationId"].as_str().unwrap_or(path),
                    "method": method.to_uppercase(),
                    "path": path,
                    "summary": op["summary"],
                    "description": op["description"],
                    "role": op["x-sandgraph-role"],
                    "open": op["security"].as_array().is_some_and(Vec::is_empty),
                    "tag": op["tags"][0],
                    "parameters": op["parameters"],
                    "example": example.map(|e| serde_json::to_string_pretty(&e).unwrap_or_default()),
                    "responses": responses,
                }));
            }
        }
    }
    let session = Session::of(&tools, &headers);
    render(
        StatusCode::OK,
        "docs.html",
        context! {
            page => session.as_ref().map(|s| s.page("docs")),
            operations,
            tags => document["tags"].clone(),
            info => document["info"].clone(),
        },
    )
}

/// A starting body for the try-it form: the required properties with placeholder values.
fn example_body(schema: &Value) -> Value {
    let mut body = serde_json::Map::new();
    let required = schema["required"].as_array().cloned().unwrap_or_default();
    for name in required.iter().filter_map(Value::as_str) {
        let property = &schema["properties"][name];
        let value = match property["type"].as_str() {
            Some("integer") | Some("number") => json!(1),
            Some("boolean") => json!(true),
            Some("array") => json!([]),
            Some("object") => json!({}),
            _ if name == "code" => json!("print('hello')"),
            _ if name == "role" => json!("agent"),
            _ => json!(""),
        };
        body.insert(name.to_owned(), value);
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let env = templates();
        for name in [
            "base.html",
            "login.html",
            "history.html",
            "run.html",
            "code.html",
            "audit.html",
            "tokens.html",
            "health.html",
            "error.html",
            "docs.html",
        ] {
            env.get_template(name)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }

    #[test]
    fn empty_filters_are_dropped_and_local_times_read_as_utc() {
        let (query, kept) = tool_query(
            Some("caller=&tool=execute_code&since=2026-01-02T03:04&until=".into()),
            &["since", "until"],
        );
        assert_eq!(kept.len(), 2);
        assert!(
            query.starts_with("tool=execute_code&since=2026-01-02T03%3A04%3A00%2B00%3A00"),
            "{query}"
        );
        let shown = form_values(&kept);
        assert_eq!(shown["since"], "2026-01-02T03:04");
    }

    #[test]
    fn the_csrf_token_is_tied_to_the_session_and_compared_whole() {
        let a = csrf_for("sg_a");
        assert_ne!(a, csrf_for("sg_b"));
        assert!(same(&a, &csrf_for("sg_a")));
        assert!(!same(&a, &a[..10]));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_behind_tls() {
        let plain = HeaderMap::new();
        let cookie = set_cookie(&plain, SESSION, "v", "/ui", None);
        let text = cookie.to_str().unwrap();
        assert!(text.contains("HttpOnly") && text.contains("SameSite=Strict"));
        assert!(!text.contains("Secure"));
        let mut tls = HeaderMap::new();
        tls.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(
            set_cookie(&tls, SESSION, "v", "/ui", None)
                .to_str()
                .unwrap()
                .contains("; Secure")
        );
    }
}

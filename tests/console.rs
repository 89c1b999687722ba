//! The web console over HTTP: sign-in and its cookie's flags, CSRF on every
//! state-changing form, roles exactly as in the API, and every page's reads audited once
//! as tool calls on the `console` transport. (The real-browser test is
//! tests/python/test_console_browser.py.)

mod common;

use common::TestServer;
use common::contract::{caller_id, uuid_like};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

/// URL-encoded form bodies (reqwest's `form` needs a feature the tests do without).
trait FormBody {
    fn form_body<T: serde::Serialize + ?Sized>(self, form: &T) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body<T: serde::Serialize + ?Sized>(self, form: &T) -> Self {
        self.header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(serde_urlencoded::to_string(form).unwrap())
    }
}

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `name=value` of a `Set-Cookie` named `name`, and the whole header.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| (v.split(';').next().unwrap().to_owned(), v.to_owned()))
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// Sign in with `token`; the response to the sign-in POST.
async fn sign_in_response(
    server: &TestServer,
    token: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let client = plain_client();
    let mut form_request = client.get(server.url("/ui/login"));
    for (k, v) in extra {
        form_request = form_request.header(*k, *v);
    }
    let form = form_request.send().await.unwrap();
    let (login_cookie, _) = set_cookie(&form, "sandgraph_login").expect("login cookie");
    let csrf = hidden(&form.text().await.unwrap(), "csrf");
    let mut post = client
        .post(server.url("/ui/login"))
        .header(COOKIE, login_cookie)
        .form_body(&[("token", token), ("csrf", csrf.as_str())]);
    for (k, v) in extra {
        post = post.header(*k, *v);
    }
    post.send().await.unwrap()
}

/// A signed-in session: its cookie and its CSRF token.
async fn sign_in(server: &TestServer, token: &str) -> (String, String) {
    let response = sign_in_response(server, token, &[]).await;
    assert_eq!(response.status(), 303);
    let (cookie, _) = set_cookie(&response, "sandgraph_session").expect("session cookie");
    let page = plain_client()
        .get(server.url("/ui/history"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csrf = hidden(&page.text().await.unwrap(), "csrf");
    (cookie, csrf)
}

async fn get_page(server: &TestServer, cookie: &str, path: &str) -> (u16, String) {
    let response = plain_client()
        .get(server.url(path))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_and_secure_behind_tls() {
    let server = TestServer::spawn();
    let response = sign_in_response(&server, &server.admin_token, &[]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()[LOCATION], "/ui/history");
    let (_, header) = set_cookie(&response, "sandgraph_session").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(header.contains(flag), "{header}");
    }
    assert!(!header.contains("Secure"), "plain HTTP: {header}");
    let behind_tls = sign_in_response(
        &server,
        &server.admin_token,
        &[("x-forwarded-proto", "https")],
    )
    .await;
    let (_, header) = set_cookie(&behind_tls, "sandgraph_session").unwrap();
    assert!(header.contains("; Secure"), "{header}");
}

#[tokio::test]
async fn state_changing_forms_without_the_csrf_token_are_refused() {
    let server = TestServer::spawn();
    let (cookie, csrf) = sign_in(&server, &server.admin_token).await;
    let name = format!("csrf-{}", uuid_like());
    let client = plain_client();
    for form in [
        vec![("name", name.as_str()), ("role", "agent")],
        vec![("name", name.as_str()), ("role", "agent"), ("csrf", "0000")],
    ] {
        let response = client
            .post(server.url("/ui/tokens"))
            .header(COOKIE, &cookie)
            .form_body(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
    }
    let tokens = server.get_json("/admin/tokens").await;
    assert!(
        tokens["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["name"] != name.as_str()),
        "no token was created: {tokens}"
    );
    // Sign-out and revocation need it too; sign-in needs its own.
    let response = client
        .post(server.url("/ui/logout"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = client
        .post(server.url("/ui/login"))
        .form_body(&[("token", server.admin_token.as_str()), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(set_cookie(&response, "sandgraph_session").is_none());

    // With the token, it works: created, shown once, then revoked.
    let response = client
        .post(server.url("/ui/tokens"))
        .header(COOKIE, &cookie)
        .form_body(&[
            ("name", name.as_str()),
            ("role", "agent"),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let html = response.text().await.unwrap();
    assert!(html.contains("id=\"new-token\">sg_"), "{html}");
    let id = caller_id(&server, &name);
    let response = client
        .post(server.url(&format!("/ui/tokens/{id}/revoke")))
        .header(COOKIE, &cookie)
        .form_body(&[("csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = client
        .post(server.url(&format!("/ui/tokens/{id}/revoke")))
        .header(COOKIE, &cookie)
        .form_body(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let tokens = server.get_json("/admin/tokens").await;
    let revoked = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap();
    assert!(revoked["revoked_at"].is_string(), "{revoked}");

    // Signing out clears the cookie.
    let response = client
        .post(server.url("/ui/logout"))
        .header(COOKIE, &cookie)
        .form_body(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let (_, header) = set_cookie(&response, "sandgraph_session").unwrap();
    assert!(header.contains("Max-Age=0"), "{header}");
}

#[tokio::test]
async fn roles_gate_the_console_like_the_api_and_every_read_is_audited_once() {
    let server = TestServer::spawn();
    // Agents never see the record: refused at sign-in, audited as forbidden.
    let agent = server.create_token("agent", &format!("agent-{}", uuid_like()));
    let response = sign_in_response(&server, &agent, &[]).await;
    assert_eq!(response.status(), 403);
    assert!(set_cookie(&response, "sandgraph_session").is_none());
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("a agent token cannot sign in")
    );
    let refused = server
        .get_json("/audit_log?endpoint=console_sign_in&event_type=forbidden")
        .await;
    assert_eq!(refused["items"].as_array().unwrap().len(), 1, "{refused}");
    // An agent's token as a hand-made cookie is no session either.
    let (status, _) = get_page(
        &server,
        &format!("sandgraph_session={agent}"),
        "/ui/history",
    )
    .await;
    assert_eq!(status, 303);
    let response = sign_in_response(&server, "sg_not_a_token", &[]).await;
    assert_eq!(response.status(), 401);

    let name = format!("dev-{}", uuid_like());
    let developer = server.create_token("developer", &name);
    let code = format!("print('{name}')");
    let run = server.python(&code).await;
    let (cookie, _) = sign_in(&server, &developer).await;
    let (status, html) = get_page(
        &server,
        &cookie,
        "/ui/history?tool=execute_code&caller=&language=python",
    )
    .await;
    assert_eq!(status, 200);
    let id = run["id"].as_str().unwrap();
    assert!(html.contains(&format!("/ui/runs/{id}")), "{html}");
    let (status, html) = get_page(&server, &cookie, &format!("/ui/runs/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&name), "the source is on the page");
    assert!(
        !html.contains("Audit trail"),
        "the audit trail is the admins'"
    );
    let (status, _) = get_page(&server, &cookie, "/ui/audit").await;
    assert_eq!(status, 403);
    let (status, _) = get_page(&server, &cookie, "/ui/tokens").await;
    assert_eq!(status, 403);
    let (status, html) = get_page(&server, &cookie, "/ui/history?since=not-a-time").await;
    assert_eq!(status, 422, "{html}");

    let developer_id = caller_id(&server, &name);
    let events = server
        .get_json(&format!("/audit_log?caller={developer_id}&limit=200"))
        .await;
    let events = events["items"].as_array().unwrap();
    let mut seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            assert_eq!(e["transport"], "console", "{e}");
            (
                e["endpoint"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    seen.sort();
    let mut expected: Vec<(String, String)> = [
        ("audit_log", "refused"),
        ("console_sign_in", "ok"),
        ("execution_history", "ok"),
        ("execution_history", "ok"),
        ("execution_history", "refused"),
        ("get_execution", "ok"),
        ("list_tokens", "refused"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    expected.sort();
    assert_eq!(
        seen, expected,
        "one audit event per read, with its real outcome"
    );
}

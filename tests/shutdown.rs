//! SIGTERM drains: in-flight calls finish within the grace period or are cancelled and
//! recorded, the process exits 0, and nothing acknowledged is lost (checked after a
//! restart on the same data directory).

mod common;

use std::time::Duration;

use common::{TestServer, client_with_token};
use serde_json::{Value, json};

#[tokio::test]
async fn sigterm_during_load_finishes_or_cancels_every_call_and_loses_nothing() {
    let server = TestServer::spawn_with(&[
        ("SANDGRAPH_SHUTDOWN_GRACE_MS", "2000"),
        ("SANDGRAPH_RATE_LIMIT", "100000/second"),
    ]);
    let base = server.base.clone();
    let http = server.http.clone();
    let call = |code: String, timeout: f64| {
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(async move {
            let response = http
                .post(format!("{base}/execute_code"))
                .json(&json!({"code": code, "timeout_seconds": timeout, "cache": false}))
                .send()
                .await;
            match response {
                Ok(r) => {
                    let status = r.status().as_u16();
                    (status, r.json::<Value>().await.unwrap_or(Value::Null))
                }
                Err(_) => (0, Value::Null),
            }
        })
    };
    let mut quick = Vec::new();
    for i in 0..6 {
        quick.push(call(format!("print({i})"), 8.0));
    }
    let mut slow = Vec::new();
    for i in 0..3 {
        slow.push(call(
            format!("import time\ntime.sleep(0.8)\nprint('slow {i}')"),
            8.0,
        ));
    }
    let spinner = call("while True: pass".to_owned(), 30.0);
    // Terminate while the slow runs and the spinner are in flight.
    loop {
        let health = server.get_json("/health").await;
        if health["sandbox"]["active_runs"].as_u64().unwrap_or(0) >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopping = tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(30)));
    let mut acknowledged = Vec::new();
    for task in quick.into_iter().chain(slow) {
        let (status, body) = task.await.unwrap();
        // Calls already accepted finish within the grace period.
        assert_eq!(status, 200, "{body}");
        acknowledged.push(body["id"].as_str().unwrap().to_owned());
    }
    let (spinner_status, _) = spinner.await.unwrap();
    assert_ne!(
        spinner_status, 200,
        "the spinner cannot finish: it is cancelled"
    );
    let (status, data_dir) = stopping.await.unwrap();
    let status = status.expect("sandgraph did not exit within 30 s of SIGTERM");
    assert!(status.success(), "exit status {status:?}");

    let restarted = TestServer::spawn_in(data_dir, &[], false);
    for id in &acknowledged {
        let (code, record) =
            common::contract::get_as(&restarted, &restarted.http, &format!("/executions/{id}"))
                .await;
        assert_eq!(code, 200, "acknowledged {id} lost: {record}");
    }
    let (_, cancelled) = common::contract::get_as(
        &restarted,
        &client_with_token(&restarted.admin_token),
        "/execution_history?outcome=cancelled",
    )
    .await;
    let items = cancelled["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        1,
        "the spinner is recorded as cancelled: {cancelled}"
    );
    assert_eq!(items[0]["return_code"], 130);
}

//! The HTTP listener: hyper's HTTP/1.1 server with limits a stranger cannot get around.
//!
//! `axum::serve` keeps every connection for as long as the client likes: one that sends
//! its headers a byte a second, or never sends anything, or thousands of idle ones, are
//! held open indefinitely. Here:
//!
//! * **Headers in time.** A client has [`HttpLimits::header_timeout`] to send a
//!   request's whole head, counted from when the server starts waiting for it: from the
//!   connection's start for the first request, and from the end of the previous response
//!   on a kept-alive connection (so it is the idle timeout too). Only HTTP/1.1 is served,
//!   so there is no protocol sniffing before hyper's timer runs.
//! * **Bodies in time.** A request body must arrive whole within
//!   [`HttpLimits::body_timeout`] of the request's start; past it the read fails and the
//!   call is answered 408.
//! * **A cap on connections.** Past [`HttpLimits::max_connections`] open connections a
//!   new one is answered `503` with `Retry-After` (one non-blocking write) and closed.
//! * **A cap on requests in flight.** Past [`HttpLimits::max_in_flight`] requests being
//!   served at once (a streamed response counts until it ends), a request is answered
//!   `503` with `Retry-After` before any work is done for it. The probes and `/metrics`
//!   are exempt (cheap, and a refused liveness probe would get a busy server restarted).
//!
//! Each connection's peer address is attached to its requests as axum's
//! `ConnectInfo<SocketAddr>`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Time to send a request's head (and the longest a kept-alive connection idles).
    pub header_timeout: Duration,
    /// Time to send a whole request body, from the request's start.
    pub body_timeout: Duration,
    /// Most open connections.
    pub max_connections: usize,
    /// Most requests served at once.
    pub max_in_flight: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_in_flight: 512,
        }
    }
}

/// What a request body that outlived its deadline fails with (the API answers 408).
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}; send it faster or in a smaller request")]
pub struct BodyTimedOut(pub Duration);

/// The answer to a connection or request over a cap.
const BUSY_DETAIL: &str =
    "the server is at its limit of open connections or requests in flight; retry shortly";

/// Serve `router` on `listener` under `limits` until `stop` resolves; then stop
/// accepting, let open connections finish their requests (idle ones close at once), and
/// return when they have.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            metrics::counter!("sandgraph_http_refused_total", "reason" => "connections")
                .increment(1);
            refuse_connection(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = {
            let (router, in_flight) = (router.clone(), in_flight.clone());
            hyper::service::service_fn(move |request: Request<Incoming>| {
                handle(router.clone(), in_flight.clone(), limits, peer, request)
            })
        };
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            metrics::gauge!("sandgraph_http_connections").increment(1.0);
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, %peer, "connection ended with an error");
            }
            metrics::gauge!("sandgraph_http_connections").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

async fn handle(
    router: Router,
    in_flight: Arc<Semaphore>,
    limits: HttpLimits,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    // Probes and scrapes are cheap and must keep working when the server is busy (a
    // liveness probe refused under load would get a busy server restarted).
    let exempt = matches!(
        request.uri().path(),
        "/health" | "/health/ready" | "/metrics"
    );
    let permit = match in_flight.try_acquire_owned() {
        Ok(permit) => Some(permit),
        Err(_) if exempt => None,
        Err(_) => {
            metrics::counter!("sandgraph_http_refused_total", "reason" => "in_flight").increment(1);
            return Ok(busy());
        }
    };
    let deadline = tokio::time::Instant::now() + limits.body_timeout;
    let mut request =
        request.map(|body| Body::new(DeadlineBody::new(body, deadline, limits.body_timeout)));
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = router.oneshot(request).await?;
    // The request stays in flight until its response body ends (a stream included).
    Ok(response.map(|body| {
        Body::new(body.map_frame(move |frame| {
            let _ = &permit;
            frame
        }))
    }))
}

/// 503 + `Retry-After` with the API's JSON error body.
fn busy() -> Response<Body> {
    let body = serde_json::json!({ "detail": BUSY_DETAIL }).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Answer a connection over the cap with a 503 in one non-blocking write, then close it
/// (nothing is kept for it: if the socket cannot take the answer at once, it gets none).
fn refuse_connection(stream: tokio::net::TcpStream) {
    let body = serde_json::json!({ "detail": BUSY_DETAIL }).to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(answer.as_bytes());
}

/// A request body that fails once `deadline` passes before it has all arrived.
struct DeadlineBody {
    body: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
}

impl DeadlineBody {
    fn new(body: Incoming, deadline: tokio::time::Instant, timeout: Duration) -> Self {
        Self {
            body,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            timeout,
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut(self.timeout)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Whether `err` (or what caused it) is a [`BodyTimedOut`].
pub fn is_body_timeout<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyTimedOut> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(timed_out) = err.downcast_ref::<BodyTimedOut>() {
            return Some(timed_out);
        }
        current = err.source();
    }
    None
}

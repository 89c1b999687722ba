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
//!   [`HttpLimits::body_timeout`] of the request's start, plus a second per 64 KiB of its
//!   declared length (so a large upload on a slow link is not cut, and a trickle still
//!   is); past it the read fails and the call is answered 408.
//! * **Answers read in time.** A response write that makes no progress for
//!   [`HttpLimits::write_timeout`] (a client that stops reading, e.g. one that pipelines
//!   requests and never reads the answers) closes the connection.
//! * **A cap on connections.** Past [`HttpLimits::max_connections`] open connections a
//!   new one may still ask for `/health`, `/health/ready` or `/metrics` (up to
//!   [`PROBE_CONNECTIONS`] such connections, each given [`PROBE_HEADER_TIMEOUT`] to send
//!   its request), so a full server is not restarted by its liveness probe; any other
//!   request on it is answered `503` with `Retry-After`, and past those places too a new
//!   connection is answered `503` in one non-blocking write and closed.
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
use axum::http::{Method, Request, Response, StatusCode, header};
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Time to send a request's head (and the longest a kept-alive connection idles).
    pub header_timeout: Duration,
    /// Time to send a whole request body, from the request's start (plus a second per
    /// [`BODY_BYTES_PER_SECOND`] declared).
    pub body_timeout: Duration,
    /// Longest a response write may make no progress.
    pub write_timeout: Duration,
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
            write_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_in_flight: 512,
        }
    }
}

/// What a request body that outlived its deadline fails with (the API answers 408).
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}; send it faster or in a smaller request")]
pub struct BodyTimedOut(pub Duration);

/// A body declared this long gets a second more than [`HttpLimits::body_timeout`].
pub const BODY_BYTES_PER_SECOND: u64 = 64 * 1024;

/// The most extra time a declared body length buys (a lie about the length buys no more).
const MAX_BODY_EXTRA: Duration = Duration::from_secs(256);

/// Connections past the cap that may still ask for a probe.
pub const PROBE_CONNECTIONS: usize = 64;

/// The time such a connection has to send its request.
pub const PROBE_HEADER_TIMEOUT: Duration = Duration::from_secs(1);

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
    let probes = Arc::new(Semaphore::new(PROBE_CONNECTIONS));
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    // Over the cap: one request, a probe or a 503, then close.
    let mut probe_http = hyper::server::conn::http1::Builder::new();
    probe_http
        .timer(TokioTimer::new())
        .header_read_timeout(PROBE_HEADER_TIMEOUT)
        .keep_alive(false);
    // The connections' tasks live in this set, so they end when the server does (even
    // when it is aborted), and finished ones are reaped as the loop goes.
    let mut tasks = tokio::task::JoinSet::new();
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
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(WriteDeadline::new(stream, limits.write_timeout));
        let (permit, over_cap) = match connections.clone().try_acquire_owned() {
            Ok(permit) => (permit, false),
            Err(_) => {
                metrics::counter!("sandgraph_http_refused_total", "reason" => "connections")
                    .increment(1);
                match probes.clone().try_acquire_owned() {
                    Ok(permit) => (permit, true),
                    Err(_) => {
                        refuse_connection(io.into_inner().into_inner());
                        continue;
                    }
                }
            }
        };
        let service = {
            let (router, in_flight) = (router.clone(), in_flight.clone());
            hyper::service::service_fn(move |request: Request<Incoming>| {
                handle(
                    router.clone(),
                    in_flight.clone(),
                    limits,
                    peer,
                    over_cap,
                    request,
                )
            })
        };
        let builder = if over_cap { &probe_http } else { &http };
        let connection = graceful.watch(builder.serve_connection(io, service));
        tasks.spawn(async move {
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
    over_cap: bool,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    // Probes and scrapes are cheap and must keep working when the server is busy (a
    // liveness probe refused under load would get a busy server restarted).
    let exempt = matches!(
        request.uri().path(),
        "/health" | "/health/ready" | "/metrics"
    );
    if over_cap && !exempt {
        return Ok(busy());
    }
    let permit = match in_flight.try_acquire_owned() {
        Ok(permit) => Some(permit),
        Err(_) if exempt => None,
        Err(_) => {
            metrics::counter!("sandgraph_http_refused_total", "reason" => "in_flight").increment(1);
            return Ok(busy());
        }
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    let allowed = limits.body_timeout
        + Duration::from_secs(declared / BODY_BYTES_PER_SECOND).min(MAX_BODY_EXTRA);
    let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut request = request.map(|body| {
        Body::new(DeadlineBody::new(
            body,
            tokio::time::Instant::now() + allowed,
            allowed,
            timed_out.clone(),
        ))
    });
    request.extensions_mut().insert(ConnectInfo(peer));
    // An MCP client's standalone stream (`GET /mcp`) stays open, mostly idle, for its
    // whole session: it is bounded by the connection cap, not counted as a request in
    // flight once it has been answered (or 512 idle clients would fill the server).
    let standalone_stream =
        request.method() == Method::GET && request.uri().path().trim_end_matches('/') == "/mcp";
    let response = router.oneshot(request).await?;
    let permit = if standalone_stream { None } else { permit };
    // A handler that is not ours (rmcp's, on /mcp) answers a failed body read with a
    // 500; the client was slow, not the server.
    if timed_out.load(std::sync::atomic::Ordering::Relaxed)
        && response.status() == StatusCode::INTERNAL_SERVER_ERROR
    {
        let answer = super::error::ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            BodyTimedOut(allowed).to_string(),
        );
        return Ok(axum::response::IntoResponse::into_response(answer));
    }
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
    // Whatever the client has sent already is read first: closing a socket with unread
    // data resets it, and the reset can destroy the answer before the client reads it.
    let mut sink = [0u8; 4096];
    let _ = stream.try_read(&mut sink);
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
    timed_out: Arc<std::sync::atomic::AtomicBool>,
}

impl DeadlineBody {
    fn new(
        body: Incoming,
        deadline: tokio::time::Instant,
        timeout: Duration,
        timed_out: Arc<std::sync::atomic::AtomicBool>,
    ) -> Self {
        Self {
            body,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            timeout,
            timed_out,
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
            self.timed_out
                .store(true, std::sync::atomic::Ordering::Relaxed);
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

/// A connection's socket whose writes may not stall for longer than a timeout: a
/// write or flush that stays pending that long fails with `TimedOut`, which ends the
/// connection (and frees its places). Progress of any size resets the clock.
struct WriteDeadline<S> {
    io: S,
    timeout: Duration,
    stalled: Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl<S> WriteDeadline<S> {
    fn new(io: S, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            stalled: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
        }
    }

    fn into_inner(self) -> S {
        self.io
    }

    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if poll.is_ready() {
            self.armed = false;
            return poll;
        }
        if !self.armed {
            self.armed = true;
            let until = tokio::time::Instant::now() + self.timeout;
            self.stalled.as_mut().reset(until);
        }
        match self.stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the client read nothing for {:?}", self.timeout),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_shutdown(cx);
        this.watch(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    // Real time (tokio's paused clock would need its `test-util` feature, and a test-only
    // feature on tokio makes `cargo test` compile tokio and all that uses it a second time).
    // Outcomes only, with wide margins: no timing asserts.

    #[tokio::test]
    async fn a_write_that_makes_no_progress_fails_after_the_timeout() {
        // A pipe whose reader never reads: writes stall once its buffer is full.
        let (writer, _reader) = tokio::io::duplex(1024);
        let mut io = WriteDeadline::new(writer, Duration::from_millis(200));
        let err = loop {
            if let Err(err) = io.write_all(&[0u8; 4096]).await {
                break err;
            }
        };
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn progress_resets_the_clock() {
        use tokio::io::AsyncReadExt as _;
        let (writer, mut reader) = tokio::io::duplex(16);
        // A second of silence would fail it; the reader takes 16 bytes every 100 ms, so the
        // whole write (1.5 s) outlasts the timeout and passes only because progress resets it.
        let mut io = WriteDeadline::new(writer, Duration::from_millis(1000));
        let drain = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            for _ in 0..15 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                reader.read_exact(&mut buf).await.unwrap();
            }
            reader
        });
        io.write_all(&[1u8; 16 * 15]).await.unwrap();
        drop(drain.await.unwrap());
    }
}

//! The accept loop of hotprof's own server: every connection served on the
//! `hotprof-http` runtime, at most [`MAX_CONNECTIONS`] at once (more are
//! closed at once), request headers within [`HEADER_TIMEOUT`] (which also
//! closes a keep-alive connection left idle that long), a whole request within
//! [`REQUEST_TIMEOUT`] (see `deadline`), accepts and requests paced by
//! [`Pacer`], TLS when configured, and the client address handed to the
//! access check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::deadline::{self, ReadDeadline};
use super::pacer::{self, Pacer};
use super::routes::BODY_TIMEOUT;
use super::tls::Tls;

/// Connections served at once; a flood of idle ones cannot grow past it.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// A client that does not send its request headers in time is dropped.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Go's `ReadTimeout`: a request not read in full (headers and body) this
/// long after the server began waiting for it drops the connection. Room for
/// the headers and then the body, so the handlers' own 408 after
/// [`BODY_TIMEOUT`] comes first; this catches whatever they do not bound.
pub(crate) const REQUEST_TIMEOUT: Duration = HEADER_TIMEOUT.saturating_add(BODY_TIMEOUT);

/// Accepts connections until the task is dropped; `rate` is
/// `HOTPROF_HTTP_RATE`, `tls` the HTTPS configuration if any.
pub(crate) async fn accept_loop(listener: TcpListener, app: Router, rate: u32, tls: Option<Tls>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let pacer = Arc::new(Pacer::new(rate));
    let app = app.layer(axum::middleware::from_fn_with_state(pacer.clone(), pacer::pace));
    loop {
        // Before accepting, so a flood of connections waits in the kernel's
        // backlog instead of costing an accept and a close each.
        pacer.turn(if tls.is_some() { pacer::TLS_HANDSHAKE_TURNS } else { 1 }).await;
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                // Out of file descriptors and the like: back off, keep serving.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue; // over the cap: the connection is closed at once
        };
        tokio::spawn(serve_connection(stream, peer, app.clone(), tls.clone(), slot));
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    tls: Option<Tls>,
    _slot: OwnedSemaphorePermit,
) {
    let Some(tls) = tls else { return serve_http(stream, peer, app, REQUEST_TIMEOUT).await };
    #[cfg(feature = "tls")]
    // The handshake gets the same time as request headers; a failed one
    // (plain HTTP, a scanner) just closes the connection.
    if let Ok(Ok(stream)) = tokio::time::timeout(HEADER_TIMEOUT, tls.accept(stream)).await {
        serve_http(stream, peer, app, REQUEST_TIMEOUT).await;
    }
    #[cfg(not(feature = "tls"))]
    tls.unreachable();
}

/// HTTP/1.1 on one connection, plain or inside TLS, each request read within
/// `request_timeout` or the connection dropped without an answer.
async fn serve_http<S>(stream: S, peer: SocketAddr, app: Router, request_timeout: Duration)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let deadline = ReadDeadline::new(request_timeout);
    let app = app
        .layer(axum::Extension(ConnectInfo(peer)))
        .layer(axum::middleware::from_fn_with_state(deadline.clone(), deadline::track));
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::select! {
        biased;
        _ = connection => {}
        // Dropping the connection closes the socket, as Go does on a read timeout.
        () = deadline.expired() => {}
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const LIMIT: Duration = Duration::from_millis(300);
    /// Longer than [`LIMIT`]: answering must not count.
    const SLOW: Duration = Duration::from_millis(700);

    /// A server of `app` on a free port, each connection with a read deadline of [`LIMIT`].
    async fn serve(app: Router) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                tokio::spawn(serve_http(stream, peer, app.clone(), LIMIT));
            }
        });
        addr
    }

    /// A handler that reads its body with no bound of its own, and answers slowly.
    fn app() -> Router {
        let slow = |body: axum::body::Body| async move {
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            tokio::time::sleep(SLOW).await;
            format!("{} bytes", bytes.len())
        };
        Router::new().route("/read", post(slow)).route("/slow", get(slow))
    }

    /// Sends `raw`, then reads until the server closes: what it sent, and when it closed.
    async fn exchange(addr: SocketAddr, raw: &str) -> (String, Duration) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let started = Instant::now();
        stream.write_all(raw.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await.unwrap();
        (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
    }

    const STALLED: &str = "POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0x12";

    #[tokio::test]
    async fn a_stalled_body_drops_the_connection_at_the_deadline() {
        let addr = serve(app()).await;
        let (answer, closed) = exchange(addr, STALLED).await;
        assert_eq!(answer, "", "no answer, like Go on a read timeout");
        assert!(closed >= LIMIT - Duration::from_millis(20) && closed < LIMIT * 3, "{closed:?}");
    }

    #[tokio::test]
    async fn answering_does_not_count_even_when_slow() {
        let addr = serve(app()).await;
        let raw = "POST /read HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4\r\n\r\n0x12";
        let (answer, took) = exchange(addr, raw).await;
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("4 bytes"), "{answer:?}");
        assert!(took >= SLOW, "{took:?}");
        let raw = "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let (answer, _) = exchange(addr, raw).await;
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("0 bytes"), "{answer:?}");
    }

    #[tokio::test]
    async fn the_clock_restarts_for_the_next_request_on_a_connection() {
        let addr = serve(app()).await;
        let two = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
        let (answers, closed) = exchange(addr, two).await;
        assert_eq!(answers.matches("HTTP/1.1 200").count(), 2, "{answers:?}");
        // Then idle: dropped by the deadline, before hyper's 5 s header timeout.
        assert!(closed < SLOW * 2 + LIMIT * 3, "{closed:?}");
    }

    #[tokio::test]
    async fn waiting_for_a_turn_does_not_count() {
        // One request a second: the second waits about 1 s, over the limit.
        let pacer = Arc::new(Pacer::new(1));
        let addr = serve(app().layer(axum::middleware::from_fn_with_state(pacer, pacer::pace))).await;
        let raw = "POST /read HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4\r\n\r\n0x12";
        let (first, second) = tokio::join!(exchange(addr, raw), exchange(addr, raw));
        for (answer, took) in [first, second] {
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?} after {took:?}");
        }
    }
}

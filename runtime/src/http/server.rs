//! The accept loop of hotprof's own server: every connection served on the
//! `hotprof-http` runtime, at most [`MAX_CONNECTIONS`] at once (more are
//! closed at once), request headers within [`HEADER_TIMEOUT`] (which also
//! closes a keep-alive connection left idle that long), accepts and requests
//! paced by [`Pacer`], TLS when configured, and the client address handed to
//! the access check.

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

use super::pacer::{self, Pacer};
use super::tls::Tls;

/// Connections served at once; a flood of idle ones cannot grow past it.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// A client that does not send its request headers in time is dropped.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

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
    let Some(tls) = tls else { return serve_http(stream, peer, app).await };
    #[cfg(feature = "tls")]
    // The handshake gets the same time as request headers; a failed one
    // (plain HTTP, a scanner) just closes the connection.
    if let Ok(Ok(stream)) = tokio::time::timeout(HEADER_TIMEOUT, tls.accept(stream)).await {
        serve_http(stream, peer, app).await;
    }
    #[cfg(not(feature = "tls"))]
    tls.unreachable();
}

/// HTTP/1.1 on one connection, plain or inside TLS.
async fn serve_http<S>(stream: S, peer: SocketAddr, app: Router)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(app.layer(axum::Extension(ConnectInfo(peer))));
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

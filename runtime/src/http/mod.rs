//! The debug HTTP server (feature `http`): Go's `/debug/pprof` protocol, so
//! `go tool pprof`, Parca and Grafana Alloy can profile a hotprof service
//! with no new agent.
//!
//! `HOTPROF_HTTP=addr:port` (else the macro's `http = "..."`) starts it at
//! install time on its own `hotprof-http` thread with its own single-threaded
//! tokio runtime, so a saturated application runtime cannot starve it; and it
//! paces its own work (`HOTPROF_HTTP_RATE`, see `pacer`), so a flood of
//! requests cannot starve the application. Loopback (`127.0.0.1`, `:6060`) is
//! the safe choice; any other address needs credentials.

mod access;
mod deadline;
mod goroutine;
mod index;
mod pacer;
pub(crate) mod params;
mod responses;
pub(crate) mod routes;
mod server;
mod settings;
pub(crate) mod symbol;
mod threadcreate;
mod tls;

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::config::Env;
use crate::notices::{self, error, notice};
use access::Access;
use settings::{Limits, Settings};

/// The `/debug/pprof` handlers as an [`axum::Router`], to mount in a server
/// the application already runs instead of opening a second port.
///
/// Routes are at `/debug/pprof/...`; `Router::nest` puts them under a
/// prefix, `Router::merge` at the root. The same access rules apply as on
/// hotprof's own server (`HOTPROF_ALLOW`, `HOTPROF_AUTH`, `HOTPROF_AUTH_FILE`,
/// `HOTPROF_HTTP_MAX_SECONDS`, read when this is called); the allowlist needs
/// the client address, so serve with `into_make_service_with_connect_info`:
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use std::net::SocketAddr;
/// let app = axum::Router::new()
///     .route("/", axum::routing::get(|| async { "hello" }))
///     .nest("/internal", hotprof::router()); // -> /internal/debug/pprof/
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
/// # }
/// ```
///
/// Invalid settings are logged once and the router then refuses every request.
pub fn router() -> axum::Router {
    crate::capture::get(); // set up, if `#[hotprof::main]` did not
    let env = Env::process();
    let access = Access::load(env).unwrap_or_else(|e| {
        error(&format!("{e}; hotprof::router() refuses every request"));
        Access::deny_all()
    });
    let mut lines = Vec::new();
    let limits = Limits::load(env, &mut lines);
    lines.iter().for_each(|line| notices::stderr_line(line));
    routes::protect(routes::routes(limits), access)
}

/// The running server; `stop` ends it.
#[derive(Debug)]
pub(crate) struct HttpServer {
    stop: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl HttpServer {
    /// Starts the server when `HOTPROF_HTTP` or the macro's `http = "..."`
    /// (`macro_addr`) asks for it. Invalid settings or a port that cannot be
    /// bound: one error line, no server.
    pub(crate) fn start(macro_addr: Option<&str>) -> Option<HttpServer> {
        let mut lines = Vec::new();
        let loaded = Settings::load(Env::process(), macro_addr, &mut lines);
        lines.iter().for_each(|line| notices::stderr_line(line));
        let settings = match loaded {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(e) => {
                error(&e);
                return None;
            }
        };
        match HttpServer::spawn(&settings) {
            Ok((server, addr)) => {
                let who = settings.access.required().unwrap_or("no HOTPROF_AUTH: loopback clients only");
                let scheme = if settings.tls.is_some() { "https" } else { "http" };
                notice(&format!("debug HTTP server on {scheme}://{addr}/debug/pprof/ ({who})"));
                Some(server)
            }
            Err(e) => {
                error(&format!(
                    "cannot serve HTTP on {}: {e}; the debug HTTP server is not started",
                    settings.bind
                ));
                None
            }
        }
    }

    fn spawn(settings: &Settings) -> std::io::Result<(HttpServer, SocketAddr)> {
        let listener = std::net::TcpListener::bind(settings.bind)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let app = routes::protect(
            routes::routes(settings.limits.clone()).fallback(routes::not_found),
            settings.access.clone(),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .thread_name("hotprof-http") // its blocking pool runs the captures
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel();
        let (rate, tls) = (settings.rate, settings.tls.clone());
        let thread = std::thread::Builder::new()
            .name("hotprof-http".into())
            .spawn(move || serve(runtime, listener, app, rate, tls, stopped))?;
        Ok((HttpServer { stop, thread }, addr))
    }

    /// Stops accepting, drops open connections and waits for the thread.
    pub(crate) fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

fn serve(
    runtime: tokio::runtime::Runtime,
    listener: std::net::TcpListener,
    app: axum::Router,
    rate: u32,
    tls: Option<tls::Tls>,
    stopped: oneshot::Receiver<()>,
) {
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => return error(&format!("debug HTTP server stopped: {e}")),
        };
        tokio::select! {
            _ = server::accept_loop(listener, app, rate, tls) => {}
            _ = stopped => {}
        }
    });
    // A profile still running must not hold up the program's exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
}

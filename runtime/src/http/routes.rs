//! The `/debug/pprof` routes and their handlers. Captures run on tokio's
//! blocking pool (they wait for a CPU window or a dump), never on the
//! server's own thread.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

use super::access::{self, Access};
use super::settings::Limits;
use super::{goroutine, index, params, responses, symbol};
use crate::runtime::{self, Trigger};
use crate::{CpuError, CpuProfile, switch};

/// Largest request body `symbol` reads.
const MAX_BODY: usize = 64 * 1024;

/// Every route, without access control or a fallback (so it can be merged).
pub(crate) fn routes(limits: Limits) -> Router {
    Router::new()
        .route("/debug/pprof", any(redirect))
        .route("/debug/pprof/", get(index_page))
        .route("/debug/pprof/cmdline", get(cmdline))
        .route("/debug/pprof/profile", get(profile))
        .route("/debug/pprof/flamegraph", get(flamegraph))
        .route("/debug/pprof/goroutine", get(goroutine))
        .route("/debug/pprof/scopes", get(scopes))
        .route("/debug/pprof/symbol", get(symbol).post(symbol))
        .route("/debug/pprof/admin/enable", post(enable))
        .route("/debug/pprof/admin/disable", post(disable))
        .route("/debug/pprof/{name}", any(unknown_profile))
        .with_state(Arc::new(limits))
}

/// Access control first (allowlist, then credentials), `nosniff` on every answer.
pub(crate) fn protect(router: Router, access: Access) -> Router {
    router
        .layer(middleware::from_fn_with_state(Arc::new(access), access::check))
        .layer(middleware::map_response(responses::nosniff))
}

/// Anything else: Go's `404 page not found`.
pub(crate) async fn not_found() -> Response {
    let headers = [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))];
    (StatusCode::NOT_FOUND, headers, "404 page not found\n").into_response()
}

/// Relative, so it also works when the router is nested under a prefix.
async fn redirect() -> Response {
    (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, HeaderValue::from_static("pprof/"))]).into_response()
}

async fn index_page() -> Response {
    responses::html(index::page(index::thread_count(), switch::is_enabled()))
}

async fn cmdline() -> Response {
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    responses::text(args.join("\0"))
}

async fn unknown_profile() -> Response {
    responses::error(StatusCode::NOT_FOUND, "Unknown profile")
}

fn bad_request(message: &str) -> Response {
    responses::error(StatusCode::BAD_REQUEST, message)
}

async fn profile(State(limits): State<Arc<Limits>>, RawQuery(query): RawQuery) -> Response {
    match params::seconds(query.as_deref(), limits.max_seconds) {
        Err(message) => bad_request(&message),
        Ok(window) => match cpu(window).await {
            Ok(p) => responses::profile("profile", p.pprof_gz),
            Err(e) => responses::cpu_error(e),
        },
    }
}

async fn flamegraph(State(limits): State<Arc<Limits>>, RawQuery(query): RawQuery) -> Response {
    match params::seconds(query.as_deref(), limits.max_seconds) {
        Err(message) => bad_request(&message),
        Ok(window) => match cpu(window).await {
            Ok(p) => responses::svg(p.svg),
            Err(e) => responses::cpu_error(e),
        },
    }
}

/// A CPU session through the runtime: switch, one session at a time, guard.
async fn cpu(window: Duration) -> Result<CpuProfile, CpuError> {
    tokio::task::spawn_blocking(move || runtime::get().cpu_profile(Trigger::Http, window))
        .await
        .unwrap_or_else(|e| Err(CpuError::Profiler(format!("the CPU session task failed: {e}"))))
}

/// `seconds` on a profile without deltas: Go's 400s, in Go's order.
fn reject_seconds(query: Option<&str>, debug: u8) -> Option<Response> {
    let value = params::first(query, "seconds")?;
    let message = match params::parse_seconds(&value, u64::MAX) {
        Err(m) => m,
        Ok(_) if debug != 0 => params::SECONDS_WITH_DEBUG.to_string(),
        Ok(_) => params::SECONDS_UNSUPPORTED.to_string(),
    };
    Some(bad_request(&message))
}

async fn goroutine(RawQuery(query): RawQuery) -> Response {
    let debug = match params::debug(query.as_deref()) {
        Ok(d) => d,
        Err(message) => return bad_request(&message),
    };
    if let Some(refusal) = reject_seconds(query.as_deref(), debug) {
        return refusal;
    }
    let dumped = tokio::task::spawn_blocking(move || {
        let rt = runtime::get();
        rt.dump(Trigger::Http).map(|dump| {
            if debug == 0 {
                goroutine::count_profile(&dump, &rt.comments(Trigger::Http))
                    .map(|gz| responses::profile("goroutine", gz))
                    .unwrap_or_else(|e| internal(&format!("hotprof: cannot encode the profile: {e}")))
            } else if debug == 1 {
                responses::text(goroutine::grouped_text(&dump))
            } else {
                responses::text(dump.to_string())
            }
        })
    })
    .await;
    match dumped {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => responses::dump_error(e),
        Err(e) => internal(&format!("hotprof: the dump task failed: {e}")),
    }
}

async fn scopes(RawQuery(query): RawQuery) -> Response {
    if let Some(refusal) = reject_seconds(query.as_deref(), 0) {
        return refusal;
    }
    if !switch::is_enabled() {
        return responses::error(StatusCode::FORBIDDEN, responses::CAPTURE_OFF);
    }
    match tokio::task::spawn_blocking(crate::scope_profile).await {
        Ok(Ok(gz)) => responses::profile("scopes", gz),
        Ok(Err(e)) => internal(&format!("hotprof: cannot encode the scope profile: {e}")),
        Err(e) => internal(&format!("hotprof: the scope profile task failed: {e}")),
    }
}

fn internal(message: &str) -> Response {
    responses::error(StatusCode::INTERNAL_SERVER_ERROR, message)
}

async fn symbol(request: Request) -> Response {
    let input = if request.method() == Method::POST {
        match read_body(request.into_body()).await {
            Ok(text) => text,
            Err(refusal) => return refusal,
        }
    } else {
        request.uri().query().unwrap_or("").to_string()
    };
    tokio::task::spawn_blocking(move || symbol::answer(&input))
        .await
        .map(responses::text)
        .unwrap_or_else(|e| internal(&format!("hotprof: the symbol task failed: {e}")))
}

/// The body as UTF-8 text, at most [`MAX_BODY`] bytes.
async fn read_body(body: Body) -> Result<String, Response> {
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        responses::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("hotprof: the request body could not be read or is over {MAX_BODY} bytes"),
        )
    })?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| bad_request("hotprof: the request body is not UTF-8 text (expected 0xADDR+0xADDR)"))
}

async fn enable() -> Response {
    switch::enable();
    runtime::get().notice("capture enabled over HTTP");
    responses::text("capture enabled\n".to_string())
}

async fn disable() -> Response {
    switch::disable();
    runtime::get().notice("capture disabled over HTTP");
    responses::text("capture disabled\n".to_string())
}

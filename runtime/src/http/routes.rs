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
use super::{goroutine, index, params, responses, symbol, threadcreate};
use crate::capture::{self, Trigger};
use crate::heap::profile::View;
use crate::notices::notice;
use crate::sampler::Mode;
use crate::{CpuError, CpuProfile, switch};

/// Largest request body `symbol` and `trigger` read.
const MAX_BODY: usize = 64 * 1024;
/// A request body must arrive in full within this time of the handler
/// starting to read it, or the answer is a 408 and the connection closes. It
/// is the handlers' own bound, so it holds in any server `router()` is
/// mounted in; 64 KiB in 5 s is 13 KB/s, far below any real client.
pub(crate) const BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// Every route, without access control or a fallback (so it can be merged).
pub(crate) fn routes(limits: Limits) -> Router {
    Router::new()
        .route("/debug/pprof", any(redirect))
        .route("/debug/pprof/", get(index_page))
        .route("/debug/pprof/cmdline", get(cmdline))
        .route("/debug/pprof/profile", get(profile))
        .route("/debug/pprof/flamegraph", get(flamegraph))
        .route("/debug/pprof/wall", get(wall))
        .route("/debug/pprof/goroutine", get(goroutine))
        .route("/debug/pprof/heap", get(heap))
        .route("/debug/pprof/allocs", get(allocs))
        .route("/debug/pprof/scopes", get(scopes))
        .route("/debug/pprof/symbol", get(symbol).post(symbol))
        .route("/debug/pprof/threadcreate", get(threadcreate))
        .route("/debug/pprof/admin/enable", post(enable))
        .route("/debug/pprof/admin/disable", post(disable))
        .route("/debug/pprof/admin/scopes/all", post(|| scope_capture(crate::ScopeCapture::All)))
        .route("/debug/pprof/admin/scopes/dyed", post(|| scope_capture(crate::ScopeCapture::Dyed)))
        .route("/debug/pprof/trigger", post(trigger))
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
    let heap = tokio::task::spawn_blocking(|| capture::get().heap_snapshot().ok().map(|s| s.records.len()))
        .await
        .unwrap_or(None);
    responses::html(index::page(index::thread_count(), heap, switch::is_enabled()))
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

/// `wall?seconds=N`: every thread, running or not, like `profile` otherwise.
async fn wall(State(limits): State<Arc<Limits>>, RawQuery(query): RawQuery) -> Response {
    match params::seconds(query.as_deref(), limits.max_seconds) {
        Err(message) => bad_request(&message),
        Ok(window) => match session(Mode::Wall, window).await {
            Ok(p) => responses::profile("wall", p.pprof_gz),
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
    session(Mode::Cpu, window).await
}

async fn session(mode: Mode, window: Duration) -> Result<CpuProfile, CpuError> {
    tokio::task::spawn_blocking(move || capture::get().profile(mode, Trigger::Http, window, None, None))
        .await
        .unwrap_or_else(|e| Err(CpuError::Profiler(format!("the {} session task failed: {e}", mode.title()))))
}

/// `seconds` on a profile without deltas: the message of Go's 400, in Go's order.
fn seconds_refusal(query: Option<&str>, debug: u8) -> Option<String> {
    let value = params::first(query, "seconds")?;
    Some(match params::parse_seconds(&value, u64::MAX) {
        Err(m) => m,
        Ok(_) if debug != 0 => params::SECONDS_WITH_DEBUG.to_string(),
        Ok(_) => params::SECONDS_UNSUPPORTED.to_string(),
    })
}

/// `debug=N` of a profile without deltas, or the message of the 400 for it
/// or for `seconds`.
fn debug_without_seconds(query: Option<&str>) -> Result<u8, String> {
    let debug = params::debug(query)?;
    seconds_refusal(query, debug).map_or(Ok(debug), Err)
}

async fn goroutine(RawQuery(query): RawQuery) -> Response {
    let debug = match debug_without_seconds(query.as_deref()) {
        Ok(d) => d,
        Err(message) => return bad_request(&message),
    };
    let dumped = tokio::task::spawn_blocking(move || {
        let rt = capture::get();
        rt.dump(Trigger::Http).map(|dump| {
            if debug == 0 {
                goroutine::count_profile(&dump, &rt.comments(Trigger::Http))
                    .map(|gz| responses::profile("goroutine", gz))
                    .unwrap_or_else(|e| {
                        responses::internal(&format!("hotprof: cannot encode the profile: {e}"))
                    })
            } else if debug == 1 {
                responses::text(goroutine::grouped_text(&dump))
            } else {
                responses::text(goroutine::full_text(&dump))
            }
        })
    })
    .await;
    match dumped {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => responses::dump_error(e),
        Err(e) => responses::internal(&format!("hotprof: the dump task failed: {e}")),
    }
}

async fn heap(State(limits): State<Arc<Limits>>, RawQuery(query): RawQuery) -> Response {
    heap_answer(View::Heap, &limits, query.as_deref()).await
}

async fn allocs(State(limits): State<Arc<Limits>>, RawQuery(query): RawQuery) -> Response {
    heap_answer(View::Allocs, &limits, query.as_deref()).await
}

/// `heap` and `allocs`: the same samples, `inuse_space` or `alloc_space`
/// first. `debug=1` (or 2) is Go's text; `seconds=N` the change over N
/// seconds (Go's delta profile); `gc` is accepted and ignored (no collector).
async fn heap_answer(view: View, limits: &Limits, query: Option<&str>) -> Response {
    let debug = match params::debug(query) {
        Ok(d) => d,
        Err(message) => return bad_request(&message),
    };
    let window = match params::first(query, "seconds") {
        None => None,
        Some(_) if debug != 0 => return bad_request(params::SECONDS_WITH_DEBUG),
        Some(v) => match params::parse_seconds(&v, limits.max_seconds) {
            Ok(n) => Some(Duration::from_secs(n)),
            Err(message) => return bad_request(&message),
        },
    };
    let jemalloc = blocking(|| capture::get().jemalloc_heap()).await.unwrap_or(false);
    if jemalloc && switch::is_enabled() {
        return jemalloc_heap(view, debug, window).await;
    }
    // A delta starts from a snapshot now; either way the answer is built
    // from one taken at the end (snapshots drain and unwind: blocking work).
    let start = match window {
        None => None,
        Some(_) => match blocking(|| capture::get().heap_snapshot()).await {
            Ok(Ok(start)) => Some(start),
            Ok(Err(e)) => return responses::heap_error(e),
            Err(failed) => return failed,
        },
    };
    if let Some(w) = window {
        tokio::time::sleep(w).await;
    }
    let name = if view == View::Heap { "heap" } else { "allocs" };
    let built = blocking(move || {
        let rt = capture::get();
        let end = rt.heap_snapshot()?;
        let snap = match &start {
            Some(start) => end.since(start),
            None => end,
        };
        if debug != 0 {
            return Ok(responses::text(rt.heap_text(&snap)));
        }
        let gz = rt.heap_pprof(&snap, view, window, Trigger::Http)?;
        let file = if window.is_some() { format!("{name}-delta") } else { name.to_string() };
        Ok(responses::profile(&file, gz))
    })
    .await;
    match built {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => responses::heap_error(e),
        Err(failed) => failed,
    }
}

/// Feature `jemalloc`, the program profiling with jemalloc: its profile
/// holds in-use space only, so only a plain `heap` has an answer.
async fn jemalloc_heap(view: View, debug: u8, window: Option<Duration>) -> Response {
    let unsupported = match (view, debug, window) {
        (View::Allocs, ..) => Some("allocs"),
        (_, 1.., _) => Some("debug"),
        (_, _, Some(_)) => Some("seconds"),
        _ => None,
    };
    if let Some(what) = unsupported {
        return bad_request(&format!(
            "hotprof: this program profiles its heap with jemalloc, whose profile holds in-use space \
             only: no {what} (hotprof::SampledAlloc has them)"
        ));
    }
    match blocking(|| capture::get().heap_profile(Trigger::Http)).await {
        Ok(Ok(p)) => responses::profile("heap", p.pprof_gz),
        Ok(Err(e)) => responses::heap_error(e),
        Err(failed) => failed,
    }
}

/// Runs `f` on tokio's blocking pool; a 500 if that task fails.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Response> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| responses::internal(&format!("hotprof: the heap profile task failed: {e}")))
}

async fn scopes(RawQuery(query): RawQuery) -> Response {
    if let Some(message) = seconds_refusal(query.as_deref(), 0) {
        return bad_request(&message);
    }
    if !switch::is_enabled() {
        return responses::error(StatusCode::FORBIDDEN, responses::CAPTURE_OFF);
    }
    match tokio::task::spawn_blocking(crate::scope_profile).await {
        Ok(Ok(gz)) => responses::profile("scopes", gz),
        Ok(Err(e)) => responses::internal(&format!("hotprof: cannot encode the scope profile: {e}")),
        Err(e) => responses::internal(&format!("hotprof: the scope profile task failed: {e}")),
    }
}

/// Live threads grouped by name (see `threadcreate.rs`). Reading `/proc` is
/// cheap and signals no thread, so the guard does not meter it; it is still a
/// capture, so the switch closes it.
async fn threadcreate(RawQuery(query): RawQuery) -> Response {
    let debug = match debug_without_seconds(query.as_deref()) {
        Ok(d) => d,
        Err(message) => return bad_request(&message),
    };
    if !switch::is_enabled() {
        return responses::error(StatusCode::FORBIDDEN, responses::CAPTURE_OFF);
    }
    tokio::task::spawn_blocking(move || threadcreate::answer(debug, &capture::get().comments(Trigger::Http)))
        .await
        .unwrap_or_else(|e| responses::internal(&format!("hotprof: the threadcreate task failed: {e}")))
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
        .unwrap_or_else(|e| responses::internal(&format!("hotprof: the symbol task failed: {e}")))
}

/// The body's bytes, at most [`MAX_BODY`] of them, within [`BODY_TIMEOUT`].
async fn read_bytes(body: Body) -> Result<axum::body::Bytes, Response> {
    read_within(body, BODY_TIMEOUT).await
}

/// The body within `limit`, or the answer that refuses it. Under Go's
/// `ReadTimeout` a handler sees a read error mid-body and answers as it sees
/// fit; ours answer 408. The body is dropped with the refusal, so hyper stops
/// reading it and closes the connection after the answer.
async fn read_within(body: Body, limit: Duration) -> Result<axum::body::Bytes, Response> {
    match tokio::time::timeout(limit, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(responses::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("hotprof: the request body could not be read or is over {MAX_BODY} bytes"),
        )),
        Err(_) => Err(responses::request_timeout(&format!(
            "hotprof: the request body did not arrive within {}s",
            limit.as_secs_f64()
        ))),
    }
}

/// The body as UTF-8 text, at most [`MAX_BODY`] bytes.
async fn read_body(body: Body) -> Result<String, Response> {
    let bytes = read_bytes(body).await?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| bad_request("hotprof: the request body is not UTF-8 text (expected 0xADDR+0xADDR)"))
}

/// `POST /debug/pprof/trigger`: an Alertmanager webhook. A firing alert writes
/// a thread dump and starts a CPU profile window (its files are written when
/// it ends), each through the guard; the answer lists what started.
async fn trigger(body: Body) -> Response {
    let bytes = match read_bytes(body).await {
        Ok(b) => b,
        Err(refusal) => return refusal,
    };
    let alert = match webhook(&bytes) {
        Ok(a) => a,
        Err(message) => return bad_request(&message),
    };
    if alert.resolved {
        return responses::text(format!("nothing started: {} is resolved\n", alert.names));
    }
    if !switch::is_enabled() {
        return responses::error(StatusCode::FORBIDDEN, responses::CAPTURE_OFF);
    }
    let started = tokio::task::spawn_blocking(move || {
        let rt = capture::get();
        let reason = format!("alert {}", alert.names);
        let dump = match rt.dump_to_file(Trigger::Http) {
            Ok((path, _)) => Ok(format!("thread dump written to {}", path.display())),
            Err(e) => Err(format!("thread dump not taken: {e}")),
        };
        let cpu = match rt.spawn_window(Mode::Cpu, Trigger::Http, reason, vec![("alert".into(), alert.names)])
        {
            Ok(window) => Ok(format!("CPU profile started for {:.1}s", window.as_secs_f64())),
            Err(e) => Err(format!("CPU profile not started: {e}")),
        };
        [dump, cpu]
    })
    .await;
    let Ok(outcomes) = started else { return responses::internal("hotprof: the trigger task failed") };
    let any_started = outcomes.iter().any(Result::is_ok);
    let text: String = outcomes.iter().map(|o| format!("{}\n", o.as_ref().unwrap_or_else(|e| e))).collect();
    let status = if any_started { StatusCode::ACCEPTED } else { StatusCode::TOO_MANY_REQUESTS };
    let mut response = responses::text(text);
    *response.status_mut() = status;
    response
}

/// What the trigger needs from an Alertmanager webhook body.
pub(crate) struct Alert {
    pub resolved: bool,
    /// The alert names, comma-separated.
    pub names: String,
}

pub(crate) fn webhook(body: &[u8]) -> Result<Alert, String> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| "hotprof: the body is not JSON; an Alertmanager webhook is expected".to_string())?;
    let alerts = value
        .get("alerts")
        .and_then(|a| a.as_array())
        .ok_or_else(|| "hotprof: the webhook has no \"alerts\" array".to_string())?;
    let resolved = value.get("status").and_then(|s| s.as_str()) == Some("resolved");
    let mut names: Vec<&str> = alerts
        .iter()
        .filter_map(|a| a.get("labels")?.get("alertname")?.as_str())
        .filter(|n| !n.is_empty())
        .collect();
    names.dedup();
    let names = if names.is_empty() { "unnamed".to_string() } else { names.join(",") };
    // Names go into file comments and labels: keep them short and printable.
    let names: String = names.chars().filter(|c| !c.is_control()).take(200).collect();
    Ok(Alert { resolved, names })
}

async fn enable() -> Response {
    switch::enable();
    notice("capture enabled over HTTP");
    responses::text("capture enabled\n".to_string())
}

async fn disable() -> Response {
    switch::disable();
    notice("capture disabled over HTTP");
    responses::text("capture disabled\n".to_string())
}

async fn scope_capture(which: crate::ScopeCapture) -> Response {
    switch::set_scope_capture(which);
    notice(&format!("scopes recorded for {} traffic, over HTTP", which.word()));
    responses::text(format!("scopes: {}\n", which.word()))
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use axum::body::{Body, Bytes, HttpBody};
    use axum::http::{StatusCode, header};
    use hyper::body::Frame;

    use super::{read_within, webhook};

    /// A body whose client sent its headers and then nothing more.
    struct Stalled;

    impl HttpBody for Stalled {
        type Data = Bytes;
        type Error = axum::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_stalled_body_gets_a_408_that_closes_the_connection() {
        let refusal = read_within(Body::new(Stalled), Duration::from_millis(50)).await.unwrap_err();
        assert_eq!(refusal.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(refusal.headers()[header::CONNECTION], "close");
        assert_eq!(refusal.headers()["x-go-pprof"], "1");
        let text = axum::body::to_bytes(refusal.into_body(), 1024).await.unwrap();
        assert_eq!(&text[..], b"hotprof: the request body did not arrive within 0.05s\n");
        let bytes = read_within(Body::from("0x1+0x2"), Duration::from_millis(50)).await.unwrap();
        assert_eq!(&bytes[..], b"0x1+0x2");
    }

    #[test]
    fn reads_alertmanager_webhooks() {
        let body = br#"{"version":"4","status":"firing","alerts":[{"labels":{"alertname":"HighLatency"}},{"labels":{"alertname":"HighLatency"}}]}"#;
        let a = webhook(body).unwrap();
        assert!(!a.resolved);
        assert_eq!(a.names, "HighLatency");
        let a = webhook(br#"{"status":"resolved","alerts":[]}"#).unwrap();
        assert!(a.resolved);
        assert_eq!(a.names, "unnamed");
        assert!(webhook(b"not json").is_err());
        assert!(webhook(br#"{"status":"firing"}"#).is_err());
        assert!(webhook(br#"[1,2]"#).is_err());
    }
}

//! Responses shaped like Go's `net/http/pprof`: errors as `text/plain` with
//! `X-Go-Pprof: 1` (so `go tool pprof` shows the body), profiles as
//! `application/octet-stream` attachments, `nosniff` on everything.

use std::time::Duration;

use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::{CpuError, DumpError, HeapError};

const TEXT: &str = "text/plain; charset=utf-8";
const X_GO_PPROF: HeaderName = HeaderName::from_static("x-go-pprof");

/// What a capture endpoint says while the switch is off.
pub(crate) const CAPTURE_OFF: &str = "hotprof: capture is disabled; enable it with \
     `curl -X POST .../debug/pprof/admin/enable`, hotprof::enable() or HOTPROF=on";

/// Go's `serveError`: status, plain text, `X-Go-Pprof: 1`, message and a newline.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    let headers =
        [(header::CONTENT_TYPE, HeaderValue::from_static(TEXT)), (X_GO_PPROF, HeaderValue::from_static("1"))];
    (status, headers, format!("{message}\n")).into_response()
}

/// A 500 in the same style: a failure of hotprof's own, never of the request.
pub(crate) fn internal(message: &str) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, message)
}

/// 408 for a request body that did not arrive in time, with `Connection:
/// close`: the rest of the body may still come, and must not be read as a
/// next request.
pub(crate) fn request_timeout(message: &str) -> Response {
    let mut r = error(StatusCode::REQUEST_TIMEOUT, message);
    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// 429 with `Retry-After` in whole seconds (at least 1).
pub(crate) fn too_many(message: &str, retry_after: Duration) -> Response {
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, message);
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// A gzipped pprof profile as a download named `name`.
pub(crate) fn profile(name: &str, body: Vec<u8>) -> Response {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
        (header::CONTENT_DISPOSITION, disposition),
    ];
    (headers, body).into_response()
}

/// `200 text/plain`.
pub(crate) fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static(TEXT))], body).into_response()
}

/// `200 text/html`.
pub(crate) fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))], body).into_response()
}

/// `200 image/svg+xml`, shown inline by browsers.
pub(crate) fn svg(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"))], body).into_response()
}

/// A failed CPU session: Go's exact 500 when one is already running.
pub(crate) fn cpu_error(e: CpuError) -> Response {
    match e {
        CpuError::Busy => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Could not enable CPU profiling: cpu profiling already in use",
        ),
        CpuError::Disabled => error(StatusCode::FORBIDDEN, CAPTURE_OFF),
        CpuError::Refused(r) => too_many(&format!("hotprof: CPU profile {e}"), r.retry_after),
        e => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("Could not enable CPU profiling: {e}")),
    }
}

/// A failed thread dump.
pub(crate) fn dump_error(e: DumpError) -> Response {
    match e {
        DumpError::Disabled => error(StatusCode::FORBIDDEN, CAPTURE_OFF),
        DumpError::Refused(r) => too_many(&format!("hotprof: thread dump {e}"), r.retry_after),
        e => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("hotprof: {e}")),
    }
}

/// No heap profile: the switch or the rate (403); without the sampling
/// allocator there is no such profile, so Go's 404, saying what is missing.
pub(crate) fn heap_error(e: HeapError) -> Response {
    match e {
        HeapError::Disabled => error(StatusCode::FORBIDDEN, CAPTURE_OFF),
        HeapError::Off => error(StatusCode::FORBIDDEN, &format!("hotprof: {e}")),
        HeapError::NotInstalled => error(StatusCode::NOT_FOUND, &format!("Unknown profile: hotprof: {e}")),
        e => internal(&format!("hotprof: {e}")),
    }
}

/// `X-Content-Type-Options: nosniff` on every response, like Go's handlers.
pub(crate) async fn nosniff(mut response: Response) -> Response {
    set_nosniff(response.headers_mut());
    response
}

fn set_nosniff(headers: &mut HeaderMap) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_look_like_go() {
        let r = error(StatusCode::BAD_REQUEST, "bad");
        assert_eq!(r.headers()[header::CONTENT_TYPE], TEXT);
        assert_eq!(r.headers()["x-go-pprof"], "1");
        assert!(r.headers().get(header::CONTENT_DISPOSITION).is_none());
        let r = too_many("slow down", Duration::from_millis(1500));
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        let r = too_many("slow down", Duration::ZERO);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        let r = cpu_error(CpuError::Busy);
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn profiles_are_attachments() {
        let r = profile("profile", vec![1, 2]);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/octet-stream");
        assert_eq!(r.headers()[header::CONTENT_DISPOSITION], "attachment; filename=\"profile\"");
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
    }
}

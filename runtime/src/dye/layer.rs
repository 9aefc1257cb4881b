//! `DyeLayer`: a tower layer that dyes each request carrying a header, for
//! axum, hyper and tonic services (feature `http`).

use std::task::{Context, Poll};

use http::{HeaderName, Request};

use super::{Dyed, tags, under};
use crate::notices;

/// Dyes every request that carries a header, with the header's value as
/// the tag (see [`crate::dyed`] for what dyeing records and how values are
/// cleaned). Requests without the header pay one header lookup; a value
/// that is empty or not visible ASCII is ignored with a counted notice, and
/// the request runs undyed: never an error to the client.
///
/// ```no_run
/// # async fn demo() {
/// let app: axum::Router = axum::Router::new()
///     .route("/", axum::routing::get(|| async { "hello" }))
///     .layer(hotprof::DyeLayer::header("x-hotprof-dye"));
/// # }
/// ```
///
/// Anyone who can send the header can dye a request: strip it at your edge
/// proxy from traffic you do not trust.
#[derive(Debug, Clone)]
pub struct DyeLayer {
    header: Option<HeaderName>,
}

impl DyeLayer {
    /// Dyes requests carrying header `name` (any case). A name that is no
    /// valid header name is reported once and the layer dyes nothing.
    pub fn header(name: &str) -> DyeLayer {
        match HeaderName::try_from(name) {
            Ok(header) => DyeLayer { header: Some(header) },
            Err(_) => {
                notices::error(&format!(
                    "DyeLayer::header({name:?}): not a valid header name; nothing is dyed"
                ));
                DyeLayer { header: None }
            }
        }
    }
}

impl<S> tower_layer::Layer<S> for DyeLayer {
    type Service = DyeService<S>;

    fn layer(&self, inner: S) -> DyeService<S> {
        DyeService { inner, header: self.header.clone() }
    }
}

/// The service [`DyeLayer`] wraps around yours.
#[derive(Debug, Clone)]
pub struct DyeService<S> {
    inner: S,
    header: Option<HeaderName>,
}

impl<S, B> tower_service::Service<Request<B>> for DyeService<S>
where
    S: tower_service::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Dyed<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Dyed<S::Future> {
        let value = self.header.as_ref().and_then(|h| request.headers().get(h));
        let dye = value.map_or(0, |v| tags::tag_id(v.as_bytes(), "DyeLayer"));
        // What the inner service does before returning its future is dyed too.
        let future =
            if dye == 0 { self.inner.call(request) } else { under(dye, || self.inner.call(request)) };
        Dyed { future, dye, counted: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_header_name_dyes_nothing_and_panics_not() {
        assert!(DyeLayer::header("x hotprof dye").header.is_none());
        assert!(DyeLayer::header("X-Hotprof-Dye").header.is_some_and(|h| h == "x-hotprof-dye"));
    }
}

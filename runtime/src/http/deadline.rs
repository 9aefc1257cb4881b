//! Go's `ReadTimeout` for hotprof's own server: each request on a connection
//! must be read in full, headers and body, within a time limit of when the
//! server starts waiting for it, or the connection is dropped without an
//! answer.
//!
//! Each connection has one clock, moved by what happens on it:
//!
//! - the connection opens, or an answer has left (hyper dropped its body):
//!   *running*, due a limit from now, for the next request;
//! - a request arrives without a body, or its body ends, fails or is dropped
//!   by the handler (hyper then stops reading and closes after the answer):
//!   *stopped*, so answering, however long a profile takes, is never cut short;
//! - the request waits for its turn under `HOTPROF_HTTP_RATE`: *paused*, the
//!   time left kept, because that wait is the server's and not the client's.
//!
//! The connection task races hyper against [`ReadDeadline::expired`]. The
//! handlers bound their own body reads too (`routes::BODY_TIMEOUT`, a 408), so
//! in practice this clock is the backstop for any read nothing else bounds.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::{Frame, SizeHint};
use tokio::sync::watch;
use tokio::time::Instant;

/// Where one connection's clock stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Clock {
    /// A request is awaited or being read; the connection is dropped at this instant.
    Running(Instant),
    /// The request waits for its turn with this much time left.
    Paused(Duration),
    /// The request is read; its answer is being made or sent.
    Stopped,
}

/// One connection's read deadline, shared by the connection task, its
/// requests (as an extension, for the pacer) and their bodies.
#[derive(Clone, Debug)]
pub(crate) struct ReadDeadline {
    limit: Duration,
    clock: Arc<watch::Sender<Clock>>,
}

impl ReadDeadline {
    /// A connection just opened: its first request is due within `limit`.
    pub(crate) fn new(limit: Duration) -> ReadDeadline {
        let (clock, _) = watch::channel(Clock::Running(Instant::now() + limit));
        ReadDeadline { limit, clock: Arc::new(clock) }
    }

    /// An answer has left: the next request is due within the limit.
    fn restart(&self) {
        self.clock.send_replace(Clock::Running(Instant::now() + self.limit));
    }

    /// The request is read (or its body given up on).
    fn stop(&self) {
        self.clock.send_replace(Clock::Stopped);
    }

    /// Runs `wait` with the clock paused, if it is running.
    pub(crate) async fn paused<T>(&self, wait: impl Future<Output = T>) -> T {
        self.clock.send_if_modified(|clock| match *clock {
            Clock::Running(due) => {
                *clock = Clock::Paused(due.saturating_duration_since(Instant::now()));
                true
            }
            _ => false,
        });
        let out = wait.await;
        self.clock.send_if_modified(|clock| match *clock {
            Clock::Paused(left) => {
                *clock = Clock::Running(Instant::now() + left);
                true
            }
            _ => false,
        });
        out
    }

    /// Resolves once a running clock passes its due time.
    pub(crate) async fn expired(&self) {
        let mut clock = self.clock.subscribe();
        loop {
            let due = match *clock.borrow_and_update() {
                Clock::Running(due) if due <= Instant::now() => return,
                Clock::Running(due) => Some(due),
                Clock::Paused(_) | Clock::Stopped => None,
            };
            let changed = async {
                // `self` holds the sender, so this only fails if it is gone: never.
                if clock.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            match due {
                Some(due) => tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    () = changed => {}
                },
                None => changed.await,
            }
        }
    }
}

/// Middleware, outermost on each connection of hotprof's own server: moves
/// the clock as a request arrives, its body ends and its answer leaves.
pub(crate) async fn track(
    State(deadline): State<ReadDeadline>,
    mut request: Request,
    next: Next,
) -> Response {
    let body = std::mem::take(request.body_mut());
    *request.body_mut() = if body.is_end_stream() {
        deadline.stop();
        body
    } else {
        Body::new(Tell::new(body, deadline.clone(), ReadDeadline::stop))
    };
    request.extensions_mut().insert(deadline.clone());
    next.run(request).await.map(|body| Body::new(Tell::new(body, deadline, ReadDeadline::restart)))
}

/// A body that moves the clock once: when it ends, fails or is dropped.
struct Tell {
    body: Body,
    deadline: ReadDeadline,
    event: Option<fn(&ReadDeadline)>,
}

impl std::fmt::Debug for Tell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tell").field("told", &self.event.is_none()).finish_non_exhaustive()
    }
}

impl Tell {
    fn new(body: Body, deadline: ReadDeadline, event: fn(&ReadDeadline)) -> Tell {
        Tell { body, deadline, event: Some(event) }
    }

    fn tell(&mut self) {
        if let Some(event) = self.event.take() {
            event(&self.deadline);
        }
    }
}

impl HttpBody for Tell {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            this.tell();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Tell {
    fn drop(&mut self) {
        self.tell();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(d: &ReadDeadline) -> Clock {
        *d.clock.borrow()
    }

    #[tokio::test]
    async fn the_clock_stops_for_answers_and_pauses_for_turns() {
        let d = ReadDeadline::new(Duration::from_millis(200));
        assert!(matches!(clock(&d), Clock::Running(_)));
        d.paused(tokio::time::sleep(Duration::from_millis(300))).await;
        let Clock::Running(due) = clock(&d) else { panic!("{:?}", clock(&d)) };
        assert!(due > Instant::now() + Duration::from_millis(100), "the wait did not count");
        d.stop();
        d.paused(async {}).await;
        assert_eq!(clock(&d), Clock::Stopped, "a stopped clock stays stopped through a turn");
        let never = tokio::time::timeout(Duration::from_millis(300), d.expired()).await;
        assert!(never.is_err(), "a stopped clock never expires");
        d.restart();
        let started = Instant::now();
        d.expired().await;
        assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_body_tells_once_when_read_or_dropped() {
        let d = ReadDeadline::new(Duration::from_secs(60));
        let body = Body::new(Tell::new(Body::from("abc"), d.clone(), ReadDeadline::stop));
        assert!(matches!(clock(&d), Clock::Running(_)));
        let bytes = axum::body::to_bytes(body, 16).await.unwrap();
        assert_eq!(&bytes[..], b"abc");
        assert_eq!(clock(&d), Clock::Stopped);

        let body = Tell::new(Body::from("abc"), d.clone(), ReadDeadline::restart);
        assert_eq!(clock(&d), Clock::Stopped);
        drop(body);
        assert!(matches!(clock(&d), Clock::Running(_)));
    }
}

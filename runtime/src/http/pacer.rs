//! `HOTPROF_HTTP_RATE`: hotprof's own server does at most that many units of
//! work a second (accepting a connection is one, serving a request another, a
//! TLS handshake [`TLS_HANDSHAKE_TURNS`]), with a burst of as many. Work beyond it waits its turn instead of being
//! refused, because a refusal costs as much as an answer: a flood of requests,
//! even rejected ones, then costs the service a bounded slice of one core.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::time::Instant;

use super::deadline::ReadDeadline;

/// What accepting a TLS connection costs, in turns: its handshake takes
/// 0.3 ms (ECDSA P-256) to 0.8 ms (RSA 2048) of CPU against some 10 us for a
/// rejected request, so a flood of new connections is held to a tenth of the rate.
pub(crate) const TLS_HANDSHAKE_TURNS: u32 = 10;

/// Spaces out turns with the generic cell rate algorithm: one "theoretical
/// arrival time" that each turn pushes on by one interval.
#[derive(Debug)]
pub(crate) struct Pacer {
    interval: Duration,
    /// How far ahead of the theoretical time a turn may go: the burst.
    tolerance: Duration,
    tat: Mutex<Option<Instant>>,
}

impl Pacer {
    /// `per_second` turns a second, `per_second` of them back to back.
    pub(crate) fn new(per_second: u32) -> Pacer {
        let interval = Duration::from_secs(1) / per_second.max(1);
        Pacer { interval, tolerance: interval * per_second.saturating_sub(1), tat: Mutex::new(None) }
    }

    /// When the next piece of work may start, given the time now; books it.
    /// It costs `turns` turns (at least 1), all of which must fit the burst.
    fn book(&self, now: Instant, turns: u32) -> Instant {
        let turns = turns.max(1);
        let mut tat = self.tat.lock().unwrap_or_else(PoisonError::into_inner);
        let t = tat.map_or(now, |t| t.max(now));
        *tat = Some(t + self.interval * turns);
        (t + self.interval * (turns - 1)).checked_sub(self.tolerance).map_or(now, |start| start.max(now))
    }

    /// Waits until work costing `turns` turns may start.
    pub(crate) async fn turn(&self, turns: u32) {
        let now = Instant::now();
        let start = self.book(now, turns);
        if start > now {
            tokio::time::sleep_until(start).await;
        }
    }
}

/// Middleware: each request waits for its turn before anything else runs.
/// The wait is the server's, not the client's, so the connection's read
/// deadline is paused meanwhile.
pub(crate) async fn pace(
    State(pacer): State<std::sync::Arc<Pacer>>,
    request: Request,
    next: Next,
) -> Response {
    match request.extensions().get::<ReadDeadline>().cloned() {
        Some(deadline) => deadline.paused(pacer.turn(1)).await,
        None => pacer.turn(1).await,
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_then_turns_are_spaced() {
        let pacer = Pacer::new(4);
        let now = Instant::now();
        let starts: Vec<Duration> = (0..8).map(|_| pacer.book(now, 1) - now).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(starts, [ms(0), ms(0), ms(0), ms(0), ms(250), ms(500), ms(750), ms(1000)]);
    }

    #[test]
    fn idle_time_earns_the_burst_back_but_no_more() {
        let pacer = Pacer::new(2);
        let now = Instant::now();
        for _ in 0..4 {
            pacer.book(now, 1);
        }
        let later = now + Duration::from_secs(10);
        assert_eq!(pacer.book(later, 1), later);
        assert_eq!(pacer.book(later, 1), later);
        assert_eq!(pacer.book(later, 1), later + Duration::from_millis(500));
    }

    #[test]
    fn costly_work_takes_several_turns() {
        // 100 turns a second; a TLS handshake costs 10: ten at once, then ten a second.
        let pacer = Pacer::new(100);
        let now = Instant::now();
        let starts: Vec<Duration> = (0..12).map(|_| pacer.book(now, 10) - now).collect();
        let ms = Duration::from_millis;
        assert_eq!(starts[..10], [ms(0); 10]);
        assert_eq!(starts[10..], [ms(100), ms(200)]);
        // A one-turn request behind them waits a tenth of the handshake spacing.
        assert_eq!(pacer.book(now, 1), now + ms(210));
    }
}

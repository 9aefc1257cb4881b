//! `HOTPROF_HTTP_RATE`: hotprof's own server does at most that many units of
//! work a second (accepting a connection is one, serving a request another),
//! with a burst of as many. Work beyond it waits its turn instead of being
//! refused, because a refusal costs as much as an answer: a flood of requests,
//! even rejected ones, then costs the service a bounded slice of one core.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::time::Instant;

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

    /// When the next turn may start, given the time now; books that turn.
    fn book(&self, now: Instant) -> Instant {
        let mut tat = self.tat.lock().unwrap_or_else(PoisonError::into_inner);
        let t = tat.map_or(now, |t| t.max(now));
        *tat = Some(t + self.interval);
        t.checked_sub(self.tolerance).map_or(now, |start| start.max(now))
    }

    /// Waits for a turn.
    pub(crate) async fn turn(&self) {
        let now = Instant::now();
        let start = self.book(now);
        if start > now {
            tokio::time::sleep_until(start).await;
        }
    }
}

/// Middleware: each request waits for its turn before anything else runs.
pub(crate) async fn pace(
    State(pacer): State<std::sync::Arc<Pacer>>,
    request: Request,
    next: Next,
) -> Response {
    pacer.turn().await;
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_then_turns_are_spaced() {
        let pacer = Pacer::new(4);
        let now = Instant::now();
        let starts: Vec<Duration> = (0..8).map(|_| pacer.book(now) - now).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(starts, [ms(0), ms(0), ms(0), ms(0), ms(250), ms(500), ms(750), ms(1000)]);
    }

    #[test]
    fn idle_time_earns_the_burst_back_but_no_more() {
        let pacer = Pacer::new(2);
        let now = Instant::now();
        for _ in 0..4 {
            pacer.book(now);
        }
        let later = now + Duration::from_secs(10);
        assert_eq!(pacer.book(later), later);
        assert_eq!(pacer.book(later), later);
        assert_eq!(pacer.book(later), later + Duration::from_millis(500));
    }
}

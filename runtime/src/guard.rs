//! Rate limiting for triggers: a token bucket, and refusals that are counted
//! and logged at most once per window so a signal storm cannot flood the log.

use std::time::{Duration, Instant};

/// A token bucket: `burst` triggers back to back, then one per `refill`.
/// Time is passed in, so tests drive it with their own clock.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    burst: u32,
    refill: Duration,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(burst: u32, refill: Duration, now: Instant) -> Self {
        TokenBucket { burst: burst.max(1), refill, tokens: burst.max(1) as f64, last: now }
    }

    /// Takes a token if one is available.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let earned =
            now.saturating_duration_since(self.last).as_secs_f64() / self.refill.as_secs_f64().max(1e-9);
        self.tokens = (self.tokens + earned).min(self.burst as f64);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until the next token, for "retry after" messages.
    pub(crate) fn wait_time(&self) -> Duration {
        self.refill.mul_f64((1.0 - self.tokens).max(0.0))
    }
}

/// Counts refusals and says when one should be logged: the first in a window,
/// then a summary of the rest when the next window opens.
#[derive(Debug)]
pub(crate) struct RefusalLog {
    window: Duration,
    window_start: Option<Instant>,
    suppressed: u64,
    total: u64,
}

impl RefusalLog {
    pub(crate) fn new(window: Duration) -> Self {
        RefusalLog { window, window_start: None, suppressed: 0, total: 0 }
    }

    /// Records `n` refusals. Returns `Some(k)` when the caller should log now,
    /// where `k` is how many refusals went unlogged before these.
    pub(crate) fn refuse(&mut self, now: Instant, n: u64) -> Option<u64> {
        self.total += n;
        match self.window_start {
            Some(start) if now.saturating_duration_since(start) < self.window => {
                self.suppressed += n;
                None
            }
            _ => {
                self.window_start = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3, Duration::from_secs(10), t0);
        assert!((0..3).all(|_| b.try_take(t0)));
        assert!(!b.try_take(t0));
        assert!(!b.try_take(t0 + Duration::from_secs(9)));
        assert!(b.try_take(t0 + Duration::from_secs(10)));
        assert!(!b.try_take(t0 + Duration::from_secs(10)));
        // A long pause refills to the burst, never beyond.
        let later = t0 + Duration::from_secs(1000);
        assert!((0..3).all(|_| b.try_take(later)));
        assert!(!b.try_take(later));
        assert!(b.wait_time() > Duration::from_secs(9));
    }

    #[test]
    fn storm_is_bounded_by_burst_plus_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(5, Duration::from_secs(12), t0);
        // 1,000 triggers spread over 60 s: at most 5 + 60/12 pass.
        let passed = (0..1000).filter(|i| b.try_take(t0 + Duration::from_millis(60 * i))).count();
        assert_eq!(passed, 5 + 4);
    }

    #[test]
    fn refusals_log_once_per_window() {
        let t0 = Instant::now();
        let mut log = RefusalLog::new(Duration::from_secs(10));
        assert_eq!(log.refuse(t0, 1), Some(0));
        for i in 1..100 {
            assert_eq!(log.refuse(t0 + Duration::from_millis(i), 1), None);
        }
        assert_eq!(log.refuse(t0 + Duration::from_secs(10), 5), Some(99));
        assert_eq!(log.refuse(t0 + Duration::from_secs(11), 1), None);
        assert_eq!(log.total(), 106);
    }
}

//! The one guard every trigger passes before it costs anything:
//!
//! 1. a token bucket per trigger kind (`burst` back to back, one more per `refill`);
//! 2. a window lock per kind: `lock_after` rejections within `lock_window`
//!    lock that kind for `lock_cooldown`;
//! 3. a breaker over all kinds: `breaker_after` locks within `breaker_window`
//!    open it, refusing every capture for `breaker_cooldown`, doubled on each
//!    trip up to `breaker_max`; when the cooldown ends it is half-open: the
//!    next admitted trigger closes it (and resets the backoff), the next
//!    rejection opens it again, for twice as long.
//!
//! Time is passed in, so tests drive the guard with their own clock. Each
//! refusal says what it changed (a kind locked, the breaker opened), so the
//! caller can say so once; refusals are counted per kind ([`Stats`]).

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// What asks for a capture, for the guard's books.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Thread dumps: SIGUSR1 and the dump API.
    Dump,
    /// CPU profiles: SIGUSR2 and the CPU API.
    Cpu,
    /// Slow-call events of scoped samplers.
    Slow,
    /// Heap profile files (`HOTPROF_SIGUSR2=heap`).
    Heap,
}

impl Kind {
    pub(crate) const ALL: [Kind; 4] = [Kind::Dump, Kind::Cpu, Kind::Slow, Kind::Heap];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Dump => "thread dump",
            Kind::Cpu => "CPU profile",
            Kind::Slow => "slow-call event",
            Kind::Heap => "heap profile",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The guard's numbers (see the module docs and the configuration table).
#[derive(Debug, Clone)]
pub(crate) struct GuardConfig {
    pub burst: u32,
    pub refill: Duration,
    pub lock_after: u32,
    pub lock_window: Duration,
    pub lock_cooldown: Duration,
    pub breaker_after: u32,
    pub breaker_window: Duration,
    pub breaker_cooldown: Duration,
    pub breaker_max: Duration,
}

/// Why a trigger was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token left in the bucket.
    RateLimited,
    /// Too many refusals in a short time locked this kind of trigger.
    Locked,
    /// Repeated locks opened the breaker: every capture is refused for now.
    BreakerOpen,
}

/// A refused capture: why, and when the guard may let the next one of its
/// kind through. The one refusal every error type of hotprof carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Rate limit, window lock or breaker.
    pub reason: Refusal,
    /// Time until the guard may let the next capture of this kind through.
    pub retry_after: Duration,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; try again in {:.1}s", self.reason.describe(), self.retry_after.as_secs_f64())
    }
}

/// What a refusal changed in the guard: rare events the caller says once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// This refusal locked its kind.
    pub locked: bool,
    /// This refusal opened the breaker, for this long.
    pub breaker_opened: Option<Duration>,
}

/// A refusal and what it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Denial {
    pub refused: Refused,
    pub changes: Changes,
}

impl Refusal {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Refusal::RateLimited => "refused by the rate limit",
            Refusal::Locked => "refused: locked after too many refusals",
            Refusal::BreakerOpen => "refused: the breaker is open after repeated locks",
        }
    }
}

/// Counters of one trigger kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindStats {
    /// Triggers let through.
    pub admitted: u64,
    /// Refused for want of a token.
    pub rate_limited: u64,
    /// Refused while the kind was locked.
    pub locked: u64,
    /// Refused while the breaker was open.
    pub breaker: u64,
    /// Times this kind got locked.
    pub locks: u64,
}

impl KindStats {
    /// Every refusal.
    pub fn refused(&self) -> u64 {
        self.rate_limited + self.locked + self.breaker
    }
}

/// Counters of the guard every trigger passes (see `hotprof::stats()`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Stats {
    /// Per trigger kind (`thread dump`, `CPU profile`, `slow-call event`, `heap profile`).
    pub kinds: Vec<(&'static str, KindStats)>,
    /// The breaker refuses every capture right now.
    pub breaker_open: bool,
    /// Times the breaker opened.
    pub breaker_trips: u64,
    /// SIGUSR1s that arrived while a dump was running and were merged into it.
    pub merged_signals: u64,
    /// Dye tags and headers ignored because they were empty or not visible ASCII.
    pub dye_values_ignored: u64,
}

#[derive(Debug)]
struct KindGuard {
    bucket: TokenBucket,
    rejections: VecDeque<Instant>,
    locked_until: Option<Instant>,
    stats: KindStats,
}

/// The guard of all kinds.
#[derive(Debug)]
pub(crate) struct Guard {
    config: GuardConfig,
    kinds: Vec<KindGuard>,
    locks: VecDeque<Instant>,
    open_until: Option<Instant>,
    trips: u32,
    breaker_trips_total: u64,
}

impl Guard {
    pub(crate) fn new(config: GuardConfig, now: Instant) -> Guard {
        let kinds = Kind::ALL
            .iter()
            .map(|_| KindGuard {
                bucket: TokenBucket::new(config.burst, config.refill, now),
                rejections: VecDeque::new(),
                locked_until: None,
                stats: KindStats::default(),
            })
            .collect();
        Guard { config, kinds, locks: VecDeque::new(), open_until: None, trips: 0, breaker_trips_total: 0 }
    }

    /// Admits or refuses one trigger of `kind`; a refusal says how long
    /// until it may pass and what it changed.
    pub(crate) fn check(&mut self, kind: Kind, now: Instant) -> Result<(), Denial> {
        let denied =
            |reason, retry_after, changes| Denial { refused: Refused { reason, retry_after }, changes };
        let half_open = match self.open_until {
            Some(until) if now < until => {
                self.kinds[kind.index()].stats.breaker += 1;
                return Err(denied(Refusal::BreakerOpen, until - now, Changes::default()));
            }
            Some(_) => true,
            None => false,
        };
        let k = &mut self.kinds[kind.index()];
        if let Some(until) = k.locked_until.filter(|u| now < *u) {
            k.stats.locked += 1;
            return Err(denied(Refusal::Locked, until - now, Changes::default()));
        }
        if k.bucket.try_take(now) {
            k.stats.admitted += 1;
            if half_open {
                // The trial passed: closed again, and the backoff starts over.
                self.open_until = None;
                self.trips = 0;
            }
            return Ok(());
        }
        k.stats.rate_limited += 1;
        let retry = k.bucket.wait_time();
        let changes = if half_open {
            Changes { locked: false, breaker_opened: Some(self.open_breaker(now)) }
        } else {
            self.count_rejection(kind, now)
        };
        Err(denied(Refusal::RateLimited, retry, changes))
    }

    fn count_rejection(&mut self, kind: Kind, now: Instant) -> Changes {
        let window = self.config.lock_window;
        let k = &mut self.kinds[kind.index()];
        k.rejections.push_back(now);
        while k.rejections.front().is_some_and(|t| now.saturating_duration_since(*t) > window) {
            k.rejections.pop_front();
        }
        if k.rejections.len() < self.config.lock_after as usize {
            return Changes::default();
        }
        k.rejections.clear();
        k.locked_until = Some(now + self.config.lock_cooldown);
        k.stats.locks += 1;
        self.locks.push_back(now);
        let window = self.config.breaker_window;
        while self.locks.front().is_some_and(|t| now.saturating_duration_since(*t) > window) {
            self.locks.pop_front();
        }
        let mut changes = Changes { locked: true, breaker_opened: None };
        if self.locks.len() >= self.config.breaker_after as usize {
            self.locks.clear();
            changes.breaker_opened = Some(self.open_breaker(now));
        }
        changes
    }

    /// Opens the breaker for the base cooldown doubled per earlier trip,
    /// capped; returns that cooldown.
    fn open_breaker(&mut self, now: Instant) -> Duration {
        let factor = 1u32.checked_shl(self.trips.min(30)).unwrap_or(u32::MAX);
        let cooldown = self.config.breaker_cooldown.saturating_mul(factor).min(self.config.breaker_max);
        self.open_until = Some(now + cooldown);
        self.trips += 1;
        self.breaker_trips_total += 1;
        cooldown
    }

    /// The counters of every kind and of the breaker.
    pub(crate) fn snapshot(&self, now: Instant) -> Stats {
        let (breaker_open, breaker_trips) = self.breaker(now);
        Stats {
            kinds: Kind::ALL.iter().map(|k| (k.name(), self.stats(*k))).collect(),
            breaker_open,
            breaker_trips,
            merged_signals: 0,
            dye_values_ignored: 0,
        }
    }

    pub(crate) fn stats(&self, kind: Kind) -> KindStats {
        self.kinds[kind.index()].stats
    }

    /// (is the breaker open now, times it opened).
    pub(crate) fn breaker(&self, now: Instant) -> (bool, u64) {
        (self.open_until.is_some_and(|u| now < u), self.breaker_trips_total)
    }
}

/// A token bucket: `burst` triggers back to back, then one per `refill`.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn config() -> GuardConfig {
        GuardConfig {
            burst: 2,
            refill: secs(10),
            lock_after: 3,
            lock_window: secs(10),
            lock_cooldown: secs(60),
            breaker_after: 2,
            breaker_window: secs(600),
            breaker_cooldown: secs(300),
            breaker_max: secs(1000),
        }
    }

    #[test]
    fn bucket_allows_burst_then_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3, secs(10), t0);
        assert!((0..3).all(|_| b.try_take(t0)));
        assert!(!b.try_take(t0));
        assert!(!b.try_take(t0 + secs(9)));
        assert!(b.try_take(t0 + secs(10)));
        assert!(!b.try_take(t0 + secs(10)));
        let later = t0 + secs(1000);
        assert!((0..3).all(|_| b.try_take(later)));
        assert!(!b.try_take(later));
        assert!(b.wait_time() > secs(9));
    }

    #[test]
    fn storm_is_bounded_by_burst_plus_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(5, secs(12), t0);
        let passed = (0..1000).filter(|i| b.try_take(t0 + Duration::from_millis(60 * i))).count();
        assert_eq!(passed, 5 + 4);
    }

    #[test]
    fn rejections_in_a_window_lock_the_kind_only() {
        let t0 = Instant::now();
        let mut g = Guard::new(config(), t0);
        assert!(g.check(Kind::Dump, t0).is_ok());
        assert!(g.check(Kind::Dump, t0).is_ok());
        for _ in 0..3 {
            assert_eq!(g.check(Kind::Dump, t0).unwrap_err().refused.reason, Refusal::RateLimited);
        }
        // Locked now, even once a token is back.
        let Refused { reason: why, retry_after: retry } =
            g.check(Kind::Dump, t0 + secs(20)).unwrap_err().refused;
        assert_eq!((why, retry), (Refusal::Locked, secs(40)));
        // Other kinds are not affected.
        assert!(g.check(Kind::Cpu, t0 + secs(20)).is_ok());
        // After the cooldown, tokens decide again.
        assert!(g.check(Kind::Dump, t0 + secs(61)).is_ok());
        let s = g.stats(Kind::Dump);
        assert_eq!((s.admitted, s.rate_limited, s.locked, s.locks), (3, 3, 1, 1));
        assert_eq!(s.refused(), 4);
    }

    #[test]
    fn rejections_spread_out_do_not_lock() {
        let t0 = Instant::now();
        let mut g = Guard::new(config(), t0);
        g.check(Kind::Dump, t0).unwrap();
        g.check(Kind::Dump, t0).unwrap();
        // One rejection every 6 s: never 3 within 10 s, never locked.
        let mut locked = false;
        for i in 0..20 {
            let t = t0 + Duration::from_secs(6 * i) + Duration::from_millis(1);
            if g.check(Kind::Dump, t).is_err_and(|d| d.refused.reason == Refusal::Locked) {
                locked = true;
            }
        }
        assert!(!locked);
    }

    fn refused(reason: Refusal, secs: u64) -> Refused {
        Refused { reason, retry_after: Duration::from_secs(secs) }
    }

    #[test]
    fn refusals_say_what_they_changed() {
        let t0 = Instant::now();
        let mut g = Guard::new(config(), t0);
        g.check(Kind::Dump, t0).unwrap();
        g.check(Kind::Dump, t0).unwrap();
        let changes: Vec<Changes> = (0..3).map(|_| g.check(Kind::Dump, t0).unwrap_err().changes).collect();
        assert_eq!(changes[0], Changes::default(), "a plain refusal changes nothing");
        assert_eq!(changes[1], Changes::default());
        assert_eq!(changes[2], Changes { locked: true, breaker_opened: None }, "the third locks");
        assert_eq!(g.check(Kind::Dump, t0).unwrap_err().changes, Changes::default(), "locked already");
        g.check(Kind::Cpu, t0).unwrap();
        g.check(Kind::Cpu, t0).unwrap();
        let last = (0..3).map(|_| g.check(Kind::Cpu, t0).unwrap_err().changes).last().unwrap();
        assert_eq!(last, Changes { locked: true, breaker_opened: Some(secs(300)) }, "the second lock trips");
        let stats = g.snapshot(t0);
        assert!(stats.breaker_open);
        assert_eq!(stats.breaker_trips, 1);
    }

    fn lock(g: &mut Guard, kind: Kind, at: Instant) {
        while g.check(kind, at).is_ok() {}
        while !g
            .check(kind, at)
            .is_err_and(|d| matches!(d.refused.reason, Refusal::Locked | Refusal::BreakerOpen))
        {}
    }

    #[test]
    fn repeated_locks_open_the_breaker_with_backoff_then_half_open() {
        let t0 = Instant::now();
        let mut g = Guard::new(config(), t0);
        lock(&mut g, Kind::Dump, t0);
        lock(&mut g, Kind::Cpu, t0 + secs(1));
        // Two locks within the breaker window: every kind is refused.
        let Refused { reason: why, retry_after: retry } =
            g.check(Kind::Slow, t0 + secs(2)).unwrap_err().refused;
        assert_eq!((why, retry), (Refusal::BreakerOpen, secs(299)));
        assert_eq!(g.breaker(t0 + secs(2)), (true, 1));
        // Half-open after the cooldown: an admitted trigger closes it.
        let t1 = t0 + secs(302);
        assert!(g.check(Kind::Slow, t1).is_ok());
        assert_eq!(g.breaker(t1), (false, 1));
        // Closed by a good trial: the next trip starts from the base cooldown again.
        let t2 = t1 + secs(100);
        lock(&mut g, Kind::Dump, t2);
        lock(&mut g, Kind::Cpu, t2);
        assert_eq!(g.check(Kind::Slow, t2).unwrap_err().refused, refused(Refusal::BreakerOpen, 300));
        assert_eq!(g.breaker(t2), (true, 2));
    }

    #[test]
    fn a_failed_trial_reopens_the_breaker_doubled_up_to_the_cap() {
        let t0 = Instant::now();
        // Buckets that do not refill during the test: trials of Dump fail.
        let mut g = Guard::new(GuardConfig { refill: secs(100_000), ..config() }, t0);
        lock(&mut g, Kind::Dump, t0);
        lock(&mut g, Kind::Cpu, t0);
        assert_eq!(g.check(Kind::Dump, t0).unwrap_err().refused, refused(Refusal::BreakerOpen, 300));
        let t1 = t0 + secs(301);
        assert_eq!(g.check(Kind::Dump, t1).unwrap_err().refused.reason, Refusal::RateLimited, "the trial");
        assert_eq!(g.check(Kind::Slow, t1).unwrap_err().refused, refused(Refusal::BreakerOpen, 600));
        let t2 = t1 + secs(601);
        assert_eq!(g.check(Kind::Dump, t2).unwrap_err().refused.reason, Refusal::RateLimited);
        assert_eq!(
            g.check(Kind::Slow, t2).unwrap_err().refused,
            refused(Refusal::BreakerOpen, 1000),
            "capped"
        );
        assert_eq!(g.breaker(t2), (true, 3));
    }
}

//! Two clocks for scopes: a precise one (TSC through `quanta`, about 9 ns a
//! read here) for scopes with a threshold, and a coarse one (one relaxed load)
//! that the ticker thread advances every tick, for everything else.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
static ORIGIN: OnceLock<u64> = OnceLock::new();

/// Nanoseconds since the coarse clock last ticked (set by the ticker).
static COARSE_NS: AtomicU64 = AtomicU64::new(0);

fn clock() -> &'static quanta::Clock {
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Precise nanoseconds since the first use of this clock.
#[inline]
pub(crate) fn precise_ns() -> u64 {
    let c = clock();
    let origin = *ORIGIN.get_or_init(|| c.raw());
    c.delta_as_nanos(origin, c.raw())
}

/// The coarse clock: as of the ticker's last tick.
#[inline]
pub(crate) fn coarse_ns() -> u64 {
    COARSE_NS.load(Ordering::Relaxed)
}

/// Advances the coarse clock; called by the ticker each tick.
pub(crate) fn tick() -> u64 {
    let now = precise_ns();
    COARSE_NS.fetch_max(now, Ordering::Relaxed);
    now
}

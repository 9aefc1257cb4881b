//! Which allocations are sampled: Poisson sampling by bytes, as Go's
//! `MemProfileRate`. Each thread counts down the bytes left until its next
//! sample, drawn from an exponential distribution of mean `rate`; an
//! allocation that crosses zero is sampled, so a block of `size` bytes is
//! sampled with probability `1 - exp(-size/rate)` (the profile scales it
//! back up by the inverse).
//!
//! The fast path is the thread's countdown: a decrement and a branch. The
//! slow path (once per `rate` bytes on average) draws the next distance,
//! and, when capture is on, records the sample: the block in the live table
//! and the stack in the ring. Nothing on it allocates, locks or unwinds;
//! should anything it calls allocate anyway (glibc, answering the main
//! thread's stack bounds), the thread's `BUSY` flag makes that allocation
//! pass through unsampled.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{live, ring, stats};
use crate::{scope, switch, sys};

/// Go's default `MemProfileRate`: one sample per 512 KiB allocated.
pub(crate) const DEFAULT_RATE: u64 = 512 * 1024;

/// Mean bytes between samples; 0 turns sampling off.
pub(super) static RATE: AtomicU64 = AtomicU64::new(DEFAULT_RATE);
/// Set by the first allocation through `SampledAlloc`: the program uses it.
pub(super) static IN_USE: AtomicBool = AtomicBool::new(false);
static SEQ: AtomicU64 = AtomicU64::new(0);

/// Stack bounds not asked yet, or asked and unknown.
const UNKNOWN: (usize, usize) = (0, 0);
const NONE: (usize, usize) = (1, 1);

thread_local! {
    /// Bytes this thread may still allocate before its next sample.
    static LEFT: Cell<i64> = const { Cell::new(0) };
    /// xorshift state; 0 until the thread's first slow path.
    static RNG: Cell<u64> = const { Cell::new(0) };
    /// The thread is recording a sample: its own allocations pass unsampled.
    static BUSY: Cell<bool> = const { Cell::new(false) };
    static BOUNDS: Cell<(usize, usize)> = const { Cell::new(UNKNOWN) };
}

/// Counts `size` bytes against the thread's countdown: true when it
/// crossed zero. The whole per-allocation cost of an unsampled block.
#[inline(always)]
pub(super) fn due(size: usize) -> bool {
    LEFT.with(|left| {
        let l = left.get().wrapping_sub(size as i64);
        left.set(l);
        l < 0
    })
}

/// The countdown crossed zero on the allocation of `size` bytes at `ptr`.
#[cold]
#[inline(never)]
pub(super) fn crossed(ptr: usize, size: usize) {
    if BUSY.with(Cell::get) {
        return;
    }
    let rate = RATE.load(Ordering::Relaxed);
    if rate == 0 {
        LEFT.with(|l| l.set(i64::MAX));
        return;
    }
    let seeded = RNG.with(|r| {
        let first = r.get() == 0;
        if first {
            // Any odd start differs per thread and run.
            r.set((sys::monotonic_ns() ^ (ptr as u64).rotate_left(32) ^ (sys::gettid() as u64) << 17) | 1);
            IN_USE.store(true, Ordering::Relaxed);
        }
        !first
    });
    // A thread's first countdown starts here: its first crossing is not a sample.
    if seeded && ptr != 0 && switch::is_enabled() {
        BUSY.with(|b| b.set(true));
        record(ptr, size);
        BUSY.with(|b| b.set(false));
    }
    let next = next_distance(rate);
    LEFT.with(|l| l.set(next));
}

/// An exponential draw of mean `rate` bytes.
fn next_distance(rate: u64) -> i64 {
    let x = RNG.with(|r| {
        let mut x = r.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x
    });
    // Uniform in (0, 1]: never ln(0).
    let u = ((x >> 11) + 1) as f64 / (1u64 << 53) as f64;
    (-u.ln() * rate as f64).min(i64::MAX as f64 / 2.0) as i64
}

/// Records a sampled block: its entry in the live table, its stack in the ring.
fn record(ptr: usize, size: usize) {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed) & live::SEQ_MASK;
    let entry = live::insert(ptr, size, seq, live::UNRESOLVED);
    if entry.is_none() {
        stats::UNTRACKED.fetch_add(1, Ordering::Relaxed);
    }
    let meta = ring::Meta {
        tid: sys::gettid(),
        node: scope::innermost_node(),
        dye: crate::dye::current_id(),
        entry: entry.unwrap_or(u32::MAX),
        seq,
        size,
    };
    if !ring::capture(meta, bounds()) {
        // No slot: the sample counts without its stack.
        stats::record_stackless(size);
        if let Some(e) = entry {
            live::resolve(e, seq, stats::STACKLESS);
        }
    }
}

/// This thread's stack bounds, asked once.
fn bounds() -> Option<(usize, usize)> {
    let known = BOUNDS.with(Cell::get);
    let b = if known == UNKNOWN {
        let b = sys::current_stack_bounds().unwrap_or(NONE);
        BOUNDS.with(|c| c.set(b));
        b
    } else {
        known
    };
    (b != NONE).then_some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_exponential_with_the_rate_as_mean() {
        RNG.with(|r| r.set(0x1234_5678_9abc_def1));
        let n = 200_000;
        let draws: Vec<f64> = (0..n).map(|_| next_distance(1000) as f64).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        assert!((mean - 1000.0).abs() < 15.0, "mean {mean}");
        // P(X > mean) = 1/e for an exponential.
        let above = draws.iter().filter(|d| **d > 1000.0).count() as f64 / n as f64;
        assert!((above - (-1f64).exp()).abs() < 0.01, "{above}");
    }
}

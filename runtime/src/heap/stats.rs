//! Counters of samples that could not be kept whole.

use std::sync::atomic::{AtomicU64, Ordering};

/// Stack id of samples taken while every ring slot was waiting for the
/// collector: counted, without their stack.
pub(super) const STACKLESS: u32 = 0xFF_FFFE;

/// Samples whose block found no room in the live table: in the allocation
/// totals, never in use.
pub(super) static UNTRACKED: AtomicU64 = AtomicU64::new(0);
/// Samples without a stack, and their bytes.
static STACKLESS_COUNT: AtomicU64 = AtomicU64::new(0);
static STACKLESS_BYTES: AtomicU64 = AtomicU64::new(0);

pub(super) fn record_stackless(size: usize) {
    STACKLESS_COUNT.fetch_add(1, Ordering::Relaxed);
    STACKLESS_BYTES.fetch_add(size as u64, Ordering::Relaxed);
}

/// Samples kept without a stack so far, and their bytes.
pub(super) fn stackless() -> (u64, u64) {
    (STACKLESS_COUNT.load(Ordering::Relaxed), STACKLESS_BYTES.load(Ordering::Relaxed))
}

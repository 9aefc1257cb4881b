//! The process-wide capture switch: one relaxed atomic load to read.

use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns capture on: SIGUSR1 writes thread dumps again.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Turns capture off: SIGUSR1 is logged and otherwise ignored; nothing is written.
pub fn disable() {
    ENABLED.store(false, Ordering::Relaxed);
}

/// Whether capture is on. One relaxed atomic load: cheap enough for any hot path.
#[inline]
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

pub(crate) fn set(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// What every "capture is off" error says.
pub(crate) const OFF: &str =
    "capture is off (HOTPROF=off or hotprof::disable()); turn it on with hotprof::enable() or HOTPROF=on";

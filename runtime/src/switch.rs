//! The process-wide switches, in one word so that a hot path reads them with
//! one relaxed load: capture on or off, whether scopes are recorded for all
//! traffic or only for dyed traffic, and how many dyed futures are alive.

use std::sync::atomic::{AtomicU32, Ordering};

/// Capture is on.
const ON: u32 = 1;
/// Scopes and spans are logical frames for all traffic, not only dyed traffic.
const ALL_SCOPES: u32 = 2;
/// One live dyed future: the bits above the flags count them.
const ONE_DYED: u32 = 4;

static STATE: AtomicU32 = AtomicU32::new(ALL_SCOPES);

/// Turns capture on: SIGUSR1 writes thread dumps again.
pub fn enable() {
    STATE.fetch_or(ON, Ordering::Relaxed);
}

/// Turns capture off: SIGUSR1 is logged and otherwise ignored; nothing is written.
pub fn disable() {
    STATE.fetch_and(!ON, Ordering::Relaxed);
}

/// Whether capture is on. One relaxed atomic load: cheap enough for any hot path.
#[inline]
pub fn is_enabled() -> bool {
    STATE.load(Ordering::Relaxed) & ON != 0
}

pub(crate) fn set(on: bool) {
    if on { enable() } else { disable() }
}

/// Which traffic `#[hotprof::profile]` scopes and `tracing` spans are
/// recorded for (`HOTPROF_SCOPES`, [`set_scope_capture`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScopeCapture {
    /// Every call and span, dyed or not (the default).
    #[default]
    All,
    /// Only calls and spans inside dyed traffic ([`crate::dyed`],
    /// `DyeLayer`); everything else pays one load and a branch.
    Dyed,
}

impl ScopeCapture {
    /// How `HOTPROF_SCOPES` and status texts spell it: `all`, `dyed`.
    pub fn word(self) -> &'static str {
        match self {
            ScopeCapture::All => "all",
            ScopeCapture::Dyed => "dyed",
        }
    }
}

/// Records scopes for all traffic or only for dyed traffic, at once and
/// process-wide. The capture switch still comes first: with capture off,
/// nothing is recorded, dyed or not.
pub fn set_scope_capture(which: ScopeCapture) {
    match which {
        ScopeCapture::All => STATE.fetch_or(ALL_SCOPES, Ordering::Relaxed),
        ScopeCapture::Dyed => STATE.fetch_and(!ALL_SCOPES, Ordering::Relaxed),
    };
}

/// Which traffic scopes are recorded for now.
pub fn scope_capture() -> ScopeCapture {
    if STATE.load(Ordering::Relaxed) & ALL_SCOPES != 0 { ScopeCapture::All } else { ScopeCapture::Dyed }
}

/// Whether a scope or span entered now, on this thread, becomes a frame:
/// capture on, and all traffic recorded or this thread inside dyed traffic.
/// The thread's dye is read only while some dyed future is alive, so
/// undyed traffic pays the one load and its branches.
#[inline]
pub(crate) fn scopes_here() -> bool {
    let state = STATE.load(Ordering::Relaxed);
    if state & (ON | ALL_SCOPES) == ON | ALL_SCOPES {
        return true;
    }
    state & ON != 0 && state >= ONE_DYED && crate::dye::here()
}

/// A dyed future was polled for the first time.
pub(crate) fn dyed_started() {
    STATE.fetch_add(ONE_DYED, Ordering::Relaxed);
}

/// A dyed future that was polled completed or was dropped.
pub(crate) fn dyed_ended() {
    STATE.fetch_sub(ONE_DYED, Ordering::Relaxed);
}

/// What every "capture is off" error says.
pub(crate) const OFF: &str =
    "capture is off (HOTPROF=off or hotprof::disable()); turn it on with hotprof::enable() or HOTPROF=on";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_the_dyed_count_do_not_disturb_each_other() {
        let before = STATE.load(Ordering::Relaxed);
        dyed_started();
        dyed_started();
        enable();
        assert!(is_enabled() && scope_capture() == ScopeCapture::All && scopes_here());
        dyed_ended();
        dyed_ended();
        assert_eq!(STATE.load(Ordering::Relaxed) & !(ON | ALL_SCOPES), before & !(ON | ALL_SCOPES));
    }
}

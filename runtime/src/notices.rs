//! What hotprof says to the operator: notices (silenced by `HOTPROF_QUIET`)
//! and errors (always), each one line on stderr and a `tracing` event, and
//! the log that keeps a repeated refusal to one line per window.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static QUIET: AtomicBool = AtomicBool::new(false);

/// `HOTPROF_QUIET`: notices go to `tracing` only; errors still print.
pub(crate) fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Something an operator should see: tracing, and stderr unless quiet.
pub(crate) fn notice(msg: &str) {
    tracing::info!(target: "hotprof", "{msg}");
    if !QUIET.load(Ordering::Relaxed) {
        stderr_line(&format!("hotprof: {msg}"));
    }
}

/// Something that went wrong: always on stderr.
pub(crate) fn error(msg: &str) {
    tracing::warn!(target: "hotprof", "{msg}");
    stderr_line(&format!("hotprof: {msg}"));
}

/// Several lines on stderr in one write, so other threads' lines cannot
/// land in between; a closed or broken stderr is ignored.
pub(crate) fn stderr_block(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = err.write_all(b"\n");
    }
}

/// One line on stderr; a closed or broken stderr is ignored, never a panic.
pub(crate) fn stderr_line(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
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

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn refusals_log_once_per_window() {
        let t0 = Instant::now();
        let mut log = RefusalLog::new(secs(10));
        assert_eq!(log.refuse(t0, 1), Some(0));
        for i in 1..100 {
            assert_eq!(log.refuse(t0 + Duration::from_millis(i), 1), None);
        }
        assert_eq!(log.refuse(t0 + secs(10), 5), Some(99));
        assert_eq!(log.refuse(t0 + secs(11), 1), None);
        assert_eq!(log.total(), 106);
    }
}

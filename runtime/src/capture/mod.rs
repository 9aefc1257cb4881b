//! The process-wide capture state (config, identity, output folder, the
//! capture lock, the guard) and what every trigger path shares: the guard's
//! admission with its notices, and the metadata headers. The paths
//! themselves: `dump.rs` (thread dumps), `cpu.rs` (CPU windows),
//! `slow_calls.rs` (slow-call events), `heap.rs` (heap profiles).

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

mod cpu;
mod dump;
mod heap;
mod slow_calls;

pub use dump::DumpError;

use crate::config::Config;
use crate::guard::{Denial, Guard, Kind, Refusal, Refused, Stats};
use crate::meta::{self, AppInfo};
use crate::notices::{self, RefusalLog};
use crate::output::OutputDir;
use crate::stacks::{Lookup, Symbolizer, Unwinders};

/// What asked for a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// A signal, by name (e.g. `SIGUSR1`).
    Signal(&'static str),
    /// A call to the public API.
    Api,
    /// A marked call ran past its threshold.
    Threshold,
    /// A request to the debug HTTP server.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    Http,
    /// A request on the attach socket (the `hotprof` command).
    Attach,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Signal(name) => write!(f, "signal {name}"),
            Trigger::Api => f.write_str("api"),
            Trigger::Threshold => f.write_str("threshold"),
            Trigger::Http => f.write_str("http"),
            Trigger::Attach => f.write_str("attach"),
        }
    }
}

/// The process-wide state every capture uses. Built without side effects;
/// `install` sets the process up around it.
pub(crate) struct Capture {
    pub config: Config,
    pub app: AppInfo,
    pub output: OutputDir,
    /// Held for a whole capture: the slots, the unwind tables and the
    /// symbol cache are shared.
    collector: Mutex<(Unwinders, Symbolizer)>,
    /// Every trigger passes here; each kind has its own bucket and lock, so a
    /// burst of slow calls cannot use up SIGUSR1's budget.
    guard: Mutex<(Guard, Vec<RefusalLog>)>,
    off_log: Mutex<RefusalLog>,
    /// SIGUSR1s merged into a dump that was already running.
    merged: AtomicU64,
    merge_log: Mutex<RefusalLog>,
    /// CPU windows whose thread has not yet written its files.
    cpu_windows: AtomicUsize,
    /// When the last dump was taken, in ms since the epoch; 0 for never.
    last_dump_ms: AtomicU64,
}

/// How often a repeated refusal is logged.
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// The state, set up from the environment alone if `#[hotprof::main]` did not run.
pub(crate) fn get() -> &'static Capture {
    crate::install::capture()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of our locks leaves consistent data behind.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Capture {
    pub(crate) fn new(config: Config, app: AppInfo) -> Capture {
        let output = OutputDir {
            dir: config.dir.clone(),
            app: app.name.clone(),
            pid: app.pid,
            max_files: config.max_files,
            max_bytes: config.max_bytes,
        };
        let now = Instant::now();
        let logs = Kind::ALL.iter().map(|_| RefusalLog::new(LOG_WINDOW)).collect();
        Capture {
            guard: Mutex::new((Guard::new(config.guard.clone(), now), logs)),
            merged: AtomicU64::new(0),
            merge_log: Mutex::new(RefusalLog::new(LOG_WINDOW)),
            cpu_windows: AtomicUsize::new(0),
            last_dump_ms: AtomicU64::new(0),
            off_log: Mutex::new(RefusalLog::new(LOG_WINDOW)),
            collector: Mutex::new((Unwinders::default(), Symbolizer::default())),
            config,
            app,
            output,
        }
    }

    /// Passes one trigger of `kind` through the guard; refusals are counted,
    /// what they changed is said at once, and the refusal itself at most
    /// once per window per kind.
    fn admit(&self, kind: Kind) -> Result<(), Refused> {
        let now = Instant::now();
        let mut guard = lock(&self.guard);
        let (g, logs) = &mut *guard;
        let Err(Denial { refused, changes }) = g.check(kind, now) else { return Ok(()) };
        let log = &mut logs[kind.index()];
        let notice = log.refuse(now, 1).map(|unlogged| (unlogged, log.total()));
        drop(guard);
        let c = &self.config.guard;
        if changes.locked {
            notices::error(&format!(
                "{} triggers locked for {:?} after {} refusals within {:?} (HOTPROF_LOCK_*)",
                kind.name(),
                c.lock_cooldown,
                c.lock_after,
                c.lock_window
            ));
        }
        if let Some(open_for) = changes.breaker_opened {
            notices::error(&format!(
                "breaker open: every capture refused for {:.0}s after repeated locks (HOTPROF_BREAKER_*)",
                open_for.as_secs_f64()
            ));
        }
        if let Some((unlogged, total)) = notice {
            let limits = match refused.reason {
                Refusal::RateLimited => {
                    format!(" (HOTPROF_RATE_BURST={}, HOTPROF_RATE_REFILL={:?})", c.burst, c.refill)
                }
                Refusal::Locked | Refusal::BreakerOpen => String::new(),
            };
            notices::error(&format!(
                "{} {}{limits}; next in {:.1}s; {unlogged} more refused since the last notice, {total} in all",
                kind.name(),
                refused.reason.describe(),
                refused.retry_after.as_secs_f64()
            ));
        }
        Err(refused)
    }

    /// When the last dump was taken, if one was.
    pub(crate) fn last_dump(&self) -> Option<SystemTime> {
        match self.last_dump_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(std::time::UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }

    /// A handle on the process's one symbolizer.
    pub(crate) fn symbolizer(&self) -> Symbolizer {
        lock(&self.collector).1.clone()
    }

    /// Starts the symbolizer thread (install does, so every dump lists it).
    pub(crate) fn start_symbolizer(&self) -> std::io::Result<()> {
        lock(&self.collector).1.start()
    }

    /// The function at each address (the innermost one inlined there, as
    /// Go's `FuncForPC`), through the process's one symbolizer.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn function_names(&self, addrs: &[usize]) -> Vec<Option<String>> {
        let lookups = addrs.iter().map(|&pc| Lookup { pc, exact: true }).collect();
        let resolved = lock(&self.collector).1.resolve_all(lookups);
        resolved
            .into_iter()
            .map(|r| r.source.first().map(|s| s.function.clone()).filter(|f| f != "??"))
            .collect()
    }

    /// Counters of the guard, per trigger kind, and the merged signals.
    pub(crate) fn stats(&self) -> Stats {
        let mut stats = lock(&self.guard).0.snapshot(Instant::now());
        stats.merged_signals = self.merged.load(Ordering::Relaxed);
        stats.dye_values_ignored = crate::dye::IGNORED.load(Ordering::Relaxed);
        stats
    }

    fn header(&self, trigger: Trigger, unwinder: &str) -> Vec<(&'static str, String)> {
        let mut h = self.app.header();
        h.push(("time", meta::rfc3339(SystemTime::now())));
        h.push(("trigger", trigger.to_string()));
        h.push(("unwinder", unwinder.to_string()));
        h
    }

    /// The file header as pprof comments.
    pub(crate) fn comments(&self, trigger: Trigger) -> Vec<String> {
        self.header(trigger, "-")
            .into_iter()
            .filter(|(k, _)| *k != "unwinder")
            .map(|(k, v)| format!("{k}: {v}"))
            .collect()
    }
}

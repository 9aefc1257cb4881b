//! The process-wide hotprof state (config, identity, output folder, the
//! capture lock, the guard) and the paths every trigger takes: thread dumps,
//! CPU sessions, slow-call events.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

mod cpu_trigger;
mod slow_calls;

use crate::config::{Config, MacroArgs};
use crate::guard::{Guard, Kind, KindStats, Refusal, RefusalLog};
use crate::meta::{self, AppInfo, BuildInfo};
use crate::output::{OutputDir, OutputError};
use crate::scope;
use crate::stacks::{self, Symbolizer, ThreadDump};
use crate::{signals, switch};

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
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Signal(name) => write!(f, "signal {name}"),
            Trigger::Api => f.write_str("api"),
            Trigger::Threshold => f.write_str("threshold"),
            Trigger::Http => f.write_str("http"),
        }
    }
}

/// Why a dump was not taken or not written.
#[derive(Debug)]
#[non_exhaustive]
pub enum DumpError {
    /// Capture is switched off.
    Disabled,
    /// The guard refused this trigger; try again after the given time.
    Refused {
        /// Rate limit, window lock or breaker.
        reason: Refusal,
        /// Time until the guard may let the next dump through.
        retry_after: Duration,
    },
    /// Stack capture could not be set up in this process.
    Unavailable(String),
    /// The dump was taken but could not be written.
    Output(OutputError),
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DumpError::Disabled => f.write_str(
                "capture is off (HOTPROF=off or hotprof::disable()); turn it on with hotprof::enable() or HOTPROF=on",
            ),
            DumpError::Refused { reason, retry_after } => {
                write!(f, "{}; try again in {:.1}s", reason.describe(), retry_after.as_secs_f64())
            }
            DumpError::Unavailable(why) => write!(f, "stack capture unavailable: {why}"),
            DumpError::Output(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DumpError {}

pub(crate) struct Runtime {
    pub config: Config,
    pub app: AppInfo,
    pub output: OutputDir,
    /// Held for a whole capture: slots and the symbol cache are shared.
    symbolizer: Mutex<Symbolizer>,
    /// Every trigger passes here; each kind has its own bucket and lock, so a
    /// burst of slow calls cannot use up SIGUSR1's budget.
    guard: Mutex<(Guard, Vec<RefusalLog>)>,
    off_log: Mutex<RefusalLog>,
    /// SIGUSR1s merged into a dump that was already running.
    merged: AtomicU64,
    merge_log: Mutex<RefusalLog>,
    /// CPU windows whose thread has not yet written its files.
    cpu_windows: AtomicUsize,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// How often a repeated refusal is logged.
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// The runtime, set up from the environment alone if `#[hotprof::main]` did not run.
pub(crate) fn get() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        Runtime::new(&MacroArgs::default(), AppInfo::new(None, None, None, BuildInfo::default()))
    })
}

/// Set up by `#[hotprof::main]`. Returns `None` when hotprof was already set up.
pub(crate) fn install(
    args: &MacroArgs,
    pkg: &str,
    bin: Option<&str>,
    version: &str,
    build: BuildInfo,
) -> Option<&'static Runtime> {
    let mut fresh = false;
    let rt = RUNTIME.get_or_init(|| {
        fresh = true;
        Runtime::new(args, AppInfo::new(Some(pkg), bin, Some(version), build))
    });
    if !fresh {
        rt.error("already set up; this #[hotprof::main] changes nothing");
        return None;
    }
    Some(rt)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of our locks leaves consistent data behind.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Runtime {
    fn new(args: &MacroArgs, app: AppInfo) -> Runtime {
        let (mut config, errors) = Config::load(args, |k| std::env::var(k).ok());
        for e in errors {
            stderr_line(&e);
        }
        if let (true, Ok(cwd)) = (config.dir.is_relative(), std::env::current_dir()) {
            config.dir = cwd.join(&config.dir);
        }
        switch::set(config.enabled);
        let output = OutputDir {
            dir: config.dir.clone(),
            app: app.name.clone(),
            pid: app.pid,
            max_files: config.max_files,
            max_bytes: config.max_bytes,
        };
        let now = Instant::now();
        let logs = Kind::ALL.iter().map(|_| RefusalLog::new(LOG_WINDOW)).collect();
        let rt = Runtime {
            guard: Mutex::new((Guard::new(config.guard.clone(), now), logs)),
            merged: AtomicU64::new(0),
            merge_log: Mutex::new(RefusalLog::new(LOG_WINDOW)),
            cpu_windows: AtomicUsize::new(0),
            off_log: Mutex::new(RefusalLog::new(LOG_WINDOW)),
            symbolizer: Mutex::new(Symbolizer::default()),
            config,
            app,
            output,
        };
        match rt.output.prepare() {
            Ok(0) => {}
            Ok(n) => rt.notice(&format!("removed {n} temp file(s) left by an earlier process")),
            Err(e) => rt.error(&format!("{e}; dumps will fail until the folder is writable")),
        }
        if let Err(e) = stacks::setup(rt.config.unwinder) {
            rt.error(e);
        }
        // A stray SIGPROF must never terminate the service, profiled yet or not.
        crate::sys::ignore_if_default(libc::SIGPROF);
        if let Err(e) = scope::sampler::start(|events| get().write_slow_calls(events)) {
            rt.error(&format!(
                "cannot start the sampler thread: {e}; scope elapsed times and slow calls are off"
            ));
        }
        rt
    }

    /// Takes a dump if the switch and the rate limit allow it.
    pub(crate) fn dump(&self, trigger: Trigger) -> Result<ThreadDump, DumpError> {
        if !switch::is_enabled() {
            return Err(DumpError::Disabled);
        }
        self.admit(Kind::Dump).map_err(|(reason, retry_after)| DumpError::Refused { reason, retry_after })?;
        let setup =
            stacks::setup(self.config.unwinder).as_ref().map_err(|e| DumpError::Unavailable(e.clone()))?;
        let mut symbolizer = lock(&self.symbolizer);
        let raw = stacks::capture(setup, self.config.dump_timeout);
        let logical = scope::report::snapshot();
        let names = raw.threads.iter().map(|t| (t.tid, t.name.clone())).collect();
        let mut dump = ThreadDump::build(raw, self.header(trigger, &setup.unwinder), &mut symbolizer);
        dump.add_section(logical.render(&names));
        Ok(dump)
    }

    /// Takes a dump and writes it to the output folder.
    pub(crate) fn dump_to_file(&self, trigger: Trigger) -> Result<(PathBuf, ThreadDump), DumpError> {
        let dump = self.dump(trigger)?;
        let path =
            self.output.write("threads", "txt", dump.to_string().as_bytes()).map_err(DumpError::Output)?;
        Ok((path, dump))
    }

    /// Passes one trigger of `kind` through the guard; refusals are counted
    /// and logged at most once per window per kind.
    fn admit(&self, kind: Kind) -> Result<(), (Refusal, Duration)> {
        let now = Instant::now();
        let mut guard = lock(&self.guard);
        let (g, logs) = &mut *guard;
        let (locks, trips) = (g.stats(kind).locks, g.breaker(now).1);
        let Err((reason, retry_after)) = g.check(kind, now) else { return Ok(()) };
        // State changes are rare and always said, not folded into the window.
        let locked_now = g.stats(kind).locks > locks;
        let tripped_for = (g.breaker(now).1 > trips).then(|| g.breaker_open_for(now)).flatten();
        let log = &mut logs[kind.index()];
        let notice = log.refuse(now, 1).map(|unlogged| (unlogged, log.total()));
        drop(guard);
        let c = &self.config.guard;
        if locked_now {
            self.error(&format!(
                "{} triggers locked for {:?} after {} refusals within {:?} (HOTPROF_LOCK_*)",
                kind.name(),
                c.lock_cooldown,
                c.lock_after,
                c.lock_window
            ));
        }
        if let Some(open_for) = tripped_for {
            self.error(&format!(
                "breaker open: every capture refused for {:.0}s after repeated locks (HOTPROF_BREAKER_*)",
                open_for.as_secs_f64()
            ));
        }
        if let Some((unlogged, total)) = notice {
            let limits = match reason {
                Refusal::RateLimited => {
                    format!(" (HOTPROF_RATE_BURST={}, HOTPROF_RATE_REFILL={:?})", c.burst, c.refill)
                }
                Refusal::Locked | Refusal::BreakerOpen => String::new(),
            };
            self.error(&format!(
                "{} {}{limits}; next in {:.1}s; {unlogged} more refused since the last notice, {total} in all",
                kind.name(),
                reason.describe(),
                retry_after.as_secs_f64()
            ));
        }
        Err((reason, retry_after))
    }

    /// Counters of the guard, per trigger kind.
    pub(crate) fn stats(&self) -> crate::Stats {
        let now = Instant::now();
        let guard = lock(&self.guard);
        let kinds =
            Kind::ALL.iter().map(|k| (k.name(), guard.0.stats(*k))).collect::<Vec<(&str, KindStats)>>();
        let (breaker_open, breaker_trips) = guard.0.breaker(now);
        crate::Stats {
            kinds,
            breaker_open,
            breaker_trips,
            merged_signals: self.merged.load(Ordering::Relaxed),
        }
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

    /// Writes the scope profile next to a dump, when marked calls exist.
    fn write_scope_profile(&self, trigger: Trigger) {
        if !scope::profile::has_data() {
            return;
        }
        let written = scope::profile::build(&self.comments(trigger))
            .map_err(|e| e.to_string())
            .and_then(|gz| self.output.write("scopes", "pb.gz", &gz).map_err(|e| e.to_string()));
        match written {
            Ok(path) => self.notice(&format!("scope profile written to {}", path.display())),
            Err(e) => self.error(&format!("scope profile lost: {e}")),
        }
    }

    /// The SIGUSR1 path, on the hotprof thread.
    /// `delivered` counts the signals this wake-up stands for: the ones that
    /// arrived while the previous dump ran are merged into this one.
    pub(crate) fn on_dump_signal(&self, name: &'static str, delivered: u64) {
        if delivered > 1 && switch::is_enabled() {
            let n = delivered - 1;
            self.merged.fetch_add(n, Ordering::Relaxed);
            let mut log = lock(&self.merge_log);
            if let Some(unlogged) = log.refuse(Instant::now(), n) {
                let total = log.total();
                drop(log);
                self.notice(&format!(
                    "{} {name} arrived while a dump was running and were merged into it; \
                     {unlogged} more since the last notice, {total} in all",
                    n
                ));
            }
        }
        match self.dump_to_file(Trigger::Signal(name)) {
            Ok((path, dump)) => {
                self.notice(&format!(
                    "thread dump written to {} ({} threads, captured in {:.1} ms)",
                    path.display(),
                    dump.threads().len(),
                    dump.capture_time().as_secs_f64() * 1e3
                ));
                self.write_scope_profile(Trigger::Signal(name));
            }
            Err(DumpError::Disabled) => {
                if let Some(unlogged) = lock(&self.off_log).refuse(Instant::now(), delivered) {
                    let more = if unlogged > 0 {
                        format!(" ({unlogged} more ignored since the last notice)")
                    } else {
                        String::new()
                    };
                    self.notice(&format!("{name} ignored: {}{more}", DumpError::Disabled));
                }
            }
            Err(DumpError::Refused { .. }) => {} // logged by admit, once per window
            Err(e) => self.error(&format!("thread dump failed: {e}")),
        }
    }

    /// Something an operator should see: tracing, and stderr unless quiet.
    pub(crate) fn notice(&self, msg: &str) {
        tracing::info!(target: "hotprof", "{msg}");
        if !self.config.quiet {
            stderr_line(&format!("hotprof: {msg}"));
        }
    }

    /// Something that went wrong: always on stderr.
    pub(crate) fn error(&self, msg: &str) {
        tracing::warn!(target: "hotprof", "{msg}");
        stderr_line(&format!("hotprof: {msg}"));
    }

    pub(crate) fn ready_line(&self, signals: &signals::SignalThread) -> String {
        format!(
            "ready (pid {}, capture {}, {}; files in {})",
            self.app.pid,
            if switch::is_enabled() { "on" } else { "off" },
            signals.names(),
            self.output.dir.display()
        )
    }
}

/// One line on stderr; a closed or broken stderr is ignored, never a panic.
fn stderr_line(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

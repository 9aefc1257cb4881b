//! The one place hotprof starts and stops.
//!
//! Start, in this order (each step says why it is where it is):
//! 1. read the configuration and say every rejected value;
//! 2. set the switch and the quiet flag, build the capture state;
//! 3. create the folder and remove temps left by dead processes;
//! 4. claim the capture signal and install its handler, before any thread
//!    of the user's exists;
//! 5. make a stray `SIGPROF` harmless;
//! 6. start the `hotprof-sampler` thread (scopes, slow calls), the
//!    `hotprof-symbols` thread (names for dumps) and, when the global
//!    allocator is `hotprof::SampledAlloc`, the `hotprof-heap` thread;
//! 7. with `#[hotprof::main]` only: the debug HTTP server, the attach
//!    socket (`hotprof` command), then the signal thread (from here on
//!    `SIGUSR1` cannot kill the process), then the ready line.
//!
//! Without `#[hotprof::main]`, the first API call runs steps 1 to 6 from the
//! environment alone (docs/quickstart.md): nothing handles `SIGUSR1` or
//! `SIGUSR2` then. Stop, when `main` returns or unwinds, runs backwards:
//! attach socket, HTTP server, signal thread, open CPU windows (written
//! short), sampler.

use std::path::PathBuf;
use std::sync::{Once, OnceLock};
use std::time::Duration;

use crate::__private::HttpAddr;
use crate::attach::AttachThread;
use crate::capture::Capture;
use crate::config::{Config, Env, MacroArgs};
use crate::meta::{AppInfo, BuildInfo};
use crate::notices::{self, error, notice};
use crate::signals::SignalThread;
use crate::{heap, scope, stacks, switch, sys};

static CAPTURE: OnceLock<Capture> = OnceLock::new();
/// Steps 1 to 6 ran (or are running on another thread, which `call_once` waits for).
static STARTED: Once = Once::new();

/// Longest wait at exit for the files of a CPU window the exit cut short.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// The capture state; the first call without `#[hotprof::main]` sets
/// hotprof up from the environment alone.
pub(crate) fn capture() -> &'static Capture {
    STARTED.call_once_force(|_| {
        start_core(&MacroArgs::default(), AppInfo::new(None, None, None, BuildInfo::default()))
    });
    settled()
}

/// The state once `STARTED` ran. (Were start to panic before building it,
/// this builds it bare rather than panic again.)
fn settled() -> &'static Capture {
    CAPTURE.get_or_init(|| {
        let (config, _) = Config::load(&MacroArgs::default(), Env::process());
        Capture::new(config, AppInfo::new(None, None, None, BuildInfo::default()))
    })
}

/// Steps 1 to 6.
fn start_core(args: &MacroArgs, app: AppInfo) {
    let (mut config, rejected) = Config::load(args, Env::process());
    for line in rejected {
        notices::stderr_line(&line);
    }
    config.dir = absolute(config.dir);
    // Before the switch: no sample may be taken at another rate.
    heap::set_rate(config.heap_rate);
    switch::set(config.enabled);
    switch::set_scope_capture(config.scopes);
    notices::set_quiet(config.quiet);
    let capture = CAPTURE.get_or_init(|| Capture::new(config, app));
    match capture.output.prepare() {
        Ok(0) => {}
        Ok(n) => notice(&format!("removed {n} temp file(s) left by an earlier process")),
        Err(e) => error(&format!("{e}; dumps go to stderr until the folder is writable")),
    }
    if let Err(e) = stacks::setup(capture.config.unwinder) {
        error(e);
    }
    // A stray SIGPROF must never terminate the service, profiled yet or not.
    sys::ignore_if_default(libc::SIGPROF);
    if let Err(e) = scope::ticker::start(|events| settled().write_slow_calls(events)) {
        error(&format!("cannot start the sampler thread: {e}; scope elapsed times and slow calls are off"));
    }
    if let Err(e) = capture.start_symbolizer() {
        error(&format!("cannot start the symbolizer thread: {e}; dumps will show addresses only"));
    }
    if heap::in_use()
        && capture.config.heap_rate > 0
        && let Err(e) = heap::start_collector()
    {
        error(&format!("cannot start the heap collector thread: {e}; heap samples lose their stacks"));
    }
}

/// A relative folder is resolved against the working directory at start.
fn absolute(dir: PathBuf) -> PathBuf {
    match std::env::current_dir() {
        Ok(cwd) if dir.is_relative() => cwd.join(dir).components().collect(),
        _ => dir,
    }
}

/// Arguments captured by `#[hotprof::main]` in the user's crate.
#[derive(Debug, Clone)]
pub struct MainArgs {
    pkg_name: &'static str,
    pkg_version: &'static str,
    bin_name: Option<&'static str>,
    build: BuildInfo,
    args: MacroArgs,
}

impl MainArgs {
    /// Starts a set of arguments with the user's crate identity.
    pub const fn new(
        pkg_name: &'static str,
        pkg_version: &'static str,
        bin_name: Option<&'static str>,
    ) -> Self {
        MainArgs {
            pkg_name,
            pkg_version,
            bin_name,
            build: BuildInfo { commit: None, debug: None },
            args: MacroArgs { dir: None, enabled: None, http: None },
        }
    }

    /// Build facts of the user's crate: the git commit from
    /// `HOTPROF_GIT_COMMIT` (else `GIT_COMMIT`) at build time, and whether
    /// it was built with debug assertions.
    pub const fn build_info(
        mut self,
        commit: Option<&'static str>,
        fallback: Option<&'static str>,
        debug: bool,
    ) -> Self {
        self.build =
            BuildInfo { commit: if commit.is_some() { commit } else { fallback }, debug: Some(debug) };
        self
    }

    /// `dir = "..."`.
    pub const fn dir(mut self, dir: &'static str) -> Self {
        self.args.dir = Some(dir);
        self
    }

    /// `enabled = ...`.
    pub const fn enabled(mut self, enabled: bool) -> Self {
        self.args.enabled = Some(enabled);
        self
    }

    /// `http = "..."`.
    pub const fn http(mut self, addr: HttpAddr) -> Self {
        self.args.http = Some(addr.addr());
        self
    }

    /// Installs hotprof (every step above); the returned guard stops it when dropped.
    pub fn install(self) -> InstallGuard {
        let mut fresh = false;
        STARTED.call_once_force(|_| {
            fresh = true;
            let app = AppInfo::new(Some(self.pkg_name), self.bin_name, Some(self.pkg_version), self.build);
            start_core(&self.args, app);
        });
        let mut guard = InstallGuard::default();
        if !fresh {
            error("already set up; this #[hotprof::main] changes nothing");
            return guard;
        }
        let capture = settled();
        #[cfg(feature = "http")]
        {
            guard.http = crate::http::HttpServer::start(self.args.http);
        }
        match AttachThread::start(capture) {
            Ok(attach) => guard.attach = Some(attach),
            Err(e) => error(&format!("the attach socket is off ({e}); `hotprof` cannot reach this process")),
        }
        match SignalThread::start(capture) {
            Ok(signals) => {
                notice(&ready_line(capture, &signals, guard.attach.as_ref()));
                guard.signals = Some(signals);
            }
            Err(e) => error(&format!("cannot start the signal thread: {e}; SIGUSR1 and SIGUSR2 do nothing")),
        }
        guard
    }
}

fn ready_line(capture: &Capture, signals: &SignalThread, attach: Option<&AttachThread>) -> String {
    let folder = match capture.output.check_writable() {
        Ok(()) => format!("files in {}", capture.output.dir.display()),
        Err(e) => {
            format!("files in {}, NOT WRITABLE ({e}): dumps will go to stderr", capture.output.dir.display())
        }
    };
    let attach = attach.map(|a| format!("; attach at {}", a.path().display())).unwrap_or_default();
    format!(
        "ready (pid {}, capture {}, {}; {folder}{attach})",
        capture.app.pid,
        if switch::is_enabled() { "on" } else { "off" },
        signals.names(capture.config.sigusr2),
    )
}

/// Stops hotprof when `main` returns or unwinds, in the reverse order of start.
#[derive(Debug, Default)]
#[must_use]
pub struct InstallGuard {
    attach: Option<AttachThread>,
    signals: Option<SignalThread>,
    #[cfg(feature = "http")]
    http: Option<crate::http::HttpServer>,
}

impl Drop for InstallGuard {
    fn drop(&mut self) {
        if let Some(a) = self.attach.take() {
            a.stop();
        }
        #[cfg(feature = "http")]
        if let Some(h) = self.http.take() {
            h.stop();
        }
        if let Some(s) = self.signals.take() {
            s.stop();
            settled().finish_cpu_windows(EXIT_WAIT);
            scope::ticker::stop();
        }
    }
}

//! hotprof: hot sampling for live Rust services.
//!
//! Put `#[hotprof::main]` on `main`; then `kill -USR1 <pid>` writes a dump of
//! every thread's stack to `./hotprof/` while the service keeps running.
//! See the README and `docs/` for the environment variables and file formats.
#![warn(missing_docs)]

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
compile_error!("hotprof supports 64-bit Linux only for now");

mod config;
mod cpu;
mod guard;
#[cfg(feature = "http")]
mod http;
mod meta;
mod output;
mod pprof_proto;
mod runtime;
mod scope;
mod signals;
mod stacks;
mod switch;
mod sys;

#[doc(inline)]
pub use hotprof_macros::{main, profile};

pub use config::VARIABLES;
pub use cpu::{CpuError, CpuProfile};
pub use guard::{KindStats, Refusal};
#[cfg(feature = "http")]
pub use http::router;
pub use output::OutputError;
pub use runtime::DumpError;
pub use scope::{SlowCall, on_slow_call};
pub use stacks::{SourceFrame, StackFrame, ThreadDump, ThreadInfo, ThreadStatus};
pub use switch::{disable, enable, is_enabled};

/// Dumps every thread of the process, like `SIGUSR1` does, and returns the dump
/// instead of writing it. Subject to the switch and the rate limit.
///
/// ```no_run
/// match hotprof::dump_threads() {
///     Ok(dump) => println!("{dump}"),
///     Err(e) => eprintln!("no dump: {e}"),
/// }
/// ```
pub fn dump_threads() -> Result<ThreadDump, DumpError> {
    runtime::get().dump(runtime::Trigger::Api)
}

/// The scope profile: completed calls and sampled wall time per logical stack
/// of `#[hotprof::profile]` calls since the previous scope profile (or since
/// the process started), as gzipped pprof protobuf (`go tool pprof` reads it).
pub fn scope_profile() -> std::io::Result<Vec<u8>> {
    let rt = runtime::get();
    scope::profile::build(&rt.comments(runtime::Trigger::Api))
}

/// Counters of the guard every trigger passes (see `hotprof::stats()`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Stats {
    /// Per trigger kind (`thread dump`, `CPU profile`, `slow-call event`).
    pub kinds: Vec<(&'static str, KindStats)>,
    /// The breaker refuses every capture right now.
    pub breaker_open: bool,
    /// Times the breaker opened.
    pub breaker_trips: u64,
    /// SIGUSR1s that arrived while a dump was running and were merged into it.
    pub merged_signals: u64,
}

/// Admissions and refusals of every trigger kind so far.
pub fn stats() -> Stats {
    runtime::get().stats()
}

/// Profiles the CPU of the whole process for `duration` (at `HOTPROF_CPU_HZ`)
/// and returns the profile. The session runs on hotprof's own thread; this
/// call waits for it. One session at a time: a second gets [`CpuError::Busy`].
/// Subject to the switch and the rate limit. Nothing is written to disk.
pub fn cpu_profile(duration: std::time::Duration) -> Result<CpuProfile, CpuError> {
    runtime::get().cpu_profile(runtime::Trigger::Api, duration)
}

/// Dumps every thread and writes the dump to the output folder, like `SIGUSR1`.
/// Returns the path of the file.
pub fn write_thread_dump() -> Result<std::path::PathBuf, DumpError> {
    runtime::get().dump_to_file(runtime::Trigger::Api).map(|(path, _)| path)
}

#[doc(hidden)]
/// Not public API: what `#[hotprof::main]` expands to.
pub mod __private {
    pub use crate::scope::{Instrumented, Scope, ScopeGuard, enter, instrument};

    use crate::config::MacroArgs;
    use crate::meta::BuildInfo;
    use crate::runtime;
    use crate::signals::SignalThread;

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
            self.args.http = Some(addr.0);
            self
        }

        /// Installs hotprof; the returned guard shuts it down when dropped.
        pub fn install(self) -> InstallGuard {
            let mut guard = InstallGuard::default();
            let Some(rt) =
                runtime::install(&self.args, self.pkg_name, self.bin_name, self.pkg_version, self.build)
            else {
                return guard;
            };
            #[cfg(feature = "http")]
            {
                guard.http = crate::http::HttpServer::start(rt, self.args.http);
            }
            match SignalThread::start(rt) {
                Ok(signals) => {
                    rt.notice(&rt.ready_line(&signals));
                    guard.signals = Some(signals);
                }
                Err(e) => {
                    rt.error(&format!(
                        "cannot start the signal thread: {e}; SIGUSR1 dumps and SIGUSR2 CPU profiles are off"
                    ));
                }
            }
            guard
        }
    }

    /// The address of `http = "..."`. Made in a const block, so that using
    /// the argument without the `http` feature fails to compile, saying why.
    #[derive(Debug, Clone, Copy)]
    pub struct HttpAddr(&'static str);

    impl HttpAddr {
        /// Panics (at compile time, in the macro's const block) without the
        /// `http` feature.
        #[allow(clippy::panic, reason = "a compile-time error, in a const block")]
        pub const fn new(addr: &'static str) -> Self {
            if cfg!(not(feature = "http")) {
                panic!(
                    "`#[hotprof::main(http = ...)]` needs hotprof's `http` feature: \
                     add `features = [\"http\"]` to the hotprof dependency in Cargo.toml"
                );
            }
            HttpAddr(addr)
        }
    }

    /// Longest wait at exit for the files of a CPU window the exit cut short.
    const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

    /// Shuts hotprof down when `main` returns or unwinds.
    #[derive(Debug, Default)]
    #[must_use]
    pub struct InstallGuard {
        signals: Option<SignalThread>,
        #[cfg(feature = "http")]
        http: Option<crate::http::HttpServer>,
    }

    impl Drop for InstallGuard {
        fn drop(&mut self) {
            #[cfg(feature = "http")]
            if let Some(h) = self.http.take() {
                h.stop();
            }
            if let Some(s) = self.signals.take() {
                s.stop();
                runtime::get().finish_cpu_windows(EXIT_WAIT);
                crate::scope::sampler::stop();
            }
        }
    }
}

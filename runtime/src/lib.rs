//! hotprof: hot sampling for live Rust services.
//!
//! Put `#[hotprof::main]` on `main`; then `kill -USR1 <pid>` writes a dump of
//! every thread's stack to `./hotprof/` while the service keeps running.
//! See the README and `docs/` for the environment variables and file formats.
#![warn(missing_docs)]
// Every `unsafe` block lives in `sys`, the OS layer, each with its SAFETY comment.
#![deny(unsafe_code)]

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
compile_error!("hotprof supports 64-bit Linux only for now");

mod attach;
mod capture;
mod config;
mod cpu_session;
mod dye;
mod guard;
mod heap;
#[cfg(feature = "http")]
pub(crate) mod http;
mod install;
mod labels;
mod meta;
mod notices;
mod output;
mod pprof_proto;
#[cfg(test)]
mod properties;
mod sampler;
mod scope;
mod signals;
mod stacks;
mod switch;
#[allow(unsafe_code)]
mod sys;
#[cfg(feature = "tracing")]
pub mod tracing;

#[doc(inline)]
pub use hotprof_macros::{main, profile};

pub use capture::DumpError;
pub use config::VARIABLES;
pub use cpu_session::{CpuError, CpuProfile};
#[cfg(feature = "http")]
pub use dye::{DyeLayer, DyeService};
pub use dye::{Dyed, MAX_TAG_LEN, current_dye, dyed};
pub use guard::{KindStats, Refusal, Refused, Stats};
pub use heap::{HeapError, HeapProfile, SampledAlloc};
#[cfg(feature = "http")]
pub use http::router;
pub use output::OutputError;
pub use scope::{SlowCall, on_slow_call};
pub use stacks::{ModuleOffset, SourceFrame, StackFrame, ThreadDump, ThreadInfo, ThreadStatus};
pub use switch::{ScopeCapture, disable, enable, is_enabled, scope_capture, set_scope_capture};

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
    capture::get().dump(capture::Trigger::Api)
}

/// The scope profile: completed calls and sampled wall time per logical stack
/// of `#[hotprof::profile]` calls since the previous scope profile (or since
/// the process started), as gzipped pprof protobuf (`go tool pprof` reads it).
pub fn scope_profile() -> std::io::Result<Vec<u8>> {
    scope::profile::build(&capture::get().comments(capture::Trigger::Api))
}

/// Admissions and refusals of every trigger kind so far.
pub fn stats() -> Stats {
    capture::get().stats()
}

/// Profiles the CPU of the whole process for `duration` (at `HOTPROF_CPU_HZ`)
/// and returns the profile. The session runs on hotprof's own thread; this
/// call waits for it. One session at a time: a second gets [`CpuError::Busy`].
/// Subject to the switch and the rate limit. Nothing is written to disk.
pub fn cpu_profile(duration: std::time::Duration) -> Result<CpuProfile, CpuError> {
    capture::get().profile(sampler::Mode::Cpu, capture::Trigger::Api, duration, None, None)
}

/// Profiles the wall-clock time of every thread of the process, running or
/// not, for `duration` (at `HOTPROF_CPU_HZ` per thread) and returns the
/// profile (`wall/nanoseconds`, a `state` label of `running` or `sleeping`
/// on each sample). Shares the one-session slot, switch and rate limit with
/// [`cpu_profile`]. Nothing is written to disk.
pub fn wall_profile(duration: std::time::Duration) -> Result<CpuProfile, CpuError> {
    capture::get().profile(sampler::Mode::Wall, capture::Trigger::Api, duration, None, None)
}

/// The heap profile now: what the sampled allocations since the start
/// allocated (`alloc_*`) and what of it is still allocated (`inuse_*`),
/// unbiased as Go's, as gzipped pprof protobuf. Needs [`SampledAlloc`] as
/// the global allocator; subject to the switch. Nothing is written to disk.
///
/// ```no_run
/// #[global_allocator]
/// static ALLOC: hotprof::SampledAlloc<std::alloc::System> = hotprof::SampledAlloc::new(std::alloc::System);
///
/// let profile = hotprof::heap_profile().unwrap();
/// println!("{} bytes in use", profile.inuse_bytes);
/// ```
pub fn heap_profile() -> Result<HeapProfile, HeapError> {
    capture::get().heap_profile(capture::Trigger::Api)
}

/// Dumps every thread and writes the dump to the output folder, like `SIGUSR1`.
/// Returns the path of the file.
pub fn write_thread_dump() -> Result<std::path::PathBuf, DumpError> {
    capture::get().dump_to_file(capture::Trigger::Api).map(|(path, _)| path)
}

#[doc(hidden)]
/// Not public API: the attach protocol, shared with the `hotprof` command.
pub mod __attach {
    pub use crate::attach::protocol::*;
}

#[doc(hidden)]
/// Not public API: what `#[hotprof::main]` and `#[hotprof::profile]` expand to.
pub mod __private {
    pub use crate::install::{InstallGuard, MainArgs};
    pub use crate::scope::{Instrumented, Scope, ScopeGuard, enter, instrument};

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

        pub(crate) const fn addr(self) -> &'static str {
            self.0
        }
    }
}

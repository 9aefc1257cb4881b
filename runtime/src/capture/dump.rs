//! The thread-dump paths: the API (returns the dump), `SIGUSR1` and the
//! file API (write it, with the scope profile next to it).

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Capture, Trigger, lock};
use crate::guard::{Kind, Refused};
use crate::notices;
use crate::output::OutputError;
use crate::stacks::{self, ThreadDump};
use crate::{scope, switch};

/// First line of a dump printed on stderr; its end is the dump's own end marker.
pub(crate) const BEGIN_MARKER: &str = "-- begin hotprof thread dump --";

/// Why a dump was not taken or not written.
#[derive(Debug)]
#[non_exhaustive]
pub enum DumpError {
    /// Capture is switched off.
    Disabled,
    /// The guard refused this trigger; try again after `retry_after`.
    Refused(Refused),
    /// Stack capture could not be set up in this process.
    Unavailable(String),
    /// The dump was taken but could not be written.
    Output(OutputError),
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DumpError::Disabled => f.write_str(switch::OFF),
            DumpError::Refused(refused) => refused.fmt(f),
            DumpError::Unavailable(why) => write!(f, "stack capture unavailable: {why}"),
            DumpError::Output(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DumpError {}

impl Capture {
    /// Takes a dump if the switch and the rate limit allow it.
    pub(crate) fn dump(&self, trigger: Trigger) -> Result<ThreadDump, DumpError> {
        if !switch::is_enabled() {
            return Err(DumpError::Disabled);
        }
        self.admit(Kind::Dump).map_err(DumpError::Refused)?;
        let setup =
            stacks::setup(self.config.unwinder).as_ref().map_err(|e| DumpError::Unavailable(e.clone()))?;
        let mut collector = lock(&self.collector);
        let (unwinders, symbolizer) = &mut *collector;
        symbolizer.prepare(&[Capture::dump as *const () as usize, libc::malloc as *const () as usize]);
        let raw = stacks::capture(setup, self.config.dump_timeout, unwinders);
        let logical = scope::report::snapshot();
        let names = raw.threads.iter().map(|t| (t.tid, t.name.clone())).collect();
        let mut dump = ThreadDump::build(raw, self.header(trigger, &setup.unwinder_note), symbolizer);
        dump.add_section(logical.render(&names));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        self.last_dump_ms.store(now.as_millis() as u64, Ordering::Relaxed);
        Ok(dump)
    }

    /// Takes a dump and writes it to the output folder. When no file can
    /// be written the dump goes whole to stderr instead, between a begin
    /// line and its end marker, and the error still says why.
    pub(crate) fn dump_to_file(&self, trigger: Trigger) -> Result<(PathBuf, ThreadDump), DumpError> {
        let dump = self.dump(trigger)?;
        let text = dump.to_string();
        match self.output.write("threads", "txt", text.as_bytes()) {
            Ok(path) => Ok((path, dump)),
            Err(e) => {
                notices::stderr_block(&format!(
                    "hotprof: thread dump not written ({e}); it follows on stderr\n{BEGIN_MARKER}\n{text}"
                ));
                Err(DumpError::Output(e))
            }
        }
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
            Ok(path) => notices::notice(&format!("scope profile written to {}", path.display())),
            Err(e) => notices::error(&format!("scope profile lost: {e}")),
        }
    }

    /// The SIGUSR1 path, on the hotprof thread.
    /// `delivered` counts the signals this wake-up stands for: the ones that
    /// arrived while the previous dump ran are merged into this one.
    pub(crate) fn on_dump_signal(&self, name: &'static str, delivered: u64) {
        if delivered > 1 && switch::is_enabled() {
            self.merge_signals(name, delivered - 1);
        }
        match self.dump_to_file(Trigger::Signal(name)) {
            Ok((path, dump)) => {
                notices::notice(&format!(
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
                    notices::notice(&format!("{name} ignored: {}{more}", DumpError::Disabled));
                }
            }
            Err(DumpError::Refused(_)) => {} // logged by admit, once per window
            Err(DumpError::Output(_)) => {}  // printed on stderr whole, with why
            Err(e) => notices::error(&format!("thread dump failed: {e}")),
        }
    }

    /// Counts `n` signals merged into the dump about to run; says so once per window.
    fn merge_signals(&self, name: &str, n: u64) {
        self.merged.fetch_add(n, Ordering::Relaxed);
        let mut log = lock(&self.merge_log);
        if let Some(unlogged) = log.refuse(Instant::now(), n) {
            let total = log.total();
            drop(log);
            notices::notice(&format!(
                "{n} {name} arrived while a dump was running and were merged into it; \
                 {unlogged} more since the last notice, {total} in all"
            ));
        }
    }
}

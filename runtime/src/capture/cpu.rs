//! The CPU and wall-clock profile paths: the API (waits for the profile),
//! `SIGUSR2` and slow calls (start a window and write its files), and the
//! program's end (closes open windows so their files are written).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::{Capture, Trigger};
use crate::config::parse::Sigusr2;
use crate::cpu_session::{self, CpuError, CpuProfile, Session};
use crate::guard::Kind;
use crate::notices::{error, notice};
use crate::sampler::Mode;
use crate::switch;

impl Capture {
    /// Runs a session in `mode` on a `hotprof-cpu` thread and waits for it:
    /// at `hz` (else `HOTPROF_CPU_HZ`), until `duration` passes or `cancel`
    /// is set (what was sampled until then is the profile).
    pub(crate) fn profile(
        &self,
        mode: Mode,
        trigger: Trigger,
        duration: Duration,
        hz: Option<u32>,
        cancel: Option<&Arc<AtomicBool>>,
    ) -> Result<CpuProfile, CpuError> {
        let session = self.start_cpu()?;
        let hz = hz.unwrap_or(self.config.cpu_hz);
        let (comments, mut symbolizer) = (self.comments(trigger), self.symbolizer());
        let cancel = cancel.cloned().unwrap_or_default();
        std::thread::Builder::new()
            .name("hotprof-cpu".into())
            .spawn(move || session.run(mode, duration, hz, &comments, &[], &mut symbolizer, &cancel))
            .map_err(|e| CpuError::Profiler(format!("cannot start the hotprof-cpu thread: {e}")))?
            .join()
            .unwrap_or_else(|_| Err(CpuError::Profiler("the hotprof-cpu thread panicked".into())))
    }

    /// Switch, one-session slot, rate limit: in that order, so a busy or
    /// disabled request costs no token.
    fn start_cpu(&self) -> Result<Session, CpuError> {
        if !switch::is_enabled() {
            return Err(CpuError::Disabled);
        }
        let session = Session::claim()?;
        self.admit(Kind::Cpu).map_err(CpuError::Refused)?;
        Ok(session)
    }

    /// The SIGUSR2 path, for what `HOTPROF_SIGUSR2` names: a window of
    /// `HOTPROF_CPU_SECONDS` on its own thread, which writes its files (the
    /// signal thread returns at once), or a heap profile's file.
    pub(crate) fn on_profile_signal(&'static self, name: &'static str) {
        let reason = format!("kill -{}", name.trim_start_matches("SIG"));
        match self.config.sigusr2 {
            Sigusr2::Window(mode) => {
                let _ = self.spawn_window(mode, Trigger::Signal(name), reason, Vec::new());
            }
            Sigusr2::Heap => self.write_heap_profile(Trigger::Signal(name), &reason),
        }
    }

    /// Starts a window of `HOTPROF_CPU_SECONDS` on its own thread, which
    /// writes the files; the caller returns at once with the window's length,
    /// or why nothing started. `labels` go on every sample.
    pub(crate) fn spawn_window(
        &'static self,
        mode: Mode,
        trigger: Trigger,
        reason: String,
        labels: Vec<(String, String)>,
    ) -> Result<Duration, CpuError> {
        let session = match self.start_cpu() {
            Ok(s) => s,
            Err(e @ CpuError::Refused(_)) => return Err(e), // logged once per window
            Err(e) => {
                notice(&format!("{trigger} ignored: {e}"));
                return Err(e);
            }
        };
        let (window, hz) = (self.config.cpu_window, self.config.cpu_hz);
        notice(&format!(
            "{trigger}: {} profile started for {:.1}s at {hz} Hz ({reason})",
            mode.title(),
            window.as_secs_f64()
        ));
        let mut comments = self.comments(trigger);
        comments.push(format!("reason: {reason}"));
        let in_flight = WindowInFlight::new(self);
        let mut symbolizer = self.symbolizer();
        let spawned = std::thread::Builder::new().name("hotprof-cpu".into()).spawn(move || {
            let _in_flight = in_flight;
            match session.run(mode, window, hz, &comments, &labels, &mut symbolizer, &AtomicBool::new(false))
            {
                Ok(profile) => self.write_profile(mode, &profile),
                Err(e) => error(&format!("{} profile failed: {e}", mode.title())),
            }
        });
        match spawned {
            Ok(_) => Ok(window),
            Err(e) => {
                error(&format!("cannot start the hotprof-cpu thread: {e}"));
                Err(CpuError::Profiler(e.to_string()))
            }
        }
    }

    /// The program is ending: closes open CPU windows now and waits up to
    /// `timeout` for their files, so a window started by `SIGUSR2`, a slow
    /// call or an alert is written short rather than lost with the process.
    pub(crate) fn finish_cpu_windows(&self, timeout: Duration) {
        cpu_session::close_windows();
        let deadline = Instant::now() + timeout;
        while self.cpu_windows.load(Ordering::Acquire) > 0 {
            if Instant::now() >= deadline {
                error(&format!(
                    "exiting with a CPU profile still being written after {timeout:?}; it is lost"
                ));
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn write_profile(&self, mode: Mode, profile: &CpuProfile) {
        let now = SystemTime::now();
        let files: [(&str, &[u8]); 3] =
            [("pb.gz", &profile.pprof_gz), ("svg", &profile.svg), ("folded", profile.folded.as_bytes())];
        for (ext, bytes) in files {
            match self.output.write_at(now, mode.file_kind(), ext, bytes) {
                Ok(path) => notice(&format!(
                    "{} profile ({} samples) written to {}",
                    mode.title(),
                    profile.samples,
                    path.display()
                )),
                Err(e) => error(&format!("{} profile file lost: {e}", mode.title())),
            }
        }
    }
}

/// Counts a CPU window from its start until its files are written (or its
/// thread fails), for [`Capture::finish_cpu_windows`].
struct WindowInFlight(&'static Capture);

impl WindowInFlight {
    fn new(rt: &'static Capture) -> WindowInFlight {
        rt.cpu_windows.fetch_add(1, Ordering::AcqRel);
        WindowInFlight(rt)
    }
}

impl Drop for WindowInFlight {
    fn drop(&mut self) {
        self.0.cpu_windows.fetch_sub(1, Ordering::AcqRel);
    }
}

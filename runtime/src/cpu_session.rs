//! CPU sessions through the `pprof` crate: one session at a time,
//! run on its own `hotprof-cpu` thread, written as gzipped pprof protobuf, a
//! flamegraph SVG and folded stacks.

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::guard::Refused;
use crate::pprof_proto::{ProfileBuilder, ProtoFrame, ProtoLine};
use crate::{switch, sys};

/// Libraries pprof's sampler skips when DWARF unwinding is not signal-safe
/// here (their frames could be inside the loader or allocator locks).
const UNSAFE_UNWIND_BLOCKLIST: &[&str] = &["libc", "libgcc", "pthread", "vdso"];

static BUSY: AtomicBool = AtomicBool::new(false);

/// Whether pprof's sampler may unwind inside its signal handler without the
/// blocklist, looked up once (it needs `dlopen`).
pub(crate) fn unwinding_in_the_handler_is_safe() -> bool {
    static SAFE: OnceLock<bool> = OnceLock::new();
    *SAFE.get_or_init(sys::dwarf_unwind_is_signal_safe)
}

/// Set when the program ends: an open window closes at once, so its profile
/// is written instead of lost with the process.
static CLOSING: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// Closes every open CPU window now and any later one at once: the program
/// is ending. Their sessions report what they sampled so far.
pub(crate) fn close_windows() {
    let (closing, wake) = &CLOSING;
    *closing.lock().unwrap_or_else(PoisonError::into_inner) = true;
    wake.notify_all();
}

/// Waits out a window; returns how long it lasted, shorter than `duration`
/// when [`close_windows`] cut it.
fn wait_window(duration: Duration) -> Duration {
    let started = Instant::now();
    let (closing, wake) = &CLOSING;
    let closing = closing.lock().unwrap_or_else(PoisonError::into_inner);
    drop(wake.wait_timeout_while(closing, duration, |closing| !*closing));
    started.elapsed().min(duration)
}

/// A finished CPU profile in the three formats hotprof writes.
#[derive(Debug, Clone)]
pub struct CpuProfile {
    /// Gzipped pprof protobuf (`go tool pprof`, Pyroscope, Parca, Speedscope).
    pub pprof_gz: Vec<u8>,
    /// Flamegraph SVG.
    pub svg: Vec<u8>,
    /// Folded stacks, one `thread;outer;...;inner count` line per stack (inferno, flamegraph.pl).
    pub folded: String,
    /// Samples taken.
    pub samples: u64,
    /// Length of the profiling window.
    pub duration: Duration,
}

/// Why no CPU profile was taken.
#[derive(Debug)]
#[non_exhaustive]
pub enum CpuError {
    /// Another CPU session is running.
    Busy,
    /// Capture is switched off.
    Disabled,
    /// The guard refused the request; try again after `retry_after`.
    Refused(Refused),
    /// The profiler failed.
    Profiler(String),
}

impl fmt::Display for CpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuError::Busy => f.write_str("a CPU profile is already running; one session at a time"),
            CpuError::Disabled => f.write_str(switch::OFF),
            CpuError::Refused(refused) => refused.fmt(f),
            CpuError::Profiler(e) => write!(f, "CPU profiler failed: {e}"),
        }
    }
}

impl std::error::Error for CpuError {}

/// Holds the one-session-at-a-time slot; released on drop.
#[derive(Debug)]
pub(crate) struct Session(());

impl Session {
    /// Claims the slot, or `Busy`.
    pub(crate) fn claim() -> Result<Session, CpuError> {
        match BUSY.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Ok(Session(())),
            Err(_) => Err(CpuError::Busy),
        }
    }

    /// Profiles the whole process for `duration` at `hz` samples per second.
    /// Blocks the calling thread for the window (callers run it on `hotprof-cpu`).
    pub(crate) fn run(
        self,
        duration: Duration,
        hz: u32,
        safe_unwind: bool,
        comments: &[String],
        labels: &[(String, String)],
    ) -> Result<CpuProfile, CpuError> {
        let blocklist: &[&str] = if safe_unwind { &[] } else { UNSAFE_UNWIND_BLOCKLIST };
        let started = SystemTime::now();
        let guard = pprof::ProfilerGuardBuilder::default()
            .frequency(hz as i32)
            .blocklist(blocklist)
            .build()
            .map_err(|e| CpuError::Profiler(e.to_string()))?;
        let lasted = wait_window(duration);
        let report = guard.report().build().map_err(|e| CpuError::Profiler(e.to_string()));
        drop(guard);
        // pprof leaves SIGPROF ignored when it stops; make sure of it, so a
        // late SIGPROF can never take the default action (terminate).
        sys::ignore_if_default(libc::SIGPROF);
        let report = report?;
        let stacks = stacks(&report);
        let folded = folded(&stacks);
        let svg = flamegraph(&folded, hz)?;
        let mut comments = comments.to_vec();
        if lasted < duration {
            comments.push(format!(
                "cut short: the program ended {:.1}s into a {:.1}s window",
                lasted.as_secs_f64(),
                duration.as_secs_f64()
            ));
        }
        let pprof_gz = pprof(&stacks, hz, started, lasted, &comments, labels)?;
        let samples = stacks.values().map(|n| *n as u64).sum();
        Ok(CpuProfile { pprof_gz, svg, folded, samples, duration: lasted })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        BUSY.store(false, Ordering::Release);
    }
}

/// One sampled stack: thread name, then frames innermost first.
type Stack = (String, Vec<ProtoFrame>);

fn stacks(report: &pprof::Report) -> BTreeMap<Stack, isize> {
    let mut out: BTreeMap<Stack, isize> = BTreeMap::new();
    for (frames, count) in &report.data {
        // One frame per sampled address, its inlined functions as lines.
        // pprof-rs keeps no address, only the names it resolved.
        let mut stack: Vec<ProtoFrame> = frames
            .frames
            .iter()
            .map(|symbols| ProtoFrame {
                address: 0,
                lines: symbols
                    .iter()
                    .map(|s| ProtoLine {
                        function: s.name(),
                        system_name: s.sys_name().into_owned(),
                        file: s.filename().into_owned(),
                        line: i64::from(s.lineno.unwrap_or(0)),
                    })
                    .collect(),
                mapping: None,
            })
            .collect();
        strip_profiler_frames(&mut stack);
        *out.entry((frames.thread_name_or_id(), stack)).or_default() += *count;
    }
    out
}

/// pprof's sampler unwinds from inside its own signal handler: its frames
/// (and the unwinder's) come first. They are not the program's; drop them.
fn strip_profiler_frames(stack: &mut Vec<ProtoFrame>) {
    const LOOK: usize = 12;
    let named = |f: &ProtoFrame, p: &dyn Fn(&str) -> bool| f.lines.iter().any(|l| p(&l.function));
    let is_profiler =
        |f: &ProtoFrame| named(f, &|n| n.contains("pprof::") || n.contains("perf_signal_handler"));
    if let Some(last) = stack.iter().take(LOOK).rposition(is_profiler) {
        let mut cut = last + 1;
        // The signal return trampoline, when the unwinder reports it.
        if stack.get(cut).is_some_and(|f| named(f, &|n| n == "__restore_rt")) {
            cut += 1;
        }
        stack.drain(..cut);
    }
}

/// `thread;outermost;...;innermost count`: the thread is the root frame.
fn folded(stacks: &BTreeMap<Stack, isize>) -> String {
    let mut out = String::new();
    for ((thread, frames), count) in stacks {
        out.push_str(&fold_name(thread));
        for line in frames.iter().rev().flat_map(|f| f.lines.iter().rev()) {
            out.push(';');
            out.push_str(&fold_name(&line.function));
        }
        let _ = writeln!(out, " {count}");
    }
    out
}

/// Folded stacks use `;` between frames and a space before the count.
fn fold_name(name: &str) -> String {
    name.replace(';', ":").replace(['\n', '\r'], " ")
}

fn flamegraph(folded: &str, hz: u32) -> Result<Vec<u8>, CpuError> {
    let mut options = inferno::flamegraph::Options::default();
    options.title = format!("hotprof CPU profile ({hz} Hz)");
    options.count_name = "samples".to_string();
    let mut svg = Vec::new();
    if folded.is_empty() {
        // inferno refuses empty input; an empty profile is still a valid SVG.
        svg.extend_from_slice(
            br#"<?xml version="1.0" standalone="no"?><svg xmlns="http://www.w3.org/2000/svg" width="1200" height="60"><text x="10" y="30">hotprof CPU profile: no samples</text></svg>"#,
        );
        return Ok(svg);
    }
    inferno::flamegraph::from_lines(&mut options, folded.lines(), &mut svg)
        .map_err(|e| CpuError::Profiler(format!("flamegraph: {e}")))?;
    Ok(svg)
}

fn pprof(
    stacks: &BTreeMap<Stack, isize>,
    hz: u32,
    started: SystemTime,
    duration: Duration,
    comments: &[String],
    labels: &[(String, String)],
) -> Result<Vec<u8>, CpuError> {
    let period_ns = 1_000_000_000 / i64::from(hz.max(1));
    let mut b = ProfileBuilder::new(&[("samples", "count"), ("cpu", "nanoseconds")]);
    b.time(started, duration);
    b.period("cpu", "nanoseconds", period_ns);
    for c in comments {
        b.comment(c);
    }
    for ((thread, frames), count) in stacks {
        let count = *count as i64;
        let mut all: Vec<(&str, &str)> = vec![("thread", thread.as_str())];
        all.extend(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        b.sample_labeled(frames, &[count, count * period_ns], &all);
    }
    b.encode_gz().map_err(|e| CpuError::Profiler(format!("encode: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str) -> ProtoFrame {
        ProtoFrame::logical(name, "", 0)
    }

    #[test]
    fn profiler_frames_are_stripped() {
        let names = [
            "trace",
            "trace_unsynchronized<pprof::profiler::perf_signal_handler::{closure_env#0}>",
            "<pprof::backtrace::backtrace_rs::Trace as pprof::backtrace::Trace>::trace",
            "__restore_rt",
            "app::hot",
            "main",
        ];
        let mut stack: Vec<_> = names.iter().map(|n| frame(n)).collect();
        strip_profiler_frames(&mut stack);
        assert_eq!(stack, [frame("app::hot"), frame("main")]);
        let mut plain = vec![frame("trace_request"), frame("main")];
        strip_profiler_frames(&mut plain);
        assert_eq!(plain.len(), 2, "user frames stay");
    }

    #[test]
    fn folded_lines_root_at_the_thread() {
        let mut stacks = BTreeMap::new();
        stacks.insert(("worker;1".to_string(), vec![frame("inner"), frame("outer")]), 3);
        assert_eq!(folded(&stacks), "worker:1;outer;inner 3\n");
        let mut inlined = frame("caller");
        inlined.lines.insert(0, frame("callee").lines[0].clone());
        stacks.insert(("t".to_string(), vec![inlined]), 1);
        assert!(folded(&stacks).contains("t;caller;callee 1\n"), "inlined functions fold callee last");
    }
}

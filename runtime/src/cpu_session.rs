//! CPU and wall-clock sessions: one at a time, sampled by hotprof's own
//! sampler (`sampler/`) on a `hotprof-cpu` thread, symbolized by the
//! process's one symbolizer, and written as gzipped pprof protobuf, a
//! flamegraph SVG and folded stacks.

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::guard::Refused;
use crate::pprof_proto::{self, ProfileBuilder, ProtoFrame};
use crate::sampler::{self, Mode, Samples, StackKey};
use crate::stacks::Symbolizer;
use crate::switch;

static BUSY: AtomicBool = AtomicBool::new(false);

/// Set when the program ends: an open window closes at once, so its profile
/// is written instead of lost with the process.
static CLOSING: AtomicBool = AtomicBool::new(false);

/// Closes every open window now and any later one at once: the program is
/// ending. Their sessions report what they sampled so far.
pub(crate) fn close_windows() {
    CLOSING.store(true, Ordering::Release);
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

    /// Samples the whole process in `mode` for `duration` at `hz` samples
    /// per second (per thread, of CPU or of wall time). Blocks the calling
    /// thread for the window (callers run it on `hotprof-cpu`). `labels` go
    /// on every sample; `cancel` ends the window early.
    #[allow(clippy::too_many_arguments, reason = "one window's settings, all needed")]
    pub(crate) fn run(
        self,
        mode: Mode,
        duration: Duration,
        hz: u32,
        comments: &[String],
        labels: &[(String, String)],
        symbolizer: &mut Symbolizer,
        cancel: &AtomicBool,
    ) -> Result<CpuProfile, CpuError> {
        let started = SystemTime::now();
        let t0 = Instant::now();
        let keep_going =
            || t0.elapsed() < duration && !CLOSING.load(Ordering::Acquire) && !cancel.load(Ordering::Acquire);
        let samples = sampler::run(mode, hz, keep_going).map_err(CpuError::Profiler)?;
        if cancel.load(Ordering::Acquire) {
            // Nobody waits for it: skip the symbolization and free the slot.
            return Err(CpuError::Profiler("cancelled".into()));
        }
        let lasted = t0.elapsed().min(duration);
        let stacks = stacks(&samples, mode, symbolizer);
        let folded = folded(&stacks);
        let svg = flamegraph(&folded, mode, hz)?;
        let mut comments = comments.to_vec();
        comments.push(sampler_note(mode, hz, &samples));
        if lasted < duration {
            comments.push(format!(
                "cut short: the program ended {:.1}s into a {:.1}s window",
                lasted.as_secs_f64(),
                duration.as_secs_f64()
            ));
        }
        let pprof_gz = pprof(&stacks, mode, hz, started, lasted, &comments, labels)?;
        drop(stacks);
        // The session's unwind tables and tallies are gone too: hand the
        // freed heap back, so a session leaves the RSS about as it found it.
        crate::sys::trim_heap();
        let samples = samples.total();
        Ok(CpuProfile { pprof_gz, svg, folded, samples, duration: lasted })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        BUSY.store(false, Ordering::Release);
    }
}

/// How the samples were taken, and what was lost, for the profile's comments.
fn sampler_note(mode: Mode, hz: u32, s: &Samples) -> String {
    let how = match mode {
        Mode::Cpu => "a timer on each thread's CPU clock",
        Mode::Wall => "every thread, running or not, on a wall-clock ticker",
    };
    let timers = match s.timer_errors {
        0 => String::new(),
        n => format!("; {n} threads got no timer (most exited first)"),
    };
    format!(
        "sampler: {how} at {hz} Hz; {} samples, {} dropped (ring full or too many threads a tick), {} timer overruns{timers}",
        s.total(),
        s.dropped,
        s.overruns
    )
}

/// One sampled stack: its labels (thread name, scope, state), then frames
/// innermost first.
type Stack = (Vec<(&'static str, String)>, Vec<ProtoFrame>);

/// Symbolizes every sampled stack (in one batch) and keys it by its labels.
fn stacks(samples: &Samples, mode: Mode, symbolizer: &mut Symbolizer) -> BTreeMap<Stack, u64> {
    let keys: Vec<&StackKey> = samples.counts.keys().collect();
    let pcs: Vec<&[usize]> = keys.iter().map(|k| k.frames.as_slice()).collect();
    let mut out = BTreeMap::new();
    for (key, frames) in keys.iter().zip(pprof_proto::machine_stacks(&pcs, symbolizer)) {
        *out.entry((labels(key, samples, mode), frames)).or_default() += samples.counts[*key];
    }
    out
}

fn labels(key: &StackKey, samples: &Samples, mode: Mode) -> Vec<(&'static str, String)> {
    let thread = samples.names.get(&key.tid).cloned().unwrap_or_else(|| key.tid.to_string());
    let mut labels = vec![("thread", thread)];
    labels.extend(crate::labels::scope_and_dye(key.node, key.dye));
    if mode == Mode::Wall {
        labels.push(("state", if key.running { "running" } else { "sleeping" }.to_string()));
    }
    labels
}

/// `thread;outermost;...;innermost count`: the thread is the root frame.
fn folded(stacks: &BTreeMap<Stack, u64>) -> String {
    let mut out = String::new();
    for ((labels, frames), count) in stacks {
        let thread = labels.first().map_or("", |(_, v)| v.as_str());
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

fn flamegraph(folded: &str, mode: Mode, hz: u32) -> Result<Vec<u8>, CpuError> {
    let mut options = inferno::flamegraph::Options::default();
    let what = if mode == Mode::Cpu { "CPU" } else { "wall-clock" };
    options.title = format!("hotprof {what} profile ({hz} Hz)");
    options.count_name = "samples".to_string();
    let mut svg = Vec::new();
    if folded.is_empty() {
        // inferno refuses empty input; an empty profile is still a valid SVG.
        svg.extend_from_slice(
            br#"<?xml version="1.0" standalone="no"?><svg xmlns="http://www.w3.org/2000/svg" width="1200" height="60"><text x="10" y="30">hotprof profile: no samples</text></svg>"#,
        );
        return Ok(svg);
    }
    inferno::flamegraph::from_lines(&mut options, folded.lines(), &mut svg)
        .map_err(|e| CpuError::Profiler(format!("flamegraph: {e}")))?;
    Ok(svg)
}

fn pprof(
    stacks: &BTreeMap<Stack, u64>,
    mode: Mode,
    hz: u32,
    started: SystemTime,
    duration: Duration,
    comments: &[String],
    extra: &[(String, String)],
) -> Result<Vec<u8>, CpuError> {
    let period_ns = 1_000_000_000 / i64::from(hz.max(1));
    let kind = if mode == Mode::Cpu { "cpu" } else { "wall" };
    let mut b = ProfileBuilder::new(&[("samples", "count"), (kind, "nanoseconds")]);
    b.time(started, duration);
    b.period(kind, "nanoseconds", period_ns);
    for c in comments {
        b.comment(c);
    }
    for ((labels, frames), count) in stacks {
        let count = *count as i64;
        let mut all: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
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
    fn folded_lines_root_at_the_thread() {
        let mut stacks = BTreeMap::new();
        let thread = |name: &str| vec![("thread", name.to_string())];
        stacks.insert((thread("worker;1"), vec![frame("inner"), frame("outer")]), 3);
        assert_eq!(folded(&stacks), "worker:1;outer;inner 3\n");
        let mut inlined = frame("caller");
        inlined.lines.insert(0, frame("callee").lines[0].clone());
        stacks.insert((thread("t"), vec![inlined]), 1);
        assert!(folded(&stacks).contains("t;caller;callee 1\n"), "inlined functions fold callee last");
    }
}

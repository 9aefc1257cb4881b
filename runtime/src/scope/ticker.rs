//! The scopes' ticker, the `hotprof-sampler` thread (not the CPU sampler of
//! `crate::sampler`): advances the coarse clock, samples wall time
//! per logical stack, notices calls still running past their threshold, and
//! hands slow-call events to the runtime to write.
//!
//! Wall time is sampled, like Go's and pprof's wall profiles: every
//! `SAMPLE_EVERY` the innermost frame of each thread and task is charged that
//! interval. Sums are unbiased over many calls; single short calls may get 0.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::frames::FrameView;
use super::{clock, nodes, slow, tasks, threads};
use crate::switch;

const TICK: Duration = Duration::from_millis(10);
/// Wall-time sampling interval.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(100);

static WALL: OnceLock<Box<[AtomicU64]>> = OnceLock::new();
static STOP: AtomicBool = AtomicBool::new(false);

fn wall() -> &'static [AtomicU64] {
    WALL.get_or_init(|| (0..nodes::CAPACITY).map(|_| AtomicU64::new(0)).collect())
}

/// Sampled wall nanoseconds charged to `node` (innermost frame) so far.
pub(crate) fn wall_ns(node: u32) -> u64 {
    wall().get(node as usize).map_or(0, |w| w.load(Ordering::Relaxed))
}

/// Starts the sampler; `write` receives slow-call events to persist.
pub(crate) fn start(write: fn(Vec<slow::SlowCall>)) -> std::io::Result<JoinHandle<()>> {
    STOP.store(false, Ordering::Relaxed);
    std::thread::Builder::new().name("hotprof-sampler".into()).spawn(move || {
        let every = (SAMPLE_EVERY.as_nanos() / TICK.as_nanos()).max(1) as u64;
        let mut ticks = 0u64;
        while !STOP.load(Ordering::Relaxed) {
            std::thread::sleep(TICK);
            let now = clock::tick();
            ticks += 1;
            if !switch::is_enabled() {
                continue;
            }
            if ticks.is_multiple_of(every) {
                sample(now, SAMPLE_EVERY.as_nanos() as u64);
            }
            let events = slow::take_slow_calls();
            if !events.is_empty() {
                write(events);
            }
        }
    })
}

/// Asks the sampler to stop (it does within one tick).
pub(crate) fn stop() {
    STOP.store(true, Ordering::Relaxed);
}

fn sample(now: u64, interval_ns: u64) {
    let wall = wall();
    let visit = |frames: &[FrameView], tid: i32, task: Option<u64>, dye: u32| {
        if let Some(w) = frames.last().and_then(|top| wall.get(top.node as usize)) {
            w.fetch_add(interval_ns, Ordering::Relaxed);
        }
        // Span frames are counted from the span's start; `spans` reports them.
        for f in frames.iter().filter(|f| f.span == 0) {
            let Some(scope) = nodes::scope(f.node) else { continue };
            let elapsed = now.saturating_sub(f.start_ns);
            if scope.threshold_ns() > 0 && elapsed >= scope.threshold_ns() {
                flag_running(f, elapsed, tid, task, dye);
            }
        }
    };
    for t in threads::all().into_iter().filter(|t| t.is_live()) {
        visit(&t.stack.snapshot(), t.tid.load(Ordering::Relaxed), None, t.dye.load(Ordering::Relaxed));
    }
    for rec in tasks::in_use() {
        visit(
            &rec.stack.snapshot(),
            rec.last_tid.load(Ordering::Relaxed),
            Some(rec.serial.load(Ordering::Relaxed)),
            rec.dye.load(Ordering::Relaxed),
        );
    }
    #[cfg(feature = "tracing")]
    super::spans::flag_slow(super::clock::precise_ns());
}

/// Reports a still-running slow call once: the frame's flag marks it done.
fn flag_running(f: &FrameView, elapsed: u64, tid: i32, task: Option<u64>, dye: u32) {
    let same_call = f.frame.node.load(Ordering::Relaxed) == f.node
        && f.frame.start_ns.load(Ordering::Relaxed) == f.start_ns;
    if same_call && !f.frame.flagged.swap(true, Ordering::Relaxed) {
        slow::report(f.node, elapsed, true, tid, task, dye);
    }
}

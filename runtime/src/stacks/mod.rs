//! All-thread stack capture: signal every thread; each one's handler parks
//! on its alternate signal stack while the collector copies its stack
//! (`slots.rs`); then, with every thread released, unwind the copies
//! (`unwind.rs`) and symbolize, on the dumping thread.

mod dump;
mod procfs;
mod slots;
mod symbolize;
mod unwind;

use std::ffi::c_int;
use std::io;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use dump::{StackFrame, ThreadDump, ThreadInfo, ThreadStatus};
pub use symbolize::SourceFrame;
pub(crate) use symbolize::Symbolizer;
pub(crate) use unwind::Unwinders;

use crate::config::UnwinderChoice;
use crate::sys;
use slots::Progress;
use unwind::StackCopy;

/// How the collector unwinds the stack copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unwinder {
    /// DWARF call frame information (`framehop`).
    Dwarf,
    /// The frame-pointer chain.
    FramePointers,
}

/// The capture signal and unwinder, chosen once per process.
#[derive(Debug)]
pub(crate) struct CaptureSetup {
    pub signal: c_int,
    pub unwinder: Unwinder,
    /// For the dump header: which unwinder runs and why.
    pub unwinder_note: String,
}

static SETUP: OnceLock<Result<CaptureSetup, String>> = OnceLock::new();

/// Claims an unused real-time signal and installs the capture handler (once).
pub(crate) fn setup(choice: UnwinderChoice) -> &'static Result<CaptureSetup, String> {
    SETUP.get_or_init(|| {
        let signal = pick_signal().ok_or("no free real-time signal for stack capture")?;
        let (unwinder, unwinder_note) = match choice {
            UnwinderChoice::Auto => {
                (Unwinder::Dwarf, "dwarf (from a copy of each stack, off the signal handler)".to_string())
            }
            UnwinderChoice::Dwarf => (Unwinder::Dwarf, "dwarf (forced by HOTPROF_UNWINDER)".to_string()),
            UnwinderChoice::FramePointers => {
                (Unwinder::FramePointers, "frame-pointers (forced by HOTPROF_UNWINDER)".to_string())
            }
        };
        sys::install_capture_handler::<slots::Slots>(signal)
            .map_err(|e| format!("cannot install the capture handler for signal {signal}: {e}"))?;
        Ok(CaptureSetup { signal, unwinder, unwinder_note })
    })
}

/// SIGRTMIN+3 and up: low real-time signals are the ones other libraries take first.
fn pick_signal() -> Option<c_int> {
    (libc::SIGRTMIN() + 3..=libc::SIGRTMAX()).find(|&sig| sys::signal_is_unused(sig))
}

/// What one capture collected, before symbolization.
#[derive(Debug)]
pub(crate) struct RawCapture {
    pub threads: Vec<RawThread>,
    pub elapsed: Duration,
}

#[derive(Debug)]
pub(crate) struct RawThread {
    pub tid: i32,
    pub name: String,
    pub state: String,
    pub status: ThreadStatus,
    /// Innermost first; the first is an exact pc when `status` is `Captured`.
    pub frames: Vec<usize>,
}

/// Stack bytes copied per thread at most: far deeper than any stack we
/// print (`MAX_FRAMES`), and only what the thread uses is touched.
const WINDOW: usize = 256 << 10;
/// Stack bytes one dump may copy in all; past it each thread gets less.
const ARENA: usize = 512 << 20;
/// Deepest stack a dump records; deeper ones are marked truncated.
pub(crate) const MAX_FRAMES: usize = 128;
/// Extra time granted to a handler that claimed its slot at the deadline.
const WRITING_GRACE: Duration = Duration::from_millis(50);

/// One thread signalled for this capture.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Index into the capture's threads.
    thread: usize,
    slot: usize,
    taken: Option<slots::Taken>,
}

/// Signals every thread of the process, copies each one's stack while its
/// handler holds it, then unwinds the copies. The caller must serialize
/// captures (slots are shared) and owns the unwinders.
pub(crate) fn capture(setup: &CaptureSetup, timeout: Duration, unwinders: &mut Unwinders) -> RawCapture {
    let start = Instant::now();
    let (mut threads, targets) = survey(setup.signal);
    let maps = procfs::mappings();
    unwinders.refresh();
    let capacity = slots::ensure_capacity(targets.len());
    let generation = slots::next_generation();
    let window = (ARENA / targets.len().max(1)).clamp(16 << 10, WINDOW);
    let mut arena = vec![0u8; window * targets.len().min(capacity)];
    let mut pending: Vec<Pending> = Vec::with_capacity(targets.len());
    let mut failures: Vec<(usize, io::Error)> = Vec::with_capacity(targets.len());
    // From the first signal on, until every thread is released: atomics and
    // syscalls only, into memory allocated above (see slots.rs).
    for &ti in &targets {
        let slot = pending.len();
        if slot >= capacity || !slots::arm(slot, generation) {
            failures.push((ti, io::Error::from_raw_os_error(libc::ENOSPC)));
            continue;
        }
        match sys::queue_signal_to_thread(threads[ti].tid, setup.signal, slots::payload(slot, generation)) {
            Ok(()) => pending.push(Pending { thread: ti, slot, taken: None }),
            Err(e) => {
                slots::cancel(slot, generation);
                failures.push((ti, e));
            }
        }
    }
    let limit = |sp: usize| procfs::mapping_end(&maps, sp).map_or(0, |end| end - sp);
    serve(&mut pending, generation, &mut arena, window, &limit, start + timeout);
    // Every thread is released now; allocation is fine again.
    for (ti, e) in failures {
        threads[ti].status = if e.raw_os_error() == Some(libc::ENOSPC) {
            ThreadStatus::NotSignalled { reason: format!("over {} threads", slots::MAX_SLOTS) }
        } else if e.raw_os_error() == Some(libc::ESRCH) {
            ThreadStatus::NotSignalled { reason: "exited".to_string() } // dropped below
        } else {
            ThreadStatus::NotSignalled { reason: describe_send_error(&e) }
        };
    }
    for p in &pending {
        let t = &mut threads[p.thread];
        match p.taken {
            Some(taken) if taken.tid == t.tid => {
                let bytes = &arena[p.slot * window..][..taken.len];
                let copy = StackCopy { start: taken.regs.sp, bytes };
                let unwound = match setup.unwinder {
                    Unwinder::Dwarf => unwinders.dwarf(taken.regs, copy, MAX_FRAMES),
                    Unwinder::FramePointers => unwind::frame_pointers(taken.regs, copy, MAX_FRAMES),
                };
                t.frames = unwound.frames;
                t.status = ThreadStatus::Captured {
                    pause: Duration::from_nanos(taken.pause_ns),
                    truncated: unwound.truncated,
                };
            }
            _ => mark_not_answering(t),
        }
        slots::retire(p.slot, generation);
    }
    threads.retain(|t| !matches!(&t.status, ThreadStatus::NotSignalled { reason } if reason == "exited"));
    RawCapture { threads, elapsed: start.elapsed() }
}

/// Every thread of the process, and the indexes of those to signal: not
/// this one (its stack is taken directly), not one that blocks the signal.
fn survey(signal: c_int) -> (Vec<RawThread>, Vec<usize>) {
    let me = sys::gettid();
    let mut threads = Vec::new();
    let mut targets = Vec::new();
    for tid in procfs::list_tasks() {
        let Some(st) = procfs::status(tid) else { continue }; // exited meanwhile
        let mut t = RawThread {
            tid,
            name: st.name.clone(),
            state: st.state.clone(),
            status: ThreadStatus::Dumping,
            frames: Vec::new(),
        };
        if tid == me {
            backtrace::trace(|f| {
                t.frames.push(f.ip() as usize);
                t.frames.len() < MAX_FRAMES
            });
        } else if st.blocks(signal) {
            t.status = ThreadStatus::SignalBlocked;
        } else {
            t.status = ThreadStatus::NotAnswering { wchan: None };
            targets.push(threads.len());
        }
        threads.push(t);
    }
    (threads, targets)
}

/// Copies the stack of each thread as it parks, until all are served or the
/// deadline passes; then withdraws the signals not yet answered. Allocation-free.
fn serve(
    pending: &mut [Pending],
    generation: u32,
    arena: &mut [u8],
    window: usize,
    limit: &dyn Fn(usize) -> usize,
    deadline: Instant,
) {
    let take = |p: &mut Pending, arena: &mut [u8]| {
        if let Some(buf) = arena.get_mut(p.slot * window..(p.slot + 1) * window) {
            p.taken = slots::copy_stack(p.slot, generation, buf, limit);
        }
    };
    loop {
        let seen = slots::ANSWERS.load(std::sync::atomic::Ordering::Acquire);
        let mut open = false;
        for p in pending.iter_mut().filter(|p| p.taken.is_none()) {
            match slots::progress(p.slot, generation) {
                Progress::Parked => take(p, arena),
                Progress::Waiting | Progress::Writing => open = true,
                Progress::Finished => {}
            }
        }
        let now = Instant::now();
        if !open || now >= deadline {
            break;
        }
        sys::futex_wait(&slots::ANSWERS, seen, (deadline - now).min(Duration::from_millis(10)));
    }
    // The deadline: withdraw what was not answered; a handler caught storing
    // its registers gets a short grace to park.
    let grace = Instant::now() + WRITING_GRACE;
    for p in pending.iter_mut().filter(|p| p.taken.is_none()) {
        loop {
            match slots::progress(p.slot, generation) {
                Progress::Waiting if slots::cancel(p.slot, generation) => break,
                Progress::Parked => {
                    take(p, arena);
                    break;
                }
                Progress::Finished => break,
                Progress::Waiting | Progress::Writing if Instant::now() < grace => std::hint::spin_loop(),
                Progress::Waiting | Progress::Writing => break,
            }
        }
    }
}

fn describe_send_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EAGAIN) => "signal queue full (RLIMIT_SIGPENDING)".to_string(),
        _ => e.to_string(),
    }
}

fn mark_not_answering(t: &mut RawThread) {
    if let Some(st) = procfs::status(t.tid) {
        t.state = st.state;
    }
    t.status = ThreadStatus::NotAnswering { wchan: procfs::wchan(t.tid) };
}

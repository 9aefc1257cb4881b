//! All-thread stack capture: signal every thread; each one's handler, on
//! its alternate signal stack, copies its own stack into a shared arena
//! (`slots.rs`); then unwind the copies (`unwind.rs`) and symbolize, on the
//! dumping thread.

mod dump;
mod modules;
mod procfs;
mod slots;
mod summary;
mod symbolize;
mod unwind;

use std::ffi::c_int;
use std::io;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use dump::{StackFrame, ThreadDump, ThreadInfo, ThreadStatus};
pub(crate) use symbolize::{Lookup, Symbolizer};
pub use symbolize::{ModuleOffset, SourceFrame};
pub(crate) use unwind::{StackCopy, Unwinders};

use crate::config::UnwinderChoice;
use crate::sys;
use slots::Progress;

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

/// A real-time signal nobody handles yet, for another handler of hotprof's
/// (the sampler's). Install a handler on it before asking again.
pub(crate) fn free_signal() -> Option<c_int> {
    pick_signal()
}

/// This process's thread ids.
pub(crate) fn thread_ids() -> Vec<i32> {
    procfs::list_tasks()
}

/// Whether thread `tid` blocks `sig` (or is gone).
pub(crate) fn thread_blocks(tid: i32, sig: c_int) -> bool {
    procfs::status(tid).is_none_or(|s| s.blocks(sig))
}

/// A thread's name, while it lives.
pub(crate) fn thread_name(tid: i32) -> Option<String> {
    procfs::status(tid).map(|s| s.name)
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
/// Deepest stack a dump records; deeper ones are marked truncated.
pub(crate) const MAX_FRAMES: usize = 128;
/// Extra time granted to a handler that claimed its slot at the deadline.
const WRITING_GRACE: Duration = Duration::from_millis(50);
/// Signalled threads that have not answered this long after the last
/// signal have their blocked signals read once: one that blocks the capture
/// signal is not waited for.
const BLOCK_CHECK: Duration = Duration::from_millis(20);

/// Threads that blocked the capture signal in the last dump: their blocked
/// signals are read before they are signalled again, so that real-time
/// signals do not pile up on a thread that never takes them. Others are
/// signalled without that read (a `status` per thread was most of a
/// dump's time with 1,000 threads).
static BLOCKERS: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// One thread signalled for this capture.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Index into the capture's threads.
    thread: usize,
    slot: usize,
    /// The handler finished, or its signal was withdrawn.
    done: bool,
    /// Withdrawn: the thread blocks the capture signal.
    blocked: bool,
    /// Its signal could not be sent: the OS error.
    failed: Option<i32>,
    taken: Option<slots::Taken>,
}

/// Signals every thread of the process; each one's handler copies its own
/// stack into the arena (see slots.rs). Then unwinds the copies. The caller
/// must serialize captures (slots and arena are shared) and owns the
/// unwinders.
pub(crate) fn capture(setup: &CaptureSetup, timeout: Duration, unwinders: &mut Unwinders) -> RawCapture {
    let start = Instant::now();
    let (mut threads, targets) = survey(setup.signal);
    unwinders.refresh();
    let capacity = slots::ensure_capacity(targets.len());
    let window = (slots::ARENA / targets.len().max(1)).clamp(16 << 10, WINDOW);
    // Without the arena, stacks come out as their interrupted pc alone.
    let arena = slots::arena();
    let room = if arena.is_some() { window } else { 0 };
    slots::publish_maps(&procfs::mappings());
    let generation = slots::next_generation();
    let mut pending: Vec<Pending> = Vec::with_capacity(targets.len());
    let mut failures: Vec<(usize, i32)> = Vec::new();
    let mut next_slot = 0;
    for &ti in &targets {
        let arming =
            |slot| slots::Arming { tid: threads[ti].tid, rank: pending.len(), at: slot * window, room };
        while next_slot < capacity && !slots::arm(next_slot, generation, arming(next_slot)) {
            next_slot += 1; // a handler of an earlier dump is still in it
        }
        if next_slot >= capacity {
            failures.push((ti, libc::ENOSPC));
            continue;
        }
        let p =
            Pending { thread: ti, slot: next_slot, done: false, blocked: false, failed: None, taken: None };
        pending.push(p);
        next_slot += 1;
    }
    slots::publish_order(setup.signal, pending.iter().map(|p| p.slot));
    wait_for_handlers(&mut pending, &threads, generation, start + timeout, setup.signal);
    failures.extend(pending.iter().filter_map(|p| Some((p.thread, p.failed?))));
    let tasks = procfs::Tasks::open();
    for (ti, errno) in failures {
        read_name_and_state(&tasks, &mut threads[ti]);
        threads[ti].status = ThreadStatus::NotSignalled {
            reason: match errno {
                libc::ENOSPC => format!("over {} threads", slots::MAX_SLOTS),
                libc::ESRCH => EXITED.to_string(), // dropped below
                libc::EAGAIN => "signal queue full (RLIMIT_SIGPENDING)".to_string(),
                _ => io::Error::from_raw_os_error(errno).to_string(),
            },
        };
    }
    for p in pending.iter().filter(|p| p.failed.is_none()) {
        let t = &mut threads[p.thread];
        if p.blocked {
            read_name_and_state(&tasks, t);
            t.status = ThreadStatus::SignalBlocked;
            continue;
        }
        match p.taken {
            Some(taken) if taken.tid == t.tid => {
                t.name = taken.name();
                t.state = if taken.in_syscall { "sleeping" } else { "running" }.to_string();
                let bytes = arena.and_then(|a| a.get(taken.at..taken.at + taken.len)).unwrap_or(&[]);
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
    }
    // The copies' pages leave the RSS; the arena stays mapped for late handlers.
    if let Some(arena) = arena {
        arena.release_range(0, (next_slot * window).next_multiple_of(4096));
    }
    threads.retain(|t| !matches!(&t.status, ThreadStatus::NotSignalled { reason } if reason == EXITED));
    *BLOCKERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
        threads.iter().filter(|t| matches!(t.status, ThreadStatus::SignalBlocked)).map(|t| t.tid).collect();
    RawCapture { threads, elapsed: start.elapsed() }
}

/// The collector sends pending thread `p`'s signal, unless a handler did.
/// A full queue (`EAGAIN`: the user's `RLIMIT_SIGPENDING` reached, by this
/// dump's own signals when the process has more threads than it allows),
/// met here or by the handler that tried, is waited out while handlers take
/// theirs, until the deadline. Another error withdraws the slot.
fn send(p: &mut Pending, generation: u32, deadline: Instant) {
    let mut sent = match slots::send_error(p.slot) {
        Some(errno) => Err(errno),
        None => slots::send(p.slot, generation),
    };
    loop {
        let seen = slots::ANSWERS.load(std::sync::atomic::Ordering::Acquire);
        match sent {
            Err(libc::EAGAIN) if Instant::now() < deadline => {
                sys::futex_wait(&slots::ANSWERS, seen, Duration::from_millis(10));
                sent = slots::resend(p.slot, generation);
            }
            Ok(()) => return,
            Err(errno) => {
                if slots::cancel(p.slot, generation) {
                    (p.done, p.failed) = (true, Some(errno));
                }
                return;
            }
        }
    }
}

/// Sends the signals no handler will: the first [`slots::FAN_OUT`]
/// threads', those whose sender failed, or whose sender is done without
/// having sent them (it found no room, or was withdrawn), and, after the
/// block check (`all`), every one not sent yet: a thread that blocks the
/// signal, or sleeps where signals wait, never signals its children.
fn send_unsent(pending: &mut [Pending], generation: u32, deadline: Instant, all: bool) {
    for rank in 0..pending.len() {
        let p = pending[rank];
        if p.done {
            continue;
        }
        let orphan = slots::parent(rank).is_none_or(|parent| pending[parent].done);
        if slots::send_error(p.slot).is_some() || (!slots::was_sent(p.slot, generation) && (orphan || all)) {
            send(&mut pending[rank], generation, deadline);
        }
    }
}

/// The reason of a thread that exited before its signal was sent.
const EXITED: &str = "exited";

/// Takes each handler's result as it finishes, until all have or the
/// deadline; then withdraws the signals not yet answered (a handler caught
/// copying gets a short grace).
fn wait_for_handlers(
    pending: &mut [Pending],
    threads: &[RawThread],
    generation: u32,
    deadline: Instant,
    signal: c_int,
) {
    let block_check = Instant::now() + BLOCK_CHECK;
    let mut checked = false;
    loop {
        let seen = slots::ANSWERS.load(std::sync::atomic::Ordering::Acquire);
        for p in pending.iter_mut().filter(|p| !p.done) {
            if slots::progress(p.slot, generation) == Progress::Finished {
                (p.done, p.taken) = (true, slots::take(p.slot, generation));
            }
        }
        let now = Instant::now();
        send_unsent(pending, generation, deadline, checked);
        if pending.iter().all(|p| p.done) || now >= deadline {
            break;
        }
        if !checked && now >= block_check {
            checked = true;
            send_unsent(pending, generation, deadline, true);
            withdraw_blocked(pending, threads, generation, signal);
            continue;
        }
        sys::futex_wait(&slots::ANSWERS, seen, (deadline - now).min(Duration::from_millis(10)));
    }
    let grace = Instant::now() + WRITING_GRACE;
    for p in pending.iter_mut().filter(|p| !p.done) {
        loop {
            match slots::progress(p.slot, generation) {
                Progress::Waiting if slots::cancel(p.slot, generation) => break,
                Progress::Finished => {
                    p.taken = slots::take(p.slot, generation);
                    break;
                }
                Progress::Waiting | Progress::Writing if Instant::now() < grace => std::hint::spin_loop(),
                Progress::Waiting | Progress::Writing => break,
            }
        }
    }
}

/// Withdraws the signal of each thread not answered yet that blocks it
/// with the signal pending (a thread running its handler blocks every
/// signal too, but has taken it).
fn withdraw_blocked(pending: &mut [Pending], threads: &[RawThread], generation: u32, signal: c_int) {
    let tasks = procfs::Tasks::open();
    for p in pending.iter_mut().filter(|p| !p.done) {
        let blocks = tasks.status(threads[p.thread].tid).is_some_and(|st| st.holds_back(signal));
        if blocks && slots::cancel(p.slot, generation) {
            (p.done, p.blocked) = (true, true);
        }
    }
}

/// Every thread of the process, and the indexes of those to signal: not
/// this one (its stack is taken directly), not one that blocked the signal
/// last time and still does. Only those and this one have their name and
/// state read here: a signalled thread's handler reports its own.
fn survey(signal: c_int) -> (Vec<RawThread>, Vec<usize>) {
    let me = sys::gettid();
    let tasks = procfs::Tasks::open();
    let blockers = BLOCKERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let mut threads = Vec::new();
    let mut targets = Vec::new();
    for tid in procfs::list_tasks() {
        let (name, state, frames) = (String::new(), String::new(), Vec::new());
        let mut t = RawThread { tid, name, state, status: ThreadStatus::Dumping, frames };
        if tid == me {
            read_name_and_state(&tasks, &mut t);
            backtrace::trace(|f| {
                t.frames.push(f.ip() as usize);
                t.frames.len() < MAX_FRAMES
            });
        } else if blockers.contains(&tid)
            && let Some(st) = tasks.status(tid).filter(|st| st.blocks(signal))
        {
            (t.name, t.state) = (st.name, st.state);
            t.status = ThreadStatus::SignalBlocked;
        } else {
            t.status = ThreadStatus::NotAnswering { wchan: None };
            targets.push(threads.len());
        }
        threads.push(t);
    }
    (threads, targets)
}

/// Fills in a thread's name and state from `/proc` (a thread that did not
/// answer, or was not signalled); left empty when it is gone.
fn read_name_and_state(tasks: &procfs::Tasks, t: &mut RawThread) {
    if let Some((name, state)) = tasks.name_and_state(t.tid) {
        (t.name, t.state) = (name, state);
    }
}

fn mark_not_answering(t: &mut RawThread) {
    if let Some(st) = procfs::status(t.tid) {
        (t.name, t.state) = (st.name, st.state);
    }
    t.status = ThreadStatus::NotAnswering { wchan: procfs::wchan(t.tid) };
}

//! All-thread stack capture: signal every thread; each one's handler parks
//! on its alternate signal stack while the collector copies its stack
//! (`slots.rs`); then, with every thread released, unwind the copies
//! (`unwind.rs`) and symbolize, on the dumping thread.

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
/// Stack bytes one dump may copy in all; past it each thread gets less.
const ARENA: usize = 512 << 20;
/// Deepest stack a dump records; deeper ones are marked truncated.
pub(crate) const MAX_FRAMES: usize = 128;
/// Threads signalled and not yet served at any one time: more would flood
/// the run queue with handlers and starve the collector that serves them.
const IN_FLIGHT: usize = 64;
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
    unwinders.refresh();
    let capacity = slots::ensure_capacity(targets.len());
    let window = (ARENA / targets.len().max(1)).clamp(16 << 10, WINDOW);
    let mut copies = Copies {
        generation: slots::next_generation(),
        maps: procfs::mappings(),
        // Without the memory, stacks come out as their interrupted pc alone.
        arena: sys::MappedBuf::new(window * targets.len().min(capacity))
            .unwrap_or_else(|_| sys::MappedBuf::empty()),
        window,
        pending: Vec::with_capacity(targets.len()),
        cursor: 0,
        served: 0,
    };
    let mut failures: Vec<(usize, i32)> = Vec::with_capacity(targets.len());
    slots::reset_parked();
    // From the first signal on, until every thread is released: atomics and
    // syscalls only, into memory allocated above (see slots.rs).
    let mut next_slot = 0;
    let deadline = start + timeout;
    for &ti in &targets {
        copies.wait_below(IN_FLIGHT, deadline);
        while next_slot < capacity && !slots::arm(next_slot, copies.generation) {
            next_slot += 1; // a handler of an earlier dump is still in it
        }
        if next_slot >= capacity {
            failures.push((ti, libc::ENOSPC));
            continue;
        }
        let slot = next_slot;
        match sys::queue_signal_to_thread(
            threads[ti].tid,
            setup.signal,
            slots::payload(slot, copies.generation),
        ) {
            Ok(()) => {
                copies.pending.push(Pending { thread: ti, slot, taken: None });
                next_slot += 1;
            }
            Err(e) => {
                slots::cancel(slot, copies.generation);
                failures.push((ti, e.raw_os_error().unwrap_or(0)));
            }
        }
        copies.serve_parked(); // the early ones need not wait for the last signal
    }
    copies.serve_until(deadline);
    // Every thread is released now; allocation is fine again.
    for (ti, errno) in failures {
        threads[ti].status = ThreadStatus::NotSignalled {
            reason: match errno {
                libc::ENOSPC => format!("over {} threads", slots::MAX_SLOTS),
                libc::ESRCH => EXITED.to_string(), // dropped below
                libc::EAGAIN => "signal queue full (RLIMIT_SIGPENDING)".to_string(),
                _ => io::Error::from_raw_os_error(errno).to_string(),
            },
        };
    }
    for p in &copies.pending {
        let t = &mut threads[p.thread];
        match p.taken {
            Some(taken) if taken.tid == t.tid => {
                let bytes = copies.arena.get(p.slot * window..p.slot * window + taken.len).unwrap_or(&[]);
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
        slots::retire(p.slot, copies.generation);
    }
    threads.retain(|t| !matches!(&t.status, ThreadStatus::NotSignalled { reason } if reason == EXITED));
    RawCapture { threads, elapsed: start.elapsed() }
}

/// The reason of a thread that exited before its signal was sent.
const EXITED: &str = "exited";

/// The copying side of one capture: what it signalled and where the copies go.
struct Copies {
    generation: u32,
    /// This process's mappings, sorted: a stack is copied up to the end of its own.
    maps: Vec<(usize, usize)>,
    /// One window per slot.
    arena: sys::MappedBuf,
    window: usize,
    /// Sorted by slot.
    pending: Vec<Pending>,
    /// How far the parked list has been read.
    cursor: usize,
    /// Pending threads whose stack was copied.
    served: usize,
}

impl Copies {
    /// Copies the stack of `p`'s thread if it is parked. Allocation-free.
    fn take(&mut self, i: usize) {
        let Some(p) = self.pending.get_mut(i) else { return };
        if p.taken.is_some() {
            return;
        }
        let maps = &self.maps;
        let limit = |sp: usize| procfs::mapping_end(maps, sp).map_or(0, |end| end - sp);
        let range = p.slot * self.window..(p.slot + 1) * self.window;
        if let Some(buf) = self.arena.get_mut(range) {
            p.taken = slots::copy_stack(p.slot, self.generation, buf, limit);
            self.served += usize::from(p.taken.is_some());
        }
    }

    /// Serves every thread that parked since the last call. Allocation-free.
    fn serve_parked(&mut self) {
        let mut cursor = self.cursor;
        let mut parked = [0usize; 64];
        loop {
            let mut n = 0;
            slots::drain_parked(&mut cursor, |slot| {
                if n < parked.len() {
                    parked[n] = slot;
                    n += 1;
                }
            });
            for &slot in &parked[..n] {
                if let Ok(i) = self.pending.binary_search_by_key(&slot, |p| p.slot) {
                    self.take(i);
                }
            }
            if n < parked.len() {
                break;
            }
        }
        self.cursor = cursor;
    }

    /// Serves threads until fewer than `n` signalled ones may still park, or the deadline.
    fn wait_below(&mut self, n: usize, deadline: Instant) {
        while self.pending.len() - self.served >= n {
            let seen = slots::ANSWERS.load(std::sync::atomic::Ordering::Acquire);
            let before = self.served;
            self.serve_parked();
            if self.served > before {
                continue;
            }
            let now = Instant::now();
            if now >= deadline || self.open() < n {
                return;
            }
            sys::futex_wait(&slots::ANSWERS, seen, (deadline - now).min(Duration::from_millis(10)));
        }
    }

    /// Serves threads as they park until all are served or the deadline;
    /// then withdraws the signals not yet answered. Allocation-free.
    fn serve_until(&mut self, deadline: Instant) {
        loop {
            let seen = slots::ANSWERS.load(std::sync::atomic::Ordering::Acquire);
            let before = self.served;
            self.serve_parked();
            let idle = self.served == before; // only then look for handlers that gave up
            if self.served == self.pending.len() || Instant::now() >= deadline || (idle && self.open() == 0) {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            sys::futex_wait(&slots::ANSWERS, seen, left.min(Duration::from_millis(10)));
        }
        // The deadline: withdraw what was not answered; a handler caught
        // storing its registers gets a short grace to park.
        let grace = Instant::now() + WRITING_GRACE;
        for i in 0..self.pending.len() {
            loop {
                let p = self.pending[i];
                if p.taken.is_some() {
                    break;
                }
                match slots::progress(p.slot, self.generation) {
                    Progress::Waiting if slots::cancel(p.slot, self.generation) => break,
                    Progress::Parked => {
                        self.take(i);
                        break;
                    }
                    Progress::Finished => break,
                    Progress::Waiting | Progress::Writing if Instant::now() < grace => std::hint::spin_loop(),
                    Progress::Waiting | Progress::Writing => break,
                }
            }
        }
    }

    /// Signalled threads that may still park (the handler has not run, is
    /// storing, or is parked), not counting those that gave up.
    fn open(&self) -> usize {
        let open = |p: &&Pending| {
            p.taken.is_none() && slots::progress(p.slot, self.generation) != Progress::Finished
        };
        self.pending.iter().filter(open).count()
    }
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

fn mark_not_answering(t: &mut RawThread) {
    if let Some(st) = procfs::status(t.tid) {
        t.state = st.state;
    }
    t.status = ThreadStatus::NotAnswering { wchan: procfs::wchan(t.tid) };
}

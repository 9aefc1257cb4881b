//! All-thread stack capture: signal every thread, collect raw instruction
//! pointers from the slots, then symbolize on the dumping thread.

mod dump;
mod procfs;
pub(crate) mod slots;
mod symbolize;

use std::ffi::c_int;
use std::io;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use dump::{StackFrame, ThreadDump, ThreadInfo, ThreadStatus};
pub use symbolize::SourceFrame;
pub(crate) use symbolize::Symbolizer;

use crate::config::UnwinderChoice;
use crate::sys;
use slots::{Progress, Unwinder};

/// True when DWARF unwinding inside a signal handler is safe in this process
/// (lock-free `_dl_find_object` in glibc, used by libgcc 12+).
pub(crate) fn dwarf_unwind_is_signal_safe() -> bool {
    toolchain().dwarf_unwind_is_signal_safe()
}

/// glibc and libgcc facts, looked up once (they need `dlopen`).
fn toolchain() -> &'static sys::Toolchain {
    static TOOLCHAIN: OnceLock<sys::Toolchain> = OnceLock::new();
    TOOLCHAIN.get_or_init(sys::toolchain)
}

/// The capture signal and unwinder, chosen once per process.
#[derive(Debug)]
pub(crate) struct CaptureSetup {
    pub signal: c_int,
    /// For the dump header: which unwinder runs and why.
    pub unwinder: String,
}

static SETUP: OnceLock<Result<CaptureSetup, String>> = OnceLock::new();

/// Claims an unused real-time signal and installs the capture handler (once).
pub(crate) fn setup(choice: UnwinderChoice) -> &'static Result<CaptureSetup, String> {
    SETUP.get_or_init(|| {
        let signal = pick_signal().ok_or("no free real-time signal for stack capture")?;
        let (unwinder, why) = choose_unwinder(choice);
        slots::set_unwinder(unwinder);
        if unwinder == Unwinder::Dwarf {
            // First use initialises libgcc's tables; do it here, not in a handler.
            sys::dwarf_unwind(|_| true);
        }
        sys::install_capture_handler::<slots::Slots>(signal)
            .map_err(|e| format!("cannot install the capture handler for signal {signal}: {e}"))?;
        Ok(CaptureSetup { signal, unwinder: why })
    })
}

/// SIGRTMIN+3 and up: low real-time signals are the ones other libraries take first.
fn pick_signal() -> Option<c_int> {
    (libc::SIGRTMIN() + 3..=libc::SIGRTMAX()).find(|&sig| sys::signal_is_unused(sig))
}

fn choose_unwinder(choice: UnwinderChoice) -> (Unwinder, String) {
    let tc = toolchain();
    let glibc = tc.glibc.clone().unwrap_or_else(|| "unknown".to_string());
    let facts = format!(
        "glibc {glibc}, _dl_find_object {}, libgcc_s GCC 12+ {}",
        if tc.dl_find_object { "present" } else { "absent" },
        if tc.libgcc_12 { "yes" } else { "no" }
    );
    match choice {
        UnwinderChoice::Auto if tc.dwarf_unwind_is_signal_safe() => {
            (Unwinder::Dwarf, format!("dwarf (signal-safe here: {facts})"))
        }
        UnwinderChoice::Auto => (
            Unwinder::FramePointers,
            format!("frame-pointers (DWARF unwinding is not signal-safe here: {facts})"),
        ),
        UnwinderChoice::Dwarf => (Unwinder::Dwarf, format!("dwarf (forced by HOTPROF_UNWINDER; {facts})")),
        UnwinderChoice::FramePointers => {
            (Unwinder::FramePointers, format!("frame-pointers (forced by HOTPROF_UNWINDER; {facts})"))
        }
    }
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

/// Extra time granted to a handler that already claimed its slot at the deadline.
const WRITING_GRACE: Duration = Duration::from_millis(50);

/// Signals every thread of the process and collects their stacks. The caller
/// must serialize captures (slots are shared).
pub(crate) fn capture(setup: &CaptureSetup, timeout: Duration) -> RawCapture {
    let start = Instant::now();
    let me = sys::gettid();
    let tids = procfs::list_tasks();
    let capacity = slots::ensure_capacity(tids.len());
    let generation = slots::next_generation();
    let mut threads = Vec::with_capacity(tids.len());
    let mut pending: Vec<(usize, usize)> = Vec::new(); // (thread index, slot)
    let mut next_slot = 0;
    for tid in tids {
        let Some(st) = procfs::status(tid) else {
            continue;
        }; // exited meanwhile
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
                t.frames.len() < slots::MAX_FRAMES
            });
        } else if st.blocks(setup.signal) {
            t.status = ThreadStatus::SignalBlocked;
        } else {
            while next_slot < capacity && !slots::arm(next_slot, generation) {
                next_slot += 1;
            }
            if next_slot >= capacity {
                t.status =
                    ThreadStatus::NotSignalled { reason: format!("over {} threads", slots::MAX_SLOTS) };
            } else {
                match sys::queue_signal_to_thread(tid, setup.signal, slots::payload(next_slot, generation)) {
                    Ok(()) => {
                        pending.push((threads.len(), next_slot));
                        t.status = ThreadStatus::NotAnswering { wchan: None };
                        next_slot += 1;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                        slots::disarm(next_slot, generation);
                        continue; // exited meanwhile
                    }
                    Err(e) => {
                        slots::disarm(next_slot, generation);
                        t.status = ThreadStatus::NotSignalled { reason: describe_send_error(&e) };
                    }
                }
            }
        }
        threads.push(t);
    }
    wait_for_answers(&pending, generation, start + timeout);
    for &(ti, slot) in &pending {
        collect(&mut threads[ti], slot, generation);
    }
    RawCapture { threads, elapsed: start.elapsed() }
}

fn describe_send_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EAGAIN) => "signal queue full (RLIMIT_SIGPENDING)".to_string(),
        _ => e.to_string(),
    }
}

/// Sleeps on the answer counter until every pending slot is done or the deadline passes.
fn wait_for_answers(pending: &[(usize, usize)], generation: u32, deadline: Instant) {
    let mut open: Vec<usize> = pending.iter().map(|p| p.1).collect();
    loop {
        let seen = slots::ANSWERS.load(std::sync::atomic::Ordering::Acquire);
        open.retain(|&s| matches!(slots::progress(s, generation), Progress::Waiting | Progress::Writing));
        let now = Instant::now();
        if open.is_empty() || now >= deadline {
            return;
        }
        sys::futex_wait(&slots::ANSWERS, seen, (deadline - now).min(Duration::from_millis(10)));
    }
}

fn collect(t: &mut RawThread, slot: usize, generation: u32) {
    if slots::progress(slot, generation) == Progress::Waiting && slots::cancel(slot, generation) {
        return mark_not_answering(t);
    }
    let grace = Instant::now() + WRITING_GRACE;
    while slots::progress(slot, generation) == Progress::Writing && Instant::now() < grace {
        std::thread::sleep(Duration::from_micros(200));
    }
    match slots::take(slot, generation) {
        // A slot answers for the thread it was armed for; anything else is not trusted.
        Some(rec) if rec.tid == t.tid => {
            t.frames = rec.frames;
            t.status = ThreadStatus::Captured {
                pause: Duration::from_nanos(rec.pause_ns),
                truncated: rec.truncated,
            };
        }
        _ => mark_not_answering(t),
    }
}

fn mark_not_answering(t: &mut RawThread) {
    if let Some(st) = procfs::status(t.tid) {
        t.state = st.state;
    }
    t.status = ThreadStatus::NotAnswering { wchan: procfs::wchan(t.tid) };
}

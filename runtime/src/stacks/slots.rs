//! Preallocated slots that capture handlers write raw instruction pointers into.
//!
//! Protocol (one `state` word per slot: generation in the high half, phase in the low):
//! the dumper arms a slot (`ARMED`), queues the capture signal with the slot's
//! index and generation, and the target thread's handler claims it by
//! compare-and-swap (`ARMED -> WRITING`), writes its frames, and publishes `DONE`.
//! A handler that arrives late finds another generation or phase and leaves.
//! Slots live in chunks that are allocated on the dumper thread and never freed,
//! so a late handler can never write into freed memory. Everything the handler
//! touches here is atomics: no allocation, no lock, no panic.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::sys::{self, Interrupted, SignalSink};

/// Deepest stack a handler records; deeper stacks are marked truncated.
pub(crate) const MAX_FRAMES: usize = 128;
const CHUNK: usize = 256;
const MAX_CHUNKS: usize = 64;
/// Most threads one dump can capture (the slots cost about 1 KiB each).
pub(crate) const MAX_SLOTS: usize = CHUNK * MAX_CHUNKS;

const IDLE: u32 = 0;
const ARMED: u32 = 1;
const WRITING: u32 = 2;
const DONE: u32 = 3;

fn word(generation: u32, phase: u32) -> u64 {
    ((generation as u64) << 32) | phase as u64
}

fn phase(word: u64) -> u32 {
    (word & 0xffff_ffff) as u32
}

/// Packs a slot index and generation into the signal payload.
pub(crate) fn payload(index: usize, generation: u32) -> u64 {
    ((generation as u64) << 32) | (index as u64 & 0xffff_ffff)
}

pub(crate) struct Slot {
    state: AtomicU64,
    tid: AtomicI32,
    depth: AtomicUsize,
    truncated: AtomicBool,
    pc: AtomicUsize,
    enter_ns: AtomicU64,
    exit_ns: AtomicU64,
    frames: [AtomicUsize; MAX_FRAMES],
}

impl Slot {
    fn new() -> Self {
        Slot {
            state: AtomicU64::new(word(0, IDLE)),
            tid: AtomicI32::new(0),
            depth: AtomicUsize::new(0),
            truncated: AtomicBool::new(false),
            pc: AtomicUsize::new(0),
            enter_ns: AtomicU64::new(0),
            exit_ns: AtomicU64::new(0),
            frames: [const { AtomicUsize::new(0) }; MAX_FRAMES],
        }
    }
}

static CHUNKS: [OnceLock<Box<[Slot]>>; MAX_CHUNKS] = [const { OnceLock::new() }; MAX_CHUNKS];

/// Bumped by every handler that finished; the dumper sleeps on it (futex).
pub(crate) static ANSWERS: AtomicU32 = AtomicU32::new(0);

static GENERATION: AtomicU32 = AtomicU32::new(0);

/// Which unwinder handlers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unwinder {
    /// DWARF call frame information through libgcc.
    Dwarf,
    /// Frame-pointer chain from the interrupted registers.
    FramePointers,
}

static UNWINDER: AtomicU8 = AtomicU8::new(0);

pub(crate) fn set_unwinder(u: Unwinder) {
    UNWINDER.store(matches!(u, Unwinder::Dwarf) as u8, Ordering::Relaxed);
}

/// A fresh, non-zero generation for one dump.
pub(crate) fn next_generation() -> u32 {
    loop {
        let g = GENERATION.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if g != 0 {
            return g;
        }
    }
}

/// Allocates chunks (on the calling thread, never in a handler) until at least
/// `n` slots exist or the cap is reached; returns how many slots exist.
pub(crate) fn ensure_capacity(n: usize) -> usize {
    let chunks = n.div_ceil(CHUNK).min(MAX_CHUNKS);
    for chunk in CHUNKS.iter().take(chunks) {
        chunk.get_or_init(|| (0..CHUNK).map(|_| Slot::new()).collect());
    }
    CHUNKS.iter().take_while(|c| c.get().is_some()).count() * CHUNK
}

fn slot(index: usize) -> Option<&'static Slot> {
    CHUNKS.get(index / CHUNK)?.get()?.get(index % CHUNK)
}

/// Arms slot `index` for `generation`. Fails when a late handler is still writing into it.
pub(crate) fn arm(index: usize, generation: u32) -> bool {
    let Some(s) = slot(index) else { return false };
    let cur = s.state.load(Ordering::Acquire);
    if phase(cur) == WRITING {
        return false;
    }
    s.state.compare_exchange(cur, word(generation, ARMED), Ordering::AcqRel, Ordering::Relaxed).is_ok()
}

/// Returns a slot to idle after its signal could not be sent.
pub(crate) fn disarm(index: usize, generation: u32) {
    if let Some(s) = slot(index) {
        let _ = s.state.compare_exchange(
            word(generation, ARMED),
            word(generation, IDLE),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}

/// Where one armed slot stands.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    Waiting,
    Writing,
    Done,
    /// Re-armed or lost: should not happen while the caller holds the capture lock.
    Lost,
}

pub(crate) fn progress(index: usize, generation: u32) -> Progress {
    let Some(s) = slot(index) else {
        return Progress::Lost;
    };
    let cur = s.state.load(Ordering::Acquire);
    match cur {
        c if c == word(generation, ARMED) => Progress::Waiting,
        c if c == word(generation, WRITING) => Progress::Writing,
        c if c == word(generation, DONE) => Progress::Done,
        _ => Progress::Lost,
    }
}

/// Withdraws an armed slot whose thread did not answer in time. Returns false
/// when the handler claimed it meanwhile (then wait for it or give up).
pub(crate) fn cancel(index: usize, generation: u32) -> bool {
    slot(index).is_some_and(|s| {
        s.state
            .compare_exchange(
                word(generation, ARMED),
                word(generation, IDLE),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    })
}

/// What a handler recorded.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub tid: i32,
    /// Instruction pointers, innermost first, handler frames removed.
    pub frames: Vec<usize>,
    pub truncated: bool,
    /// Time spent inside the handler.
    pub pause_ns: u64,
}

/// Copies a `DONE` slot out and returns it to idle.
pub(crate) fn take(index: usize, generation: u32) -> Option<Recorded> {
    let s = slot(index)?;
    if s.state.load(Ordering::Acquire) != word(generation, DONE) {
        return None;
    }
    let depth = s.depth.load(Ordering::Relaxed).min(MAX_FRAMES);
    let raw: Vec<usize> = s.frames[..depth].iter().map(|f| f.load(Ordering::Relaxed)).collect();
    let pc = s.pc.load(Ordering::Relaxed);
    let rec = Recorded {
        tid: s.tid.load(Ordering::Relaxed),
        frames: strip_handler_frames(raw, pc),
        truncated: s.truncated.load(Ordering::Relaxed),
        pause_ns: s.exit_ns.load(Ordering::Relaxed).saturating_sub(s.enter_ns.load(Ordering::Relaxed)),
    };
    s.state.store(word(generation, IDLE), Ordering::Release);
    Some(rec)
}

/// DWARF unwinding starts inside the handler; the interrupted frame is the one
/// whose instruction pointer equals the interrupted `pc`. Drop what precedes it.
fn strip_handler_frames(mut frames: Vec<usize>, pc: usize) -> Vec<usize> {
    if pc == 0 {
        return frames;
    }
    match frames.iter().position(|&ip| ip == pc) {
        Some(k) => {
            frames.drain(..k);
        }
        None => frames.insert(0, pc),
    }
    frames
}

/// The capture handler's sink: the handler delivers each interrupted thread here.
#[derive(Debug)]
pub(crate) struct Slots;

impl SignalSink for Slots {
    fn on_signal(i: Interrupted) {
        record(i);
    }
}

/// The handler body. Async-signal-safe: atomics and syscalls only.
fn record(i: Interrupted) {
    if !i.from_self {
        return;
    }
    let generation = (i.value >> 32) as u32;
    let Some(s) = slot((i.value & 0xffff_ffff) as usize) else {
        return;
    };
    if s.state
        .compare_exchange(
            word(generation, ARMED),
            word(generation, WRITING),
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
        .is_err()
    {
        return;
    }
    s.enter_ns.store(sys::monotonic_ns(), Ordering::Relaxed);
    s.tid.store(sys::gettid(), Ordering::Relaxed);
    s.pc.store(i.pc, Ordering::Relaxed);
    let (depth, truncated) =
        if UNWINDER.load(Ordering::Relaxed) == 1 { record_dwarf(s) } else { record_frame_pointers(s, &i) };
    s.depth.store(depth, Ordering::Relaxed);
    s.truncated.store(truncated, Ordering::Relaxed);
    s.exit_ns.store(sys::monotonic_ns(), Ordering::Relaxed);
    s.state.store(word(generation, DONE), Ordering::Release);
    ANSWERS.fetch_add(1, Ordering::Release);
    sys::futex_wake_all(&ANSWERS);
}

fn record_dwarf(s: &Slot) -> (usize, bool) {
    let mut n = 0;
    let mut truncated = false;
    sys::dwarf_unwind(|ip| match s.frames.get(n) {
        // The outermost frame of a thread reports pc 0: nothing to record.
        _ if ip == 0 => false,
        Some(f) => {
            f.store(ip, Ordering::Relaxed);
            n += 1;
            true
        }
        None => {
            truncated = true;
            false
        }
    });
    (n, truncated)
}

/// Largest distance between the interrupted stack pointer and a frame we trust.
const MAX_STACK_SPAN: usize = 64 << 20;

fn record_frame_pointers(s: &Slot, i: &Interrupted) -> (usize, bool) {
    let mut n = 0;
    let mut push = |ip: usize| match s.frames.get(n) {
        Some(f) => {
            f.store(ip, Ordering::Relaxed);
            n += 1;
            true
        }
        None => false,
    };
    push(i.pc);
    let mut fp = i.fp;
    loop {
        let sane = fp != 0 && fp.is_multiple_of(8) && fp >= i.sp && fp.wrapping_sub(i.sp) < MAX_STACK_SPAN;
        if !sane {
            return (n, false);
        }
        let (Some(next), Some(ret)) = (sys::read_word(fp), sys::read_word(fp.wrapping_add(8))) else {
            return (n, false);
        };
        if ret == 0 {
            return (n, false);
        }
        if !push(ret) {
            return (n, true);
        }
        if next <= fp {
            return (n, false);
        }
        fp = next;
    }
}

//! Preallocated slots through which a capture handler hands its thread's
//! registers to the collector, and waits while the collector copies its stack.
//!
//! Protocol (one `state` word per slot: generation in the high half, phase in the low):
//! 1. the collector arms a slot (`ARMED`) and queues the capture signal with
//!    the slot's index and generation;
//! 2. the target thread's handler, on its alternate signal stack, claims the
//!    slot by compare-and-swap (`ARMED -> WRITING`), stores its tid and
//!    interrupted registers, publishes `PARKED`, appends the slot to the
//!    parked list, wakes the collector and waits on the slot's `wake` word;
//! 3. the collector claims a parked slot (`PARKED -> READING`), copies the
//!    thread's stack from the stack pointer up with `process_vm_readv`, then
//!    publishes `DONE` and wakes the handler, which returns;
//! 4. a handler not served within [`PARK_LIMIT`] gives up (`PARKED ->
//!    GAVE_UP`) and returns; one being read waits for the copy to finish (a
//!    single syscall) up to [`READ_LIMIT`], then gives up all the same, and
//!    the collector, finding `GAVE_UP` instead of `READING`, drops the copy.
//!
//! A handler that arrives late finds another generation or phase and
//! returns at once. While a thread is parked the collector only uses
//! atomics and syscalls: it takes no lock and allocates nothing, so a thread
//! parked while holding the allocator's lock cannot stall it. Slots live in
//! chunks that are allocated on the collector thread and never freed, so a
//! late handler can never touch freed memory. Everything the handler
//! touches here is atomics: no allocation, no lock, no unwinding, no panic.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::sys::{self, Interrupted, Registers, SignalSink};

const CHUNK: usize = 256;
const MAX_CHUNKS: usize = 64;
/// Most threads one dump can capture (the slots cost about 100 bytes each).
pub(crate) const MAX_SLOTS: usize = CHUNK * MAX_CHUNKS;

/// Longest a handler waits for the collector to start copying its stack.
pub(crate) const PARK_LIMIT: Duration = Duration::from_secs(1);
/// Longest a handler waits in all, copy included.
const READ_LIMIT: Duration = Duration::from_secs(2);

const IDLE: u32 = 0;
const ARMED: u32 = 1;
const WRITING: u32 = 2;
const PARKED: u32 = 3;
const READING: u32 = 4;
const DONE: u32 = 5;
const GAVE_UP: u32 = 6;

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

struct Slot {
    state: AtomicU64,
    /// Bumped by the collector after each phase change it makes; the parked handler sleeps on it.
    wake: AtomicU32,
    tid: AtomicI32,
    pc: AtomicUsize,
    sp: AtomicUsize,
    fp: AtomicUsize,
    lr: AtomicUsize,
    enter_ns: AtomicU64,
}

impl Slot {
    fn new() -> Self {
        Slot {
            state: AtomicU64::new(word(0, IDLE)),
            wake: AtomicU32::new(0),
            tid: AtomicI32::new(0),
            pc: AtomicUsize::new(0),
            sp: AtomicUsize::new(0),
            fp: AtomicUsize::new(0),
            lr: AtomicUsize::new(0),
            enter_ns: AtomicU64::new(0),
        }
    }

    fn moves(&self, from: u64, to: u64) -> bool {
        self.state.compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Wakes a parked handler after a phase change.
    fn wake_handler(&self) {
        self.wake.fetch_add(1, Ordering::Release);
        sys::futex_wake_all(&self.wake);
    }
}

static CHUNKS: [OnceLock<Box<[Slot]>>; MAX_CHUNKS] = [const { OnceLock::new() }; MAX_CHUNKS];

/// Bumped by every handler that parked or gave up; the collector sleeps on it (futex).
pub(crate) static ANSWERS: AtomicU32 = AtomicU32::new(0);

/// The slots whose handler parked, in the order they did, as `slot + 1`
/// (0: a handler took the place and is about to fill it). Reset by the
/// collector before each dump's first signal.
static PARKED_LIST: OnceLock<Box<[AtomicU32]>> = OnceLock::new();
static PARKED_LEN: AtomicUsize = AtomicUsize::new(0);

fn parked_list() -> &'static [AtomicU32] {
    PARKED_LIST.get_or_init(|| (0..MAX_SLOTS).map(|_| AtomicU32::new(0)).collect())
}

/// Empties the parked list for a new dump (before its first signal).
pub(crate) fn reset_parked() {
    let list = parked_list();
    let len = PARKED_LEN.swap(0, Ordering::AcqRel).min(list.len());
    for entry in &list[..len] {
        entry.store(0, Ordering::Relaxed);
    }
}

/// Reads the parked list from `*cursor` on: calls `f` with each slot that
/// parked since, advancing the cursor. Allocation-free.
pub(crate) fn drain_parked(cursor: &mut usize, mut f: impl FnMut(usize)) {
    let Some(list) = PARKED_LIST.get() else { return };
    let len = PARKED_LEN.load(Ordering::Acquire).min(list.len());
    while *cursor < len {
        let v = list[*cursor].load(Ordering::Acquire);
        if v == 0 {
            return; // its handler has not filled it yet; read it next time
        }
        *cursor += 1;
        f(v as usize - 1);
    }
}

static GENERATION: AtomicU32 = AtomicU32::new(0);

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
    parked_list();
    let chunks = n.div_ceil(CHUNK).min(MAX_CHUNKS);
    for chunk in CHUNKS.iter().take(chunks) {
        chunk.get_or_init(|| (0..CHUNK).map(|_| Slot::new()).collect());
    }
    CHUNKS.iter().take_while(|c| c.get().is_some()).count() * CHUNK
}

fn slot(index: usize) -> Option<&'static Slot> {
    CHUNKS.get(index / CHUNK)?.get()?.get(index % CHUNK)
}

/// Arms slot `index` for `generation`. Fails while a handler of an earlier
/// dump is still inside it.
pub(crate) fn arm(index: usize, generation: u32) -> bool {
    let Some(s) = slot(index) else { return false };
    let cur = s.state.load(Ordering::Acquire);
    if matches!(phase(cur), WRITING | PARKED | READING) {
        return false;
    }
    s.moves(cur, word(generation, ARMED))
}

/// Returns an armed slot to idle: its signal could not be sent, or its
/// thread did not answer in time. False when the handler claimed it meanwhile.
pub(crate) fn cancel(index: usize, generation: u32) -> bool {
    slot(index).is_some_and(|s| s.moves(word(generation, ARMED), word(generation, IDLE)))
}

/// Where one armed slot stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Signalled, the handler has not run yet.
    Waiting,
    /// The handler is storing its registers.
    Writing,
    /// The handler waits for its stack to be copied.
    Parked,
    /// Copied (by [`copy_stack`]); or the handler gave up, or the slot was lost.
    Finished,
}

pub(crate) fn progress(index: usize, generation: u32) -> Progress {
    let Some(s) = slot(index) else { return Progress::Finished };
    let cur = s.state.load(Ordering::Acquire);
    match cur {
        c if c == word(generation, ARMED) => Progress::Waiting,
        c if c == word(generation, WRITING) => Progress::Writing,
        c if c == word(generation, PARKED) => Progress::Parked,
        _ => Progress::Finished,
    }
}

/// What the collector took from a parked thread.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Taken {
    pub tid: i32,
    pub regs: Registers,
    /// Bytes of stack copied, from `regs.sp` up.
    pub len: usize,
    /// How long the thread was held, from its handler's start to its release.
    pub pause_ns: u64,
}

/// Copies the stack of the thread parked in slot `index` into `buf` (at
/// most `limit(sp)` bytes) and releases the thread. `None` when it is not
/// parked or gave up during the copy. Allocation-free.
pub(crate) fn copy_stack(
    index: usize,
    generation: u32,
    buf: &mut [u8],
    limit: impl Fn(usize) -> usize,
) -> Option<Taken> {
    let s = slot(index)?;
    if !s.moves(word(generation, PARKED), word(generation, READING)) {
        return None;
    }
    let regs = Registers {
        pc: s.pc.load(Ordering::Relaxed),
        sp: s.sp.load(Ordering::Relaxed),
        fp: s.fp.load(Ordering::Relaxed),
        lr: s.lr.load(Ordering::Relaxed),
    };
    let want = limit(regs.sp).min(buf.len());
    let len = buf.get_mut(..want).map_or(0, |b| sys::read_into(regs.sp, b));
    let copied = s.moves(word(generation, READING), word(generation, DONE));
    let pause_ns = sys::monotonic_ns().saturating_sub(s.enter_ns.load(Ordering::Relaxed));
    s.wake_handler();
    copied.then(|| Taken { tid: s.tid.load(Ordering::Relaxed), regs, len, pause_ns })
}

/// Returns a finished slot to idle so a later dump can arm it.
pub(crate) fn retire(index: usize, generation: u32) {
    if let Some(s) = slot(index) {
        for done in [DONE, GAVE_UP] {
            if s.moves(word(generation, done), word(generation, IDLE)) {
                return;
            }
        }
    }
}

/// The capture handler's sink: the handler delivers each interrupted thread here.
#[derive(Debug)]
pub(crate) struct Slots;

impl SignalSink for Slots {
    fn on_signal(i: Interrupted) {
        park(i);
    }
}

/// The handler body. Async-signal-safe: atomics and syscalls only.
fn park(i: Interrupted) {
    if !i.from_self {
        return;
    }
    let generation = (i.value >> 32) as u32;
    let Some(s) = slot((i.value & 0xffff_ffff) as usize) else { return };
    if !s.moves(word(generation, ARMED), word(generation, WRITING)) {
        return;
    }
    let entered = sys::monotonic_ns();
    s.enter_ns.store(entered, Ordering::Relaxed);
    s.tid.store(sys::gettid(), Ordering::Relaxed);
    s.pc.store(i.regs.pc, Ordering::Relaxed);
    s.sp.store(i.regs.sp, Ordering::Relaxed);
    s.fp.store(i.regs.fp, Ordering::Relaxed);
    s.lr.store(i.regs.lr, Ordering::Relaxed);
    s.state.store(word(generation, PARKED), Ordering::Release);
    if let Some(list) = PARKED_LIST.get() {
        let at = PARKED_LEN.fetch_add(1, Ordering::AcqRel);
        if let Some(entry) = list.get(at) {
            entry.store(((i.value & 0xffff_ffff) as u32).wrapping_add(1), Ordering::Release);
        }
    }
    announce();
    let park_until = entered.saturating_add(PARK_LIMIT.as_nanos() as u64);
    let read_until = entered.saturating_add(READ_LIMIT.as_nanos() as u64);
    loop {
        // Read the wake count before the state: a change after this read
        // bumps the count, so the futex wait below returns at once.
        let seen = s.wake.load(Ordering::Acquire);
        let now = sys::monotonic_ns();
        let state = s.state.load(Ordering::Acquire);
        let until = if state == word(generation, PARKED) {
            if now >= park_until && s.moves(state, word(generation, GAVE_UP)) {
                return announce();
            }
            park_until
        } else if state == word(generation, READING) {
            if now >= read_until && s.moves(state, word(generation, GAVE_UP)) {
                return;
            }
            read_until
        } else {
            return; // copied (DONE), or no longer ours
        };
        let left = Duration::from_nanos(until.saturating_sub(now).max(1_000));
        sys::futex_wait(&s.wake, seen, left.min(Duration::from_millis(10)));
    }
}

/// Tells the collector a slot changed.
fn announce() {
    ANSWERS.fetch_add(1, Ordering::Release);
    sys::futex_wake_all(&ANSWERS);
}

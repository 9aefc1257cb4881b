//! The ring a sample handler writes into: the interrupted thread's
//! registers, its innermost scope, its dye and a copy of its stack, taken on its
//! alternate signal stack with no allocation and no lock.
//!
//! Protocol (one `state` word per slot: session generation in the high half,
//! phase in the low): the handler takes the next slot in turn and claims it
//! by compare-and-swap (`FREE -> WRITING`); a slot not yet drained makes it
//! count the sample as dropped instead. It stores the registers and scope,
//! copies up to [`WINDOW`] bytes of stack from the stack pointer up with
//! `process_vm_readv` (which stops at an unmapped page instead of faulting)
//! and publishes `READY`. The session thread drains `READY` slots every
//! tick and frees them. The ring is made once and never freed, so a signal
//! delivered after its session ended finds memory to look at; it sees no
//! active generation and returns.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::sys::{self, AtomicRegisters, Interrupted, MappedBuf, Registers, SignalSink};

/// Stack bytes copied per sample: deep enough for the stacks CPU time is
/// spent in; a deeper stack loses its outermost frames.
pub(crate) const WINDOW: usize = 32 << 10;
/// Samples held between two drains.
pub(crate) const SLOTS: usize = 256;

const FREE: u32 = 0;
const WRITING: u32 = 1;
const READY: u32 = 2;

fn word(generation: u32, phase: u32) -> u64 {
    ((generation as u64) << 32) | phase as u64
}

struct Slot {
    state: AtomicU64,
    tid: AtomicI32,
    regs: AtomicRegisters,
    node: AtomicU32,
    dye: AtomicU32,
    len: AtomicUsize,
}

struct Ring {
    slots: Box<[Slot]>,
    stacks: MappedBuf,
}

static RING: OnceLock<Option<Ring>> = OnceLock::new();
/// The generation of the running session; 0 when none runs.
static ACTIVE: AtomicU32 = AtomicU32::new(0);
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Samples lost because the ring was full, this session.
pub(crate) static DROPPED: AtomicU64 = AtomicU64::new(0);

fn ring() -> Option<&'static Ring> {
    RING.get_or_init(|| {
        let stacks = MappedBuf::new(SLOTS * WINDOW).ok()?;
        let slots = (0..SLOTS)
            .map(|_| Slot {
                state: AtomicU64::new(word(0, FREE)),
                tid: AtomicI32::new(0),
                regs: AtomicRegisters::new(),
                node: AtomicU32::new(0),
                dye: AtomicU32::new(0),
                len: AtomicUsize::new(0),
            })
            .collect();
        Some(Ring { slots, stacks })
    })
    .as_ref()
}

/// Opens the ring for the session `generation` (on the session thread).
/// False when its memory could not be mapped.
pub(crate) fn open(generation: u32) -> bool {
    if ring().is_none() {
        return false;
    }
    DROPPED.store(0, Ordering::Relaxed);
    ACTIVE.store(generation, Ordering::Release);
    true
}

/// Closes the ring: later signals are ignored. Waits (briefly) for
/// handlers still writing, so the last drain sees their samples.
pub(crate) fn close() {
    ACTIVE.store(0, Ordering::Release);
    let Some(ring) = ring() else { return };
    let until = std::time::Instant::now() + std::time::Duration::from_millis(20);
    while ring.slots.iter().any(|s| s.state.load(Ordering::Acquire) as u32 == WRITING)
        && std::time::Instant::now() < until
    {
        std::thread::yield_now();
    }
}

/// Returns the stack pages to the kernel (after the last drain), so the
/// memory a session touched leaves the RSS.
pub(crate) fn release() {
    if let Some(ring) = ring() {
        ring.stacks.release();
    }
}

/// One drained sample.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample<'a> {
    pub tid: i32,
    pub regs: Registers,
    /// The innermost `#[hotprof::profile]` scope's stack node (or the root).
    pub node: u32,
    /// The dye of the traffic the thread ran (`crate::dye`), 0 for none.
    pub dye: u32,
    /// The stack copy, from `regs.sp` up.
    pub stack: &'a [u8],
}

/// Calls `f` with every ready sample of `generation`, then frees its slot.
pub(crate) fn drain(generation: u32, mut f: impl FnMut(Sample<'_>)) {
    let Some(ring) = ring() else { return };
    for (i, s) in ring.slots.iter().enumerate() {
        if s.state.load(Ordering::Acquire) != word(generation, READY) {
            continue;
        }
        let len = s.len.load(Ordering::Relaxed).min(WINDOW);
        let stack = ring.stacks.get(i * WINDOW..i * WINDOW + len).unwrap_or(&[]);
        f(Sample {
            tid: s.tid.load(Ordering::Relaxed),
            regs: s.regs.load(),
            node: s.node.load(Ordering::Relaxed),
            dye: s.dye.load(Ordering::Relaxed),
            stack,
        });
        s.state.store(word(generation, FREE), Ordering::Release);
    }
}

/// The sample handler's sink.
#[derive(Debug)]
pub(crate) struct SampleSink;

impl SignalSink for SampleSink {
    fn on_signal(i: Interrupted) {
        record(i);
    }
}

/// The handler body. Async-signal-safe: atomics and syscalls only.
fn record(i: Interrupted) {
    let generation = ACTIVE.load(Ordering::Acquire);
    if !i.from_self || generation == 0 || (i.value >> 32) as u32 != generation {
        return;
    }
    let Some(ring) = RING.get().and_then(Option::as_ref) else { return };
    let at = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
    let Some(s) = ring.slots.get(at) else { return };
    let cur = s.state.load(Ordering::Acquire);
    if cur as u32 != FREE || !claim(s, cur, generation) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    s.tid.store(sys::gettid(), Ordering::Relaxed);
    s.regs.store(i.regs);
    s.node.store(crate::scope::innermost_node(), Ordering::Relaxed);
    s.dye.store(crate::dye::current_id(), Ordering::Relaxed);
    let len = ring.stacks.fill_from(at * WINDOW, WINDOW, i.regs.sp);
    s.len.store(len, Ordering::Relaxed);
    s.state.store(word(generation, READY), Ordering::Release);
}

fn claim(s: &Slot, cur: u64, generation: u32) -> bool {
    s.state.compare_exchange(cur, word(generation, WRITING), Ordering::AcqRel, Ordering::Relaxed).is_ok()
}

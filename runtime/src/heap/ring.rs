//! Stack copies of heap samples, taken by the allocating thread and
//! unwound later by the collector, as the CPU sampler's are: registers and
//! the bytes from the stack pointer up, copied into preallocated memory
//! with no lock and no allocation.
//!
//! A sample takes the lowest free slot (`FREE -> WRITING` by
//! compare-and-swap), so a quiet process touches the first few windows
//! only; it publishes `READY`, and the collector frees the slot once it
//! has unwound the copy. With every slot taken the sample keeps no stack
//! (the caller counts it apart); a sample that finds the first eighth taken
//! wakes the collector early.
//! Past the first [`KEPT`] windows the pages are handed back after a burst.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::sys::{self, AtomicRegisters, MappedBuf, Registers};

/// Stack bytes copied per sample at most: allocation stacks run deep.
const WINDOW: usize = 64 << 10;
/// Samples waiting for the collector, at most: room for a burst (a
/// program filling its caches at start allocates hundreds of MiB in a
/// blink). The windows are reserved, not committed: a quiet process
/// touches the first few only, and pages past [`KEPT`] go back to the
/// kernel once a burst is drained.
pub(super) const SLOTS: usize = 2048;
/// A sample that has to take a slot this far in wakes the collector.
const WAKE_AT: usize = 64;
/// Windows whose pages stay once touched.
const KEPT: usize = 256;

/// Bumped (and futex-woken) when the ring fills up; the collector sleeps on it.
pub(super) static WAKE: AtomicU32 = AtomicU32::new(0);

const FREE: u32 = 0;
const WRITING: u32 = 1;
const READY: u32 = 2;

/// What the allocating thread knows of a sample besides its stack.
#[derive(Debug, Clone, Copy)]
pub(super) struct Meta {
    pub tid: i32,
    /// Innermost `#[hotprof::profile]` scope's stack node.
    pub node: u32,
    /// The dye of the traffic the thread ran (`crate::dye`), 0 for none.
    pub dye: u32,
    /// The live-table entry, or `u32::MAX` for none.
    pub entry: u32,
    pub seq: u64,
    pub size: usize,
}

struct Slot {
    state: AtomicU32,
    tid: AtomicI32,
    node: AtomicU32,
    dye: AtomicU32,
    entry: AtomicU32,
    seq: AtomicU64,
    size: AtomicUsize,
    regs: AtomicRegisters,
    len: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const, reason = "only used to build the static array")]
const NEW_SLOT: Slot = Slot {
    state: AtomicU32::new(FREE),
    tid: AtomicI32::new(0),
    node: AtomicU32::new(0),
    dye: AtomicU32::new(0),
    entry: AtomicU32::new(0),
    seq: AtomicU64::new(0),
    size: AtomicUsize::new(0),
    regs: AtomicRegisters::new(),
    len: AtomicUsize::new(0),
};

static SLOT: [Slot; SLOTS] = [NEW_SLOT; SLOTS];
/// The windows: mapped on first use (an mmap, no allocation), never freed.
static STACKS: OnceLock<Option<MappedBuf>> = OnceLock::new();

fn stacks() -> Option<&'static MappedBuf> {
    STACKS.get_or_init(|| MappedBuf::new(SLOTS * WINDOW).ok()).as_ref()
}

/// Copies the calling thread's stack with `meta` into a free slot; false
/// when every slot is taken (or no memory could be mapped).
/// `bounds` is the thread's stack (see `sys::copy_own_stack`).
pub(super) fn capture(meta: Meta, bounds: Option<(usize, usize)>) -> bool {
    let Some(buf) = stacks() else { return false };
    let Some((i, slot)) = SLOT.iter().enumerate().find(|(_, s)| {
        s.state.load(Ordering::Relaxed) == FREE
            && s.state.compare_exchange(FREE, WRITING, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }) else {
        return false;
    };
    slot.tid.store(meta.tid, Ordering::Relaxed);
    slot.node.store(meta.node, Ordering::Relaxed);
    slot.dye.store(meta.dye, Ordering::Relaxed);
    slot.entry.store(meta.entry, Ordering::Relaxed);
    slot.seq.store(meta.seq, Ordering::Relaxed);
    slot.size.store(meta.size, Ordering::Relaxed);
    let (regs, len) = sys::copy_own_stack(buf, i * WINDOW, WINDOW, bounds);
    slot.regs.store(regs);
    slot.len.store(len, Ordering::Relaxed);
    slot.state.store(READY, Ordering::Release);
    if i >= WAKE_AT {
        WAKE.fetch_add(1, Ordering::Release);
        sys::futex_wake_all(&WAKE);
    }
    true
}

/// One sample ready to unwind.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ready<'a> {
    pub meta: Meta,
    pub regs: Registers,
    /// The stack copy, from `regs.sp` up.
    pub stack: &'a [u8],
}

/// Hands the pages of the free windows past [`KEPT`] back to the kernel,
/// after a burst. Each slot is held (`WRITING`) while its pages go, so no
/// sample is copied into them meanwhile.
pub(super) fn release_burst() {
    let Some(buf) = STACKS.get().and_then(Option::as_ref) else { return };
    for (i, s) in SLOT.iter().enumerate().skip(KEPT) {
        if s.state.compare_exchange(FREE, WRITING, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            buf.release_range(i * WINDOW, WINDOW);
            s.state.store(FREE, Ordering::Release);
        }
    }
}

/// Calls `f` with every ready sample, then frees its slot. Returns how many.
pub(super) fn drain(mut f: impl FnMut(Ready<'_>)) -> usize {
    let Some(buf) = STACKS.get().and_then(Option::as_ref) else { return 0 };
    let mut n = 0;
    for (i, s) in SLOT.iter().enumerate() {
        if s.state.load(Ordering::Acquire) != READY {
            continue;
        }
        let len = s.len.load(Ordering::Relaxed).min(WINDOW);
        f(Ready {
            meta: Meta {
                tid: s.tid.load(Ordering::Relaxed),
                node: s.node.load(Ordering::Relaxed),
                dye: s.dye.load(Ordering::Relaxed),
                entry: s.entry.load(Ordering::Relaxed),
                seq: s.seq.load(Ordering::Relaxed),
                size: s.size.load(Ordering::Relaxed),
            },
            regs: s.regs.load(),
            stack: buf.get(i * WINDOW..i * WINDOW + len).unwrap_or(&[]),
        });
        s.state.store(FREE, Ordering::Release);
        n += 1;
    }
    n
}

//! Per-thread logical stacks of sync marked calls, and per-thread call counts.
//!
//! Each thread that enters a scope gets a `ThreadFrames` from a registry on
//! its first call (a lock, once per thread); after that every call is
//! lock-free and allocation-free. Records are reused when threads exit.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::frames::FrameStack;
use crate::sys;

/// Deepest sync logical stack recorded per thread.
pub(crate) const MAX_DEPTH: usize = 64;
const CALL_SLOTS: usize = 1024;
const MAX_PROBES: usize = 16;
const NO_NODE: u32 = u32::MAX;

/// Completed-call counts per stack node, written only by the owning thread.
#[derive(Debug)]
pub(crate) struct CallCounts {
    nodes: Box<[AtomicU32]>,
    calls: Box<[AtomicU64]>,
    /// Calls whose node found no slot.
    pub dropped: AtomicU64,
}

impl CallCounts {
    fn new() -> Self {
        CallCounts {
            nodes: (0..CALL_SLOTS).map(|_| AtomicU32::new(NO_NODE)).collect(),
            calls: (0..CALL_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            dropped: AtomicU64::new(0),
        }
    }

    /// Adds one call to `node`. Single writer: the owning thread.
    #[inline]
    pub(crate) fn add(&self, node: u32) {
        let mut i = (node.wrapping_mul(0x9e37_79b9) >> 22) as usize % CALL_SLOTS;
        for _ in 0..MAX_PROBES {
            let n = self.nodes[i].load(Ordering::Relaxed);
            if n == node || n == NO_NODE {
                let c = &self.calls[i];
                c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                if n == NO_NODE {
                    self.nodes[i].store(node, Ordering::Release);
                }
                return;
            }
            i = (i + 1) % CALL_SLOTS;
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// (node, total calls) for every counted node.
    pub(crate) fn totals(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.nodes.iter().zip(self.calls.iter()).filter_map(|(n, c)| {
            let n = n.load(Ordering::Acquire);
            (n != NO_NODE).then(|| (n, c.load(Ordering::Relaxed)))
        })
    }
}

/// One thread's logical stack and call counts.
#[derive(Debug)]
pub(crate) struct ThreadFrames {
    live: AtomicBool,
    pub tid: AtomicI32,
    pub stack: FrameStack<MAX_DEPTH>,
    pub calls: CallCounts,
    /// A task record this thread keeps for its next root future (index + 1;
    /// 0 for none), so a future that completes in the poll that started it
    /// never touches the shared pool. Owner-thread only.
    spare: AtomicU32,
    /// Task serial numbers this thread hands out: the next, and the end of
    /// the block it took from the global counter. Owner-thread only.
    next_serial: AtomicU64,
    serial_end: AtomicU64,
    /// The dye of the traffic the thread runs now (`crate::dye`), 0 for none.
    /// Owner-thread writes; the sample handler and the dumper read it.
    pub dye: AtomicU32,
}

static REGISTRY: Mutex<Vec<&'static ThreadFrames>> = Mutex::new(Vec::new());

/// Every record ever handed out (live or free), for readers.
pub(crate) fn all() -> Vec<&'static ThreadFrames> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Task serial numbers a thread takes from the global counter at a time.
const SERIAL_BLOCK: u64 = 1024;
static SERIALS: AtomicU64 = AtomicU64::new(1);

impl ThreadFrames {
    pub(crate) fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// The thread's spare task record, if it keeps one (taken from it).
    #[inline]
    pub(crate) fn take_spare(&self) -> Option<u32> {
        // Load and store, not swap: only the owner thread writes it, and a
        // locked swap would cost more than the pool it saves.
        let i = self.spare.load(Ordering::Relaxed);
        if i == 0 {
            return None;
        }
        self.spare.store(0, Ordering::Relaxed);
        Some(i - 1)
    }

    /// Keeps `index` as the thread's spare task record; false when it has one.
    #[inline]
    pub(crate) fn keep_spare(&self, index: u32) -> bool {
        if self.spare.load(Ordering::Relaxed) != 0 {
            return false;
        }
        self.spare.store(index + 1, Ordering::Relaxed);
        true
    }

    /// A task serial number no other task has had.
    #[inline]
    pub(crate) fn next_serial(&self) -> u64 {
        let next = self.next_serial.load(Ordering::Relaxed);
        if next < self.serial_end.load(Ordering::Relaxed) {
            self.next_serial.store(next + 1, Ordering::Relaxed);
            return next;
        }
        let start = SERIALS.fetch_add(SERIAL_BLOCK, Ordering::Relaxed);
        self.next_serial.store(start + 1, Ordering::Relaxed);
        self.serial_end.store(start + SERIAL_BLOCK, Ordering::Relaxed);
        start
    }
}

/// A serial number for a task polled outside any registered thread.
pub(crate) fn global_serial() -> u64 {
    SERIALS.fetch_add(1, Ordering::Relaxed)
}

fn acquire() -> &'static ThreadFrames {
    let mut reg = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    let rec = match reg
        .iter()
        .find(|t| t.live.compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed).is_ok())
    {
        Some(t) => *t,
        None => {
            let t: &'static ThreadFrames = Box::leak(Box::new(ThreadFrames {
                live: AtomicBool::new(true),
                tid: AtomicI32::new(0),
                stack: FrameStack::new(),
                calls: CallCounts::new(),
                spare: AtomicU32::new(0),
                next_serial: AtomicU64::new(0),
                serial_end: AtomicU64::new(0),
                dye: AtomicU32::new(0),
            }));
            reg.push(t);
            t
        }
    };
    rec.tid.store(sys::gettid(), Ordering::Relaxed);
    rec.stack.depth.store(0, Ordering::Release);
    rec.dye.store(0, Ordering::Relaxed);
    rec
}

/// Gives the record back when its thread exits.
struct Owner;

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some(t) = LOCAL.with(Cell::take) {
            t.stack.depth.store(0, Ordering::Release);
            if let Some(spare) = t.take_spare() {
                super::tasks::return_to_pool(spare);
            }
            t.live.store(false, Ordering::Release);
        }
    }
}

thread_local! {
    static LOCAL: Cell<Option<&'static ThreadFrames>> = const { Cell::new(None) };
    static OWNER: Owner = const { Owner };
}

/// This thread's record if it has one; never registers. Async-signal-safe
/// (a const thread-local without destructor, then atomics).
#[inline]
pub(crate) fn peek() -> Option<&'static ThreadFrames> {
    LOCAL.with(Cell::get)
}

/// This thread's record, registered on first use. `None` while the thread is
/// being torn down (its exit hook is gone).
#[inline]
pub(crate) fn local() -> Option<&'static ThreadFrames> {
    match LOCAL.with(Cell::get) {
        Some(t) => Some(t),
        None => register(),
    }
}

#[cold]
fn register() -> Option<&'static ThreadFrames> {
    OWNER.try_with(|_| ()).ok()?;
    let t = acquire();
    LOCAL.with(|l| l.set(Some(t)));
    Some(t)
}

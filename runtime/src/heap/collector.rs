//! The collector: unwinds the ring's stack copies off the allocating
//! threads (on the `hotprof-heap` thread, or on whoever asks for a profile
//! first), interns each stack, counts samples per (stack, size), and tells
//! the live table which stack each live block has.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::{live, ring};
use crate::stacks::{self, StackCopy, Unwinders};
use crate::sys;

/// Deepest stack a heap sample keeps.
const MAX_FRAMES: usize = 128;
/// Distinct stacks kept; later new ones count under [`OVERFLOW`].
const MAX_STACKS: usize = 100_000;
/// Distinct (stack, size) records kept; later new sizes are rounded up to
/// a power of two.
const MAX_RECORDS: usize = 1 << 18;
/// Stack id of samples whose stack came after [`MAX_STACKS`].
pub(super) const OVERFLOW: u32 = 0xFF_FFFD;
/// How often the collector looks at the ring while samples arrive, and
/// while none do (a filling ring wakes it sooner).
const BUSY_EVERY: Duration = Duration::from_millis(10);
const IDLE_EVERY: Duration = Duration::from_millis(100);
/// Samples in one drain that used windows whose pages go back afterwards.
const BURST: usize = 256;

/// Where and on what a sample was taken: its frames (innermost first, the
/// first an exact pc), its scope, its dye and its thread.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct StackKey {
    pub frames: Vec<usize>,
    pub node: u32,
    pub dye: u32,
    pub thread: String,
}

/// Everything collected so far.
#[derive(Default)]
pub(super) struct Tallies {
    ids: HashMap<StackKey, u32>,
    pub stacks: Vec<StackKey>,
    /// Samples per (stack id, block size), since the start.
    pub counts: HashMap<(u32, usize), u64>,
    names: HashMap<i32, String>,
    unwinders: Unwinders,
}

impl std::fmt::Debug for Tallies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tallies").field("stacks", &self.stacks.len()).finish_non_exhaustive()
    }
}

static TALLIES: OnceLock<Mutex<Tallies>> = OnceLock::new();

/// The tallies, with every sample so far drained into them.
pub(super) fn drained() -> MutexGuard<'static, Tallies> {
    let mut t = lock();
    t.drain();
    t
}

fn lock() -> MutexGuard<'static, Tallies> {
    let m = TALLIES.get_or_init(Mutex::default);
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Tallies {
    /// Unwinds and counts every ready sample; returns how many.
    fn drain(&mut self) -> usize {
        self.unwinders.refresh();
        let mut ready = Vec::new();
        let n = ring::drain(|r| {
            let copy = StackCopy { start: r.regs.sp, bytes: r.stack };
            ready.push((r.meta, self.unwinders.dwarf(r.regs, copy, MAX_FRAMES).frames));
        });
        for (meta, frames) in ready {
            let thread = self.thread_name(meta.tid);
            let id = self.intern(StackKey { frames, node: meta.node, dye: meta.dye, thread });
            self.count(id, meta.size);
            if meta.entry != u32::MAX {
                live::resolve(meta.entry, meta.seq, id);
            }
        }
        n
    }

    fn thread_name(&mut self, tid: i32) -> String {
        if self.names.len() > 4096 {
            self.names.clear(); // thread ids are reused; names are cheap to read again
        }
        self.names
            .entry(tid)
            .or_insert_with(|| stacks::thread_name(tid).unwrap_or_else(|| tid.to_string()))
            .clone()
    }

    fn intern(&mut self, key: StackKey) -> u32 {
        if let Some(id) = self.ids.get(&key) {
            return *id;
        }
        if self.stacks.len() >= MAX_STACKS {
            return OVERFLOW;
        }
        let id = self.stacks.len() as u32;
        self.stacks.push(key.clone());
        self.ids.insert(key, id);
        id
    }

    fn count(&mut self, id: u32, size: usize) {
        let size = if self.counts.len() >= MAX_RECORDS && !self.counts.contains_key(&(id, size)) {
            size.next_power_of_two()
        } else {
            size
        };
        *self.counts.entry((id, size)).or_default() += 1;
    }
}

/// Starts the `hotprof-heap` thread, which keeps the ring drained.
pub(crate) fn start() -> std::io::Result<()> {
    std::thread::Builder::new().name("hotprof-heap".into()).spawn(|| {
        loop {
            let seen = ring::WAKE.load(Ordering::Acquire);
            let n = lock().drain();
            if n > BURST {
                ring::release_burst();
            }
            sys::futex_wait(&ring::WAKE, seen, if n > 0 { BUSY_EVERY } else { IDLE_EVERY });
        }
    })?;
    Ok(())
}

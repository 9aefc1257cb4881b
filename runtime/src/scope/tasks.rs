//! Logical stacks of async tasks: a pool of records, one per outermost
//! instrumented future alive, found again by the dumper while the task is
//! parked at an `.await`. Acquiring and releasing a record is lock-free
//! (a tagged Treiber stack of indices); the pool only grows, in chunks,
//! under a lock taken when it is empty.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use super::frames::FrameStack;
use super::threads;

/// Deepest logical stack recorded per task.
pub(crate) const TASK_DEPTH: usize = 12;
const CHUNK: usize = 1024;
/// At most `CHUNK * MAX_CHUNKS` tasks are tracked at once; more run untracked and are counted.
const MAX_CHUNKS: usize = 256;

/// One tracked task.
#[derive(Debug)]
pub(crate) struct TaskRecord {
    in_use: AtomicBool,
    /// Serial number of the task using this record (for dumps).
    pub serial: AtomicU64,
    /// Thread that polled it last.
    pub last_tid: AtomicI32,
    /// The dye of the traffic that started it, 0 for none.
    pub dye: AtomicU32,
    pub stack: FrameStack<TASK_DEPTH>,
    next_free: AtomicU32,
}

impl TaskRecord {
    fn new() -> Self {
        TaskRecord {
            in_use: AtomicBool::new(false),
            serial: AtomicU64::new(0),
            last_tid: AtomicI32::new(0),
            dye: AtomicU32::new(0),
            stack: FrameStack::new(),
            next_free: AtomicU32::new(0),
        }
    }

    pub(crate) fn is_in_use(&self) -> bool {
        self.in_use.load(Ordering::Acquire)
    }
}

static CHUNKS: [OnceLock<Box<[TaskRecord]>>; MAX_CHUNKS] = [const { OnceLock::new() }; MAX_CHUNKS];
/// Free list head: (tag << 32) | (index + 1); 0 means empty.
static FREE: AtomicU64 = AtomicU64::new(0);
static GROW: Mutex<usize> = Mutex::new(0);
/// Root tasks that found the pool full.
pub(crate) static UNTRACKED: AtomicU64 = AtomicU64::new(0);

fn record(index: u32) -> Option<&'static TaskRecord> {
    let i = index as usize;
    CHUNKS.get(i / CHUNK)?.get()?.get(i % CHUNK)
}

fn push_free(index: u32) {
    let Some(rec) = record(index) else { return };
    let mut head = FREE.load(Ordering::Acquire);
    loop {
        rec.next_free.store((head & 0xffff_ffff) as u32, Ordering::Relaxed);
        let new = ((head >> 32).wrapping_add(1) << 32) | u64::from(index + 1);
        match FREE.compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(h) => head = h,
        }
    }
}

fn pop_free() -> Option<u32> {
    let mut head = FREE.load(Ordering::Acquire);
    loop {
        let top = (head & 0xffff_ffff) as u32;
        let index = top.checked_sub(1)?;
        let next = record(index)?.next_free.load(Ordering::Relaxed);
        let new = ((head >> 32).wrapping_add(1) << 32) | u64::from(next);
        match FREE.compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some(index),
            Err(h) => head = h,
        }
    }
}

/// Adds a chunk of records to the free list; false when the pool is at its cap.
#[cold]
fn grow() -> bool {
    let mut chunks = GROW.lock().unwrap_or_else(PoisonError::into_inner);
    if FREE.load(Ordering::Acquire) & 0xffff_ffff != 0 {
        return true; // another thread grew it meanwhile
    }
    let Some(slot) = CHUNKS.get(*chunks) else { return false };
    slot.get_or_init(|| (0..CHUNK).map(|_| TaskRecord::new()).collect());
    let base = (*chunks * CHUNK) as u32;
    for i in (0..CHUNK as u32).rev() {
        push_free(base + i);
    }
    *chunks += 1;
    true
}

/// Takes a record for a new root task: the polling thread's spare if it
/// keeps one, else one from the pool.
pub(crate) fn acquire() -> Option<(u32, &'static TaskRecord)> {
    let thread = threads::local();
    let index = match thread.and_then(|t| t.take_spare()) {
        Some(index) => index,
        None => pop_or_grow()?,
    };
    let rec = record(index)?;
    let serial = thread.map_or_else(threads::global_serial, |t| t.next_serial());
    rec.serial.store(serial, Ordering::Relaxed);
    rec.dye.store(thread.map_or(0, |t| t.dye.load(Ordering::Relaxed)), Ordering::Relaxed);
    rec.stack.depth.store(0, Ordering::Relaxed);
    rec.in_use.store(true, Ordering::Release);
    Some((index, rec))
}

fn pop_or_grow() -> Option<u32> {
    loop {
        if let Some(index) = pop_free() {
            return Some(index);
        }
        if !grow() {
            UNTRACKED.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    }
}

/// Gives a record back: it becomes the polling thread's spare if that
/// thread keeps none, else it returns to the pool.
pub(crate) fn release(index: u32) {
    let Some(rec) = record(index) else { return };
    rec.in_use.store(false, Ordering::Release);
    rec.stack.depth.store(0, Ordering::Release);
    if !threads::local().is_some_and(|t| t.keep_spare(index)) {
        push_free(index);
    }
}

/// Returns a thread's spare record to the pool (the thread is exiting).
pub(crate) fn return_to_pool(index: u32) {
    push_free(index);
}

/// Every record in use, for readers.
pub(crate) fn in_use() -> impl Iterator<Item = &'static TaskRecord> {
    CHUNKS.iter().map_while(|c| c.get()).flat_map(|c| c.iter()).filter(|r| r.is_in_use())
}

thread_local! {
    /// The task whose instrumented future this thread is polling.
    static CURRENT: Cell<Option<&'static TaskRecord>> = const { Cell::new(None) };
}

/// The task being polled on this thread, if any.
#[inline]
pub(crate) fn current() -> Option<&'static TaskRecord> {
    CURRENT.with(Cell::get)
}

/// `rec` is the current task until this is dropped (also when the poll
/// panics), then the one before it again.
pub(crate) struct CurrentTask(Option<&'static TaskRecord>);

impl CurrentTask {
    #[inline]
    pub(crate) fn enter(rec: &'static TaskRecord) -> CurrentTask {
        CurrentTask(CURRENT.with(|c| c.replace(Some(rec))))
    }
}

impl Drop for CurrentTask {
    #[inline]
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_reused_and_never_shared() {
        let a = acquire().unwrap();
        let b = acquire().unwrap();
        assert_ne!(a.0, b.0);
        assert!(a.1.is_in_use() && b.1.is_in_use());
        release(a.0);
        assert!(!a.1.is_in_use());
        let c = acquire().unwrap();
        assert_eq!(c.0, a.0, "the freed record is taken first");
        assert!(c.1.serial.load(Ordering::Relaxed) > b.1.serial.load(Ordering::Relaxed));
        release(b.0);
        release(c.0);
    }
}

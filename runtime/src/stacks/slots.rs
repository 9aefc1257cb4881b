//! Preallocated slots through which a capture handler hands its thread's
//! registers and a copy of its stack to the collector.
//!
//! Protocol (one `state` word per slot: generation in the high half, phase in the low):
//! 1. the collector publishes this process's mappings ([`publish_maps`]),
//!    arms a slot (`ARMED`) per thread with the thread's id and the part of
//!    the arena its copy goes to, publishes their order ([`publish_order`]),
//!    and queues the capture signal, with the slot's index and generation,
//!    to the first [`FAN_OUT`] threads;
//! 2. the target thread's handler, on its alternate signal stack, claims the
//!    slot by compare-and-swap (`ARMED -> WRITING`), queues the signal to its
//!    [`FAN_OUT`] children in that order (the threads signal one another in
//!    a tree: the collector, one thread among many on a busy machine, would
//!    otherwise be preempted by every thread it wakes), stores its tid, name
//!    and interrupted registers, copies its own stack from the stack pointer up
//!    to the end of the stack's mapping (at most the slot's part of the
//!    arena) with `process_vm_readv`, which stops at an unmapped page
//!    instead of faulting, publishes `DONE`, wakes the collector and returns;
//! 3. the collector waits for every armed slot to be done, itself signals
//!    any thread whose parent could not (it failed, blocks the signal, or is
//!    slow past a check time), withdraws the signals not answered by the
//!    deadline (`ARMED -> IDLE`), and reads the copies.
//!
//! Each slot's signal is sent once: whoever sends it first claims the
//! slot's `sent` word for the generation; a failed send leaves its errno
//! there for the collector.
//!
//! A thread is held only for its own handler: no round trip through the
//! collector, so the capture does not wait for the collector to be
//! scheduled once per thread (which a busy machine makes slow). A handler
//! that arrives late finds another generation or phase and returns at
//! once. The arena and the mappings table are made once and never freed,
//! so a handler can never touch freed memory; a handler still copying when
//! its dump gave up on it (held off the CPU past the grace) can at worst
//! write into a part of the arena a later dump uses, spoiling that copy,
//! never memory outside it. Everything the handler touches is atomics and
//! those mappings: no allocation, no lock, no unwinding, no panic.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::sys::{self, AtomicRegisters, Interrupted, MappedBuf, Registers, SignalSink};

const CHUNK: usize = 256;
const MAX_CHUNKS: usize = 64;
/// Most threads one dump can capture (the slots cost about 100 bytes each).
pub(crate) const MAX_SLOTS: usize = CHUNK * MAX_CHUNKS;
/// Stack bytes all copies of one dump may take: reserved once, touched only
/// as far as the stacks go, and handed back after every dump.
pub(crate) const ARENA: usize = 512 << 20;
/// Children each thread's handler signals: 1,000 threads are reached in
/// five steps, each handler sending four signals.
pub(crate) const FAN_OUT: usize = 4;
/// Mappings the handlers can look their stack up in (Linux's default
/// `vm.max_map_count` is 65,530); in a process with more, a stack whose
/// mapping is not among them is not copied.
const MAX_MAPS: usize = 1 << 16;

const IDLE: u32 = 0;
const ARMED: u32 = 1;
const WRITING: u32 = 2;
const DONE: u32 = 3;

fn word(generation: u32, phase: u32) -> u64 {
    ((generation as u64) << 32) | phase as u64
}

/// Packs a slot index and generation into the signal payload.
pub(crate) fn payload(index: usize, generation: u32) -> u64 {
    ((generation as u64) << 32) | (index as u64 & 0xffff_ffff)
}

struct Slot {
    state: AtomicU64,
    tid: AtomicI32,
    regs: AtomicRegisters,
    /// Where in the arena the copy goes, and how many bytes it may take.
    at: AtomicUsize,
    room: AtomicUsize,
    /// Bytes copied.
    len: AtomicUsize,
    /// How long the handler held the thread.
    pause_ns: AtomicU64,
    /// The thread's name, as the handler read it (16 bytes, NUL-padded).
    name: [AtomicU64; 2],
    /// The thread was waiting in a system call when the signal came.
    in_syscall: AtomicBool,
    /// The thread to signal, and the slot's place in the signalling order.
    target: AtomicI32,
    rank: AtomicUsize,
    /// Generation in the high half; low half 1 once the signal was sent,
    /// or its send claimed.
    sent: AtomicU64,
    /// The OS error of a failed send, 0 for none.
    send_errno: AtomicI32,
}

impl Slot {
    fn new() -> Self {
        Slot {
            state: AtomicU64::new(word(0, IDLE)),
            tid: AtomicI32::new(0),
            regs: AtomicRegisters::new(),
            at: AtomicUsize::new(0),
            room: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            pause_ns: AtomicU64::new(0),
            name: [const { AtomicU64::new(0) }; 2],
            in_syscall: AtomicBool::new(false),
            target: AtomicI32::new(0),
            rank: AtomicUsize::new(0),
            sent: AtomicU64::new(0),
            send_errno: AtomicI32::new(0),
        }
    }

    fn moves(&self, from: u64, to: u64) -> bool {
        self.state.compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}

static CHUNKS: [OnceLock<Box<[Slot]>>; MAX_CHUNKS] = [const { OnceLock::new() }; MAX_CHUNKS];
static STACKS: OnceLock<Option<MappedBuf>> = OnceLock::new();
/// This process's mappings as sorted (start, end) pairs, `MAPS_LEN` of them.
static MAPS: OnceLock<Box<[Mapping]>> = OnceLock::new();
static MAPS_LEN: AtomicUsize = AtomicUsize::new(0);

/// Bumped by every handler that finished; the collector sleeps on it (futex).
pub(crate) static ANSWERS: AtomicU32 = AtomicU32::new(0);

static GENERATION: AtomicU32 = AtomicU32::new(0);

/// The capture signal, for handlers that signal other threads.
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Slot indexes in signalling order (rank -> slot), `ORDER_LEN` of them.
static ORDER: OnceLock<Box<[AtomicUsize]>> = OnceLock::new();
static ORDER_LEN: AtomicUsize = AtomicUsize::new(0);

/// A fresh, non-zero generation for one dump.
pub(crate) fn next_generation() -> u32 {
    loop {
        let g = GENERATION.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if g != 0 {
            return g;
        }
    }
}

/// The arena the copies go to; `None` when it could not be mapped (stacks
/// then come out as their interrupted pc alone).
pub(crate) fn arena() -> Option<&'static MappedBuf> {
    STACKS.get_or_init(|| MappedBuf::new(ARENA).ok()).as_ref()
}

/// Publishes `ranges` (sorted) for the handlers to find their stack's end
/// in. Before the first signal of a dump.
pub(crate) fn publish_maps(ranges: &[(usize, usize)]) {
    let table =
        MAPS.get_or_init(|| (0..MAX_MAPS).map(|_| (AtomicUsize::new(0), AtomicUsize::new(0))).collect());
    let n = ranges.len().min(table.len());
    for ((start, end), &(s, e)) in table.iter().zip(&ranges[..n]) {
        start.store(s, Ordering::Relaxed);
        end.store(e, Ordering::Relaxed);
    }
    MAPS_LEN.store(n, Ordering::Release);
}

/// The end of the published mapping that holds `addr`. Allocation-free.
fn mapping_end(addr: usize) -> Option<usize> {
    end_in(MAPS.get()?.get(..MAPS_LEN.load(Ordering::Acquire))?, addr)
}

type Mapping = (AtomicUsize, AtomicUsize);

/// The end of the mapping in `table` (sorted) that holds `addr`.
fn end_in(table: &[Mapping], addr: usize) -> Option<usize> {
    let i = table.partition_point(|(start, _)| start.load(Ordering::Relaxed) <= addr).checked_sub(1)?;
    let end = table[i].1.load(Ordering::Relaxed);
    (addr < end).then_some(end)
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

/// What one slot is armed for: the thread to signal, its place in the
/// signalling order, and where its copy goes (`at..at + room` of the arena).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arming {
    pub tid: i32,
    pub rank: usize,
    pub at: usize,
    pub room: usize,
}

/// Arms slot `index` for `generation`. Fails while a handler of an
/// earlier dump is still inside it.
pub(crate) fn arm(index: usize, generation: u32, a: Arming) -> bool {
    let Some(s) = slot(index) else { return false };
    let cur = s.state.load(Ordering::Acquire);
    if (cur & 0xffff_ffff) as u32 == WRITING {
        return false;
    }
    s.at.store(a.at, Ordering::Relaxed);
    s.room.store(a.room, Ordering::Relaxed);
    s.len.store(0, Ordering::Relaxed);
    s.target.store(a.tid, Ordering::Relaxed);
    s.rank.store(a.rank, Ordering::Relaxed);
    s.send_errno.store(0, Ordering::Relaxed);
    s.sent.store(word(generation, 0), Ordering::Relaxed);
    s.moves(cur, word(generation, ARMED))
}

/// Publishes the signalling order, slot indexes by rank, and the capture
/// signal. After arming those slots, before the first signal.
pub(crate) fn publish_order(signal: i32, slots: impl ExactSizeIterator<Item = usize>) {
    let order = ORDER.get_or_init(|| (0..MAX_SLOTS).map(|_| AtomicUsize::new(0)).collect());
    let n = slots.len().min(order.len());
    for (to, index) in order.iter().zip(slots) {
        to.store(index, Ordering::Relaxed);
    }
    SIGNAL.store(signal, Ordering::Relaxed);
    ORDER_LEN.store(n, Ordering::Release);
}

/// The rank of the thread that signals the one at `rank` (none for the
/// first [`FAN_OUT`], which the collector signals).
pub(crate) fn parent(rank: usize) -> Option<usize> {
    (rank / FAN_OUT).checked_sub(1)
}

/// Claims the send of slot `index`'s signal for `generation`: false when
/// it was sent (or claimed) already, or the slot is another dump's.
fn claim_send(s: &Slot, generation: u32) -> bool {
    s.sent
        .compare_exchange(word(generation, 0), word(generation, 1), Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
}

/// Queues the signal of slot `s` to its thread; a failure's errno is left
/// in the slot. Async-signal-safe.
fn signal(s: &Slot, index: usize, generation: u32) -> Result<(), i32> {
    let tid = s.target.load(Ordering::Relaxed);
    match sys::queue_signal_to_thread(tid, SIGNAL.load(Ordering::Relaxed), payload(index, generation)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let errno = e.raw_os_error().unwrap_or(libc::EINVAL);
            s.send_errno.store(errno, Ordering::Release);
            Err(errno)
        }
    }
}

/// Whether slot `index`'s signal was sent (or its send claimed) for `generation`.
pub(crate) fn was_sent(index: usize, generation: u32) -> bool {
    slot(index).is_none_or(|s| s.sent.load(Ordering::Acquire) != word(generation, 0))
}

/// The collector sends slot `index`'s signal, unless someone did. `Err`
/// holds the OS error.
pub(crate) fn send(index: usize, generation: u32) -> Result<(), i32> {
    let Some(s) = slot(index) else { return Ok(()) };
    if claim_send(s, generation) { signal(s, index, generation) } else { Ok(()) }
}

/// Sends slot `index`'s signal again after it failed with `EAGAIN`.
pub(crate) fn resend(index: usize, generation: u32) -> Result<(), i32> {
    let Some(s) = slot(index) else { return Ok(()) };
    s.send_errno.store(0, Ordering::Relaxed);
    signal(s, index, generation)
}

/// The OS error a send of slot `index`'s signal failed with, if one did.
pub(crate) fn send_error(index: usize) -> Option<i32> {
    slot(index).map(|s| s.send_errno.load(Ordering::Acquire)).filter(|&e| e != 0)
}

/// A handler signals its children in the order. Async-signal-safe.
fn signal_children(rank: usize, generation: u32) {
    let (Some(order), len) = (ORDER.get(), ORDER_LEN.load(Ordering::Acquire)) else { return };
    let first = FAN_OUT * (rank + 1);
    for child in first..(first + FAN_OUT).min(len) {
        let Some(index) = order.get(child).map(|i| i.load(Ordering::Relaxed)) else { return };
        if let Some(s) = slot(index)
            && claim_send(s, generation)
        {
            let _ = signal(s, index, generation);
        }
    }
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
    /// The handler is storing its registers and copying its stack.
    Writing,
    /// The copy is done; or the slot was withdrawn or lost.
    Finished,
}

pub(crate) fn progress(index: usize, generation: u32) -> Progress {
    let Some(s) = slot(index) else { return Progress::Finished };
    match s.state.load(Ordering::Acquire) {
        c if c == word(generation, ARMED) => Progress::Waiting,
        c if c == word(generation, WRITING) => Progress::Writing,
        _ => Progress::Finished,
    }
}

/// What a handler left in its slot.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Taken {
    pub tid: i32,
    pub regs: Registers,
    /// Where its stack copy starts in the arena, and its length (from `regs.sp` up).
    pub at: usize,
    pub len: usize,
    /// How long the thread was held, from its handler's start to its end.
    pub pause_ns: u64,
    /// The thread's name (`comm`), NUL-padded.
    pub name: [u8; 16],
    /// It was waiting in a system call (sleeping), not running.
    pub in_syscall: bool,
}

impl Taken {
    /// The thread's name as text.
    pub(crate) fn name(&self) -> String {
        let len = self.name.iter().position(|&b| b == 0).unwrap_or(self.name.len());
        String::from_utf8_lossy(&self.name[..len]).into_owned()
    }
}

/// What the handler of slot `index` left, if it finished for `generation`;
/// the slot goes back to idle.
pub(crate) fn take(index: usize, generation: u32) -> Option<Taken> {
    let s = slot(index)?;
    if s.state.load(Ordering::Acquire) != word(generation, DONE) {
        return None;
    }
    let mut name = [0; 16];
    for (part, word) in name.chunks_exact_mut(8).zip(&s.name) {
        part.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
    }
    let taken = Taken {
        tid: s.tid.load(Ordering::Relaxed),
        regs: s.regs.load(),
        at: s.at.load(Ordering::Relaxed),
        len: s.len.load(Ordering::Relaxed),
        pause_ns: s.pause_ns.load(Ordering::Relaxed),
        name,
        in_syscall: s.in_syscall.load(Ordering::Relaxed),
    };
    s.moves(word(generation, DONE), word(generation, IDLE)).then_some(taken)
}

/// The capture handler's sink: the handler delivers each interrupted thread here.
#[derive(Debug)]
pub(crate) struct Slots;

impl SignalSink for Slots {
    fn on_signal(i: Interrupted) {
        copy_own(i);
    }
}

/// The handler body. Async-signal-safe: atomics and syscalls only.
fn copy_own(i: Interrupted) {
    if !i.from_self {
        return;
    }
    let generation = (i.value >> 32) as u32;
    let Some(s) = slot((i.value & 0xffff_ffff) as usize) else { return };
    if !s.moves(word(generation, ARMED), word(generation, WRITING)) {
        return;
    }
    let entered = sys::monotonic_ns();
    let in_syscall = was_in_syscall(&i);
    // A thread that was waiting signals its children: waking them costs it
    // nothing it was doing. One that was running does not, so the dump
    // delays its work no more than its own copy; the collector signals
    // its children once it is done.
    if in_syscall {
        signal_children(s.rank.load(Ordering::Relaxed), generation);
    }
    s.tid.store(sys::gettid(), Ordering::Relaxed);
    s.regs.store(i.regs);
    // Name and state come from the thread itself: reading them from /proc
    // for every thread before signalling was most of a busy machine's dump.
    let mut name = [0; 16];
    sys::own_thread_name(&mut name);
    for (word, part) in s.name.iter().zip(name.chunks_exact(8)) {
        word.store(u64::from_ne_bytes(part.try_into().unwrap_or_default()), Ordering::Relaxed);
    }
    s.in_syscall.store(in_syscall, Ordering::Relaxed);
    let stack = mapping_end(i.regs.sp).map_or(0, |end| end - i.regs.sp);
    let room = s.room.load(Ordering::Relaxed).min(stack);
    let len = STACKS
        .get()
        .and_then(Option::as_ref)
        .map_or(0, |arena| arena.fill_from(s.at.load(Ordering::Relaxed), room, i.regs.sp));
    s.len.store(len, Ordering::Relaxed);
    s.pause_ns.store(sys::monotonic_ns().saturating_sub(entered), Ordering::Relaxed);
    s.state.store(word(generation, DONE), Ordering::Release);
    ANSWERS.fetch_add(1, Ordering::Release);
    sys::futex_wake_all(&ANSWERS);
}

/// Whether the interrupted thread was waiting in a system call: the kernel
/// cut the call short (`-EINTR`, its pc just after the instruction) or set
/// it up to restart once the handler returns (its pc back on the
/// instruction). Async-signal-safe: two reads of our own code, which
/// cannot fault.
fn was_in_syscall(i: &Interrupted) -> bool {
    let want = sys::SYSCALL_INSTRUCTION;
    let at = |pc: usize| {
        let mut code = [0u8; 4];
        let code = &mut code[..want.len()];
        sys::read_into(pc, code) == want.len() && code == want
    };
    let cut_short = i.result as isize == -(libc::EINTR as isize);
    !want.is_empty() && (at(i.regs.pc) || (cut_short && at(i.regs.pc.wrapping_sub(want.len()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rank_past_the_first_has_one_parent_that_signals_it() {
        for rank in 0..FAN_OUT {
            assert_eq!(parent(rank), None, "the collector signals rank {rank}");
        }
        for rank in FAN_OUT..10_000 {
            let p = parent(rank).unwrap();
            let first = FAN_OUT * (p + 1);
            assert!((first..first + FAN_OUT).contains(&rank), "{rank} is among {p}'s children");
            assert!(p < rank);
        }
    }

    #[test]
    fn a_handler_finds_the_end_of_its_stack_mapping() {
        let table = |ranges: &[(usize, usize)]| -> Vec<Mapping> {
            ranges.iter().map(|&(s, e)| (AtomicUsize::new(s), AtomicUsize::new(e))).collect()
        };
        let two = table(&[(0x1000, 0x3000), (0x5000, 0x6000)]);
        assert_eq!(end_in(&two, 0x1000), Some(0x3000));
        assert_eq!(end_in(&two, 0x2fff), Some(0x3000));
        assert_eq!(end_in(&two, 0x3000), None, "between mappings");
        assert_eq!(end_in(&two, 0x5800), Some(0x6000));
        assert_eq!(end_in(&two, 0xfff), None);
        let ours = table(&super::super::procfs::mappings());
        let here = 0u8;
        let sp = std::ptr::addr_of!(here) as usize;
        assert!(end_in(&ours, sp).is_some_and(|end| end > sp), "our own stack is mapped");
    }
}

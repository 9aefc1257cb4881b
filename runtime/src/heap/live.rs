//! The sampled blocks still allocated: a fixed, lock-free open-addressing
//! table keyed by address, and a counting filter in front of it, so that
//! `free` of an unsampled block (nearly every free) costs one hash, one
//! byte load and a branch.
//!
//! An entry's key is the block's address, or `EMPTY` (never used),
//! `GONE` (freed; reusable) or `CLAIMED` (being filled). Keys never go
//! back to `EMPTY`, so a lookup may stop at the first `EMPTY`; probes are
//! bounded by `MAX_PROBE` either way. `FILTER[h]` counts the live entries
//! whose home is `h`. An entry's tag is its sample's sequence number and
//! stack id: the collector fills the stack in (compare-and-swap on the
//! whole tag) once it has unwound the sample, unless the block was freed
//! and its entry reused meanwhile.

use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

/// Entries in the table: sampled blocks alive at once, at most. At the
/// default rate (one sample per 512 KiB) that is tens of GiB of heap.
pub(super) const CAPACITY: usize = 1 << 16;
const BITS: u32 = CAPACITY.trailing_zeros();
const MAX_PROBE: usize = 64;

const EMPTY: usize = 0;
const GONE: usize = 1;
const CLAIMED: usize = 2;

/// Stack id of a sample the collector has not unwound yet.
pub(super) const UNRESOLVED: u32 = 0xFF_FFFF;
const STACK_BITS: u32 = 24;
/// Sequence numbers wrap at 2^40 samples.
pub(super) const SEQ_MASK: u64 = (1 << 40) - 1;

struct Entry {
    key: AtomicUsize,
    size: AtomicUsize,
    tag: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const, reason = "only used to build the static arrays")]
const NEW_ENTRY: Entry =
    Entry { key: AtomicUsize::new(EMPTY), size: AtomicUsize::new(0), tag: AtomicU64::new(0) };
#[allow(clippy::declare_interior_mutable_const, reason = "only used to build the static arrays")]
const ZERO: AtomicU8 = AtomicU8::new(0);

// Zero-initialised statics: in .bss, so pages are touched only as entries are.
static TABLE: [Entry; CAPACITY] = [NEW_ENTRY; CAPACITY];
static FILTER: [AtomicU8; CAPACITY] = [ZERO; CAPACITY];

#[inline]
fn home(addr: usize) -> usize {
    ((addr as u64 >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - BITS)) as usize
}

fn tag(seq: u64, stack: u32) -> u64 {
    ((seq & SEQ_MASK) << STACK_BITS) | u64::from(stack & UNRESOLVED)
}

/// Remembers the sampled block at `addr`; its entry's index, or `None`
/// when the table has no room near its home (the sample then counts in the
/// allocation totals only).
pub(super) fn insert(addr: usize, size: usize, seq: u64, stack: u32) -> Option<u32> {
    let h = home(addr);
    let filter = &FILTER[h];
    // Counted first (never past 255), so a free never misses the entry.
    if filter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1)).is_err() {
        return None;
    }
    for i in 0..MAX_PROBE {
        let at = (h + i) & (CAPACITY - 1);
        let e = &TABLE[at];
        let key = e.key.load(Ordering::Relaxed);
        if (key == EMPTY || key == GONE)
            && e.key.compare_exchange(key, CLAIMED, Ordering::Acquire, Ordering::Relaxed).is_ok()
        {
            e.size.store(size, Ordering::Relaxed);
            e.tag.store(tag(seq, stack), Ordering::Relaxed);
            e.key.store(addr, Ordering::Release);
            return Some(at as u32);
        }
    }
    filter.fetch_sub(1, Ordering::Relaxed);
    None
}

/// Forgets the block at `addr` if it was sampled. The free path: one hash,
/// one load and a branch unless the filter says it may be in the table.
#[inline]
pub(super) fn remove(addr: usize) {
    let h = home(addr);
    if FILTER[h].load(Ordering::Relaxed) != 0 {
        remove_slow(addr, h);
    }
}

#[cold]
#[inline(never)]
fn remove_slow(addr: usize, h: usize) {
    for i in 0..MAX_PROBE {
        let e = &TABLE[(h + i) & (CAPACITY - 1)];
        let key = e.key.load(Ordering::Relaxed);
        if key == EMPTY {
            return;
        }
        if key == addr && e.key.compare_exchange(addr, GONE, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            FILTER[h].fetch_sub(1, Ordering::Relaxed);
            return;
        }
    }
}

/// Gives entry `index` its unwound stack, if it still holds sample `seq`.
pub(super) fn resolve(index: u32, seq: u64, stack: u32) {
    if let Some(e) = TABLE.get(index as usize) {
        let _ = e.tag.compare_exchange(
            tag(seq, UNRESOLVED),
            tag(seq, stack),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}

/// Calls `f(stack, size)` for every live sampled block.
pub(super) fn for_each(mut f: impl FnMut(u32, usize)) {
    for e in &TABLE {
        let key = e.key.load(Ordering::Acquire);
        if key <= CLAIMED {
            continue;
        }
        let (size, tag) = (e.size.load(Ordering::Relaxed), e.tag.load(Ordering::Relaxed));
        // Freed (and maybe reused) while being read: skip it this time.
        if e.key.load(Ordering::Acquire) == key {
            f((tag as u32) & UNRESOLVED, size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Vec<(u32, usize)> {
        let mut out = Vec::new();
        for_each(|stack, size| out.push((stack, size)));
        out
    }

    #[test]
    fn inserted_blocks_are_live_until_freed_and_resolve_once() {
        // Addresses no allocator of this test process returns.
        let (a, b) = (0x7e57_0000_0010usize, 0x7e57_0000_0020usize);
        let ia = insert(a, 100, 7, UNRESOLVED).unwrap();
        insert(b, 200, 8, UNRESOLVED).unwrap();
        resolve(ia, 7, 42);
        resolve(ia, 6, 43); // an older sample's answer changes nothing
        let mine =
            |l: Vec<(u32, usize)>| l.into_iter().filter(|(_, s)| *s == 100 || *s == 200).collect::<Vec<_>>();
        let mut now = mine(live());
        now.sort();
        assert_eq!(now, vec![(42, 100), (UNRESOLVED, 200)]);
        remove(a);
        remove(a); // twice: harmless
        assert_eq!(mine(live()), vec![(UNRESOLVED, 200)]);
        remove(b);
        assert!(mine(live()).is_empty());
        assert_eq!(FILTER[home(a)].load(Ordering::Relaxed), 0);
    }

    #[test]
    fn colliding_addresses_probe_on() {
        // Same home: addresses that differ only above the hashed bits wrap
        // alike; find a few by search.
        let base = 0x5a5a_0000_0000usize;
        let h = home(base);
        let same: Vec<usize> =
            (1..4_000_000usize).map(|i| base + i * 16).filter(|a| home(*a) == h).take(3).collect();
        let all: Vec<usize> = std::iter::once(base).chain(same).collect();
        for (i, a) in all.iter().enumerate() {
            insert(*a, 1000 + i, i as u64, 5).unwrap();
        }
        assert_eq!(FILTER[h].load(Ordering::Relaxed) as usize, all.len());
        remove(all[1]);
        let sizes: Vec<usize> =
            live().into_iter().map(|(_, s)| s).filter(|s| (1000..1010).contains(s)).collect();
        assert_eq!(sizes.len(), all.len() - 1);
        for a in &all {
            remove(*a);
        }
        assert_eq!(FILTER[h].load(Ordering::Relaxed), 0);
    }
}

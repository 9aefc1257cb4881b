//! `tracing` spans as logical frames (feature `tracing`): one `Scope` per
//! span callsite, the callsite of every live span found by span id without
//! a lock on enter and exit, and each span's recorded fields for dumps.
//!
//! Two fixed lock-free tables map keys to callsite numbers: callsites by
//! their metadata's address (filled when tracing registers a callsite),
//! live spans by id (filled when a span is created, emptied when it
//! closes). A key that finds no room is simply not tracked. Fields are
//! text, written when a span is created or records, read only by dumps.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use super::Scope;

/// Distinct span callsites with a scope, at most.
const CALLSITES: usize = 4096;
static SCOPES: [OnceLock<&'static Scope>; CALLSITES] = [const { OnceLock::new() }; CALLSITES];
static NEXT_SCOPE: AtomicU32 = AtomicU32::new(0);
static BY_CALLSITE: Table<{ 1 << 13 }> = Table::new();
static BY_SPAN: Table<{ 1 << 16 }> = Table::new();

/// The scope of the callsite with metadata at `key`, made (and leaked,
/// once per callsite) with `make` on first sight.
pub(crate) fn callsite(key: u64, make: impl FnOnce() -> Scope) -> Option<u32> {
    if let Some(n) = BY_CALLSITE.get(key) {
        return Some(n);
    }
    let n = NEXT_SCOPE.fetch_add(1, Ordering::Relaxed);
    let slot = SCOPES.get(n as usize)?;
    let _ = slot.set(Box::leak(Box::new(make())));
    BY_CALLSITE.insert(key, n);
    Some(n)
}

/// Span `id` was created at callsite `n` with `fields` recorded.
pub(crate) fn open(id: u64, n: u32, fields: String) {
    BY_SPAN.insert(id, n);
    if !fields.is_empty() {
        shard(id).lock().unwrap_or_else(|p| p.into_inner()).insert(id, fields);
    }
}

/// The scope of live span `id`, if it is tracked.
#[inline]
pub(crate) fn scope_of(id: u64) -> Option<&'static Scope> {
    let n = BY_SPAN.get(id)?;
    SCOPES.get(n as usize)?.get().copied()
}

/// Span `id` recorded more fields.
pub(crate) fn record(id: u64, more: &str) {
    if more.is_empty() {
        return;
    }
    let mut map = shard(id).lock().unwrap_or_else(|p| p.into_inner());
    let fields = map.entry(id).or_default();
    if !fields.is_empty() {
        fields.push(' ');
    }
    fields.push_str(more);
}

/// Span `id` closed.
pub(crate) fn close(id: u64) {
    BY_SPAN.remove(id);
    shard(id).lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
}

/// The recorded fields of span `id`, for dumps.
pub(crate) fn fields(id: u64) -> Option<String> {
    shard(id).lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
}

const SHARDS: usize = 16;
static FIELDS: OnceLock<Vec<Mutex<HashMap<u64, String>>>> = OnceLock::new();

fn shard(id: u64) -> &'static Mutex<HashMap<u64, String>> {
    let shards = FIELDS.get_or_init(|| (0..SHARDS).map(|_| Mutex::default()).collect());
    &shards[(id as usize) % SHARDS]
}

/// A fixed open-addressing map from non-zero `u64` keys to `u32` values.
struct Table<const N: usize> {
    keys: [AtomicU64; N],
    values: [AtomicU32; N],
}

const EMPTY: u64 = 0;
const GONE: u64 = u64::MAX;
const CLAIMED: u64 = u64::MAX - 1;
const MAX_PROBE: usize = 32;

impl<const N: usize> Table<N> {
    const fn new() -> Self {
        Table { keys: [const { AtomicU64::new(EMPTY) }; N], values: [const { AtomicU32::new(0) }; N] }
    }

    fn home(key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % N
    }

    fn insert(&self, key: u64, value: u32) {
        let h = Self::home(key);
        for i in 0..MAX_PROBE {
            let at = (h + i) % N;
            let cur = self.keys[at].load(Ordering::Relaxed);
            if (cur == EMPTY || cur == GONE)
                && self.keys[at].compare_exchange(cur, CLAIMED, Ordering::Acquire, Ordering::Relaxed).is_ok()
            {
                self.values[at].store(value, Ordering::Relaxed);
                self.keys[at].store(key, Ordering::Release);
                return;
            }
        }
    }

    #[inline]
    fn get(&self, key: u64) -> Option<u32> {
        let h = Self::home(key);
        for i in 0..MAX_PROBE {
            let at = (h + i) % N;
            match self.keys[at].load(Ordering::Acquire) {
                EMPTY => return None,
                k if k == key => return Some(self.values[at].load(Ordering::Relaxed)),
                _ => {}
            }
        }
        None
    }

    fn remove(&self, key: u64) {
        let h = Self::home(key);
        for i in 0..MAX_PROBE {
            let at = (h + i) % N;
            match self.keys[at].load(Ordering::Relaxed) {
                EMPTY => return,
                k if k == key => {
                    let _ = self.keys[at].compare_exchange(key, GONE, Ordering::AcqRel, Ordering::Relaxed);
                    return;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_map_to_their_callsites_scope_until_closed() {
        let n = callsite(0xdead_beef, || Scope::new("span_a", "x.rs", 3, 0)).unwrap();
        assert_eq!(callsite(0xdead_beef, || unreachable!()), Some(n), "made once");
        open(77, n, "id=7".into());
        assert_eq!(scope_of(77).map(Scope::name), Some("span_a"));
        record(77, "client=\"osprey\"");
        assert_eq!(fields(77).as_deref(), Some("id=7 client=\"osprey\""));
        close(77);
        assert!(scope_of(77).is_none() && fields(77).is_none());
    }

    #[cfg(feature = "tracing")]
    #[test]
    fn a_span_exited_out_of_order_leaves_no_frame_behind() {
        crate::switch::set(true);
        let n = callsite(0xfeed_f00d, || Scope::new("out_of_order", "x.rs", 9, 0)).unwrap();
        open(91, n, String::new());
        static MARKED: Scope = Scope::new("marked", "x.rs", 10, 0);
        let names = || {
            let t = super::super::threads::peek().unwrap();
            t.stack
                .snapshot()
                .iter()
                .filter_map(|f| super::super::nodes::scope(f.node).map(Scope::name))
                .collect::<Vec<_>>()
        };
        super::super::enter_span(91);
        let marked = super::super::enter(&MARKED);
        assert_eq!(names(), ["out_of_order", "marked"]);
        super::super::exit_span(91); // before the marked call ends
        assert_eq!(names(), ["marked"]);
        drop(marked);
        assert!(names().is_empty());
        let depth =
            super::super::threads::peek().unwrap().stack.depth.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(depth, 0, "the blanked frame went with the one above it");
        close(91);
    }
}

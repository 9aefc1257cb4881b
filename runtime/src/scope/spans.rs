//! `tracing` spans as logical frames (feature `tracing`): one `Scope` per
//! span callsite, every live span found by id without a lock, each span's
//! recorded fields for dumps, and the spans of parked async tasks.
//!
//! Callsites are kept in a fixed lock-free table keyed by their metadata's
//! address (filled when a span is first created there). Live spans are kept
//! in another, keyed by span id, from creation to close, with their parent,
//! when they were created and on which thread, in which dye. Entering and
//! exiting a span touch neither table: an enter pushes the span's id on its
//! thread's logical stack, and whoever reads the frame finds its scope here
//! (see `enter_span`). A live span not entered now (not on any thread's
//! stack) is idle: an async task parked at an `.await` inside it
//! (`Instrument`, `#[instrument]` on an `async fn`), or not polled yet.
//! Dumps list each idle span that no live span has as parent, with its
//! chain of parents, as a parked task. A key that finds no room is not
//! tracked. Fields are text, written when a span is created or records,
//! read only by dumps.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use super::{Scope, clock, nodes, slow};

/// Distinct span callsites with a scope, at most.
const CALLSITES: usize = 4096;
static SCOPES: [OnceLock<&'static Scope>; CALLSITES] = [const { OnceLock::new() }; CALLSITES];
static NEXT_SCOPE: AtomicU32 = AtomicU32::new(0);
/// Each callsite's scope as a node under the root (`ROOT` until made).
static CALLSITE_NODES: [AtomicU32; CALLSITES] = [const { AtomicU32::new(nodes::ROOT) }; CALLSITES];
static BY_CALLSITE: Table<{ 1 << 13 }> = Table::new();
const LIVE_SLOTS: usize = 1 << 16;
static LIVE: Table<LIVE_SLOTS> = Table::new();

/// The scope of the callsite with metadata at `key`, made (and leaked,
/// once per callsite) with `make` on first sight.
pub(crate) fn callsite(key: u64, make: impl FnOnce() -> Scope) -> Option<u32> {
    let known = || BY_CALLSITE.find(key).map(|at| BY_CALLSITE.slots[at].value.load(Ordering::Relaxed));
    if let Some(n) = known() {
        return Some(n);
    }
    // Once per callsite, under a lock: two threads creating the first spans
    // of a callsite at once would otherwise make two scopes for it, and its
    // stacks would not group.
    static MAKING: Mutex<()> = Mutex::new(());
    let _making = MAKING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = known() {
        return Some(n);
    }
    let n = NEXT_SCOPE.fetch_add(1, Ordering::Relaxed);
    let slot = SCOPES.get(n as usize)?;
    let scope: &'static Scope = Box::leak(Box::new(make()));
    let _ = slot.set(scope);
    if let Some(node) = CALLSITE_NODES.get(n as usize) {
        node.store(nodes::child(nodes::ROOT, scope), Ordering::Release);
    }
    BY_CALLSITE.insert(key, n, 0);
    Some(n)
}

/// Span `id` was created at callsite `n` on the calling thread, under span
/// `parent` (0: none); `write_fields` writes its recorded fields. Its time
/// counts from now; its thread and dye are this thread's.
pub(crate) fn open(id: u64, n: u32, parent: u64, write_fields: impl FnOnce(&mut String)) {
    let Some(at) = LIVE.insert(id, n, parent) else { return };
    let entry = &LIVE.slots[at];
    let since = scope(n).map_or_else(clock::coarse_ns, Scope::start_ns);
    entry.since.store(since.max(1), Ordering::Release);
    if let Some(t) = super::threads::local() {
        entry.tid.store(t.tid.load(Ordering::Relaxed), Ordering::Relaxed);
        entry.dye.store(t.dye.load(Ordering::Relaxed), Ordering::Relaxed);
    }
    let mut text = field_text(at);
    text.clear();
    if text.capacity() > 4 * MAX_FIELDS {
        text.shrink_to(MAX_FIELDS);
    }
    write_fields(&mut text);
}

fn scope(n: u32) -> Option<&'static Scope> {
    SCOPES.get(n as usize)?.get().copied()
}

/// The node standing for live span `id`'s callsite alone (its scope under
/// the root): what a sample's `scope` label needs. Async-signal-safe: a
/// probe of the lock-free table, atomics only.
pub(crate) fn callsite_node(id: u64) -> Option<u32> {
    let at = LIVE.find(id)?;
    let n = LIVE.slots[at].value.load(Ordering::Relaxed) as usize;
    CALLSITE_NODES.get(n).map(|node| node.load(Ordering::Acquire)).filter(|&node| node != nodes::ROOT)
}

/// Live span `id`'s scope and when it was created; `None` if it is not
/// tracked (created while scopes were not recorded, or closed).
pub(crate) fn scope_and_since(id: u64) -> Option<(&'static Scope, u64)> {
    let at = LIVE.find(id)?;
    let since = LIVE.slots[at].since.load(Ordering::Acquire);
    Some((scope(LIVE.slots[at].value.load(Ordering::Relaxed))?, since))
}

/// The scope of live span `id`, if it is tracked.
#[cfg(test)]
pub(crate) fn scope_of(id: u64) -> Option<&'static Scope> {
    let at = LIVE.find(id)?;
    scope(LIVE.slots[at].value.load(Ordering::Relaxed))
}

/// Span `id` recorded more fields: `write_fields` appends them.
pub(crate) fn record(id: u64, write_fields: impl FnOnce(&mut String)) {
    if let Some(at) = LIVE.find(id) {
        write_fields(&mut field_text(at));
    }
}

/// Span `id` closed: a slow-call event if it lived past its scope's
/// threshold (`slow_spans`) and none was reported while it ran.
pub(crate) fn close(id: u64) {
    let Some(at) = LIVE.find(id) else { return };
    if threshold(at) > 0 {
        let elapsed = clock::precise_ns().saturating_sub(LIVE.slots[at].since.load(Ordering::Relaxed));
        if slow_now(at, elapsed) {
            if let Some(fields) = fields(id) {
                closed_fields().lock().unwrap_or_else(|p| p.into_inner()).insert(id, fields);
            }
            slow::report_span(
                chain_node(at),
                elapsed,
                false,
                LIVE.slots[at].tid.load(Ordering::Relaxed),
                id,
                dye(at),
            );
        }
    }
    LIVE.remove_at(at, id);
}

/// The slow-call threshold of the span at `at`: 0 when its callsite has
/// none, or its start is not stamped yet (no clock is read for those).
fn threshold(at: usize) -> u64 {
    let stamped = LIVE.slots[at].since.load(Ordering::Relaxed) != 0;
    let threshold = scope(LIVE.slots[at].value.load(Ordering::Relaxed)).map_or(0, Scope::threshold_ns);
    if stamped { threshold } else { 0 }
}

/// Whether the span at `at`, alive `elapsed` ns, is slow and not yet
/// reported (then it is marked reported).
fn slow_now(at: usize, elapsed: u64) -> bool {
    let threshold = threshold(at);
    threshold > 0
        && elapsed >= threshold
        && LIVE.slots[at].reported.compare_exchange(0, 1, Ordering::Relaxed, Ordering::Relaxed).is_ok()
}

/// The dye of the traffic that created the span at `at`.
fn dye(at: usize) -> u32 {
    LIVE.slots[at].dye.load(Ordering::Relaxed)
}

/// The stack node of the span at `at` under its parent spans.
fn chain_node(at: usize) -> u32 {
    let mut chain = Vec::new();
    let mut cur = Some(at);
    while let Some(i) = cur.filter(|_| chain.len() < 64) {
        if let Some(s) = scope(LIVE.slots[i].value.load(Ordering::Relaxed)) {
            chain.push(s);
        }
        cur = LIVE.find(LIVE.slots[i].extra.load(Ordering::Relaxed));
    }
    chain.iter().rev().fold(nodes::ROOT, |node, s| nodes::child(node, s))
}

/// Reports, once each, live spans that have been alive past their
/// threshold, entered now or parked (the sampler thread calls this).
pub(crate) fn flag_slow(now_ns: u64) {
    for at in 0..LIVE.slots.len() {
        let id = LIVE.slots[at].key.load(Ordering::Acquire);
        if id == EMPTY || id >= CLAIMED || LIVE.slots[at].reported.load(Ordering::Relaxed) != 0 {
            continue;
        }
        let elapsed = now_ns.saturating_sub(LIVE.slots[at].since.load(Ordering::Relaxed));
        if slow_now(at, elapsed) {
            slow::report_span(
                chain_node(at),
                elapsed,
                true,
                LIVE.slots[at].tid.load(Ordering::Relaxed),
                id,
                dye(at),
            );
        }
    }
}

/// The fields of span `id` for its slow-call event (kept past its close).
pub(crate) fn slow_fields(id: u64) -> Option<String> {
    let closed = closed_fields().lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    closed.or_else(|| fields(id))
}

fn closed_fields() -> &'static Mutex<HashMap<u64, String>> {
    static CLOSED: OnceLock<Mutex<HashMap<u64, String>>> = OnceLock::new();
    CLOSED.get_or_init(Mutex::default)
}

/// The recorded fields of span `id`, for dumps.
pub(crate) fn fields(id: u64) -> Option<String> {
    let at = LIVE.find(id)?;
    let text = field_text(at).clone();
    // The span may have closed, and another taken its slot, meanwhile.
    (LIVE.slots[at].key.load(Ordering::Acquire) == id && !text.is_empty()).then_some(text)
}

/// A parked task's spans, outermost first: (scope, span id, created).
#[derive(Debug)]
pub(crate) struct Parked {
    pub id: u64,
    /// The thread that created the innermost span.
    pub tid: i32,
    pub dye: u32,
    pub chain: Vec<(&'static Scope, u64, u64)>,
}

/// Every span not entered now that no live span has as parent, with its
/// parents: an async task parked inside it, or not polled yet.
pub(crate) fn parked() -> Vec<Parked> {
    struct Seen {
        scope: &'static Scope,
        parent: u64,
        idle: bool,
        since: u64,
        tid: i32,
        dye: u32,
    }
    // Entered now: a frame on a thread's stack.
    let entered: HashSet<u64> = super::threads::all()
        .into_iter()
        .filter(|t| t.is_live())
        .flat_map(|t| t.stack.snapshot())
        .map(|f| f.span)
        .filter(|&span| span != 0)
        .collect();
    let mut live: HashMap<u64, Seen> = HashMap::new();
    for at in 0..LIVE.slots.len() {
        let id = LIVE.slots[at].key.load(Ordering::Acquire);
        if id == EMPTY || id >= CLAIMED {
            continue;
        }
        let Some(scope) = scope(LIVE.slots[at].value.load(Ordering::Relaxed)) else { continue };
        let since = LIVE.slots[at].since.load(Ordering::Acquire);
        let seen = Seen {
            scope,
            parent: LIVE.slots[at].extra.load(Ordering::Relaxed),
            idle: since != 0 && !entered.contains(&id),
            since,
            tid: LIVE.slots[at].tid.load(Ordering::Relaxed),
            dye: dye(at),
        };
        live.insert(id, seen);
    }
    // A span with a live child is shown through it: as that child's
    // parent when the child is parked, or not at all while it runs.
    let covered: HashSet<u64> = live.values().map(|s| s.parent).collect();
    let mut out = Vec::new();
    for (&id, s) in live.iter().filter(|(id, s)| s.idle && !covered.contains(id)) {
        let mut chain = vec![(s.scope, id, s.since)];
        let mut parent = s.parent;
        while let Some(p) = live.get(&parent).filter(|_| chain.len() < 64) {
            chain.push((p.scope, parent, p.since));
            parent = p.parent;
        }
        chain.reverse();
        out.push(Parked { id, tid: s.tid, dye: s.dye, chain });
    }
    out
}

/// Longest fields text kept for one span, in bytes (more is cut, with `…`):
/// 64 Ki live spans then hold at most 16 MiB of text.
pub(crate) const MAX_FIELDS: usize = 256;

/// The fields text of the live span at slot `at` of `LIVE`. One text per
/// slot, kept with its capacity when the slot is reused: creating a span
/// allocates nothing once its slot has held one before.
fn field_text(at: usize) -> MutexGuard<'static, String> {
    static TEXTS: OnceLock<Box<[Mutex<String>]>> = OnceLock::new();
    let texts = TEXTS.get_or_init(|| (0..LIVE_SLOTS).map(|_| Mutex::default()).collect());
    texts[at % LIVE_SLOTS].lock().unwrap_or_else(|p| p.into_inner())
}

/// A fixed open-addressing map from non-zero `u64` keys to a `u32` value,
/// a `u64` extra, and (used for live spans) time, thread and dye.
struct Table<const N: usize> {
    slots: [Slot; N],
}

/// One entry, on one cache line: creating or closing a span writes only it.
#[repr(align(64))]
struct Slot {
    key: AtomicU64,
    value: AtomicU32,
    extra: AtomicU64,
    since: AtomicU64,
    tid: AtomicI32,
    /// The dye of the traffic that created it.
    dye: AtomicU32,
    /// A slow-call event was reported for it.
    reported: AtomicU32,
}

const EMPTY: u64 = 0;
const GONE: u64 = u64::MAX;
const CLAIMED: u64 = u64::MAX - 1;
const MAX_PROBE: usize = 32;

impl<const N: usize> Table<N> {
    const fn new() -> Self {
        Table {
            slots: [const {
                Slot {
                    key: AtomicU64::new(EMPTY),
                    value: AtomicU32::new(0),
                    extra: AtomicU64::new(0),
                    since: AtomicU64::new(0),
                    tid: AtomicI32::new(0),
                    dye: AtomicU32::new(0),
                    reported: AtomicU32::new(0),
                }
            }; N],
        }
    }

    fn home(key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % N
    }

    /// The slot `key` went into; `None` when there was no room.
    fn insert(&self, key: u64, value: u32, extra: u64) -> Option<usize> {
        let h = Self::home(key);
        for i in 0..MAX_PROBE {
            let at = (h + i) % N;
            let cur = self.slots[at].key.load(Ordering::Relaxed);
            if (cur == EMPTY || cur == GONE)
                && self.slots[at]
                    .key
                    .compare_exchange(cur, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                self.slots[at].value.store(value, Ordering::Relaxed);
                self.slots[at].extra.store(extra, Ordering::Relaxed);
                self.slots[at].since.store(0, Ordering::Relaxed);
                self.slots[at].dye.store(0, Ordering::Relaxed);
                self.slots[at].reported.store(0, Ordering::Relaxed);
                self.slots[at].key.store(key, Ordering::Release);
                return Some(at);
            }
        }
        None
    }

    #[inline]
    fn find(&self, key: u64) -> Option<usize> {
        let h = Self::home(key);
        for i in 0..MAX_PROBE {
            let at = (h + i) % N;
            match self.slots[at].key.load(Ordering::Acquire) {
                EMPTY => return None,
                k if k == key => return Some(at),
                _ => {}
            }
        }
        None
    }

    /// Frees slot `at` if it still holds `key`.
    fn remove_at(&self, at: usize, key: u64) {
        let _ = self.slots[at].key.compare_exchange(key, GONE, Ordering::AcqRel, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_map_to_their_callsites_scope_until_closed() {
        let n = callsite(0xdead_beef, || Scope::new("span_a", "x.rs", 3, 0)).unwrap();
        assert_eq!(callsite(0xdead_beef, || unreachable!()), Some(n), "made once");
        open(77, n, 0, |f| f.push_str("id=7"));
        assert_eq!(scope_of(77).map(Scope::name), Some("span_a"));
        record(77, |f| f.push_str(" client=\"osprey\""));
        assert_eq!(fields(77).as_deref(), Some("id=7 client=\"osprey\""));
        close(77);
        assert!(scope_of(77).is_none() && fields(77).is_none());
    }

    #[cfg(feature = "tracing")]
    #[test]
    fn a_span_exited_out_of_order_leaves_no_frame_behind() {
        crate::switch::set(true);
        let n = callsite(0xfeed_f00d, || Scope::new("out_of_order", "x.rs", 9, 0)).unwrap();
        open(91, n, 0, |_| ());
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

    #[cfg(feature = "tracing")]
    #[test]
    fn a_sample_inside_a_span_is_labelled_with_its_callsite() {
        crate::switch::set(true);
        let n = callsite(0x0a11_0020, || Scope::new("labelled_span", "x.rs", 60, 0)).unwrap();
        open(701, n, 0, |_| ());
        let label = || super::super::scope_name(super::super::innermost_node());
        super::super::enter_span(701);
        assert_eq!(label(), Some("labelled_span"));
        super::super::enter_span(702); // never opened: not tracked
        assert_eq!(label(), None);
        super::super::exit_span(702);
        super::super::exit_span(701);
        close(701);
    }

    #[cfg(feature = "tracing")]
    #[test]
    fn idle_spans_are_parked_tasks_with_their_parents() {
        crate::switch::set(true);
        let outer = callsite(0x0a11_0001, || Scope::new("parked_handler", "x.rs", 20, 0)).unwrap();
        let inner = callsite(0x0a11_0002, || Scope::new("wait_for_data", "x.rs", 30, 0)).unwrap();
        let never = callsite(0x0a11_0003, || Scope::new("never_entered", "x.rs", 40, 0)).unwrap();
        open(501, outer, 0, |f| f.push_str("id=1"));
        open(502, inner, 501, |_| ());
        open(503, never, 501, |_| ());
        let mine = || {
            let mut tasks: Vec<_> = parked().into_iter().filter(|p| (501..=503).contains(&p.id)).collect();
            tasks.sort_by_key(|p| p.id);
            tasks.into_iter().map(|p| (p.id, p.chain.iter().map(|(s, _, _)| s.name()).collect::<Vec<_>>()))
        };
        let both =
            [(502, vec!["parked_handler", "wait_for_data"]), (503, vec!["parked_handler", "never_entered"])];
        assert!(mine().eq(both.clone()), "not polled yet, each child is a task; the parent is covered");
        for id in [501, 502] {
            super::super::enter_span(id);
        }
        let running: Vec<_> = mine().collect();
        assert_eq!(running, [both[1].clone()], "entered spans run; the other child stays parked");
        super::super::exit_span(502);
        super::super::exit_span(501);
        assert!(mine().eq(both.clone()), "parked again");
        let me = crate::sys::gettid();
        assert!(parked().iter().filter(|p| p.id == 502).all(|p| p.tid == me), "created on this thread");
        close(503);
        assert!(mine().eq([both[0].clone()]));
        for id in [501, 502] {
            close(id);
        }
        assert_eq!(mine().count(), 0);
    }

    #[test]
    fn a_slow_span_reports_once_at_close_with_its_fields() {
        let n = callsite(0x0a11_0010, || Scope::new("slow_close", "x.rs", 50, 1_000)).unwrap();
        // Another test may have started hotprof, whose sampler thread drains
        // the same queue every 10 ms: a few tries, each with its own span.
        let caught = (601..604).find_map(|id| {
            open(id, n, 0, |f| f.push_str("id=3"));
            std::thread::sleep(std::time::Duration::from_millis(2));
            close(id);
            close(id); // twice: nothing more
            let events: Vec<_> =
                slow::take_slow_calls().into_iter().filter(|e| e.scope == "slow_close").collect();
            assert!(events.len() <= 1, "{events:?}");
            events.into_iter().next()
        });
        let event = caught.expect("a slow-call event at close");
        assert!(!event.still_running && event.thread == crate::sys::gettid());
        assert_eq!(event.fields.as_deref(), Some("id=3"));
        assert!((601..604).contains(&event.task.unwrap_or(0)), "{event:?}");
    }
}

//! Scoped samplers: what `#[hotprof::profile]` expands to.
//!
//! While capture is on, each active marked call is a frame on its thread's
//! logical stack (sync code) or on its task's (async code, also while the task
//! is parked). Frames hold interned stack nodes, so a whole stack is one id.
//! When capture is off, a marked call costs one relaxed load and a branch.

mod clock;
mod frames;
mod nodes;
pub(crate) mod profile;
pub(crate) mod report;
mod slow;
#[cfg(feature = "tracing")]
pub(crate) mod spans;
mod tasks;
pub(crate) mod threads;
pub(crate) mod ticker;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use crate::switch;

pub(crate) use slow::run_hooks;
pub use slow::{SlowCall, on_slow_call};

/// The stack node of the innermost scope the calling thread is in (in the
/// task it polls first), or the root. Async-signal-safe: reads const
/// thread-locals and atomics and never registers anything, so the sample
/// handler can call it.
pub(crate) fn innermost_node() -> u32 {
    if let Some(task) = tasks::current() {
        let node = task.stack.top_node();
        if node != nodes::ROOT {
            return node;
        }
    }
    let Some(top) = threads::peek().and_then(|t| t.stack.top()) else { return nodes::ROOT };
    let node = top.node.load(Ordering::Relaxed);
    #[cfg(feature = "tracing")]
    if node == nodes::SPAN {
        return spans::callsite_node(top.span.load(Ordering::Relaxed)).unwrap_or(nodes::ROOT);
    }
    node
}

/// The name of the scope at stack node `node`; `None` for the root.
pub(crate) fn scope_name(node: u32) -> Option<&'static str> {
    nodes::scope(node).map(Scope::name)
}

/// One marked function: its name, where it is, and its slow-call threshold.
/// Generated as a `static` inside the function by `#[hotprof::profile]`.
#[derive(Debug)]
pub struct Scope {
    name: &'static str,
    file: &'static str,
    line: u32,
    threshold_ns: u64,
    /// The last (parent node << 32 | node) this scope was interned under:
    /// most calls of a scope come from the same place, and then skip the
    /// node table. 0 until the first.
    last_node: AtomicU64,
}

impl Scope {
    /// `threshold_ns == 0` means no threshold.
    pub const fn new(name: &'static str, file: &'static str, line: u32, threshold_ns: u64) -> Scope {
        Scope { name, file, line, threshold_ns, last_node: AtomicU64::new(0) }
    }

    /// The scope's name (the function's path unless `name = "..."` was given).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Source file and line of the marked function.
    pub fn location(&self) -> (&'static str, u32) {
        (self.file, self.line)
    }

    /// Slow-call threshold in nanoseconds, 0 for none.
    pub fn threshold_ns(&self) -> u64 {
        self.threshold_ns
    }

    /// Start time for a call: precise when a threshold needs it, else the coarse clock.
    #[inline]
    fn start_ns(&self) -> u64 {
        if self.threshold_ns > 0 { clock::precise_ns() } else { clock::coarse_ns() }
    }

    /// After a call ended: a slow-call event if it crossed the threshold and was not reported yet.
    #[inline]
    fn check_threshold(&'static self, node: u32, start_ns: u64, flagged: bool, who: Runner) {
        if self.threshold_ns == 0 || flagged {
            return;
        }
        let elapsed = clock::precise_ns().saturating_sub(start_ns);
        if elapsed >= self.threshold_ns {
            slow::report(node, elapsed, false, who.tid, who.task, who.dye);
        }
    }
}

/// Who ran a call, for its slow-call event: the thread (for a task, the
/// thread that polled it last), the task, and the dye of its traffic.
#[derive(Debug, Clone, Copy)]
struct Runner {
    tid: i32,
    task: Option<u64>,
    dye: u32,
}

/// Marks a sync call as active until dropped.
#[derive(Debug)]
#[must_use]
pub struct ScopeGuard {
    entered: Option<(&'static threads::ThreadFrames, u32)>,
}

/// Enters `scope` on the current thread.
#[inline]
pub fn enter(scope: &'static Scope) -> ScopeGuard {
    if !switch::scopes_here() {
        return ScopeGuard { entered: None };
    }
    enter_on(scope)
}

/// Out of line, so the capture-off path of a marked function stays a load
/// and a branch: inlined, this body makes the caller save registers for it
/// on every call.
#[inline(never)]
fn enter_on(scope: &'static Scope) -> ScopeGuard {
    let Some(t) = threads::local() else { return ScopeGuard { entered: None } };
    let depth = t.stack.depth.load(Ordering::Relaxed);
    let Some(frame) = t.stack.frames.get(depth as usize) else { return ScopeGuard { entered: None } };
    frame.set(nodes::child(parent_node(t, depth), scope), scope.start_ns());
    t.stack.depth.store(depth + 1, Ordering::Release);
    ScopeGuard { entered: Some((t, depth)) }
}

/// The node a frame pushed at `depth` on thread `t` goes under: the frame
/// below it, or at the bottom, the innermost frame of the task it polls.
#[inline]
fn parent_node(t: &threads::ThreadFrames, depth: u32) -> u32 {
    if depth == 0 {
        return tasks::current().map_or(nodes::ROOT, |r| r.stack.top_node());
    }
    let node = t.stack.top_node();
    #[cfg(feature = "tracing")]
    if node == nodes::SPAN {
        return resolve_spans(t, depth);
    }
    node
}

/// A `tracing` span was entered on this thread (feature `tracing`): a
/// frame holding its id goes on the thread's logical stack, its node left
/// to be found ([`nodes::SPAN`]). A span is entered on every poll of its
/// task, so this is the layer's hot path: one thread-local and three
/// stores. Readers find the span's scope in the live-span table: the sample
/// handler its callsite, the thread itself when it enters a marked call
/// (`resolve_spans`), a dump the whole stack.
#[cfg(feature = "tracing")]
#[inline]
pub(crate) fn enter_span(id: u64) {
    if !switch::scopes_here() {
        return;
    }
    let Some(t) = threads::local() else { return };
    let depth = t.stack.depth.load(Ordering::Relaxed);
    let Some(frame) = t.stack.frames.get(depth as usize) else { return };
    frame.span.store(id, Ordering::Relaxed);
    frame.node.store(nodes::SPAN, Ordering::Relaxed);
    // The frame stays until the span is exited (`exit_span`).
    t.stack.depth.store(depth + 1, Ordering::Release);
}

/// Gives the span frames on top of `t`'s stack (below `depth`) their nodes
/// and start times, as a marked call is about to go on top of them, and
/// returns the node of the innermost. Only the thread itself writes its
/// frames. A span that is not tracked becomes a blank frame.
#[cfg(feature = "tracing")]
fn resolve_spans(t: &threads::ThreadFrames, depth: u32) -> u32 {
    let frames = t.stack.frames.get(..depth as usize).unwrap_or_default();
    let first =
        frames.iter().rposition(|f| f.node.load(Ordering::Relaxed) != nodes::SPAN).map_or(0, |i| i + 1);
    let mut node = match first.checked_sub(1).and_then(|i| frames.get(i)) {
        Some(below) => below.node.load(Ordering::Relaxed),
        None => tasks::current().map_or(nodes::ROOT, |r| r.stack.top_node()),
    };
    for f in frames.get(first..).unwrap_or_default() {
        match spans::scope_and_since(f.span.load(Ordering::Relaxed)) {
            Some((scope, since)) => {
                node = nodes::child(node, scope);
                f.start_ns.store(since, Ordering::Relaxed);
                f.flagged.store(false, Ordering::Relaxed);
                f.node.store(node, Ordering::Relaxed);
            }
            None => f.node.store(nodes::ROOT, Ordering::Relaxed),
        }
    }
    node
}

/// A `tracing` span was exited on this thread: its frame goes. Spans are
/// exited in the order they were entered, so it is the innermost; should a
/// guard have been dropped out of order, the span's frame deeper down is
/// blanked instead (never shown again, popped with the frames above it).
#[cfg(feature = "tracing")]
#[inline]
pub(crate) fn exit_span(id: u64) {
    let Some(t) = threads::peek() else { return };
    let depth = t.stack.depth.load(Ordering::Relaxed) as usize;
    let mine = |f: &frames::Frame| f.span.load(Ordering::Relaxed) == id;
    match t.stack.frames.get(..depth.min(threads::MAX_DEPTH)).and_then(|f| f.iter().rposition(mine)) {
        // Slow spans are reported by `spans` (per span, not per poll).
        // Not counted as a call: a span is entered once per poll.
        Some(top) if top + 1 == depth => {
            pop(t, top as u32);
        }
        Some(deeper) => {
            if let Some(f) = t.stack.frames.get(deeper) {
                f.span.store(0, Ordering::Relaxed);
                f.node.store(nodes::ROOT, Ordering::Relaxed);
            }
        }
        None => {}
    }
}

impl Drop for ScopeGuard {
    #[inline]
    fn drop(&mut self) {
        if let Some((t, depth)) = self.entered {
            leave(t, depth);
        }
    }
}

/// The end of an entered call; out of line for the same reason as [`enter_on`].
#[inline(never)]
fn leave(t: &'static threads::ThreadFrames, depth: u32) {
    let Some((node, frame)) = pop(t, depth) else { return };
    t.calls.add(node);
    if let Some(scope) = nodes::scope(node)
        && scope.threshold_ns > 0
    {
        let flagged = frame.flagged.load(Ordering::Relaxed);
        let who =
            Runner { tid: t.tid.load(Ordering::Relaxed), task: None, dye: t.dye.load(Ordering::Relaxed) };
        scope.check_threshold(node, frame.start_ns.load(Ordering::Relaxed), flagged, who);
    }
}

/// Pops the frame at `depth` (and blanked ones below it): its node and frame.
#[inline]
fn pop(t: &'static threads::ThreadFrames, depth: u32) -> Option<(u32, &'static frames::Frame)> {
    // A frame blanked below this one (a span exited out of order) goes too.
    let blank = |d: u32| {
        d > 0
            && t.stack
                .frames
                .get(d as usize - 1)
                .is_some_and(|f| f.node.load(Ordering::Relaxed) == nodes::ROOT)
    };
    let mut top = depth;
    while blank(top) {
        top -= 1;
    }
    t.stack.depth.store(top, Ordering::Release);
    let frame = t.stack.frames.get(depth as usize)?;
    Some((frame.node.load(Ordering::Relaxed), frame))
}

/// Wraps a future so that its scope is recorded while it is alive.
#[inline]
pub fn instrument<F: Future>(scope: &'static Scope, future: F) -> Instrumented<F> {
    // Capture off at the call: the future stays untracked for its whole
    // life. Otherwise its first poll decides (it may come inside dyed
    // traffic when the call did not).
    let link = if switch::is_enabled() { Link::Fresh } else { Link::Untracked };
    Instrumented { future, scope, link }
}

/// Where an instrumented future sits in its task's record.
#[derive(Debug)]
enum Link {
    /// Not polled yet.
    Fresh,
    /// Not recorded (capture was off at the first poll, or no room), or no
    /// longer: completed or dropped. Three states, so that a poll tells
    /// them apart with compares rather than a jump table.
    Untracked,
    /// A frame in `rec`, which belongs to task `serial`; a root owns the
    /// record (pool index `root`, `NOT_ROOT` for nested futures).
    Active { rec: &'static tasks::TaskRecord, serial: u64, slot: u32, root: u32 },
}

pin_project_lite::pin_project! {
    /// A future recorded under a scope.
    #[derive(Debug)]
    #[project = InstrumentedProj]
    pub struct Instrumented<F> {
        #[pin]
        future: F,
        scope: &'static Scope,
        link: Link,
    }

    impl<F> PinnedDrop for Instrumented<F> {
        fn drop(this: Pin<&mut Self>) {
            let link = this.project().link;
            if let Link::Active { .. } = link {
                finish(link, None);
            }
        }
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    // Always: the untracked path is a check, the rest is out of line.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let InstrumentedProj { future, scope, link } = self.project();
        match link {
            // Inlined into the caller: an untracked future costs this check,
            // and a fresh one outside recorded traffic the switch's.
            Link::Untracked => future.poll(cx),
            Link::Fresh if !switch::scopes_here() => {
                *link = Link::Untracked;
                future.poll(cx)
            }
            Link::Fresh | Link::Active { .. } => poll_tracked(future, scope, link, cx),
        }
    }
}

/// A poll of a future that is (or may become, at its first poll) recorded.
/// Out of line, so that the untracked path saves no registers for it.
#[inline(never)]
fn poll_tracked<F: Future>(
    future: Pin<&mut F>,
    scope: &'static Scope,
    link: &mut Link,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let rec = match *link {
        Link::Active { rec, .. } => rec,
        Link::Fresh => match start(scope, link) {
            Some(rec) => rec,
            None => return future.poll(cx),
        },
        Link::Untracked => return future.poll(cx),
    };
    if let Some(t) = threads::local() {
        rec.last_tid.store(t.tid.load(Ordering::Relaxed), Ordering::Relaxed);
    }
    // Restored on drop, so a panic in the poll leaves the thread outside the task.
    let current = tasks::CurrentTask::enter(rec);
    let result = future.poll(cx);
    drop(current);
    if result.is_ready() {
        finish(link, Some(scope));
    }
    result
}

const NOT_ROOT: u32 = u32::MAX;

/// First poll: join the task being polled (nested) or take a record
/// (root). Sets `link` in place (returned through memory, the link's
/// fields would be read back before the stores reached it) and returns the
/// record, `None` when the future goes untracked.
fn start(scope: &'static Scope, link: &mut Link) -> Option<&'static tasks::TaskRecord> {
    *link = Link::Untracked;
    if !switch::scopes_here() {
        return None;
    }
    let (rec, root) = match tasks::current() {
        Some(rec) => (rec, NOT_ROOT),
        None => {
            let (index, rec) = tasks::acquire()?;
            (rec, index)
        }
    };
    let slot = rec.stack.depth.load(Ordering::Relaxed);
    let Some(frame) = rec.stack.frames.get(slot as usize) else {
        if root != NOT_ROOT {
            tasks::release(root);
        }
        return None;
    };
    frame.set(nodes::child(rec.stack.top_node(), scope), scope.start_ns());
    rec.stack.depth.store(slot + 1, Ordering::Release);
    *link = Link::Active { rec, serial: rec.serial.load(Ordering::Relaxed), slot, root };
    Some(rec)
}

/// Completion (with the future's scope) or drop (`None`): count the call,
/// check its threshold, free the frame.
fn finish(link: &mut Link, completed: Option<&'static Scope>) {
    let Link::Active { rec, serial, slot, root } = std::mem::replace(link, Link::Untracked) else { return };
    // A root future is dropped before the futures it owns: by then its record
    // may serve another task, which must not be touched.
    if rec.serial.load(Ordering::Relaxed) != serial {
        return;
    }
    let Some(frame) = rec.stack.frames.get(slot as usize) else { return };
    let node = frame.node.load(Ordering::Relaxed);
    if let Some(scope) = completed {
        if let Some(t) = threads::local() {
            t.calls.add(node);
        }
        if scope.threshold_ns > 0 {
            let (start, flagged) =
                (frame.start_ns.load(Ordering::Relaxed), frame.flagged.load(Ordering::Relaxed));
            let who = Runner {
                tid: rec.last_tid.load(Ordering::Relaxed),
                task: Some(serial),
                dye: rec.dye.load(Ordering::Relaxed),
            };
            scope.check_threshold(node, start, flagged, who);
        }
    }
    frame.node.store(nodes::ROOT, Ordering::Relaxed);
    // Siblings (join!, select!) may end in any order: drop empty frames off the top.
    let mut depth = rec.stack.depth.load(Ordering::Relaxed);
    while depth > 0
        && rec
            .stack
            .frames
            .get(depth as usize - 1)
            .is_none_or(|f| f.node.load(Ordering::Relaxed) == nodes::ROOT)
    {
        depth -= 1;
    }
    rec.stack.depth.store(depth, Ordering::Release);
    if root != NOT_ROOT {
        tasks::release(root);
    }
}

//! Slow-call events: a marked call that ran past its threshold. Reported from
//! the call's own thread into a bounded lock-free queue (no allocation, no
//! lock), written out by the sampler thread through the rate limit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;

use super::nodes;

const QUEUE_CAP: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Raw {
    node: u32,
    elapsed_ns: u64,
    running: bool,
    tid: i32,
    task: Option<u64>,
    /// The `tracing` span it is, or 0.
    span: u64,
    /// The dye of its traffic, or 0.
    dye: u32,
}

static QUEUE: OnceLock<ArrayQueue<Raw>> = OnceLock::new();
/// Events lost because the queue was full.
pub(crate) static DROPPED: AtomicU64 = AtomicU64::new(0);

fn queue() -> &'static ArrayQueue<Raw> {
    QUEUE.get_or_init(|| ArrayQueue::new(QUEUE_CAP))
}

/// Queues an event. Called on the slow call's own path: bounded and lock-free.
pub(crate) fn report(node: u32, elapsed_ns: u64, running: bool, tid: i32, task: Option<u64>, dye: u32) {
    push(Raw { node, elapsed_ns, running, tid, task, span: 0, dye });
}

/// Queues an event for `tracing` span `span` (its id is its task number).
#[cfg(feature = "tracing")]
pub(crate) fn report_span(node: u32, elapsed_ns: u64, running: bool, tid: i32, span: u64, dye: u32) {
    push(Raw { node, elapsed_ns, running, tid, task: Some(span), span, dye });
}

fn push(raw: Raw) {
    if queue().push(raw).is_err() {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// A marked call that exceeded its threshold.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SlowCall {
    /// Scope name of the slow call.
    pub scope: &'static str,
    /// Its threshold.
    pub threshold: Duration,
    /// Time it had run when reported.
    pub elapsed: Duration,
    /// True when reported while still running (by the sampler), false at its end.
    pub still_running: bool,
    /// Thread that ran it (for a task: the thread that polled it last).
    pub thread: i32,
    /// Task serial number, for async calls.
    pub task: Option<u64>,
    /// Logical stack, innermost (the slow call) first.
    pub stack: Vec<&'static str>,
    /// For a `tracing` span: its recorded fields (`id=7 client="osprey"`).
    pub fields: Option<String>,
    /// The dye of the traffic it ran in ([`crate::dyed`]), if any.
    pub dye: Option<&'static str>,
}

/// Drains queued events, resolved to names.
pub(crate) fn take_slow_calls() -> Vec<SlowCall> {
    let q = queue();
    std::iter::from_fn(|| q.pop())
        .map(|r| {
            let path = nodes::path(r.node);
            SlowCall {
                scope: path.first().map_or("?", |s| s.name()),
                threshold: Duration::from_nanos(path.first().map_or(0, |s| s.threshold_ns())),
                elapsed: Duration::from_nanos(r.elapsed_ns),
                still_running: r.running,
                thread: r.tid,
                task: r.task,
                stack: path.iter().map(|s| s.name()).collect(),
                fields: span_fields(r.span),
                dye: crate::dye::name(r.dye),
            }
        })
        .collect()
}

#[cfg(feature = "tracing")]
fn span_fields(span: u64) -> Option<String> {
    (span != 0).then(|| super::spans::slow_fields(span)).flatten()
}

#[cfg(not(feature = "tracing"))]
fn span_fields(_span: u64) -> Option<String> {
    None
}

type Hook = Box<dyn Fn(&SlowCall) + Send + Sync>;
static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

/// Registers `hook` to run (on the hotprof sampler thread) for every slow-call
/// event the rate limit admits, after its file is written.
pub fn on_slow_call(hook: impl Fn(&SlowCall) + Send + Sync + 'static) {
    HOOKS.lock().unwrap_or_else(PoisonError::into_inner).push(Box::new(hook));
}

pub(crate) fn run_hooks(event: &SlowCall) {
    for hook in HOOKS.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        hook(event);
    }
}

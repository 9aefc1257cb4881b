//! Logical stacks as a tree of nodes: node = (parent node, scope). Interning
//! gives each distinct stack a small id without allocating per call; the
//! table is insert-only, shared by all threads and read without locks.
//! Frames store node ids, so a stack is one `u32` and its scopes are found here.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use super::Scope;

/// Parent of outermost frames.
pub(crate) const ROOT: u32 = u32::MAX;
/// Stands for every stack once the table is full.
pub(crate) const OVERFLOW: u32 = u32::MAX - 1;
/// A frame pushed for a `tracing` span and not resolved yet: its node is
/// found from its span id when something reads it (see `enter_span`).
#[cfg(feature = "tracing")]
pub(crate) const SPAN: u32 = u32::MAX - 2;

/// Most distinct logical stacks tracked (about 1.5 MiB of table).
pub(crate) const CAPACITY: usize = 1 << 16;
const MAX_PROBES: usize = 64;

const EMPTY: u32 = 0;
const WRITING: u32 = 1;
const READY: u32 = 2;

struct Node {
    state: AtomicU32,
    parent: AtomicU32,
    scope: OnceLock<&'static Scope>,
}

static NODES: OnceLock<Box<[Node]>> = OnceLock::new();

fn nodes() -> &'static [Node] {
    NODES.get_or_init(|| {
        (0..CAPACITY)
            .map(|_| Node {
                state: AtomicU32::new(EMPTY),
                parent: AtomicU32::new(ROOT),
                scope: OnceLock::new(),
            })
            .collect()
    })
}

fn slot_for(parent: u32, scope: &'static Scope) -> usize {
    let h = (scope as *const Scope as u64) ^ u64::from(parent).rotate_left(29);
    (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 48) as usize & (CAPACITY - 1)
}

/// The node for `scope` called under `parent`, created on first sight.
#[inline]
pub(crate) fn child(parent: u32, scope: &'static Scope) -> u32 {
    let last = scope.last_node.load(Ordering::Relaxed);
    if last != 0 && (last >> 32) as u32 == parent {
        return last as u32;
    }
    let node = intern(parent, scope);
    if node != OVERFLOW {
        scope.last_node.store(u64::from(parent) << 32 | u64::from(node), Ordering::Relaxed);
    }
    node
}

fn intern(parent: u32, scope: &'static Scope) -> u32 {
    let table = nodes();
    let mut i = slot_for(parent, scope);
    for _ in 0..MAX_PROBES {
        let node = &table[i];
        let mut state = node.state.load(Ordering::Acquire);
        if state == EMPTY {
            match node.state.compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => {
                    node.parent.store(parent, Ordering::Relaxed);
                    let _ = node.scope.set(scope);
                    node.state.store(READY, Ordering::Release);
                    return i as u32;
                }
                Err(now) => state = now,
            }
        }
        while state == WRITING {
            std::hint::spin_loop();
            state = node.state.load(Ordering::Acquire);
        }
        let same_scope = node.scope.get().is_some_and(|s| std::ptr::eq(*s, scope));
        if same_scope && node.parent.load(Ordering::Relaxed) == parent {
            return i as u32;
        }
        i = (i + 1) & (CAPACITY - 1);
    }
    OVERFLOW
}

fn ready(node: u32) -> Option<&'static Node> {
    nodes().get(node as usize).filter(|n| n.state.load(Ordering::Acquire) == READY)
}

/// The scope a node stands for.
pub(crate) fn scope(node: u32) -> Option<&'static Scope> {
    ready(node)?.scope.get().copied()
}

/// The scopes of a node's stack, innermost first (at most 256 deep).
pub(crate) fn path(mut node: u32) -> Vec<&'static Scope> {
    let mut out = Vec::new();
    while let Some(n) = ready(node) {
        if out.len() >= 256 {
            break;
        }
        out.extend(n.scope.get().copied());
        node = n.parent.load(Ordering::Relaxed);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    static A: Scope = Scope::new("a", "f.rs", 1, 0);
    static B: Scope = Scope::new("b", "f.rs", 2, 0);

    #[test]
    fn interning_is_stable_and_paths_come_back() {
        let a = child(ROOT, &A);
        let ab = child(a, &B);
        assert_eq!(child(ROOT, &A), a);
        assert_eq!(child(a, &B), ab);
        assert_ne!(child(ROOT, &B), ab);
        let names: Vec<_> = path(ab).iter().map(|s| s.name()).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(scope(ab).map(Scope::name), Some("b"));
        assert!(path(OVERFLOW).is_empty());
    }
}

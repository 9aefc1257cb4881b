//! A frame of a logical stack, and a fixed array of them: the storage that
//! threads and tasks share. Written by one owner at a time, read by the
//! dumper and the sampler through atomics.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::nodes;

/// An active marked call: its stack node and when it started.
#[derive(Debug)]
pub(crate) struct Frame {
    pub node: AtomicU32,
    pub start_ns: AtomicU64,
    /// A slow-call event was already reported for this call.
    pub flagged: AtomicBool,
    /// The `tracing` span this frame stands for (its id), or 0.
    pub span: AtomicU64,
}

impl Frame {
    pub(crate) const fn new() -> Frame {
        Frame {
            node: AtomicU32::new(nodes::ROOT),
            start_ns: AtomicU64::new(0),
            flagged: AtomicBool::new(false),
            span: AtomicU64::new(0),
        }
    }

    pub(crate) fn set(&self, node: u32, start_ns: u64) {
        self.start_ns.store(start_ns, Ordering::Relaxed);
        self.flagged.store(false, Ordering::Relaxed);
        self.span.store(0, Ordering::Relaxed);
        self.node.store(node, Ordering::Relaxed);
    }
}

/// What a reader sees of one frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameView {
    pub node: u32,
    pub start_ns: u64,
    /// The `tracing` span it stands for, or 0.
    pub span: u64,
    /// The frame itself, to flag it as reported.
    pub frame: &'static Frame,
}

/// A stack of frames with a depth, for one thread or one task.
#[derive(Debug)]
pub(crate) struct FrameStack<const N: usize> {
    pub depth: AtomicU32,
    pub frames: [Frame; N],
}

impl<const N: usize> FrameStack<N> {
    pub(crate) const fn new() -> Self {
        FrameStack { depth: AtomicU32::new(0), frames: [const { Frame::new() }; N] }
    }

    /// The innermost frame.
    #[inline]
    pub(crate) fn top(&self) -> Option<&Frame> {
        let d = self.depth.load(Ordering::Relaxed) as usize;
        d.checked_sub(1).and_then(|i| self.frames.get(i))
    }

    /// The node of the innermost frame, or ROOT.
    #[inline]
    pub(crate) fn top_node(&self) -> u32 {
        self.top().map_or(nodes::ROOT, |f| f.node.load(Ordering::Relaxed))
    }

    /// Active frames, outermost first (empty slots skipped).
    pub(crate) fn snapshot(&'static self) -> Vec<FrameView> {
        let d = (self.depth.load(Ordering::Acquire) as usize).min(N);
        self.frames[..d]
            .iter()
            .map(|f| FrameView {
                node: f.node.load(Ordering::Relaxed),
                start_ns: f.start_ns.load(Ordering::Relaxed),
                span: f.span.load(Ordering::Relaxed),
                frame: f,
            })
            .filter(|f| f.node != nodes::ROOT)
            .collect()
    }
}

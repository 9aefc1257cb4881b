//! The logical-stacks section of a thread dump: every thread and task inside
//! marked calls, grouped like Go's `goroutine?debug=1` (identical stacks once,
//! with a count) and listed one by one like `debug=2`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::frames::FrameView;
use super::{clock, nodes, tasks, threads};

/// Most tasks listed one by one; the grouped section always covers all.
pub(crate) const MAX_LISTED_TASKS: usize = 10_000;

/// A group of the debug=1 section: tasks or threads, the dye, the stack's nodes.
type GroupKey = (bool, u32, Vec<u32>);

/// Who holds a logical stack, and the dye of its traffic (0 for none).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Holder {
    Thread {
        tid: i32,
        dye: u32,
    },
    Task {
        serial: u64,
        last_tid: i32,
        dye: u32,
    },
    /// An async task parked inside `tracing` spans, by its innermost span.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    Span {
        id: u64,
        created_tid: i32,
        dye: u32,
    },
}

impl Holder {
    fn dye(&self) -> u32 {
        match self {
            Holder::Thread { dye, .. } | Holder::Task { dye, .. } | Holder::Span { dye, .. } => *dye,
        }
    }
}

/// A copy of every logical stack at one instant.
#[derive(Debug)]
pub(crate) struct Snapshot {
    now_ns: u64,
    stacks: Vec<(Holder, Vec<FrameView>)>,
}

/// Reads every live thread's and task's logical stack.
pub(crate) fn snapshot() -> Snapshot {
    let now_ns = clock::precise_ns();
    let mut stacks = Vec::new();
    for t in threads::all().into_iter().filter(|t| t.is_live()) {
        #[cfg_attr(not(feature = "tracing"), allow(unused_mut))]
        let mut frames = t.stack.snapshot();
        #[cfg(feature = "tracing")]
        resolve_spans(&mut frames);
        if !frames.is_empty() {
            let holder =
                Holder::Thread { tid: t.tid.load(Ordering::Relaxed), dye: t.dye.load(Ordering::Relaxed) };
            stacks.push((holder, frames));
        }
    }
    for rec in tasks::in_use() {
        let frames = rec.stack.snapshot();
        if !frames.is_empty() {
            let holder = Holder::Task {
                serial: rec.serial.load(Ordering::Relaxed),
                last_tid: rec.last_tid.load(Ordering::Relaxed),
                dye: rec.dye.load(Ordering::Relaxed),
            };
            stacks.push((holder, frames));
        }
    }
    #[cfg(feature = "tracing")]
    stacks.extend(parked_spans());
    stacks.sort_by(|a, b| a.0.cmp(&b.0));
    Snapshot { now_ns, stacks }
}

impl Snapshot {
    /// Number of (threads, tasks) inside marked calls.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let threads = self.stacks.iter().filter(|(h, _)| matches!(h, Holder::Thread { .. })).count();
        (threads, self.stacks.len() - threads)
    }

    /// The section text; `names` maps thread ids to names.
    pub(crate) fn render(&self, names: &HashMap<i32, String>) -> String {
        let (n_threads, n_tasks) = self.counts();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "logical stacks: {n_threads} threads and {n_tasks} tasks in #[hotprof::profile] calls and tracing spans"
        );
        if self.stacks.is_empty() {
            return out;
        }
        self.render_grouped(&mut out);
        self.render_each(&mut out, names);
        out
    }

    fn elapsed(&self, f: &FrameView) -> f64 {
        self.now_ns.saturating_sub(f.start_ns) as f64 / 1e9
    }

    /// debug=1: one entry per distinct stack, biggest groups first.
    fn render_grouped(&self, out: &mut String) {
        let mut groups: BTreeMap<GroupKey, Vec<&[FrameView]>> = BTreeMap::new();
        for (holder, frames) in &self.stacks {
            let is_task = !matches!(holder, Holder::Thread { .. });
            let key = (is_task, holder.dye(), frames.iter().map(|f| f.node).collect());
            groups.entry(key).or_default().push(frames);
        }
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.1.len()));
        let _ = writeln!(out, "\ngrouped (like goroutine?debug=1):");
        for ((is_task, dye, _), members) in groups {
            let kind = if is_task { "tasks" } else { "threads" };
            let _ = writeln!(out, "\n{} {kind} @", members.len());
            write_dye(out, dye);
            let Some(first) = members.first() else { continue };
            for (depth, f) in first.iter().enumerate().rev() {
                let longest =
                    members.iter().filter_map(|m| m.get(depth)).map(|f| self.elapsed(f)).fold(0.0, f64::max);
                let _ = writeln!(out, "#\t{} (longest {longest:.3}s)", scope_label(f.node));
            }
        }
    }

    /// debug=2: every holder with its stack, innermost first, and elapsed times.
    fn render_each(&self, out: &mut String, names: &HashMap<i32, String>) {
        let _ = writeln!(out, "\neach (like goroutine?debug=2):");
        let mut listed_tasks = 0;
        let mut skipped = 0;
        for (holder, frames) in &self.stacks {
            match holder {
                Holder::Thread { tid, .. } => {
                    let name = names.get(tid).map_or("?", String::as_str);
                    let _ = writeln!(out, "\nthread {tid} \"{name}\":");
                }
                Holder::Task { .. } | Holder::Span { .. } if listed_tasks == MAX_LISTED_TASKS => {
                    skipped += 1;
                    continue;
                }
                Holder::Task { serial, last_tid, .. } => {
                    listed_tasks += 1;
                    let _ = writeln!(out, "\ntask {serial} [last polled on thread {last_tid}]:");
                }
                Holder::Span { id, created_tid, .. } => {
                    listed_tasks += 1;
                    let _ = writeln!(out, "\ntask {id} [span created on thread {created_tid}]:");
                }
            }
            write_dye(out, holder.dye());
            for f in frames.iter().rev() {
                let _ = writeln!(out, "{}, elapsed {:.3}s", frame_label(f), self.elapsed(f));
                if let Some(scope) = nodes::scope(f.node) {
                    let (file, line) = scope.location();
                    let _ = writeln!(out, "\t{file}:{line}");
                }
            }
        }
        if skipped > 0 {
            let _ =
                writeln!(out, "\n...{skipped} more tasks not listed (the grouped section counts them)...");
        }
    }
}

/// Async tasks parked inside `tracing` spans, as task stacks.
#[cfg(feature = "tracing")]
fn parked_spans() -> Vec<(Holder, Vec<FrameView>)> {
    /// Parked span frames are no thread's or task's: nothing flags them.
    static UNOWNED: super::frames::Frame = super::frames::Frame::new();
    let mut out = Vec::new();
    for p in super::spans::parked() {
        let mut node = nodes::ROOT;
        let frames = p
            .chain
            .iter()
            .map(|&(scope, span, start_ns)| {
                node = nodes::child(node, scope);
                FrameView { node, start_ns, span, frame: &UNOWNED }
            })
            .collect();
        out.push((Holder::Span { id: p.id, created_tid: p.tid, dye: p.dye }, frames));
    }
    out
}

/// Span frames a thread has not resolved (see `enter_span`): each gets the
/// node of its span's scope under the frame below, and the span's start.
/// Frames of spans no longer tracked are dropped.
#[cfg(feature = "tracing")]
fn resolve_spans(frames: &mut Vec<FrameView>) {
    let mut node = nodes::ROOT;
    frames.retain_mut(|f| {
        if f.node == nodes::SPAN {
            let Some((scope, since)) = super::spans::scope_and_since(f.span) else { return false };
            (f.node, f.start_ns) = (nodes::child(node, scope), since);
        }
        node = f.node;
        true
    });
}

/// Go's `# labels: {"dye":"canary"}` line, for a stack in dyed traffic.
fn write_dye(out: &mut String, dye: u32) {
    if let Some(tag) = crate::dye::name(dye) {
        let _ = writeln!(out, "{}", crate::labels::line(&[("dye", tag)]));
    }
}

/// A frame's scope, with the fields of the `tracing` span it stands for:
/// `heron_request{id=7 client="osprey"}`.
fn frame_label(f: &FrameView) -> String {
    #[cfg(feature = "tracing")]
    if let Some(fields) = (f.span != 0).then(|| super::spans::fields(f.span)).flatten() {
        return format!("{}{{{fields}}}", scope_label(f.node));
    }
    scope_label(f.node).to_string()
}

fn scope_label(node: u32) -> &'static str {
    match nodes::scope(node) {
        Some(scope) => scope.name(),
        None if node == nodes::OVERFLOW => "(more distinct stacks than hotprof tracks)",
        None => "?",
    }
}

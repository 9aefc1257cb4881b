//! Heap profiles from the samples: a snapshot (allocations since the start,
//! blocks live now), and its encodings, Go's pprof protobuf and Go's
//! `debug=1` text. Values are unbiased as Go does: a sample of a block of
//! `size` bytes stands for `1 / (1 - exp(-size/rate))` blocks.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use super::collector::{self, OVERFLOW, StackKey};
use super::{live, sampling, stats};
use crate::pprof_proto::{self, ProfileBuilder, ProtoFrame};
use crate::stacks::Symbolizer;

/// Samples of one (stack, block size): allocated since the start, live now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub alloc: i64,
    pub inuse: i64,
}

/// Where the samples of a record were taken.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Origin {
    /// An unwound stack (see `collector::StackKey`).
    Stack(u32),
    /// Taken while the collector was behind: no stack was kept.
    Stackless,
    /// Its stack came after the stack table was full.
    Overflow,
}

/// The heap sampler's state at one moment.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub taken: SystemTime,
    /// Mean bytes between samples.
    pub rate: u64,
    /// Samples per (origin, block size). Stackless samples are kept as one
    /// record of their mean size, as Go keeps every record.
    pub records: BTreeMap<(Origin, usize), Counts>,
    pub stacks: HashMap<u32, StackKey>,
    /// Samples whose block found no room in the live table.
    pub untracked: u64,
}

/// Drains the ring and reads the counts and the live table.
pub(crate) fn snapshot() -> Snapshot {
    let tallies = collector::drained();
    let origin = |id: u32| match id {
        stats::STACKLESS => Origin::Stackless,
        OVERFLOW => Origin::Overflow,
        id => Origin::Stack(id),
    };
    let mut records: BTreeMap<(Origin, usize), Counts> = BTreeMap::new();
    for (&(id, size), &n) in &tallies.counts {
        records.entry((origin(id), size)).or_default().alloc += n as i64;
    }
    let (stackless, stackless_bytes) = stats::stackless();
    let stackless_size = stackless_bytes.checked_div(stackless).unwrap_or(0) as usize;
    if stackless > 0 {
        records.entry((Origin::Stackless, stackless_size)).or_default().alloc += stackless as i64;
    }
    live::for_each(|id, size| match origin(id) {
        _ if id == live::UNRESOLVED => {} // sampled since the drain: in the next snapshot
        Origin::Stackless => records.entry((Origin::Stackless, stackless_size)).or_default().inuse += 1,
        o => records.entry((o, size)).or_default().inuse += 1,
    });
    let stacks = records
        .keys()
        .filter_map(|(o, _)| match o {
            Origin::Stack(id) => tallies.stacks.get(*id as usize).map(|k| (*id, k.clone())),
            _ => None,
        })
        .collect();
    Snapshot {
        taken: SystemTime::now(),
        rate: sampling::RATE.load(Ordering::Relaxed),
        records,
        stacks,
        untracked: stats::UNTRACKED.load(Ordering::Relaxed),
    }
}

impl Snapshot {
    /// What happened between `earlier` and this snapshot (`seconds=N`):
    /// every value is this one's minus the earlier one's, as Go's deltas.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn since(mut self, earlier: &Snapshot) -> Snapshot {
        for (key, before) in &earlier.records {
            let now = self.records.entry(key.clone()).or_default();
            now.alloc -= before.alloc;
            now.inuse -= before.inuse;
        }
        for (id, key) in &earlier.stacks {
            self.stacks.entry(*id).or_insert_with(|| key.clone());
        }
        self.records.retain(|_, c| *c != Counts::default());
        self.untracked -= earlier.untracked.min(self.untracked);
        self
    }

    /// Live sampled blocks (the index page's count).
    pub(crate) fn live_samples(&self) -> i64 {
        self.records.values().map(|c| c.inuse).sum()
    }

    /// (objects, bytes) that `count` samples of `size`-byte blocks stand for.
    fn scaled(&self, count: i64, size: usize) -> (i64, i64) {
        if self.rate <= 1 || size == 0 {
            return (count, count * size as i64);
        }
        let scale = 1.0 / (1.0 - (-(size as f64) / self.rate as f64).exp());
        let objects = count as f64 * scale;
        (objects.round() as i64, (objects * size as f64).round() as i64)
    }

    /// Unbiased totals: (in-use objects, in-use bytes, allocated objects, allocated bytes).
    pub(crate) fn totals(&self) -> (i64, i64, i64, i64) {
        self.records.iter().fold((0, 0, 0, 0), |t, ((_, size), c)| {
            let (io, ib) = self.scaled(c.inuse, *size);
            let (ao, ab) = self.scaled(c.alloc, *size);
            (t.0 + io, t.1 + ib, t.2 + ao, t.3 + ab)
        })
    }
}

/// A symbolized stack: its labels and frames (innermost first).
struct Named {
    labels: Vec<(&'static str, String)>,
    frames: Vec<ProtoFrame>,
}

/// Symbolizes every stack of `snap` in one batch, without the allocator's
/// own frames on top.
fn name_stacks(snap: &Snapshot, symbolizer: &mut Symbolizer) -> HashMap<Origin, Named> {
    let stacks: Vec<(&u32, &StackKey)> = snap.stacks.iter().collect();
    let pcs: Vec<&[usize]> = stacks.iter().map(|(_, k)| k.frames.as_slice()).collect();
    let mut out: HashMap<Origin, Named> = stacks
        .iter()
        .zip(pprof_proto::machine_stacks(&pcs, symbolizer))
        .map(|((id, key), frames)| {
            let mut labels = vec![("thread", key.thread.clone())];
            labels.extend(crate::labels::scope_and_dye(key.node, key.dye));
            (Origin::Stack(**id), Named { labels, frames: without_allocator(frames) })
        })
        .collect();
    let logical = |what: &str| Named { labels: Vec::new(), frames: vec![ProtoFrame::logical(what, "", 0)] };
    out.insert(Origin::Stackless, logical("[heap samples taken while the collector was behind: no stack]"));
    out.insert(Origin::Overflow, logical("[heap samples past the stack table's limit]"));
    out
}

/// Drops what the sampler, the allocator shims and `alloc::alloc` put on
/// top of every stack (saying nothing): whole frames whose code is theirs
/// (judged by the frame's outermost line, the function the code belongs
/// to), then their lines inlined into the first frame left, which is the
/// caller's own. A stack without names keeps them.
fn without_allocator(mut frames: Vec<ProtoFrame>) -> Vec<ProtoFrame> {
    let top = frames.iter().take_while(|f| f.lines.last().is_some_and(|l| internal(&l.function))).count();
    frames.drain(..top);
    if let Some(first) = frames.first_mut() {
        let inlined = first.lines.len().saturating_sub(1);
        let ours = first.lines.iter().take(inlined).take_while(|l| internal(&l.function)).count();
        first.lines.drain(..ours);
    }
    frames
}

/// Whether `function` is the sampler's, an allocator shim or `alloc::alloc`.
/// With `debug = "line-tables-only"` inlined functions have their bare
/// names only (and their generic arguments); at the top of an allocation's
/// stack those names are these.
fn internal(function: &str) -> bool {
    const PATHS: [&str; 6] =
        ["hotprof::heap::", "hotprof::sys::", "hotprof::SampledAlloc", "__rust_", "__rg_", "__rdl_"];
    const BARE: [&str; 18] = [
        "on_alloc",
        "on_free",
        "due",
        "alloc",
        "alloc_zeroed",
        "realloc",
        "alloc_impl",
        "alloc_impl_runtime",
        "allocate",
        "allocate_zeroed",
        "grow",
        "grow_impl",
        "grow_impl_runtime",
        "grow_zeroed",
        "shrink",
        "shrink_impl",
        "shrink_impl_runtime",
        "exchange_malloc",
    ];
    let name = function.trim_start_matches('<');
    let bare = name.split('<').next().unwrap_or(name);
    name.starts_with("alloc::alloc::") || PATHS.iter().any(|p| name.contains(p)) || BARE.contains(&bare)
}

/// Which sample type a viewer shows first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// `heap`: `inuse_space` (the last type, Go's default).
    Heap,
    /// `allocs`: `alloc_space`.
    Allocs,
}

/// The snapshot as gzipped pprof protobuf, Go's heap profile layout.
pub(crate) fn pprof(
    snap: &Snapshot,
    view: View,
    duration: Option<Duration>,
    comments: &[String],
    symbolizer: &mut Symbolizer,
) -> io::Result<Vec<u8>> {
    let named = name_stacks(snap, symbolizer);
    let mut b = ProfileBuilder::new(&[
        ("alloc_objects", "count"),
        ("alloc_space", "bytes"),
        ("inuse_objects", "count"),
        ("inuse_space", "bytes"),
    ]);
    b.time(duration.map_or(snap.taken, |d| snap.taken - d), duration.unwrap_or_default());
    b.period("space", "bytes", snap.rate as i64);
    if view == View::Allocs {
        b.default_sample_type("alloc_space");
    }
    for c in comments {
        b.comment(c);
    }
    b.comment(&note(snap));
    for ((origin, size), c) in &snap.records {
        let Some(n) = named.get(origin) else { continue };
        let (ao, ab) = snap.scaled(c.alloc, *size);
        let (io, ib) = snap.scaled(c.inuse, *size);
        let labels: Vec<(&str, &str)> = n.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        b.sample_full(&n.frames, &[ao, ab, io, ib], &labels, &[("bytes", *size as i64)]);
    }
    b.encode_gz()
}

/// What the sampler did, for the profile's comments.
fn note(snap: &Snapshot) -> String {
    let stackless: i64 =
        snap.records.iter().filter(|((o, _), _)| *o == Origin::Stackless).map(|(_, c)| c.alloc).sum();
    format!(
        "heap sampler: one sample per {} bytes allocated on average (HOTPROF_HEAP_RATE); \
         {} sampled blocks live; {stackless} samples without a stack (collector behind), \
         {} not tracked while live (table full)",
        snap.rate,
        snap.live_samples(),
        snap.untracked
    )
}

/// Go's `debug=1` heap text: `heap profile: INUSE_N: INUSE_B [ALLOC_N:
/// ALLOC_B] @ heap/2×RATE`, then one record per (stack, size), most bytes
/// in use first, with the raw (unscaled) sample counts and bytes as Go
/// prints them (readers scale them with the rate in the header), its
/// labels, and `#\tPC\tfunction\tfile:line` per frame.
pub(crate) fn text(snap: &Snapshot, symbolizer: &mut Symbolizer) -> String {
    let named = name_stacks(snap, symbolizer);
    let mut rows: Vec<(&(Origin, usize), &Counts)> = snap.records.iter().collect();
    rows.sort_by_key(|((_, size), c)| std::cmp::Reverse(c.inuse * *size as i64));
    let raw = |count: i64, size: usize| (count, count * size as i64);
    let (mut t0, mut t1, mut t2, mut t3) = (0, 0, 0, 0);
    for ((_, size), c) in &rows {
        let ((io, ib), (ao, ab)) = (raw(c.inuse, *size), raw(c.alloc, *size));
        (t0, t1, t2, t3) = (t0 + io, t1 + ib, t2 + ao, t3 + ab);
    }
    let mut out = format!("heap profile: {t0}: {t1} [{t2}: {t3}] @ heap/{}\n", 2 * snap.rate);
    for ((origin, size), c) in rows {
        let Some(n) = named.get(origin) else { continue };
        let ((io, ib), (ao, ab)) = (raw(c.inuse, *size), raw(c.alloc, *size));
        let pcs: Vec<String> =
            n.frames.iter().filter(|f| f.address != 0).map(|f| format!("{:#x}", f.address)).collect();
        let _ = writeln!(out, "{io}: {ib} [{ao}: {ab}] @ {}", pcs.join(" "));
        if !n.labels.is_empty() {
            let pairs: Vec<(&str, &str)> = n.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let _ = writeln!(out, "{}", crate::labels::line(&pairs));
        }
        for f in &n.frames {
            for l in &f.lines {
                let place =
                    if l.file.is_empty() { "??".to_string() } else { format!("{}:{}", l.file, l.line) };
                let _ = writeln!(out, "#\t{:#x}\t{}\t{place}", f.address, l.function);
            }
        }
        out.push('\n');
    }
    let (io, ib, ao, ab) = snap.totals();
    let _ = write!(
        out,
        "\n# hotprof heap sampler\n# Rate = {}\n# InuseObjects = {io}\n# InuseBytes = {ib}\n\
         # AllocObjects = {ao}\n# AllocBytes = {ab}\n# LiveSamples = {}\n# Untracked = {}\n",
        snap.rate,
        snap.live_samples(),
        snap.untracked
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(rate: u64, records: &[((Origin, usize), Counts)]) -> Snapshot {
        Snapshot {
            taken: SystemTime::now(),
            rate,
            records: records.iter().cloned().collect(),
            stacks: HashMap::new(),
            untracked: 0,
        }
    }

    #[test]
    fn values_are_unbiased_as_go_does() {
        let s = snap(512 * 1024, &[]);
        // A block as big as the rate is sampled with probability 1 - 1/e.
        let (objects, bytes) = s.scaled(1000, 512 * 1024);
        let expected = 1000.0 / (1.0 - (-1f64).exp());
        assert_eq!(objects, expected.round() as i64);
        assert_eq!(bytes, (expected * 512.0 * 1024.0).round() as i64);
        // Small blocks stand for about rate/size blocks each.
        let (objects, _) = s.scaled(1, 4096);
        assert!((128..=129).contains(&objects), "{objects}");
        assert_eq!(snap(1, &[]).scaled(3, 10), (3, 30), "rate 1 samples every block");
    }

    #[test]
    fn deltas_subtract_every_value() {
        let c = |alloc, inuse| Counts { alloc, inuse };
        let before = snap(1, &[((Origin::Stack(0), 8), c(2, 2)), ((Origin::Stack(1), 8), c(1, 1))]);
        let after = snap(1, &[((Origin::Stack(0), 8), c(5, 1)), ((Origin::Stack(1), 8), c(1, 1))]);
        let d = after.since(&before);
        assert_eq!(d.records.len(), 1, "unchanged records go");
        assert_eq!(d.records[&(Origin::Stack(0), 8)], c(3, -1));
    }

    #[test]
    fn the_allocator_frames_on_top_go() {
        let f = |n: &str| ProtoFrame::logical(n, "", 0);
        let mut user = f("app::work");
        user.lines.insert(0, f("alloc::alloc::alloc").lines[0].clone()); // inlined into app::work
        let frames = vec![
            f("hotprof::sys::copy_own_stack"),
            f("hotprof::heap::ring::capture"),
            f("<hotprof::heap::SampledAlloc<A> as core::alloc::global::GlobalAlloc>::alloc"),
            f("__rustc::__rust_alloc"),
            f("alloc::alloc::Global::alloc_impl"),
            f("alloc::raw_vec::finish_grow"),
            user.clone(),
            f("hotprof::heap::collector::drain"), // deeper down: not on top, kept
        ];
        let kept = without_allocator(frames);
        assert_eq!(kept[0].lines[0].function, "alloc::raw_vec::finish_grow");
        assert_eq!(kept.len(), 3);
        assert_eq!(kept[1], user, "only the first frame left loses inlined lines");
        // line-tables-only: the shims inlined into the caller have bare names.
        let mut bare = f("app::work");
        for name in [
            "try_allocate_in<alloc::alloc::Global>",
            "allocate",
            "alloc_impl",
            "alloc",
            "__rust_alloc",
            "alloc<std::alloc::System>",
            "on_alloc",
        ] {
            bare.lines.insert(0, f(name).lines[0].clone());
        }
        let kept = without_allocator(vec![f("hotprof::heap::sampling::crossed"), bare]);
        let names: Vec<&str> = kept[0].lines.iter().map(|l| l.function.as_str()).collect();
        assert_eq!(names, ["try_allocate_in<alloc::alloc::Global>", "app::work"]);
        let unnamed = vec![ProtoFrame { address: 1, lines: vec![], mapping: None }];
        assert_eq!(without_allocator(unnamed).len(), 1);
    }
}

//! The scope profile: completed calls and sampled wall time per logical
//! stack since the previous scope profile, as gzipped pprof protobuf with
//! sample types `calls/count` and `wall/nanoseconds`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use super::{nodes, threads, ticker};
use crate::pprof_proto::{ProfileBuilder, ProtoFrame};

/// (calls, wall ns) per stack node.
type Totals = HashMap<u32, (u64, u64)>;

/// Totals at the previous profile, to report only what happened since.
static LAST: Mutex<Option<(SystemTime, Totals)>> = Mutex::new(None);

/// (calls, wall ns) per stack node, summed over every thread ever registered.
fn totals() -> Totals {
    let mut totals = Totals::new();
    for t in threads::all() {
        for (node, calls) in t.calls.totals() {
            totals.entry(node).or_default().0 += calls;
        }
    }
    for node in 0..nodes::CAPACITY as u32 {
        let wall = ticker::wall_ns(node);
        if wall > 0 {
            totals.entry(node).or_default().1 += wall;
        }
    }
    totals
}

/// Builds the profile of what happened since the previous one; `comments` go
/// in as pprof comments (metadata).
pub(crate) fn build(comments: &[String]) -> std::io::Result<Vec<u8>> {
    let now = SystemTime::now();
    let totals = totals();
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    let (since, before) = last.take().unwrap_or_else(|| (crate::meta::process_start(), HashMap::new()));
    let mut b = ProfileBuilder::new(&[("calls", "count"), ("wall", "nanoseconds")]);
    b.time(since, now.duration_since(since).unwrap_or_default());
    b.period("wall", "nanoseconds", ticker::SAMPLE_EVERY.as_nanos() as i64);
    for c in comments {
        b.comment(c);
    }
    let mut nodes_sorted: Vec<_> = totals.iter().collect();
    nodes_sorted.sort_by_key(|(node, _)| **node);
    for (&node, &(calls, wall)) in nodes_sorted {
        let (c0, w0) = before.get(&node).copied().unwrap_or_default();
        let (dc, dw) = (calls.saturating_sub(c0), wall.saturating_sub(w0));
        if dc == 0 && dw == 0 {
            continue;
        }
        let stack: Vec<ProtoFrame> = nodes::path(node)
            .iter()
            .map(|s| {
                let (file, line) = s.location();
                ProtoFrame::logical(s.name(), file, i64::from(line))
            })
            .collect();
        if !stack.is_empty() {
            b.sample(&stack, &[dc as i64, dw as i64]);
        }
    }
    *last = Some((now, totals));
    b.encode_gz()
}

/// True once any marked call has been recorded.
pub(crate) fn has_data() -> bool {
    threads::all().iter().any(|t| t.calls.totals().next().is_some())
}

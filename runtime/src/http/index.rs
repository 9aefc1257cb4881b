//! The `/debug/pprof/` page, in the shape of Go's: a table of profiles with
//! counts, the full dump link, then one description per profile.

use std::fmt::Write as _;

/// (name, link, description) of every profile we serve, sorted by name.
const PROFILES: &[(&str, &str, &str)] = &[
    (
        "allocs",
        "allocs?debug=1",
        "A sampling of all past memory allocations (hotprof::SampledAlloc). Listed only when the \
         program's global allocator samples.",
    ),
    ("cmdline", "cmdline", "The command line invocation of the current program"),
    (
        "flamegraph",
        "flamegraph",
        "CPU profile drawn as a flamegraph SVG (hotprof). You can specify the duration in the seconds \
         GET parameter.",
    ),
    (
        "goroutine",
        "goroutine?debug=1",
        "Stack traces of all current threads, with the logical stacks of #[hotprof::profile] calls \
         (hotprof's thread dump). Use debug=2 as a query parameter to export every thread one by one.",
    ),
    (
        "heap",
        "heap?debug=1",
        "A sampling of memory allocations of live objects (hotprof::SampledAlloc). The gc GET \
         parameter is accepted and ignored: Rust has no collector to run first.",
    ),
    (
        "profile",
        "profile",
        "CPU profile. You can specify the duration in the seconds GET parameter. After you get the \
         profile file, use the go tool pprof command to investigate the profile.",
    ),
    (
        "scopes",
        "scopes",
        "Calls and wall time of #[hotprof::profile] functions since the previous scope profile \
         (hotprof; gzipped pprof).",
    ),
    ("symbol", "symbol", "Maps given program counters to function names."),
    (
        "threadcreate",
        "threadcreate?debug=1",
        "Live OS threads grouped by name, trailing digits as * (hotprof). Not the stack traces that \
         led to their creation, which a Rust process does not record: each group is one pseudo-frame \
         naming it.",
    ),
];

/// The page; `threads` is the count shown for `goroutine` and
/// `threadcreate`, `heap` the records of the heap profile (`None`: no heap
/// profiling, so no `heap` and `allocs` rows), `capture_on` the switch.
pub(crate) fn page(threads: usize, heap: Option<usize>, capture_on: bool) -> String {
    let mut out = String::from(
        "<html>\n<head>\n<title>/debug/pprof/</title>\n<style>\n.profile-name{\n\tdisplay:inline-block;\n\
         \twidth:6rem;\n}\n</style>\n</head>\n<body>\n/debug/pprof/\n<br>\n\
         <p>Set debug=1 as a query parameter to export in legacy text format</p>\n<br>\n\
         Types of profiles available:\n<table>\n<thead><td>Count</td><td>Profile</td></thead>\n",
    );
    let served = |name: &str| heap.is_some() || !matches!(name, "heap" | "allocs");
    for (name, href, _) in PROFILES.iter().filter(|p| served(p.0)) {
        let count = match *name {
            "goroutine" | "threadcreate" => threads,
            "heap" | "allocs" => heap.unwrap_or(0),
            _ => 0,
        };
        let _ = write!(out, "\t<tr>\n\t<td>{count}</td><td><a href='{href}'>{name}</a></td>\n\t</tr>\n");
    }
    out.push_str(
        "</table>\n<a href=\"goroutine?debug=2\">full goroutine stack dump</a>\n<br>\n<p>\n\
         Profile Descriptions:\n<ul>\n",
    );
    for (name, _, desc) in PROFILES.iter().filter(|p| served(p.0)) {
        let _ = writeln!(out, "<li><div class=profile-name>{name}: </div> {desc}</li>");
    }
    let state = if capture_on { "on" } else { "off" };
    let _ = write!(
        out,
        "</ul>\n</p>\n<p>hotprof: capture is {state}. Turn it on or off with a POST to \
         <code>admin/enable</code> or <code>admin/disable</code>.</p>\n</body>\n</html>\n"
    );
    out
}

/// Threads of this process, from `/proc/self/task`.
pub(crate) fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_in_gos_shape_sorted_by_name() {
        let page = page(7, None, true);
        assert!(!page.contains("heap"), "no heap rows without heap profiling");
        let with_heap = page_with_heap();
        assert!(with_heap.contains("<td>3</td><td><a href='heap?debug=1'>heap</a></td>"));
        assert!(with_heap.contains("<td>3</td><td><a href='allocs?debug=1'>allocs</a></td>"));
        assert!(page.contains("<title>/debug/pprof/</title>"));
        assert!(page.contains("<td>7</td><td><a href='goroutine?debug=1'>goroutine</a></td>"));
        assert!(page.contains("<td>0</td><td><a href='profile'>profile</a></td>"));
        assert!(page.contains("<td>7</td><td><a href='threadcreate?debug=1'>threadcreate</a></td>"));
        assert!(page.contains("threadcreate: </div> Live OS threads grouped by name"));
        assert!(page.contains("<a href=\"goroutine?debug=2\">full goroutine stack dump</a>"));
        assert!(!page.contains(">trace<"), "Go's trace is not ours to serve");
        let names: Vec<&str> = PROFILES.iter().map(|p| p.0).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }

    fn page_with_heap() -> String {
        page(7, Some(3), true)
    }
}

//! `threadcreate`: Go's profile of the stacks that created OS threads, as
//! close as hotprof can honestly get.
//!
//! Go records a stack each time its runtime starts a thread. A Rust process
//! starts threads through libc, from code hotprof does not see (std, tokio,
//! other libraries, threads that existed before hotprof), so no creation stack
//! exists to report. What we give instead: the live OS threads, read from
//! `/proc/self/task/*/comm`, grouped by name. Each group is one sample whose
//! value is its number of threads, with a single pseudo-frame `thread "NAME"`
//! and a `thread_name` label; a comment in the profile says so.
//!
//! Trailing digits of a name become `*` (`extra-0`, `extra-1` → `extra-*`):
//! numbered threads usually come from one pool, started at one place in the
//! code, which is what Go's grouping by creation stack gathers; so a growing
//! pool shows as one growing count. Names are the kernel's, cut at 15 bytes
//! (`tokio-runtime-worker` is `tokio-runtime-w`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use axum::response::Response;

use super::responses;
use crate::pprof_proto::{ProfileBuilder, ProtoFrame};

/// Said in the profile's comments and at the end of the text.
const NOT_CREATION_STACKS: &str = "hotprof: live OS threads grouped by name (trailing digits as *), each \
     group one pseudo-frame; these are not the stacks that created the threads, which hotprof cannot know";

/// The answer to `threadcreate?debug=N`; the caller has checked `seconds`
/// and the capture switch. `debug=0`: gzipped pprof with `comments`; 1 or 2:
/// text (Go answers every `debug > 0` with its text format).
pub(crate) fn answer(debug: u8, comments: &[String]) -> Response {
    let started = Instant::now();
    let names = match live_thread_names() {
        Ok(names) => names,
        Err(e) => {
            return responses::internal(&format!("hotprof: cannot list threads in /proc/self/task: {e}"));
        }
    };
    let groups = groups(&names);
    if debug != 0 {
        return responses::text(text(&groups));
    }
    let took = started.elapsed().max(Duration::from_nanos(1));
    match profile(&groups, comments, took) {
        Ok(gz) => responses::profile("threadcreate", gz),
        Err(e) => responses::internal(&format!("hotprof: cannot encode the profile: {e}")),
    }
}

/// The name of every live thread; one that exits while we read is left out.
fn live_thread_names() -> std::io::Result<Vec<String>> {
    let tasks = std::fs::read_dir("/proc/self/task")?;
    Ok(tasks.flatten().filter_map(|task| std::fs::read(task.path().join("comm")).ok()).map(comm).collect())
}

/// A `comm` file's content as a name: the kernel's final newline dropped.
fn comm(bytes: Vec<u8>) -> String {
    let name = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    String::from_utf8_lossy(name).into_owned()
}

/// The group of a thread name: trailing digits become `*`, unless the name
/// is nothing but digits.
fn group_name(name: &str) -> String {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if stem.is_empty() || stem.len() == name.len() { name.to_string() } else { format!("{stem}*") }
}

/// (group, threads), largest first, then by name.
fn groups(names: &[String]) -> Vec<(String, i64)> {
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for name in names {
        *counts.entry(group_name(name)).or_default() += 1;
    }
    let mut groups: Vec<(String, i64)> = counts.into_iter().collect();
    groups.sort_by_key(|(_, n)| std::cmp::Reverse(*n)); // stable: names stay sorted within a count
    groups
}

/// The pseudo-frame naming a group.
fn frame_name(group: &str) -> String {
    format!("thread {group:?}")
}

/// Gzipped pprof: sample type `threadcreate/count`, one sample per group.
fn profile(groups: &[(String, i64)], comments: &[String], took: Duration) -> std::io::Result<Vec<u8>> {
    let mut b = ProfileBuilder::new(&[("threadcreate", "count")]);
    b.time(SystemTime::now(), took);
    b.period("threadcreate", "count", 1);
    for c in comments {
        b.comment(c);
    }
    b.comment(NOT_CREATION_STACKS);
    for (group, count) in groups {
        let frame = ProtoFrame::logical(&frame_name(group), "", 0);
        b.sample_labeled(&[frame], &[*count], &[("thread_name", group)]);
    }
    b.encode_gz()
}

/// Go's `debug=1` shape: `threadcreate profile: total N`, then per group
/// `COUNT @` (no program counters: like Go's groups without a known stack),
/// its label, and `#\t0x0\tthread "NAME"`.
fn text(groups: &[(String, i64)]) -> String {
    let total: i64 = groups.iter().map(|(_, n)| n).sum();
    let mut out = format!("threadcreate profile: total {total}\n");
    for (group, count) in groups {
        let _ = writeln!(out, "{count} @");
        let _ = writeln!(out, "{}", crate::labels::line(&[("thread_name", group)]));
        let _ = writeln!(out, "#\t0x0\t{}\n", frame_name(group));
    }
    let _ = writeln!(out, "# {NOT_CREATION_STACKS}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn trailing_digits_make_one_group() {
        assert_eq!(group_name("extra-12"), "extra-*");
        assert_eq!(group_name("worker7"), "worker*");
        assert_eq!(group_name("tokio-runtime-w"), "tokio-runtime-w");
        assert_eq!(group_name("1234"), "1234");
        assert_eq!(group_name(""), "");
        assert_eq!(group_name("h2o"), "h2o");
    }

    #[test]
    fn comm_drops_the_newline_only() {
        assert_eq!(comm(b"sleeper\n".to_vec()), "sleeper");
        assert_eq!(comm(b"a\nb\n".to_vec()), "a\nb");
        assert_eq!(comm(b"\xffx\n".to_vec()), "\u{fffd}x");
    }

    #[test]
    fn groups_largest_first_then_by_name() {
        let g = groups(&names(&["b", "extra-1", "a", "extra-0", "tokio-runtime-w", "tokio-runtime-w"]));
        let want = [("extra-*", 2), ("tokio-runtime-w", 2), ("a", 1), ("b", 1)];
        assert_eq!(g, want.map(|(n, c)| (n.to_string(), c)));
    }

    #[test]
    fn text_in_gos_debug1_shape() {
        let g = groups(&names(&["main", "pool-1", "pool-2", "odd\"name"]));
        let want = "threadcreate profile: total 4\n\
                    2 @\n# labels: {\"thread_name\":\"pool-*\"}\n#\t0x0\tthread \"pool-*\"\n\n\
                    1 @\n# labels: {\"thread_name\":\"main\"}\n#\t0x0\tthread \"main\"\n\n\
                    1 @\n# labels: {\"thread_name\":\"odd\\\"name\"}\n#\t0x0\tthread \"odd\\\"name\"\n\n";
        let text = text(&g);
        assert_eq!(text, format!("{want}# {NOT_CREATION_STACKS}\n"));
    }

    #[test]
    fn profile_names_groups_and_says_what_it_is() {
        let gz = profile(
            &groups(&names(&["sleeper", "pool-1"])),
            &["app: test 1.0".into()],
            Duration::from_nanos(5),
        )
        .unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8_lossy(&raw);
        for s in ["threadcreate", "count", "thread_name", "thread \"sleeper\"", "pool-*", "app: test 1.0"] {
            assert!(raw.contains(s), "{s}");
        }
        assert!(raw.contains(NOT_CREATION_STACKS));
    }

    #[test]
    fn reads_this_process_threads() {
        let seen = live_thread_names().unwrap();
        assert!(!seen.is_empty());
        assert!(seen.iter().all(|n| !n.ends_with('\n')), "{seen:?}");
    }
}

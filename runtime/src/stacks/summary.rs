//! The grouped summary at the top of a thread dump, like Go's
//! `goroutine?debug=1`: each distinct stack once, with how many threads are
//! on it and their names, biggest group first. Bounded, so a dump of 10,000
//! threads opens with a page, not 30 MB; every thread follows in full.

use std::collections::HashMap;
use std::fmt;

use super::{ThreadInfo, ThreadStatus};

/// Groups shown at most; the rest are counted in one line.
const MAX_GROUPS: usize = 20;
/// Function lines shown per group at most.
const MAX_LINES: usize = 24;
/// Thread names shown per group before "and N more".
const MAX_NAMES: usize = 4;

/// Writes the summary paragraph (after a blank line).
pub(crate) fn write(f: &mut impl fmt::Write, threads: &[ThreadInfo]) -> fmt::Result {
    let groups = groups(threads);
    writeln!(f)?;
    writeln!(
        f,
        "summary ({} threads on {} distinct stacks, biggest group first; every thread follows in full)",
        threads.len(),
        groups.len()
    )?;
    for members in groups.iter().take(MAX_GROUPS) {
        writeln!(f)?;
        write_group(f, members)?;
    }
    if groups.len() > MAX_GROUPS {
        let rest: usize = groups[MAX_GROUPS..].iter().map(Vec::len).sum();
        writeln!(f)?;
        writeln!(
            f,
            "... {} more stacks ({rest} threads), in the full list below",
            groups.len() - MAX_GROUPS
        )?;
    }
    Ok(())
}

/// Threads grouped by their stack (the program counters; threads without
/// one by how they answered), biggest group first, then by first thread id.
fn groups(threads: &[ThreadInfo]) -> Vec<Vec<&ThreadInfo>> {
    let mut by_stack: HashMap<(Vec<usize>, String), Vec<&ThreadInfo>> = HashMap::new();
    for t in threads {
        let pcs: Vec<usize> = t.frames.iter().map(|f| f.pc).collect();
        let how = if pcs.is_empty() { t.status.note() } else { String::new() };
        by_stack.entry((pcs, how)).or_default().push(t);
    }
    let mut groups: Vec<Vec<&ThreadInfo>> = by_stack.into_values().collect();
    groups.sort_by_key(|g| (std::cmp::Reverse(g.len()), g.first().map_or(0, |t| t.tid)));
    groups
}

fn write_group(f: &mut impl fmt::Write, members: &[&ThreadInfo]) -> fmt::Result {
    let Some(first) = members.first() else { return Ok(()) };
    let names: Vec<String> = members.iter().take(MAX_NAMES).map(|t| format!("{:?}", t.name)).collect();
    let more = match members.len().saturating_sub(MAX_NAMES) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    let noun = if members.len() == 1 { "thread" } else { "threads" };
    writeln!(f, "{} {noun} [{}{more}]{}", members.len(), names.join(", "), group_note(first))?;
    let functions: Vec<&str> =
        first.frames.iter().flat_map(|frame| frame.source.iter().map(|s| s.function.as_str())).collect();
    for function in functions.iter().take(MAX_LINES) {
        writeln!(f, "\t{function}")?;
    }
    if functions.len() > MAX_LINES {
        writeln!(f, "\t... {} more frames", functions.len() - MAX_LINES)?;
    }
    Ok(())
}

/// Said of a group whose threads have no stack.
fn group_note(t: &ThreadInfo) -> String {
    match (&t.status, t.frames.is_empty()) {
        (ThreadStatus::Captured { .. } | ThreadStatus::Dumping, _) | (_, false) => String::new(),
        (status, true) => format!(" (no stack{})", status.note()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::stacks::{SourceFrame, StackFrame};

    fn thread(tid: i32, name: &str, pcs: &[usize]) -> ThreadInfo {
        let frames = pcs
            .iter()
            .map(|&pc| StackFrame {
                pc,
                source: Arc::from(vec![SourceFrame {
                    function: format!("f{pc}"),
                    mangled: None,
                    file: None,
                    line: None,
                }]),
                module: None,
            })
            .collect();
        let status = ThreadStatus::Captured { pause: Duration::ZERO, truncated: false };
        ThreadInfo { tid, name: name.into(), state: "sleeping".into(), status, frames }
    }

    #[test]
    fn groups_biggest_first_with_names_abbreviated_and_bounded() {
        let mut threads: Vec<ThreadInfo> =
            (0..6).map(|i| thread(10 + i, &format!("w-{i}"), &[1, 2])).collect();
        threads.push(thread(3, "main", &[7, 8, 9]));
        let mut odd = thread(4, "stuck", &[]);
        odd.status = ThreadStatus::NotAnswering { wchan: None };
        threads.push(odd);
        for i in 0..30 {
            threads.push(thread(100 + i, "lonely", &[1000 + i as usize]));
        }
        let mut text = String::new();
        write(&mut text, &threads).unwrap();
        assert!(text.contains("summary (38 threads on 33 distinct stacks"), "{text}");
        let first_group = text.split("\n\n").nth(1).unwrap();
        assert!(
            first_group.starts_with("6 threads [\"w-0\", \"w-1\", \"w-2\", \"w-3\" and 2 more]\n\tf1\n\tf2"),
            "{text}"
        );
        assert!(text.contains("1 thread [\"stuck\"] (no stack, not answering)"), "{text}");
        assert!(text.contains("... 13 more stacks (13 threads), in the full list below"), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("thread ")), "no line looks like a thread section");
    }
}

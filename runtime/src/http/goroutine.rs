//! `goroutine?debug=0`: the thread dump as a pprof `goroutine/count` profile,
//! one sample per distinct stack, its value the number of threads on it;
//! `debug=1`: the same grouping as text in the shape of Go's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::pprof_proto::{ProfileBuilder, ProtoFrame};
use crate::stacks::{ThreadDump, ThreadInfo};

/// Gzipped pprof of `dump`; `comments` are the usual metadata lines.
pub(crate) fn count_profile(dump: &ThreadDump, comments: &[String]) -> std::io::Result<Vec<u8>> {
    let mut stacks: BTreeMap<Vec<ProtoFrame>, i64> = BTreeMap::new();
    for t in dump.threads() {
        let frames: Vec<ProtoFrame> = t
            .frames
            .iter()
            .flat_map(|f| f.source.iter())
            .map(|s| ProtoFrame {
                function: s.function.clone(),
                file: s.file.clone().unwrap_or_default(),
                line: i64::from(s.line.unwrap_or(0)),
            })
            .collect();
        *stacks.entry(frames).or_default() += 1;
    }
    let mut b = ProfileBuilder::new(&[("goroutine", "count")]);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as i64;
    b.time(now, (dump.capture_time().as_nanos() as i64).max(1));
    b.period("goroutine", "count", 1);
    for c in comments {
        b.comment(c);
    }
    for (frames, count) in &stacks {
        b.sample(frames, &[*count]);
    }
    b.encode_gz()
}

/// Go's `debug=1` text: `goroutine profile: total N`, then one group per
/// distinct (stack, thread name), largest first: `COUNT @ PC PC ...`, the
/// thread name as a label, and `#\tPC\tfunction\tfile:line` per frame.
pub(crate) fn grouped_text(dump: &ThreadDump) -> String {
    let mut groups: BTreeMap<(Vec<usize>, &str), Vec<&ThreadInfo>> = BTreeMap::new();
    for t in dump.threads() {
        let pcs = t.frames.iter().map(|f| f.pc).filter(|pc| *pc != 0).collect();
        groups.entry((pcs, t.name.as_str())).or_default().push(t);
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by_key(|(_, members)| std::cmp::Reverse(members.len()));
    let mut out = format!("goroutine profile: total {}\n", dump.threads().len());
    for ((pcs, name), members) in groups {
        let pcs: Vec<String> = pcs.iter().map(|pc| format!("{pc:#x}")).collect();
        let _ = writeln!(out, "{} @ {}", members.len(), pcs.join(" "));
        let _ = writeln!(out, "# labels: {{\"thread_name\":{}}}", json_string(name));
        let Some(first) = members.first() else { continue };
        for frame in first.frames.iter().filter(|f| f.pc != 0) {
            for s in frame.source.iter() {
                let place = match (&s.file, s.line) {
                    (Some(file), Some(line)) => format!("{file}:{line}"),
                    (Some(file), None) => file.clone(),
                    _ => "??".to_string(),
                };
                let _ = writeln!(out, "#\t{:#x}\t{}\t{place}", frame.pc, s.function);
            }
        }
        out.push('\n');
    }
    out
}

/// A JSON string literal (thread names are short, but may hold anything).
fn json_string(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_names_are_json_strings() {
        assert_eq!(json_string("worker-1"), "\"worker-1\"");
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}

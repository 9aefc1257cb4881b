//! `goroutine?debug=0`: the thread dump as a pprof `goroutine/count` profile,
//! one sample per distinct stack, its value the number of threads on it;
//! `debug=1`: the same grouping as text in the shape of Go's; `debug=2`: every
//! thread as a Go-style `goroutine N [...]:` block, then our own sections.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crate::labels;
use crate::pprof_proto::{self, ProfileBuilder, ProtoFrame};
use crate::stacks::{SourceFrame, ThreadDump, ThreadInfo, ThreadStatus};

/// Gzipped pprof of `dump`; `comments` are the usual metadata lines.
pub(crate) fn count_profile(dump: &ThreadDump, comments: &[String]) -> std::io::Result<Vec<u8>> {
    let mut stacks: BTreeMap<Vec<ProtoFrame>, i64> = BTreeMap::new();
    for t in dump.threads() {
        *stacks.entry(pprof_proto::machine_frames(t)).or_default() += 1;
    }
    let mut b = ProfileBuilder::new(&[("goroutine", "count")]);
    b.time(SystemTime::now(), dump.capture_time().max(Duration::from_nanos(1)));
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
        let _ = writeln!(out, "{}", labels::line(&[("thread_name", name)]));
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

/// Go's `debug=2` text: one block per thread (ascending thread id), a blank
/// line between blocks, each opening with `goroutine TID [STATE, thread "NAME"]:`
/// and listing `function()` and `\tfile:line +0xPC` per frame, innermost first.
///
/// Layout: the text starts with the first `goroutine` header, as Go's does, and
/// hotprof's own sections follow the last block after a blank line: the dump
/// header (`hotprof thread dump`, app, time, trigger, unwinder, thread and
/// capture counts), the `logical stacks:` section and the end marker. Putting
/// the header first would be tolerated by panicparse, which skips lines until
/// it meets a header, but not by readers that take the first line to be one;
/// after the blocks it costs Go tooling nothing. No line of our sections has
/// the shape `^goroutine \d+ \[[^\]]+\]:$`, so a grep for it finds exactly
/// one header per thread.
///
/// Where Go has data we lack: `+0x` is followed by the absolute program counter
/// (the one `debug=1` lists and `symbol` resolves), not the offset from the
/// function's entry, which hotprof does not keep; there is no `created by`
/// line. As in Go, inlined frames print `function(...)` and no `+0x`, and an
/// unknown file or line prints as `??` and `0`.
pub(crate) fn full_text(dump: &ThreadDump) -> String {
    let mut out: String = dump.threads().iter().map(block).collect::<Vec<_>>().join("\n");
    out.push('\n');
    // Our own paragraphs after Go's: the dump's header, then its sections
    // (logical stacks) and end marker, as in the SIGUSR1 file.
    let _ = dump.write_header(&mut out);
    let _ = dump.write_trailer(&mut out);
    out
}

/// One thread as a Go-style block, ending with a newline.
fn block(t: &ThreadInfo) -> String {
    let mut out = format!("goroutine {} [{}]:\n", t.tid, bracket(t));
    for frame in t.frames.iter().filter(|f| f.pc != 0) {
        let last = frame.source.len().saturating_sub(1);
        for (i, s) in frame.source.iter().enumerate() {
            write_frame(&mut out, s, (i == last).then_some(frame.pc));
        }
    }
    if let ThreadStatus::Captured { truncated: true, .. } = t.status {
        out.push_str("...additional frames elided...\n");
    }
    out
}

/// `function()` and `\tfile:line +0xPC`; `pc` is `None` for an inlined frame.
fn write_frame(out: &mut String, s: &SourceFrame, pc: Option<usize>) {
    let args = if pc.is_some() { "()" } else { "(...)" };
    let file = s.file.as_deref().unwrap_or("??");
    let _ = write!(out, "{}{args}\n\t{file}:{}", s.function, s.line.unwrap_or(0));
    if let Some(pc) = pc {
        let _ = write!(out, " +{pc:#x}");
    }
    out.push('\n');
}

/// `STATE[, how it answered], thread "NAME"` with no `]` or control character
/// left, so the header always matches `^goroutine \d+ \[[^\]]+\]:$`.
fn bracket(t: &ThreadInfo) -> String {
    let state = if t.state.is_empty() { "unknown" } else { t.state.as_str() };
    let note = t.status.note();
    neutralise(&format!("{state}{note}, thread {:?}", t.name))
}

/// `]` as `\u{5d}`, control characters (line breaks) escaped; the rest kept.
fn neutralise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ']' => out.push_str("\\u{5d}"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;
    use std::time::Duration;

    use crate::stacks::{RawCapture, RawThread, StackFrame, Symbolizer};

    /// `^goroutine \d+ \[[^\]]+\]:$`, without a regex crate.
    fn is_go_header(line: &str) -> bool {
        let Some(rest) = line.strip_prefix("goroutine ") else { return false };
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let Some(inside) = rest[digits..].strip_prefix(" [").and_then(|r| r.strip_suffix("]:")) else {
            return false;
        };
        digits > 0 && !inside.is_empty() && !inside.contains(']')
    }

    fn source(function: &str, file: Option<&str>, line: Option<u32>) -> SourceFrame {
        SourceFrame { function: function.into(), mangled: None, file: file.map(Into::into), line }
    }

    fn thread(name: &str, status: ThreadStatus, frames: Vec<StackFrame>) -> ThreadInfo {
        ThreadInfo { tid: 42, name: name.into(), state: "sleeping".into(), status, frames }
    }

    #[test]
    fn blocks_in_gos_shape() {
        let frames = vec![
            StackFrame {
                pc: 0x1040,
                source: Arc::from(vec![
                    source("app::inner", Some("src/a.rs"), Some(7)),
                    source("app::outer", Some("src/a.rs"), Some(20)),
                ]),
                module: None,
            },
            StackFrame { pc: 0x2000, source: Arc::from(vec![source("??", None, None)]), module: None },
            StackFrame { pc: 0, source: Arc::from(vec![source("end", None, None)]), module: None },
        ];
        let captured = ThreadStatus::Captured { pause: Duration::ZERO, truncated: true };
        assert_eq!(
            block(&thread("worker-1", captured, frames)),
            "goroutine 42 [sleeping, thread \"worker-1\"]:\n\
             app::inner(...)\n\tsrc/a.rs:7\n\
             app::outer()\n\tsrc/a.rs:20 +0x1040\n\
             ??()\n\t??:0 +0x2000\n\
             ...additional frames elided...\n"
        );
    }

    #[test]
    fn headers_hold_the_regex_whatever_the_name_or_state() {
        let statuses = [
            ThreadStatus::Dumping,
            ThreadStatus::SignalBlocked,
            ThreadStatus::NotAnswering { wchan: Some("futex_wait]\n".into()) },
            ThreadStatus::NotAnswering { wchan: None },
            ThreadStatus::NotSignalled { reason: "queue [full]".into() },
        ];
        for status in statuses {
            for name in ["w]1", "a\nb", "]", "", "q\"uote", "tab\there"] {
                let text = block(&thread(name, status.clone(), Vec::new()));
                let header = text.strip_suffix('\n').unwrap();
                assert!(is_go_header(header), "{header:?}");
            }
        }
        let text = block(&thread("x]y", ThreadStatus::NotAnswering { wchan: None }, Vec::new()));
        assert_eq!(text, "goroutine 42 [sleeping, not answering, thread \"x\\u{5d}y\"]:\n");
        let mut t = thread("w", ThreadStatus::Dumping, Vec::new());
        t.state = String::new();
        assert_eq!(block(&t), "goroutine 42 [unknown, taking this dump, thread \"w\"]:\n");
    }

    #[test]
    fn go_blocks_first_then_our_sections() {
        let me = crate::sys::gettid();
        let pc = blocks_in_gos_shape as fn() as usize;
        let raw = |tid: i32, name: &str| RawThread {
            tid,
            name: name.into(),
            state: "sleeping".into(),
            status: ThreadStatus::Captured { pause: Duration::ZERO, truncated: false },
            frames: vec![pc, pc + 1],
        };
        let raw =
            RawCapture { threads: vec![raw(me, "first"), raw(me + 1, "second")], elapsed: Duration::ZERO };
        let header = vec![("app", "test 1.0".to_string()), ("trigger", "http".to_string())];
        let mut dump = ThreadDump::build(raw, header, &mut Symbolizer::default());
        dump.add_section("logical stacks: 1 threads and 0 tasks\n\nthread 1 \"first\":\nx\n".into());
        let text = full_text(&dump);
        let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("goroutine")).collect();
        assert_eq!(headers.len(), 2, "{text}");
        assert!(headers.iter().all(|h| is_go_header(h)), "{text}");
        assert!(text.starts_with(&format!("goroutine {me} [sleeping, thread \"first\"]:\n")), "{text}");
        assert!(text.contains("blocks_in_gos_shape()\n\t"), "{text}");
        let ours =
            text.find("\n\nhotprof thread dump\napp: test 1.0\ntrigger: http\nthreads: 2 ").expect(&text);
        assert!(text[..ours].contains(&format!("\n\ngoroutine {} [", me + 1)), "{text}");
        assert!(
            text.ends_with("us\n\nlogical stacks: 1 threads and 0 tasks\n\nthread 1 \"first\":\nx\n\n-- end of hotprof thread dump --\n"),
            "{text}"
        );
        assert_eq!(text.matches("hotprof thread dump\n").count(), 1, "{text}");
    }
}

//! The thread dump: what `SIGUSR1` writes and `hotprof::dump_threads()` returns.
//! Its text is shaped like Go's `goroutine?debug=2` (see docs/formats.md).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::symbolize::{Lookup, ModuleOffset};
use super::{RawCapture, SourceFrame, Symbolizer};

/// Last line of every dump; a file without it is not a hotprof dump.
pub const END_MARKER: &str = "-- end of hotprof thread dump --";

/// How one thread answered the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThreadStatus {
    /// Its stack was copied; `pause` is how long its handler held it (until the copy).
    Captured {
        /// Time the thread spent inside the capture handler.
        pause: Duration,
        /// The stack was deeper than the frames kept.
        truncated: bool,
    },
    /// The thread that took the dump (its stack is taken directly).
    Dumping,
    /// Signalled, but did not answer before the deadline.
    NotAnswering {
        /// Kernel function it waits in, when `/proc` tells.
        wchan: Option<String>,
    },
    /// The thread blocks the capture signal; it was not signalled.
    SignalBlocked,
    /// The signal could not be sent.
    NotSignalled {
        /// Why, e.g. the signal queue is full.
        reason: String,
    },
}

/// One frame of a stack: an instruction pointer and the source it maps to
/// (several entries when functions were inlined, innermost first).
#[derive(Debug, Clone)]
pub struct StackFrame {
    /// Instruction pointer.
    pub pc: usize,
    /// Source frames for `pc`, innermost inlined function first.
    pub source: Arc<[SourceFrame]>,
    /// The file `pc` lies in and its address there, for symbolizing
    /// elsewhere (e.g. against the unstripped copy of a stripped binary).
    pub module: Option<ModuleOffset>,
}

/// One OS thread in a dump.
#[derive(Debug, Clone)]
pub struct ThreadInfo {
    /// Kernel thread id (the `LWP` gdb shows).
    pub tid: i32,
    /// Thread name (`comm`, at most 15 bytes).
    pub name: String,
    /// `sleeping` (the signal found it waiting in a system call) or
    /// `running`; for a thread that did not answer, the state `/proc`
    /// gives, e.g. `disk sleep`.
    pub state: String,
    /// How the thread answered.
    pub status: ThreadStatus,
    /// Stack, innermost frame first.
    pub frames: Vec<StackFrame>,
}

impl ThreadInfo {
    /// Every function name on the stack, inlined ones included, innermost first.
    pub fn functions(&self) -> impl Iterator<Item = &str> {
        self.frames.iter().flat_map(|f| f.source.iter().map(|s| s.function.as_str()))
    }
}

/// A dump of every thread of the process.
#[derive(Debug, Clone)]
pub struct ThreadDump {
    header: Vec<(&'static str, String)>,
    threads: Vec<ThreadInfo>,
    elapsed: Duration,
    /// Extra sections after the threads (e.g. logical stacks).
    sections: Vec<String>,
}

impl ThreadDump {
    pub(crate) fn build(raw: RawCapture, header: Vec<(&'static str, String)>, sym: &mut Symbolizer) -> Self {
        // The interrupted pc is looked up as is; return addresses (every other
        // frame, and every frame of the dumping thread) one byte back.
        let mut all: Vec<Lookup> = Vec::new();
        for t in &raw.threads {
            let exact_first = matches!(t.status, ThreadStatus::Captured { .. });
            all.extend(
                t.frames.iter().enumerate().map(|(i, &pc)| Lookup { pc, exact: exact_first && i == 0 }),
            );
        }
        let mut resolved = sym.resolve_all(all).into_iter();
        let threads = raw
            .threads
            .into_iter()
            .map(|t| {
                let frames = t
                    .frames
                    .iter()
                    .zip(resolved.by_ref())
                    .map(|(&pc, r)| StackFrame { pc, source: r.source, module: r.module })
                    .collect();
                ThreadInfo { tid: t.tid, name: t.name, state: t.state, status: t.status, frames }
            })
            .collect();
        ThreadDump { header, threads, elapsed: raw.elapsed, sections: Vec::new() }
    }

    /// Appends a section printed after the threads.
    pub(crate) fn add_section(&mut self, text: String) {
        self.sections.push(text);
    }

    /// The threads, in ascending thread id order.
    pub fn threads(&self) -> &[ThreadInfo] {
        &self.threads
    }

    /// Time from the first signal to the last answer (or the deadline).
    pub fn capture_time(&self) -> Duration {
        self.elapsed
    }

    /// Longest time any one thread spent inside the capture handler.
    pub fn max_pause(&self) -> Duration {
        self.threads
            .iter()
            .filter_map(|t| match t.status {
                ThreadStatus::Captured { pause, .. } => Some(pause),
                _ => None,
            })
            .max()
            .unwrap_or_default()
    }

    fn count(&self, f: impl Fn(&ThreadStatus) -> bool) -> usize {
        self.threads.iter().filter(|t| f(&t.status)).count()
    }
}

impl ThreadDump {
    /// The first paragraph: title, metadata lines, counts, capture time.
    pub(crate) fn write_header(&self, f: &mut impl fmt::Write) -> fmt::Result {
        writeln!(f, "hotprof thread dump")?;
        for (key, value) in &self.header {
            writeln!(f, "{key}: {value}")?;
        }
        writeln!(
            f,
            "threads: {} ({} captured, {} not answering, {} signal blocked, {} not signalled)",
            self.threads.len(),
            self.count(|s| matches!(s, ThreadStatus::Captured { .. } | ThreadStatus::Dumping)),
            self.count(|s| matches!(s, ThreadStatus::NotAnswering { .. })),
            self.count(|s| matches!(s, ThreadStatus::SignalBlocked)),
            self.count(|s| matches!(s, ThreadStatus::NotSignalled { .. })),
        )?;
        writeln!(
            f,
            "capture: {:.3} ms from the first signal to the last answer, longest pause in one thread {} us",
            self.elapsed.as_secs_f64() * 1e3,
            self.max_pause().as_micros()
        )
    }

    /// What follows the threads: the added sections, then the end marker,
    /// each after a blank line.
    pub(crate) fn write_trailer(&self, f: &mut impl fmt::Write) -> fmt::Result {
        for section in &self.sections {
            writeln!(f)?;
            f.write_str(section)?;
        }
        writeln!(f)?;
        writeln!(f, "{END_MARKER}")
    }
}

impl ThreadStatus {
    /// How the thread answered, as `, ...` after its state; empty when captured.
    pub(crate) fn note(&self) -> String {
        match self {
            ThreadStatus::Captured { .. } => String::new(),
            ThreadStatus::Dumping => ", taking this dump".to_string(),
            ThreadStatus::NotAnswering { wchan: Some(w) } => format!(", not answering, wchan {w}"),
            ThreadStatus::NotAnswering { wchan: None } => ", not answering".to_string(),
            ThreadStatus::SignalBlocked => ", blocks the capture signal".to_string(),
            ThreadStatus::NotSignalled { reason } => format!(", not signalled: {reason}"),
        }
    }
}

impl fmt::Display for ThreadDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_header(f)?;
        super::summary::write(f, &self.threads)?;
        for t in &self.threads {
            writeln!(f)?;
            write_thread(f, t)?;
        }
        self.write_trailer(f)
    }
}

fn write_thread(f: &mut fmt::Formatter<'_>, t: &ThreadInfo) -> fmt::Result {
    let note = t.status.note();
    writeln!(f, "thread {} \"{}\" [{}{note}]:", t.tid, t.name, t.state)?;
    for frame in &t.frames {
        if let (Some(m), [s]) = (&frame.module, &*frame.source)
            && s.function == "??"
        {
            // Unnamed here: where to look it up elsewhere.
            let file = m.path.rsplit('/').next().unwrap_or(&m.path);
            writeln!(f, "{file}+{:#x}", m.address)?;
            let id = m.build_id.as_deref().map(|id| format!(" build-id={id}")).unwrap_or_default();
            writeln!(f, "	{}{id} pc={:#x}", m.path, frame.pc)?;
            continue;
        }
        let last = frame.source.len().saturating_sub(1);
        for (i, s) in frame.source.iter().enumerate() {
            let inlined = if i < last { " (inlined)" } else { "" };
            writeln!(f, "{}{inlined}", s.function)?;
            match (&s.file, s.line) {
                (Some(file), Some(line)) => writeln!(f, "\t{file}:{line} pc={:#x}", frame.pc)?,
                (Some(file), None) => writeln!(f, "\t{file} pc={:#x}", frame.pc)?,
                _ => writeln!(f, "\t?? pc={:#x}", frame.pc)?,
            }
        }
    }
    if let ThreadStatus::Captured { truncated: true, .. } = t.status {
        writeln!(f, "...additional frames elided...")?;
    }
    Ok(())
}

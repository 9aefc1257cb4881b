//! What `/proc/self/task` says about each thread.

use std::fs;

/// One thread as `/proc/self/task/<tid>/status` describes it.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskStatus {
    pub name: String,
    /// Human state, e.g. `sleeping`, `running`, `disk sleep`.
    pub state: String,
    /// Mask of blocked signals (bit n-1 for signal n).
    pub sig_blk: u64,
    /// Mask of signals pending for this thread alone.
    pub sig_pnd: u64,
}

impl TaskStatus {
    pub(crate) fn blocks(&self, sig: i32) -> bool {
        (1..=64).contains(&sig) && self.sig_blk & (1u64 << (sig - 1)) != 0
    }

    /// `sig` waits for this thread, which blocks it: not a thread that is
    /// inside a handler for it (which blocks it too, but took it).
    pub(crate) fn holds_back(&self, sig: i32) -> bool {
        self.blocks(sig) && self.sig_pnd & (1u64 << (sig - 1)) != 0
    }
}

/// Thread ids of this process, in ascending order.
pub(crate) fn list_tasks() -> Vec<i32> {
    let mut tids: Vec<i32> = fs::read_dir("/proc/self/task")
        .map(|d| d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    tids.sort_unstable();
    tids
}

/// `/proc/self/task`, kept open for one survey: each thread's files are
/// read relative to it, in one read each.
pub(crate) struct Tasks(Option<crate::sys::Dir>);

impl Tasks {
    pub(crate) fn open() -> Tasks {
        Tasks(crate::sys::Dir::open("/proc/self/task").ok())
    }

    fn read(&self, tid: i32, file: &str, buf: &mut [u8]) -> Option<String> {
        let path = std::ffi::CString::new(format!("{tid}/{file}")).ok()?;
        let n = match &self.0 {
            Some(dir) => dir.read_small(&path, buf).ok()?,
            None => return fs::read_to_string(format!("/proc/self/task/{tid}/{file}")).ok(),
        };
        Some(String::from_utf8_lossy(buf.get(..n)?).into_owned())
    }

    /// Name and state, from `stat` (half the cost of `status`, which also
    /// has the blocked signals); `None` when the thread is gone.
    pub(crate) fn name_and_state(&self, tid: i32) -> Option<(String, String)> {
        parse_stat(&self.read(tid, "stat", &mut [0; 1024])?)
    }

    /// Name, state and blocked signals; `None` when the thread is gone.
    pub(crate) fn status(&self, tid: i32) -> Option<TaskStatus> {
        Some(parse_status(&self.read(tid, "status", &mut [0; 8192])?))
    }
}

/// `tid (name) S ...`: the name between the first `(` and the last `)`
/// (names may hold either), and the state letter in words, as `status`
/// spells it.
fn parse_stat(text: &str) -> Option<(String, String)> {
    let (open, close) = (text.find('(')?, text.rfind(')')?);
    let name = text.get(open + 1..close)?.to_string();
    let letter = text.get(close + 1..)?.trim_start().chars().next()?;
    let state = match letter {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk sleep",
        'T' => "stopped",
        't' => "tracing stop",
        'X' => "dead",
        'Z' => "zombie",
        'P' => "parked",
        'I' => "idle",
        _ => "?",
    };
    Some((name, state.to_string()))
}

/// Reads name, state and blocked signals; `None` when the thread is gone.
pub(crate) fn status(tid: i32) -> Option<TaskStatus> {
    let text = fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    Some(parse_status(&text))
}

fn parse_status(text: &str) -> TaskStatus {
    let mut st = TaskStatus::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Name" => st.name = value.to_string(),
            // "S (sleeping)" -> "sleeping"
            "State" => {
                st.state =
                    value.split_once('(').map_or(value, |(_, rest)| rest.trim_end_matches(')')).to_string()
            }
            "SigBlk" => st.sig_blk = u64::from_str_radix(value, 16).unwrap_or(0),
            "SigPnd" => st.sig_pnd = u64::from_str_radix(value, 16).unwrap_or(0),
            _ => {}
        }
    }
    st
}

/// The address ranges of this process's mappings, sorted, from `/proc/self/maps`.
pub(crate) fn mappings() -> Vec<(usize, usize)> {
    let text = fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut ranges: Vec<(usize, usize)> = text
        .lines()
        .filter_map(|l| {
            let (start, end) = l.split_whitespace().next()?.split_once('-')?;
            Some((usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?))
        })
        .collect();
    ranges.sort_unstable();
    ranges
}

/// The kernel function a sleeping thread waits in, when the kernel tells.
pub(crate) fn wchan(tid: i32) -> Option<String> {
    let w = fs::read_to_string(format!("/proc/self/task/{tid}/wchan")).ok()?;
    let w = w.trim();
    (!w.is_empty() && w != "0").then(|| w.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat() {
        let (name, state) = parse_stat("42 (web (1) worker) S 1 2 3").unwrap();
        assert_eq!((name.as_str(), state.as_str()), ("web (1) worker", "sleeping"));
        assert_eq!(parse_stat("7 (x) D 0").unwrap().1, "disk sleep");
        let me = crate::sys::gettid();
        let tasks = Tasks::open();
        let (name, state) = tasks.name_and_state(me).unwrap();
        let st = tasks.status(me).unwrap();
        assert_eq!((name, state), (st.name, st.state), "stat and status agree on this thread");
    }

    #[test]
    fn parses_status() {
        let st = parse_status("Name:\tworker-1\nState:\tS (sleeping)\nSigBlk:\t0000000000000001\n");
        assert_eq!(st.name, "worker-1");
        assert_eq!(st.state, "sleeping");
        assert!(st.blocks(1));
        assert!(!st.blocks(10));
        assert!(!st.blocks(0));
        assert!(!st.holds_back(1), "blocked, but not pending: taken by a handler");
        let st = parse_status("SigPnd:\t0000000000000001\nSigBlk:\t0000000000000001\n");
        assert!(st.holds_back(1));
    }

    #[test]
    fn sees_own_threads() {
        let me = crate::sys::gettid();
        assert!(list_tasks().contains(&me));
        let st = status(me).unwrap();
        // Usually "running"; a page fault or a preemption while the kernel
        // reads the file can show another state, so only check one is there.
        assert!(!st.state.is_empty() && !st.state.contains('('), "{:?}", st.state);
    }
}

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
}

impl TaskStatus {
    pub(crate) fn blocks(&self, sig: i32) -> bool {
        (1..=64).contains(&sig) && self.sig_blk & (1u64 << (sig - 1)) != 0
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
    fn parses_status() {
        let st = parse_status("Name:\tworker-1\nState:\tS (sleeping)\nSigBlk:\t0000000000000001\n");
        assert_eq!(st.name, "worker-1");
        assert_eq!(st.state, "sleeping");
        assert!(st.blocks(1));
        assert!(!st.blocks(10));
        assert!(!st.blocks(0));
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

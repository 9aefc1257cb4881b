//! Benchmark: dump a process with many threads, some busy in malloc.
//!
//! ```sh
//! HOTPROF_RATE_BURST=1000 cargo run --release -p hotprof-examples --bin dump-bench -- --threads 1000 --malloc 16 --rounds 20
//! ```
//! `--churn N` adds N threads that each start and join short-lived threads
//! in a loop, so threads come and go while dumps run.
//! Prints one row per round: capture time (first signal to last answer), the
//! longest pause inside one thread's handler, end-to-end time including
//! symbolization and formatting, and the heap the dump added at its peak and
//! kept afterwards (counted by a global allocator wrapper).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use hotprof_examples::{arg, malloc_churn, sleepy_worker, spawn_named, thread_churn};

struct Counting;

static CURRENT: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; the counters
// are plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let threads: usize = arg("--threads", 1000);
    let malloc: usize = arg("--malloc", 16);
    let rounds: usize = arg("--rounds", 10);
    let churn: usize = arg("--churn", 0);
    for i in 0..threads.saturating_sub(malloc) {
        spawn_named(&format!("sleeper-{i}"), sleepy_worker);
    }
    for i in 0..malloc.min(threads) {
        spawn_named(&format!("malloc-{i}"), malloc_churn);
    }
    for i in 0..churn {
        spawn_named(&format!("churn-{i}"), thread_churn);
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss_before = rss_kib("VmRSS:");
    println!("threads: {} ({malloc} in malloc, {churn} churning threads), rounds: {rounds}", threads + 1);
    println!(
        "| round | threads | captured | capture ms | max pause us | end-to-end ms | heap peak MiB | heap kept KiB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for round in 1..=rounds {
        let base = CURRENT.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let t0 = Instant::now();
        let dump = match hotprof::dump_threads() {
            Ok(d) => d,
            Err(e) => {
                eprintln!("dump refused: {e} (set HOTPROF_RATE_BURST above the number of rounds)");
                std::process::exit(1);
            }
        };
        let text = dump.to_string();
        let total = t0.elapsed();
        let captured = dump
            .threads()
            .iter()
            .filter(|t| {
                matches!(t.status, hotprof::ThreadStatus::Captured { .. } | hotprof::ThreadStatus::Dumping)
            })
            .count();
        let n = dump.threads().len();
        let (capture, pause) = (dump.capture_time(), dump.max_pause());
        drop((dump, text));
        let peak = PEAK.load(Ordering::Relaxed) - base;
        let kept = CURRENT.load(Ordering::Relaxed) - base;
        println!(
            "| {round} | {n} | {captured} | {:.2} | {} | {:.2} | {:.2} | {} |",
            capture.as_secs_f64() * 1e3,
            pause.as_micros(),
            total.as_secs_f64() * 1e3,
            peak as f64 / (1 << 20) as f64,
            kept / 1024
        );
    }
    println!(
        "RSS: {} MiB before the first dump, {} MiB after the last (peak {} MiB, threads' stacks included)",
        rss_before / 1024,
        rss_kib("VmRSS:") / 1024,
        rss_kib("VmHWM:") / 1024
    );
}

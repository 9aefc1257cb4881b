//! Benchmark: throughput of a CPU-bound workload with a 99 Hz CPU profile
//! running against none, alternating in one run so both see the same machine;
//! how the samples agree with the CPU time the kernel counted; RSS before the
//! first session and after the last.
//!
//! ```sh
//! cargo run --release -p hotprof-examples --bin cpu-overhead -- --threads 8 --depth 30 --seconds 5 --rounds 4
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hotprof_examples::{arg, spawn_named};

/// One unit of work: a few thousand dependent multiply-xor steps.
#[inline(never)]
fn work_unit(mut x: u64) -> u64 {
    for _ in 0..4096 {
        x = std::hint::black_box((x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9));
    }
    x
}

/// Does its work `depth` calls deep, so samples have stacks to unwind.
#[inline(never)]
fn at_depth(depth: usize, x: u64) -> u64 {
    if depth == 0 {
        return work_unit(x);
    }
    std::hint::black_box(at_depth(depth - 1, std::hint::black_box(x)))
}

/// CPU time of this process so far (utime + stime), per the kernel.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().skip(11).take(2).filter_map(|f| f.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// `VmRSS`, and its anonymous and file-backed parts, in MiB.
fn rss_mib() -> (u64, u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
}

fn show((all, anon, file): (u64, u64, u64)) -> String {
    format!("{all} MiB ({anon} anonymous, {file} file-backed)")
}

/// Runs `threads` workers `depth` calls deep for `window` and returns work
/// units per second.
fn measure(threads: usize, depth: usize, window: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let (stop, done) = (stop.clone(), done.clone());
            spawn_named(&format!("worker-{i}"), move || {
                let mut x = i as u64 + 1;
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    x = at_depth(depth, x);
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    done.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64()
}

fn main() {
    let threads: usize = arg("--threads", 2);
    let seconds: u64 = arg("--seconds", 5);
    let rounds: usize = arg("--rounds", 4);
    let depth: usize = arg("--depth", 0);
    let window = Duration::from_secs(seconds);
    // hotprof sets itself up at its first call (no #[hotprof::main] here),
    // and glibc keeps the stacks of joined threads for the next ones: do
    // both before the first reading, so the RSS below is the sessions' alone.
    let _ = hotprof::stats();
    measure(threads, depth, Duration::from_millis(500));
    let rss_before = rss_mib();
    println!(
        "{threads} worker threads {depth} calls deep, {seconds} s windows, {rounds} rounds of (none, 99 Hz)"
    );
    println!(
        "| round | none (units/s) | 99 Hz profile (units/s) | samples | slowdown | sampled / kernel CPU |"
    );
    println!("|---|---|---|---|---|---|");
    let (mut base_sum, mut prof_sum) = (0.0, 0.0);
    for round in 1..=rounds {
        let base = measure(threads, depth, window);
        let profiler = std::thread::spawn(move || hotprof::cpu_profile(window + Duration::from_millis(200)));
        std::thread::sleep(Duration::from_millis(100));
        let cpu0 = process_cpu();
        let profiled = measure(threads, depth, window);
        let kernel = process_cpu() - cpu0;
        let samples = match profiler.join() {
            Ok(Ok(p)) => p.samples,
            Ok(Err(e)) => {
                eprintln!("profile failed: {e} (set HOTPROF_RATE_BURST above --rounds)");
                std::process::exit(1);
            }
            Err(_) => std::process::exit(1),
        };
        base_sum += base;
        prof_sum += profiled;
        let sampled = samples as f64 / 99.0;
        println!(
            "| {round} | {base:.0} | {profiled:.0} | {samples} | {:+.2}% | {sampled:.2} s / {:.2} s = {:.3} |",
            (base - profiled) / base * 100.0,
            kernel.as_secs_f64(),
            sampled / kernel.as_secs_f64()
        );
    }
    println!(
        "| all | {:.0} | {:.0} | | {:+.2}% | |",
        base_sum / rounds as f64,
        prof_sum / rounds as f64,
        (base_sum - prof_sum) / base_sum * 100.0
    );
    println!("RSS: {} before the first session, {} after the last", show(rss_before), show(rss_mib()));
}

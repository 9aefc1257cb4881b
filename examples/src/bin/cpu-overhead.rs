//! Benchmark: throughput of a CPU-bound workload with a 99 Hz CPU profile
//! running against none, alternating in one run so both see the same machine.
//!
//! ```sh
//! cargo run --release -p hotprof-examples --bin cpu-overhead -- --threads 2 --seconds 5 --rounds 4
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

/// Runs `threads` workers for `window` and returns work units per second.
fn measure(threads: usize, window: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let (stop, done) = (stop.clone(), done.clone());
            spawn_named(&format!("worker-{i}"), move || {
                let mut x = i as u64 + 1;
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    x = work_unit(x);
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
    let window = Duration::from_secs(seconds);
    println!("{threads} worker threads, {seconds} s windows, {rounds} rounds of (none, 99 Hz)");
    println!("| round | none (units/s) | 99 Hz profile (units/s) | samples | slowdown |");
    println!("|---|---|---|---|---|");
    let (mut base_sum, mut prof_sum) = (0.0, 0.0);
    for round in 1..=rounds {
        let base = measure(threads, window);
        let profiler = std::thread::spawn(move || hotprof::cpu_profile(window + Duration::from_millis(200)));
        std::thread::sleep(Duration::from_millis(100));
        let profiled = measure(threads, window);
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
        println!(
            "| {round} | {base:.0} | {profiled:.0} | {samples} | {:+.2}% |",
            (base - profiled) / base * 100.0
        );
    }
    println!(
        "| all | {:.0} | {:.0} | | {:+.2}% |",
        base_sum / rounds as f64,
        prof_sum / rounds as f64,
        (base_sum - prof_sum) / base_sum * 100.0
    );
}

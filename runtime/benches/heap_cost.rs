//! What `hotprof::SampledAlloc` adds to an allocation: alloc+free pairs of
//! mixed sizes (16 B to 4 KiB, log-uniform, as real programs skew small),
//! `System` against `SampledAlloc<System>` with capture on (a sample every
//! 512 KiB on average: stacks copied, and unwound by the collector thread)
//! and off. The three run in short interleaved rounds, in turn, so a noisy
//! machine slows all of them alike; the table gives each one's median and
//! the median of the per-round differences against `System`.
//!
//! `cargo bench -p hotprof --bench heap_cost [-- ROUNDS]`
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::Instant;

/// Not the global allocator: the benchmark calls it directly, as the
/// global one would be called, so `System` is measured in the same process.
static SAMPLED: hotprof::SampledAlloc<System> = hotprof::SampledAlloc::new(System);

/// Pairs per round and allocator.
const PAIRS: usize = 2_000_000;

/// 4096 sizes, log-uniform from 16 B to 4 KiB.
fn layouts() -> Vec<Layout> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let exp = 4.0 + 8.0 * (x >> 11) as f64 / (1u64 << 53) as f64; // 2^4 .. 2^12
            Layout::from_size_align(2f64.powf(exp) as usize, 8).unwrap()
        })
        .collect()
}

/// Nanoseconds per alloc+free pair over one round.
#[inline(never)]
fn round<A: GlobalAlloc>(alloc: &A, layouts: &[Layout]) -> f64 {
    let t0 = Instant::now();
    for i in 0..PAIRS {
        let layout = layouts[i & (layouts.len() - 1)];
        // SAFETY: the layout's size is above zero; the block is freed once,
        // by the allocator that made it, with its own layout.
        unsafe {
            let p = alloc.alloc(layout);
            black_box(p);
            alloc.dealloc(p, layout);
        }
    }
    t0.elapsed().as_nanos() as f64 / PAIRS as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(41);
    let layouts = layouts();
    // The first sampled allocation shows hotprof the sampling allocator; the
    // lazy start (here, `stats`) then starts its collector.
    round(&SAMPLED, &layouts[..16]);
    let _ = hotprof::stats();
    let mut times: [Vec<f64>; 3] = Default::default();
    for r in 0..rounds {
        // Rotate the order, so no one is always first after a pause.
        for k in 0..3 {
            let which = (r + k) % 3;
            let ns = match which {
                0 => round(&System, &layouts),
                1 => {
                    hotprof::enable();
                    round(&SAMPLED, &layouts)
                }
                _ => {
                    hotprof::disable();
                    round(&SAMPLED, &layouts)
                }
            };
            times[which].push(ns);
        }
    }
    hotprof::enable();
    let system = times[0].clone();
    println!("alloc+free pairs, 16 B to 4 KiB log-uniform, {rounds} rounds of {PAIRS} pairs each");
    println!("| allocator | median ns/pair | median difference vs System, same round |");
    println!("|---|---|---|");
    for (name, t) in ["System", "SampledAlloc<System>, capture on", "SampledAlloc<System>, capture off"]
        .iter()
        .zip(times.iter_mut())
    {
        let mut diffs: Vec<f64> = t.iter().zip(&system).map(|(a, b)| a - b).collect();
        println!("| {name} | {:.2} | {:+.2} |", median(t), median(&mut diffs));
    }
    let p = hotprof::heap_profile().unwrap();
    println!(
        "\nheap profile afterwards: {:.0} MiB allocated in {} blocks (estimated), {} bytes in use",
        p.alloc_bytes as f64 / 1048576.0,
        p.alloc_objects,
        p.inuse_bytes
    );
}

//! What `hotprof::SampledAlloc` adds to an allocation: alloc+free pairs of
//! mixed sizes (16 B to 4 KiB, log-uniform, as real programs skew small),
//! `System` against `SampledAlloc<System>` with capture on (a sample every
//! 512 KiB on average, stacks copied and unwound by the collector) and off,
//! in one run so the comparison holds on a noisy machine.
//! `cargo bench -p hotprof --bench heap_cost`.
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

/// Not the global allocator: the benchmark calls it directly, as the
/// global one would be called, so `System` can be measured in the same run.
static SAMPLED: hotprof::SampledAlloc<System> = hotprof::SampledAlloc::new(System);

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

fn pairs<A: GlobalAlloc>(c: &mut Criterion, name: &str, alloc: &A, layouts: &[Layout]) {
    let mut i = 0;
    c.bench_function(name, |b| {
        b.iter(|| {
            let layout = layouts[i & (layouts.len() - 1)];
            i += 1;
            // SAFETY: the layout has a non-zero size; the block is freed
            // once, by the allocator that made it, with its own layout.
            unsafe {
                let p = alloc.alloc(layout);
                black_box(p);
                alloc.dealloc(p, layout);
            }
        })
    });
}

fn alloc_free(c: &mut Criterion) {
    let layouts = layouts();
    // The first sampled allocation makes hotprof see the sampling
    // allocator; then the lazy start (here, `stats`) starts its collector.
    // SAFETY: as in `pairs`.
    unsafe {
        for l in &layouts {
            SAMPLED.dealloc(SAMPLED.alloc(*l), *l);
        }
    }
    let _ = hotprof::stats();
    hotprof::enable();
    pairs(c, "alloc_free/system", &System, &layouts);
    pairs(c, "alloc_free/sampled_capture_on", &SAMPLED, &layouts);
    hotprof::disable();
    pairs(c, "alloc_free/sampled_capture_off", &SAMPLED, &layouts);
    hotprof::enable();
    pairs(c, "alloc_free/system_again", &System, &layouts);
    let profile = hotprof::heap_profile().unwrap();
    eprintln!(
        "heap profile after the runs: {} samples' worth, {:.0} MiB allocated",
        profile.alloc_objects,
        profile.alloc_bytes as f64 / 1048576.0
    );
}

criterion_group!(benches, alloc_free);
criterion_main!(benches);

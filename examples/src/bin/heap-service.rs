//! A service whose global allocator is `hotprof::SampledAlloc`: heap
//! profiles over `/debug/pprof/heap` and `allocs` (with `HOTPROF_HTTP`),
//! `hotprof::heap_profile()` and `HOTPROF_SIGUSR2=heap`.
//!
//! At start `hold_blocks` (of the examples' library) keeps `--hold-mib` MiB (64) in 4 KiB blocks and
//! `churn_blocks` allocates `--churn-mib` MiB (256) in 4 KiB blocks and
//! frees each at once; then it prints `heap-service: ready pid=PID`.
//! `--threads N` (0) starts N `alloc-stress` threads that allocate and
//! free blocks of 16 B to 4 KiB for ever.

use std::alloc::System;

use hotprof_examples::{arg, churn_blocks, hold_blocks, malloc_churn, spawn_named};

#[global_allocator]
static ALLOC: hotprof::SampledAlloc<System> = hotprof::SampledAlloc::new(System);

#[hotprof::main]
fn main() {
    let (hold, churn, threads) = (arg("--hold-mib", 64), arg("--churn-mib", 256), arg("--threads", 0));
    let held = hold_blocks(hold);
    std::hint::black_box(churn_blocks(churn));
    for i in 0..threads {
        spawn_named(&format!("alloc-stress-{i}"), malloc_churn);
    }
    println!("heap-service: ready pid={}", std::process::id());
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        std::hint::black_box(&held);
    }
}

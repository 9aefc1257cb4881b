//! A service on jemalloc with jemalloc's own heap profiler and no
//! `hotprof::SampledAlloc`: with hotprof's `jemalloc` feature,
//! `/debug/pprof/heap` serves jemalloc's profile. Profiling is switched on
//! from the environment, as jemalloc reads it:
//! `_RJEM_MALLOC_CONF=prof:true,prof_active:true,lg_prof_sample:17`.
//! Holds `--hold-mib` MiB (64) in 4 KiB blocks, then prints
//! `jemalloc-service: ready pid=PID`.

use hotprof_examples::{arg, hold_blocks};

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[hotprof::main]
fn main() {
    let held = hold_blocks(arg("--hold-mib", 64));
    println!("jemalloc-service: ready pid={}", std::process::id());
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        std::hint::black_box(&held);
    }
}

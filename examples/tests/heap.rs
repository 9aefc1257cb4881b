//! Heap profiles of a real service whose global allocator is
//! `hotprof::SampledAlloc` (`heap-service`), read with `go tool pprof` from
//! files (`SIGUSR2` with `HOTPROF_SIGUSR2=heap`) and over HTTP.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);
const MIB: f64 = 1024.0 * 1024.0;

fn heap_service(tag: &str, args: &[&str], env: &[(&str, &str)]) -> Service {
    let dir = fresh_dir(tag);
    Service::start_bin(env!("CARGO_BIN_EXE_heap-service"), &dir, args, env)
}

fn heap_files(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, "-heap.pb.gz")
}

/// The cumulative bytes of `function` in `-sample_index=index` of `source`
/// (0 when it is not in the profile).
fn cum_bytes(source: &str, index: &str, function: &str) -> f64 {
    let top = go_pprof(&["-sample_index", index, "-unit=B", "-top", "-cum", "-nodecount=1000"], source);
    top.lines()
        .find(|l| l.split_whitespace().last() == Some(function))
        .and_then(|l| l.split_whitespace().nth(3)?.trim_end_matches('B').parse().ok())
        .unwrap_or(0.0)
}

fn within(value: f64, expected: f64, tolerance: f64) -> bool {
    (value - expected).abs() <= expected * tolerance
}

#[test]
fn held_memory_is_in_use_and_freed_memory_only_allocated() {
    // 64 MiB held and 256 MiB freed, in 4 KiB blocks. At 128 KiB a sample
    // the held part gets about 512 samples: ±4.4% one sigma, so ±15% holds.
    let svc = heap_service("heap-file", &[], &[("HOTPROF_SIGUSR2", "heap"), ("HOTPROF_HEAP_RATE", "128KiB")]);
    svc.kill("USR2");
    assert!(wait_until(WAIT, || heap_files(&svc.dir).len() == 1), "{}", svc.stderr());
    let file = heap_files(&svc.dir)[0].to_string_lossy().into_owned();
    let held = cum_bytes(&file, "inuse_space", "hotprof_examples::hold_blocks");
    assert!(within(held, 64.0 * MIB, 0.15), "hold_blocks in use: {:.1} MiB\n{}", held / MIB, svc.stderr());
    let churned_live = cum_bytes(&file, "inuse_space", "hotprof_examples::churn_blocks");
    assert_eq!(churned_live, 0.0, "freed blocks are not in use");
    let churned = cum_bytes(&file, "alloc_space", "hotprof_examples::churn_blocks");
    assert!(within(churned, 256.0 * MIB, 0.15), "churn_blocks allocated: {:.1} MiB", churned / MIB);
    let held_alloc = cum_bytes(&file, "alloc_space", "hotprof_examples::hold_blocks");
    assert!(within(held_alloc, 64.0 * MIB, 0.15), "hold_blocks allocated: {:.1} MiB", held_alloc / MIB);
    // Objects too: 16384 blocks held.
    let top = go_pprof(&["-sample_index=inuse_objects", "-top", "-cum", "-nodecount=1000"], &file);
    let objects: f64 = top
        .lines()
        .find(|l| l.ends_with(" hotprof_examples::hold_blocks"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(0.0);
    assert!(within(objects, 16384.0, 0.15), "{top}");
    // Go's metadata and layout: comments, the period, the allocator's own frames gone.
    let raw = go_pprof(&["-raw"], &file);
    assert!(raw.contains("PeriodType: space bytes") && raw.contains("Period: 131072"), "{raw}");
    assert!(raw.contains("Comment: trigger: signal SIGUSR2"), "{raw}");
    assert!(raw.contains("Comment: heap sampler: one sample per 131072 bytes"), "{raw}");
    let traces = go_pprof(&["-traces"], &file);
    assert!(!traces.contains("SampledAlloc") && !traces.contains("copy_own_stack"), "{traces}");
    assert!(traces.contains("hotprof_examples::hold_blocks"), "{traces}");
    assert!(svc.stderr().contains("heap profile ("), "{}", svc.stderr());
}

#[test]
fn heap_and_allocs_over_http_as_go_serves_them() {
    let svc =
        heap_service("heap-http", &[], &[("HOTPROF_HTTP", "127.0.0.1:0"), ("HOTPROF_HEAP_RATE", "128KiB")]);
    let addr = announced_addr(&svc, "debug HTTP server on http://");
    let heap = go_pprof(&["-top"], format!("http://{addr}/debug/pprof/heap"));
    assert!(heap.contains("Type: inuse_space"), "{heap}");
    let allocs = go_pprof(&["-top"], format!("http://{addr}/debug/pprof/allocs"));
    assert!(allocs.contains("Type: alloc_space"), "allocs shows alloc_space first: {allocs}");
    let churned = cum_bytes(
        &format!("http://{addr}/debug/pprof/allocs?gc=1"),
        "alloc_space",
        "hotprof_examples::churn_blocks",
    );
    assert!(within(churned, 256.0 * MIB, 0.15), "churn_blocks: {:.1} MiB", churned / MIB);

    let text = get(addr, "/debug/pprof/heap?debug=1");
    assert_eq!(text.status, 200);
    let body = text.text();
    assert!(
        body.starts_with("heap profile: ") && body.lines().next().unwrap().ends_with("@ heap/262144"),
        "{body}"
    );
    assert!(body.contains("\thotprof_examples::hold_blocks\t"), "{body}");
    assert!(body.contains("# Rate = 131072"), "{body}");

    // A delta: nothing was allocated in that second, so the held blocks are not in it.
    let delta = get(addr, "/debug/pprof/heap?seconds=1");
    assert_eq!(delta.status, 200, "{}", delta.text());
    assert!(delta.header("content-disposition").unwrap().contains("heap-delta"));
    let path = svc.dir.join("delta.pb.gz");
    std::fs::create_dir_all(&svc.dir).unwrap();
    std::fs::write(&path, &delta.body).unwrap();
    assert_eq!(cum_bytes(path.to_str().unwrap(), "inuse_space", "hotprof_examples::hold_blocks"), 0.0);

    for (query, message) in [
        ("heap?seconds=1&debug=1", "seconds and debug params are incompatible"),
        ("allocs?seconds=0", "invalid value for \"seconds\""),
        ("heap?debug=7", "invalid value for \"debug\""),
    ] {
        let answer = get(addr, &format!("/debug/pprof/{query}"));
        assert_eq!(answer.status, 400, "{query}");
        assert!(answer.text().contains(message), "{query}: {}", answer.text());
    }
    let index = get(addr, "/debug/pprof/").text();
    assert!(
        index.contains("<a href='heap?debug=1'>heap</a>")
            && index.contains("<a href='allocs?debug=1'>allocs</a>")
    );
}

#[test]
fn capture_off_takes_no_samples() {
    let svc = heap_service("heap-off", &[], &[("HOTPROF", "off"), ("HOTPROF_HTTP", "127.0.0.1:0")]);
    let addr = announced_addr(&svc, "debug HTTP server on http://");
    let off = get(addr, "/debug/pprof/heap");
    assert_eq!(off.status, 403, "{}", off.text());
    assert_eq!(request(addr, "POST", "/debug/pprof/admin/enable", "").status, 200);
    // Everything was allocated while capture was off: no sample, no stack.
    let text = get(addr, "/debug/pprof/heap?debug=1").text();
    assert!(text.starts_with("heap profile: "), "{text}");
    assert!(!text.contains("hold_blocks") && !text.contains("churn_blocks"), "{text}");
    // Only what hotprof's own server allocated since capture came on (it
    // serves these requests) may be sampled: no block of the service's.
    let threads: Vec<&str> = text.lines().filter(|l| l.starts_with("# labels: ")).collect();
    assert!(threads.iter().all(|l| l.contains("\"thread\":\"hotprof-")), "{text}");
}

#[test]
fn heavy_allocation_with_dumps_cpu_and_heap_profiles_at_once() {
    // Four threads allocating flat out, a sample every 4 KiB (thousands a
    // second), while dumps, a CPU profile and heap profiles run.
    let mut svc = heap_service(
        "heap-stress",
        &["--threads", "4", "--hold-mib", "8", "--churn-mib", "8"],
        &[("HOTPROF_HTTP", "127.0.0.1:0"), ("HOTPROF_HEAP_RATE", "4KiB"), ("HOTPROF_RATE_BURST", "30")],
    );
    let addr = announced_addr(&svc, "debug HTTP server on http://");
    let cpu = std::thread::spawn(move || get(addr, "/debug/pprof/profile?seconds=3"));
    for _ in 0..6 {
        svc.kill("USR1");
        let heap = get(addr, "/debug/pprof/heap");
        assert_eq!(heap.status, 200, "{}", heap.text());
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(cpu.join().unwrap().status, 200);
    let dumps = svc.wait_dumps(1, WAIT);
    assert!(!dumps.is_empty(), "{}", svc.stderr());
    for d in &dumps {
        let text = std::fs::read_to_string(d).unwrap();
        assert!(text.contains(END_MARKER), "{text}");
    }
    let text = get(addr, "/debug/pprof/heap?debug=1").text();
    assert!(text.contains("hotprof_examples::malloc_churn"), "{text}");
    assert!(svc.alive(), "{}", svc.stderr());
}

#[test]
fn bad_rates_fall_back_and_zero_turns_sampling_off() {
    let svc = heap_service(
        "heap-bad-rate",
        &["--churn-mib", "1"],
        &[("HOTPROF_HTTP", "127.0.0.1:0"), ("HOTPROF_HEAP_RATE", "lots")],
    );
    let addr = announced_addr(&svc, "debug HTTP server on http://");
    assert!(svc.stderr().contains("HOTPROF_HEAP_RATE"), "{}", svc.stderr());
    assert!(get(addr, "/debug/pprof/heap?debug=1").text().contains("# Rate = 524288"));
    let off = heap_service(
        "heap-rate-0",
        &["--churn-mib", "1"],
        &[("HOTPROF_HTTP", "127.0.0.1:0"), ("HOTPROF_HEAP_RATE", "0")],
    );
    let addr = announced_addr(&off, "debug HTTP server on http://");
    let answer = get(addr, "/debug/pprof/heap");
    assert_eq!(answer.status, 403);
    assert!(answer.text().contains("HOTPROF_HEAP_RATE=0"), "{}", answer.text());
}

#[test]
fn without_the_sampling_allocator_heap_says_what_is_missing() {
    let dir = fresh_dir("heap-none");
    let svc = Service::start_bin(env!("CARGO_BIN_EXE_web-service"), &dir, &[], &[]);
    let addr = announced_addr(&svc, "debug HTTP server on http://");
    let answer = get(addr, "/debug/pprof/heap");
    assert_eq!(answer.status, 404);
    assert!(answer.text().contains("hotprof::SampledAlloc"), "{}", answer.text());
    assert!(
        !get(addr, "/debug/pprof/").text().contains("heap?debug=1"),
        "no heap row without heap profiling"
    );
}

#[test]
fn a_program_profiling_with_jemalloc_gets_jemallocs_heap_profile() {
    let dir = fresh_dir("heap-jemalloc");
    let env = [
        ("_RJEM_MALLOC_CONF", "prof:true,prof_active:true,lg_prof_sample:17"),
        ("HOTPROF_HTTP", "127.0.0.1:0"),
    ];
    let svc = Service::start_bin(env!("CARGO_BIN_EXE_jemalloc-service"), &dir, &[], &env);
    let addr = announced_addr(&svc, "debug HTTP server on http://");
    let url = format!("http://{addr}/debug/pprof/heap");
    // jemalloc's profile carries addresses; go tool pprof names them from the binary.
    let top = go_pprof(&["-sample_index=inuse_space", "-unit=B", "-top", "-cum", "-nodecount=1000"], &url);
    let held: f64 = top
        .lines()
        .find(|l| l.split_whitespace().last().is_some_and(|f| f.ends_with("hold_blocks")))
        .and_then(|l| l.split_whitespace().nth(3)?.trim_end_matches('B').parse().ok())
        .unwrap_or_else(|| panic!("{top}"));
    assert!(within(held, 64.0 * MIB, 0.15), "hold_blocks: {:.1} MiB\n{top}", held / MIB);
    assert!(top.contains("trigger: http"), "hotprof's metadata comments are added: {top}");
    for query in ["allocs", "heap?debug=1", "heap?seconds=1"] {
        let answer = get(addr, &format!("/debug/pprof/{query}"));
        assert_eq!(answer.status, 400, "{query}: {}", answer.text());
        assert!(answer.text().contains("profiles its heap with jemalloc"), "{}", answer.text());
    }
    // Without jemalloc's profiler running, nothing stands in.
    let plain = Service::start_bin(
        env!("CARGO_BIN_EXE_jemalloc-service"),
        &fresh_dir("heap-jemalloc-off"),
        &[],
        &[("HOTPROF_HTTP", "127.0.0.1:0")],
    );
    let addr = announced_addr(&plain, "debug HTTP server on http://");
    assert_eq!(get(addr, "/debug/pprof/heap").status, 404);
}

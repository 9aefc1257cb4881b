//! Shared pieces of the example services: named threads doing recognisable work.

use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Spawns a named OS thread (names are cut to 15 bytes by the kernel) and
/// waits until it runs: a new thread names itself only once it starts, and
/// the services say "ready" only when every thread shows its name.
pub fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    let (started, wait) = std::sync::mpsc::sync_channel(1);
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = started.send(());
            f()
        })
        .unwrap_or_else(|e| panic!("cannot spawn thread {name}: {e}"));
    let _ = wait.recv();
    handle
}

/// Sleeps forever in short naps.
#[inline(never)]
pub fn sleepy_worker() {
    loop {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Burns about a tenth of a core: 1 ms of arithmetic, then 9 ms of sleep.
#[inline(never)]
pub fn spinning_worker() {
    let mut x: u64 = 1;
    loop {
        let until = Instant::now() + Duration::from_millis(1);
        while Instant::now() < until {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        std::thread::sleep(Duration::from_millis(9));
    }
}

/// Waits on a condition variable that is never signalled.
#[inline(never)]
pub fn waiting_worker() {
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let (lock, cvar) = &*pair;
    let mut ready = lock.lock().unwrap_or_else(|p| p.into_inner());
    while !*ready {
        ready = cvar.wait(ready).unwrap_or_else(|p| p.into_inner());
    }
}

/// Answers `pong` to every TCP connection: proof the service still responds.
#[inline(never)]
pub fn serve_ping(listener: TcpListener) {
    for mut conn in listener.incoming().flatten() {
        let _ = conn.write_all(b"pong\n");
    }
}

/// Allocates `mib` MiB in 4 KiB blocks and keeps them (heap profiles).
#[inline(never)]
pub fn hold_blocks(mib: usize) -> Vec<Vec<u8>> {
    let blocks: Vec<Vec<u8>> = (0..mib * 256).map(|i| std::hint::black_box(vec![i as u8; 4096])).collect();
    // Not a tail call: an optimised build would leave this frame out.
    std::hint::black_box(blocks)
}

/// Allocates `mib` MiB in 4 KiB blocks, freeing each at once (heap profiles).
#[inline(never)]
pub fn churn_blocks(mib: usize) -> u64 {
    let sum = (0..mib * 256).map(|i| std::hint::black_box(vec![i as u8; 4096])[100] as u64).sum();
    std::hint::black_box(sum)
}

/// Allocates and frees blocks of varied sizes as fast as it can, to keep
/// threads inside malloc when a dump arrives.
#[inline(never)]
pub fn malloc_churn() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut keep: Vec<Vec<u8>> = Vec::with_capacity(64);
    loop {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let size = 16 + (seed % 4096) as usize;
        let block = vec![seed as u8; size];
        if keep.len() == 64 {
            keep.swap_remove((seed % 64) as usize);
        }
        keep.push(std::hint::black_box(block));
    }
}

/// Reads `--name value` from the command line, with a default.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)) {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("invalid value for {name}: {v}");
            std::process::exit(2)
        }),
    }
}

/// Opens and closes a shared library in a loop, so the thread often holds the
/// dynamic loader's lock when a dump arrives (unwinders that take that lock
/// from a signal handler deadlock here).
#[inline(never)]
pub fn loader_churn() {
    loop {
        // SAFETY: dlopen/dlclose with a valid NUL-terminated name; the handle is
        // closed exactly once and never used otherwise. libgcc_s is already
        // loaded by every Rust program on Linux, so nothing new is mapped.
        unsafe {
            let h = libc::dlopen(c"libgcc_s.so.1".as_ptr(), libc::RTLD_NOW);
            if !h.is_null() {
                libc::dlclose(h);
            }
        }
    }
}

/// Blocks every signal in this thread, then sleeps forever: a thread hotprof
/// must list without signalling (queued real-time signals would pile up).
#[inline(never)]
pub fn signal_blocking_worker() {
    // SAFETY: sigfillset initialises the set we own; pthread_sigmask only
    // changes this thread's mask.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    }
    sleepy_worker();
}

static HOT_SINK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Burns a whole core in its own body (no calls, even unoptimised): the
/// function a CPU profile should find on top.
#[inline(never)]
pub fn hot_loop() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut i: u32 = 0;
    loop {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        i = i.wrapping_add(1);
        if i == 0 {
            HOT_SINK.store(x, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Bytes of stack left below the current stack pointer in this thread, from
/// the bounds pthread reports.
fn stack_left() -> usize {
    // SAFETY: pthread_getattr_np fills the attr we own for the calling thread;
    // pthread_attr_getstack only reads it; the attr is destroyed once.
    let low = unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return usize::MAX;
        }
        let (mut addr, mut size) = (std::ptr::null_mut(), 0usize);
        libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        addr as usize
    };
    let here = 0u8;
    (std::ptr::addr_of!(here) as usize).saturating_sub(low)
}

/// Recurses until about `leave` bytes of this thread's stack are left, then
/// runs `at_the_edge` there: a thread a profiler must not push over its guard page.
#[inline(never)]
pub fn descend_to_the_edge(leave: usize, at_the_edge: fn()) {
    let pad = std::hint::black_box([0u8; 512]);
    if stack_left() > leave + 1024 {
        descend_to_the_edge(leave, at_the_edge);
    } else {
        at_the_edge();
    }
    std::hint::black_box(pad);
}

/// Sleeps forever, wherever it is called (at the stack's edge). Its naps
/// differ from `sleepy_worker`'s so an optimised build keeps both functions
/// (identical bodies get merged into one symbol).
#[inline(never)]
pub fn parked_at_the_edge() {
    loop {
        std::thread::sleep(Duration::from_millis(70));
    }
}

/// Spins forever without calls, wherever it is called (at the stack's edge).
#[inline(never)]
pub fn spinning_at_the_edge() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    loop {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::hint::black_box(x);
    }
}

/// Spawns a named thread with a `stack`-byte stack that descends to about
/// `leave` bytes from its end and runs `at_the_edge` there.
pub fn spawn_at_the_edge(name: &str, stack: usize, leave: usize, at_the_edge: fn()) {
    let (reached, wait) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(name.to_string())
        .stack_size(stack)
        .spawn(move || {
            descend_to_the_edge(leave, || {});
            let _ = reached.send(());
            descend_to_the_edge(leave, at_the_edge);
        })
        .unwrap_or_else(|e| panic!("cannot spawn thread {name}: {e}"));
    let _ = wait.recv();
}

static MIX_SINK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Iterations of the mixer's loops per 10% share.
const MIX_UNIT: u64 = 200_000;

/// 7 units of a loop with no calls in it, even unoptimised.
#[inline(never)]
pub fn seventy_percent() {
    let (mut x, mut i) = (0x9e37_79b9_7f4a_7c15u64, 0u64);
    while i < 7 * MIX_UNIT {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        i += 1;
    }
    MIX_SINK.store(x, std::sync::atomic::Ordering::Relaxed);
}

/// 3 units of the same loop.
#[inline(never)]
pub fn thirty_percent() {
    let (mut x, mut i) = (0x2545_f491_4f6c_dd1du64, 0u64);
    while i < 3 * MIX_UNIT {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        i += 1;
    }
    MIX_SINK.store(x, std::sync::atomic::Ordering::Relaxed);
}

/// Spends 70% of its CPU time in `seventy_percent` and 30% in
/// `thirty_percent` (the same loop, 7 and 3 units of it), whatever else
/// runs: a known split for profilers to find.
#[inline(never)]
pub fn mixed_worker() {
    loop {
        seventy_percent();
        thirty_percent();
    }
}

/// Starts a thread that lives about a millisecond, joins it, and again:
/// threads come and go while hotprof works.
#[inline(never)]
pub fn thread_churn() {
    loop {
        let short = std::thread::spawn(|| std::thread::sleep(Duration::from_millis(1)));
        let _ = short.join();
    }
}

/// Ticks every 10 ms and prints, every 10 s, the longest gap between two
/// ticks since the last line: `heartbeat: max gap <ms> ms`. A stall of the
/// program shows as a long gap.
#[inline(never)]
pub fn heartbeat() {
    let mut last = Instant::now();
    let mut window = Instant::now();
    let mut max_gap = Duration::ZERO;
    loop {
        std::thread::sleep(Duration::from_millis(10));
        let now = Instant::now();
        max_gap = max_gap.max(now - last);
        last = now;
        if now - window >= Duration::from_secs(10) {
            println!("heartbeat: max gap {} ms", max_gap.as_millis());
            max_gap = Duration::ZERO;
            window = now;
        }
    }
}

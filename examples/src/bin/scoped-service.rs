//! A service with `#[hotprof::profile]` on chosen functions: sync workers on
//! named threads and tokio tasks parked at an `.await`, for the scope tests.
//!
//! `--workers N` sync worker threads (default 3), `--tasks N` parked tasks
//! (default 50), `--slow N` calls of a function whose threshold is 50 us and
//! that takes about 200 us, `--stuck SECS` a thread in a call with a 100 ms
//! threshold that spins for SECS, `--exit-after SECS`.

use std::time::{Duration, Instant};

use hotprof_examples::{arg, spawn_named};

#[hotprof::profile]
fn process_batch(worker: usize) {
    loop {
        parse_record(worker);
    }
}

#[hotprof::profile(name = "records::parse")]
fn parse_record(worker: usize) {
    std::thread::sleep(Duration::from_millis(50 + worker as u64));
}

#[hotprof::profile]
async fn handle_request(id: usize, mut release: tokio::sync::watch::Receiver<bool>) -> usize {
    wait_for_data(&mut release).await;
    id
}

#[hotprof::profile]
async fn wait_for_data(release: &mut tokio::sync::watch::Receiver<bool>) {
    while !*release.borrow() {
        if release.changed().await.is_err() {
            return;
        }
    }
}

#[hotprof::profile(threshold = "50us")]
fn slow_operation() {
    let until = Instant::now() + Duration::from_micros(200);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// Spins for `seconds`: a call that is still running when its threshold passes.
#[hotprof::profile(threshold = "100ms")]
fn stuck_call(seconds: u64) {
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut x = 1u64;
    while Instant::now() < until {
        x = std::hint::black_box(x.wrapping_mul(3));
    }
}

#[hotprof::main]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let workers: usize = arg("--workers", 3);
    let tasks: usize = arg("--tasks", 50);
    let slow: usize = arg("--slow", 0);
    let exit_after: u64 = arg("--exit-after", 0);
    let stuck: u64 = arg("--stuck", 0);

    for w in 0..workers {
        spawn_named(&format!("sync-worker-{w}"), move || process_batch(w));
    }
    let (release, rx) = tokio::sync::watch::channel(false);
    let handles: Vec<_> = (0..tasks).map(|id| tokio::spawn(handle_request(id, rx.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..slow {
        slow_operation();
    }
    if stuck > 0 {
        spawn_named("stuck", move || stuck_call(stuck));
    }
    println!("scoped-service: ready pid={}", std::process::id());
    if exit_after > 0 {
        tokio::time::sleep(Duration::from_secs(exit_after)).await;
    } else {
        std::future::pending::<()>().await;
    }
    let _ = release.send(true);
    for h in handles {
        let _ = h.await;
    }
}

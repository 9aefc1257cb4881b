//! A service instrumented with `tracing` only, no `#[hotprof::profile]`:
//! `hotprof::tracing::layer()` makes its entered spans logical frames.
//! Thread `traced-worker` sleeps inside `heron_request{id=7
//! client="osprey"}` and, inside it, `lookup_nest{table="eggs"}`; thread
//! `traced-spinner` burns CPU inside `hot_span`. `--slow-spans MS` (0:
//! off) makes spans open longer than that write slow-call events. `--tasks N` (0) also
//! parks N tokio tasks in `parked_handler{id=I}` awaiting `wait_for_data`,
//! both `#[tracing::instrument]` async fns. Prints
//! `traced-service: ready pid=PID` once all are inside their spans.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use hotprof_examples::{arg, spawn_named};
use tokio::sync::watch;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[hotprof::main]
fn main() {
    let slow_ms: u64 = arg("--slow-spans", 0);
    let mut layer = hotprof::tracing::layer();
    if slow_ms > 0 {
        layer = layer.slow_spans(Duration::from_millis(slow_ms));
    }
    tracing_subscriber::registry().with(layer).init();
    let inside = Arc::new(Barrier::new(3));
    let worker = inside.clone();
    spawn_named("traced-worker", move || {
        let request = tracing::info_span!("heron_request", id = 7, client = "osprey");
        let _in = request.enter();
        lookup(&worker);
    });
    let spinner = inside.clone();
    spawn_named("traced-spinner", move || {
        let _in = tracing::info_span!("hot_span").entered();
        spinner.wait();
        let mut x = 1u64;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    });
    inside.wait();
    let tasks: u32 = arg("--tasks", 0);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let runtime = runtime.unwrap_or_else(|e| panic!("cannot start tokio: {e}"));
    let (_release, parked) = watch::channel(false);
    for id in 0..tasks {
        runtime.spawn(parked_handler(id, parked.clone()));
    }
    if tasks > 0 {
        std::thread::sleep(Duration::from_millis(300)); // every task polled once, now parked
    }
    println!("traced-service: ready pid={}", std::process::id());
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[inline(never)]
fn lookup(inside: &Barrier) {
    let _in = tracing::info_span!("lookup_nest", table = "eggs").entered();
    inside.wait();
    loop {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A request parked at an `.await` inside two instrumented async fns.
#[tracing::instrument(skip(release))]
async fn parked_handler(id: u32, release: watch::Receiver<bool>) {
    wait_for_data(release).await;
}

#[tracing::instrument(skip_all)]
async fn wait_for_data(mut release: watch::Receiver<bool>) {
    while !*release.borrow() {
        if release.changed().await.is_err() {
            return;
        }
    }
}

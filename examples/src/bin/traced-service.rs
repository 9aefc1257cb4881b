//! A service instrumented with `tracing` only, no `#[hotprof::profile]`:
//! `hotprof::tracing::layer()` makes its entered spans logical frames.
//! Thread `traced-worker` sleeps inside `heron_request{id=7
//! client="osprey"}` and, inside it, `lookup_nest{table="eggs"}`; thread
//! `traced-spinner` burns CPU inside `hot_span`. Prints
//! `traced-service: ready pid=PID` once both are inside their spans.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use hotprof_examples::spawn_named;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[hotprof::main]
fn main() {
    tracing_subscriber::registry().with(hotprof::tracing::layer()).init();
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

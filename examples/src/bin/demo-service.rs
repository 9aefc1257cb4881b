//! A small service under hotprof, used by the README demo and the tests.
//!
//! Threads: `sleeper`, `spinner`, `waiter`, `pinger` (a TCP ping server), two
//! tokio workers, and optionally `--extra N` sleepers, `--malloc N` threads
//! churning the allocator and `--loader N` threads churning the dynamic loader.
//! `--hot N` adds threads that burn a core each in `hot_loop`.
//! `--churn N` adds threads that start and join short-lived threads in a
//! loop; `--heartbeat` a thread that prints the longest gap between its
//! 10 ms ticks every 10 s (stalls show there).
//! `--mix` adds `mixer`, which spends 70% of its CPU time in one function
//! and 30% in another.
//! `--edge` adds `edge-parked` and `edge-spinning`, small-stack threads
//! parked and spinning with about 5 KiB of stack left.
//! `--blocker` adds a thread that blocks every signal; `--panic` panics in main
//! after 200 ms. `--exit-after SECS` ends it (default: run forever).

use std::net::TcpListener;
use std::time::Duration;

use hotprof_examples::{
    arg, hot_loop, loader_churn, malloc_churn, mixed_worker, parked_at_the_edge, serve_ping,
    signal_blocking_worker, sleepy_worker, spawn_at_the_edge, spawn_named, spinning_at_the_edge,
    spinning_worker, thread_churn, waiting_worker,
};

#[hotprof::main]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let extra: usize = arg("--extra", 0);
    let malloc: usize = arg("--malloc", 0);
    let loader: usize = arg("--loader", 0);
    let hot: usize = arg("--hot", 0);
    let exit_after: u64 = arg("--exit-after", 0);
    let blocker = std::env::args().any(|a| a == "--blocker");
    let panic = std::env::args().any(|a| a == "--panic");
    let edge = std::env::args().any(|a| a == "--edge");
    let mix = std::env::args().any(|a| a == "--mix");
    let churn: usize = arg("--churn", 0);
    let heartbeat = std::env::args().any(|a| a == "--heartbeat");

    spawn_named("sleeper", sleepy_worker);
    spawn_named("spinner", spinning_worker);
    spawn_named("waiter", waiting_worker);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    spawn_named("pinger", move || serve_ping(listener));
    for i in 0..extra {
        spawn_named(&format!("extra-{i}"), sleepy_worker);
    }
    for i in 0..malloc {
        spawn_named(&format!("malloc-{i}"), malloc_churn);
    }
    for i in 0..loader {
        spawn_named(&format!("loader-{i}"), loader_churn);
    }
    for i in 0..hot {
        spawn_named(&format!("burner-{i}"), hot_loop);
    }
    for i in 0..churn {
        spawn_named(&format!("churn-{i}"), thread_churn);
    }
    if heartbeat {
        spawn_named("heartbeat", hotprof_examples::heartbeat);
    }
    if mix {
        spawn_named("mixer", mixed_worker);
    }
    if edge {
        spawn_at_the_edge("edge-parked", 128 << 10, 5 << 10, parked_at_the_edge);
        spawn_at_the_edge("edge-spinning", 128 << 10, 5 << 10, spinning_at_the_edge);
    }
    if blocker {
        spawn_named("blocker", signal_blocking_worker);
    }
    println!("demo-service: ready pid={} ping=127.0.0.1:{port}", std::process::id());

    let ticker = tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    if panic {
        tokio::time::sleep(Duration::from_millis(200)).await;
        panic!("demo-service: panicking on purpose (--panic)");
    }
    if exit_after > 0 {
        tokio::time::sleep(Duration::from_secs(exit_after)).await;
        ticker.abort();
    } else {
        ticker.await?;
    }
    Ok(())
}

//! An axum service behind `hotprof::DyeLayer::header("x-hotprof-dye")`: a
//! request carrying that header is dyed with its value. Run with
//! `HOTPROF_SCOPES=dyed` and only dyed requests record their
//! `#[hotprof::profile]` scopes and `tracing` spans.
//!
//! - `GET /burn/MS` burns about MS ms of CPU in `burn_cpu`, a marked call.
//! - `GET /wait/MS` waits MS ms in `wait_upstream` (a marked async fn with a
//!   100 ms slow-call threshold) inside the span `upstream_call{ms=MS}`.
//!
//! Prints `dyed-service: ready pid=PID` on stdout and
//! `dyed-service: app on http://ADDR/` on stderr once listening.

use std::time::{Duration, Instant};

use axum::extract::Path;
use axum::routing::get;
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[hotprof::main(http = "127.0.0.1:0")]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::registry().with(hotprof::tracing::layer()).init();
    let app = axum::Router::new()
        .route("/burn/{ms}", get(|Path(ms): Path<u64>| async move { format!("{}\n", burn_cpu(ms)) }))
        .route("/wait/{ms}", get(wait))
        .layer(hotprof::DyeLayer::header("x-hotprof-dye"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("dyed-service: ready pid={}", std::process::id());
    eprintln!("dyed-service: app on http://{addr}/");
    axum::serve(listener, app).await?;
    Ok(())
}

async fn wait(Path(ms): Path<u64>) -> String {
    let span = tracing::info_span!("upstream_call", ms);
    wait_upstream(ms).instrument(span).await;
    format!("waited {ms} ms (dye: {})\n", hotprof::current_dye().unwrap_or("none"))
}

/// A call to a slow upstream.
#[hotprof::profile(threshold = "100ms")]
async fn wait_upstream(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// CPU work for about `ms` ms, which the optimiser cannot skip.
#[hotprof::profile]
fn burn_cpu(ms: u64) -> u64 {
    let end = Instant::now() + Duration::from_millis(ms);
    let mut h = 0x9e37_79b9_7f4a_7c15u64;
    while Instant::now() < end {
        for i in 0..1000 {
            h = std::hint::black_box((h ^ i).wrapping_mul(0x100_0000_01b3).rotate_left(5));
        }
    }
    h
}

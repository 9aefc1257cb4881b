//! An axum service whose debug server address comes from the macro
//! (`http = "127.0.0.1:0"`: a free loopback port; `HOTPROF_HTTP` overrides
//! it). `GET /` answers `hello`; `GET /work` does a little CPU work first,
//! like a real handler. Prints `web-service: app on http://ADDR/` on stderr
//! once listening. The `http-load` benchmark drives it.

#[hotprof::main(http = "127.0.0.1:0")]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "hello\n" }))
        .route("/work", axum::routing::get(|| async { format!("{}\n", work(20_000)) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("web-service: ready pid={}", std::process::id());
    eprintln!("web-service: app on http://{addr}/");
    axum::serve(listener, app).await?;
    Ok(())
}

/// A few microseconds of arithmetic the optimiser cannot skip.
fn work(rounds: u64) -> u64 {
    (0..rounds).fold(0x9e37_79b9_7f4a_7c15u64, |h, i| (h ^ i).wrapping_mul(0x100_0000_01b3).rotate_left(5))
}

//! An axum service that mounts hotprof's `/debug/pprof` handlers on its own
//! port, under `/internal`, instead of a second port (`hotprof::router()`).
//! Prints `router-service: app on http://ADDR/` on stderr once listening.

use std::net::SocketAddr;

#[hotprof::main]
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "hello\n" }))
        .nest("/internal", hotprof::router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("router-service: ready pid={}", std::process::id());
    eprintln!("router-service: app on http://{addr}/");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}

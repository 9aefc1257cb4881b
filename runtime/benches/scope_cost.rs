//! What a marked call costs: unmarked vs marked with capture off vs on, for
//! sync calls, async polls and whole async calls. All in one run, so the
//! comparison holds on a noisy machine. `cargo bench -p hotprof --bench scope_cost`.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_group, criterion_main};
use hotprof::__private::{Scope, enter, instrument};

static SYNC: Scope = Scope::new("bench::sync", file!(), line!(), 0);
static ASYNC: Scope = Scope::new("bench::async", file!(), line!(), 0);

#[inline(never)]
fn plain(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[inline(never)]
fn marked(x: u64) -> u64 {
    let _g = enter(&SYNC);
    black_box(x).wrapping_mul(31)
}

/// Pending `left` times, then ready.
struct Yields {
    left: u32,
}

impl Future for Yields {
    type Output = u32;
    #[inline(never)]
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<u32> {
        let left = black_box(self.left);
        if left == 0 {
            Poll::Ready(7)
        } else {
            self.left = left - 1;
            Poll::Pending
        }
    }
}

const POLLS: u32 = 1000;

#[inline(always)]
fn drive<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn sync_calls(c: &mut Criterion) {
    let mut g = c.benchmark_group("sync call");
    g.bench_function("unmarked", |b| b.iter(|| plain(black_box(3))));
    hotprof::disable();
    g.bench_function("marked, capture off", |b| b.iter(|| marked(black_box(3))));
    hotprof::enable();
    g.bench_function("marked, capture on", |b| b.iter(|| marked(black_box(3))));
    g.finish();
}

fn async_polls(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("async, {POLLS} polls"));
    g.bench_function("unmarked", |b| b.iter(|| drive(Yields { left: black_box(POLLS - 1) })));
    hotprof::disable();
    g.bench_function("marked, capture off", |b| {
        b.iter(|| drive(instrument(&ASYNC, Yields { left: black_box(POLLS - 1) })))
    });
    hotprof::enable();
    g.bench_function("marked, capture on", |b| {
        b.iter(|| drive(instrument(&ASYNC, Yields { left: black_box(POLLS - 1) })))
    });
    g.finish();

    let mut g = c.benchmark_group("async call (one poll)");
    g.bench_function("unmarked", |b| b.iter(|| drive(Yields { left: black_box(0) })));
    hotprof::disable();
    g.bench_function("marked, capture off", |b| {
        b.iter(|| drive(instrument(&ASYNC, Yields { left: black_box(0) })))
    });
    hotprof::enable();
    g.bench_function("marked, capture on", |b| {
        b.iter(|| drive(instrument(&ASYNC, Yields { left: black_box(0) })))
    });
    g.finish();
}

/// A whole async call as users write it, driven to completion the way a
/// `block_on` does: bare, `#[hotprof::profile]`, `#[tracing::instrument]`
/// (no subscriber) and `#[async_backtrace::framed]`.
async fn bare_async(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[hotprof::profile]
async fn marked_async(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[tracing::instrument(skip_all)]
async fn traced_async(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[async_backtrace::framed]
async fn framed_async(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[tracing::instrument(skip_all)]
#[inline(never)]
fn traced(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

fn whole_async_calls(c: &mut Criterion) {
    let mut g = c.benchmark_group("async fn, whole call (block_on)");
    g.bench_function("bare", |b| b.iter(|| drive(bare_async(black_box(3)))));
    hotprof::disable();
    g.bench_function("hotprof, capture off", |b| b.iter(|| drive(marked_async(black_box(3)))));
    hotprof::enable();
    g.bench_function("hotprof, capture on", |b| b.iter(|| drive(marked_async(black_box(3)))));
    g.bench_function("tracing, no subscriber", |b| b.iter(|| drive(traced_async(black_box(3)))));
    g.bench_function("async-backtrace", |b| b.iter(|| drive(framed_async(black_box(3)))));
    g.finish();
    let mut g = c.benchmark_group("sync call, tracing");
    g.bench_function("tracing, no subscriber", |b| b.iter(|| traced(black_box(3))));
    g.finish();
}

/// Dyed traffic (`HOTPROF_SCOPES=dyed`): what an undyed marked call pays,
/// with no dyed request alive and with one alive (parked), and what a dyed
/// whole call pays, tag lookup included.
/// `cargo bench -p hotprof --bench scope_cost -- dyed`
fn dyed_traffic(c: &mut Criterion) {
    let mut g = c.benchmark_group("dyed traffic, HOTPROF_SCOPES=dyed");
    hotprof::enable();
    hotprof::set_scope_capture(hotprof::ScopeCapture::Dyed);
    g.bench_function("sync, undyed", |b| b.iter(|| marked(black_box(3))));
    g.bench_function("async fn, undyed", |b| b.iter(|| drive(marked_async(black_box(3)))));
    let mut parked = Box::pin(hotprof::dyed("bench-parked", Yields { left: 1 }));
    let _ = parked.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    g.bench_function("sync, undyed, a dyed request alive", |b| b.iter(|| marked(black_box(3))));
    g.bench_function("async fn, undyed, a dyed request alive", |b| {
        b.iter(|| drive(marked_async(black_box(3))))
    });
    drop(parked);
    g.bench_function("bare async fn in dyed()", |b| {
        b.iter(|| drive(hotprof::dyed("bench", bare_async(black_box(3)))))
    });
    g.bench_function("async fn in dyed()", |b| {
        b.iter(|| drive(hotprof::dyed("bench", marked_async(black_box(3)))))
    });
    hotprof::set_scope_capture(hotprof::ScopeCapture::All);
    g.finish();
}

/// Entering and exiting one span (and a span created per call), under a
/// `tracing_subscriber` registry alone and with hotprof's layer on it.
/// `cargo bench -p hotprof --features tracing --bench scope_cost -- tracing`
#[cfg(feature = "tracing")]
fn tracing_layer(c: &mut Criterion) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let mut g = c.benchmark_group("tracing span");
    let mut run = |name: &str, subscriber: tracing::Dispatch| {
        tracing::dispatcher::with_default(&subscriber, || {
            let span = tracing::info_span!("bench_span", id = 7);
            g.bench_function(format!("enter+exit, {name}"), |b| {
                b.iter(|| {
                    let _in = span.enter();
                    black_box(3)
                })
            });
            g.bench_function(format!("new+enter+exit+close, {name}"), |b| {
                b.iter(|| tracing::info_span!("bench_call", id = black_box(7)).in_scope(|| black_box(3)))
            });
        });
    };
    run("registry", tracing::Dispatch::new(tracing_subscriber::registry()));
    // The floor any layer pays: `Layered` calling one that does nothing.
    struct Nothing;
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Nothing {}
    run(
        "registry + a layer that does nothing",
        tracing::Dispatch::new(tracing_subscriber::registry().with(Nothing)),
    );
    run(
        "registry + hotprof layer",
        tracing::Dispatch::new(tracing_subscriber::registry().with(hotprof::tracing::layer())),
    );
    hotprof::disable();
    run(
        "registry + hotprof layer, capture off",
        tracing::Dispatch::new(tracing_subscriber::registry().with(hotprof::tracing::layer())),
    );
    hotprof::enable();
    g.finish();
}

#[cfg(not(feature = "tracing"))]
fn tracing_layer(_: &mut Criterion) {}

fn setup(c: &mut Criterion) {
    // Initialises hotprof (switch on by default) without writing anything.
    let _ = hotprof::is_enabled();
    let _ = hotprof::scope_profile();
    sync_calls(c);
    async_polls(c);
    whole_async_calls(c);
    dyed_traffic(c);
    tracing_layer(c);
}

criterion_group!(benches, setup);
criterion_main!(benches);

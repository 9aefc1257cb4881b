//! Scoped samplers in-process, through the API the macro expands to: logical
//! stacks of threads and parked tasks in dumps, frames popped on panic and on
//! drop, and the scope profile read back with `go tool pprof`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;
use std::time::Duration;

use hotprof::__private::{Scope, enter, instrument};

static OUTER: Scope = Scope::new("tests::outer", "runtime/tests/scopes.rs", 10, 0);
static INNER: Scope = Scope::new("tests::inner", "runtime/tests/scopes.rs", 20, 0);
static HANDLER: Scope = Scope::new("tests::handler", "runtime/tests/scopes.rs", 30, 0);
static WAIT: Scope = Scope::new("tests::wait_for_data", "runtime/tests/scopes.rs", 40, 0);
static PANICKY: Scope = Scope::new("tests::panicky", "runtime/tests/scopes.rs", 50, 0);

/// Tests share one process-wide hotprof; dumps must not interleave with changes.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn setup() {
    // SAFETY: set before hotprof reads the environment (first use below), in every test.
    unsafe {
        std::env::set_var("HOTPROF_RATE_BURST", "1000");
        std::env::set_var("HOTPROF_DIR", env!("CARGO_TARGET_TMPDIR"));
    }
    hotprof::enable();
}

fn dump_text() -> String {
    hotprof::dump_threads().unwrap().to_string()
}

fn logical_section(text: &str) -> &str {
    let start = text.find("logical stacks:").expect("dump has a logical stacks section");
    &text[start..]
}

#[test]
fn sync_frames_nest_and_pop_even_on_panic() {
    let _s = serial();
    setup();
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let worker = std::thread::Builder::new()
        .name("scoped-worker".into())
        .spawn(move || {
            let _outer = enter(&OUTER);
            let _inner = enter(&INNER);
            tx.send(()).unwrap();
            done_rx.recv().unwrap();
        })
        .unwrap();
    rx.recv().unwrap();
    let text = dump_text();
    let section = logical_section(&text);
    let block = section.split("\nthread ").find(|b| b.contains("\"scoped-worker\"")).expect(section);
    let inner_at = block.find("tests::inner, elapsed").unwrap();
    let outer_at = block.find("tests::outer, elapsed").unwrap();
    assert!(inner_at < outer_at, "innermost first:\n{block}");
    assert!(block.contains("runtime/tests/scopes.rs:20"));
    done_tx.send(()).unwrap();
    worker.join().unwrap();

    // A panic unwinds through the guard: the frame is gone afterwards.
    let panicked = std::thread::Builder::new()
        .name("scoped-panic".into())
        .spawn(|| {
            let _g = enter(&PANICKY);
            panic!("on purpose");
        })
        .unwrap()
        .join();
    assert!(panicked.is_err());
    let _g = enter(&OUTER);
    let text = dump_text();
    assert!(!logical_section(&text).contains("tests::panicky"), "{text}");
}

#[test]
fn parked_tasks_show_in_dumps_grouped_and_one_by_one() {
    let _s = serial();
    setup();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let mut handles = Vec::new();
    for _ in 0..5 {
        let mut rx = release_rx.clone();
        handles.push(rt.spawn(instrument(&HANDLER, async move {
            instrument(&WAIT, async move {
                while !*rx.borrow() {
                    rx.changed().await.unwrap();
                }
            })
            .await
        })));
    }
    std::thread::sleep(Duration::from_millis(300));
    let text = dump_text();
    let section = logical_section(&text);
    assert!(section.contains("5 tasks @\n#\ttests::wait_for_data (longest"), "{section}");
    let tasks: Vec<&str> = section.split("\ntask ").skip(1).collect();
    assert_eq!(tasks.len(), 5, "{section}");
    for t in &tasks {
        let wait = t.find("tests::wait_for_data, elapsed").unwrap();
        let handler = t.find("tests::handler, elapsed").unwrap();
        assert!(wait < handler, "{t}");
    }

    release_tx.send(true).unwrap();
    for h in handles {
        rt.block_on(h).unwrap();
    }
    // Completed tasks leave no trace; dropped ones neither.
    let dropped = rt.spawn(instrument(&HANDLER, std::future::pending::<()>()));
    std::thread::sleep(Duration::from_millis(100));
    assert!(logical_section(&dump_text()).contains("1 tasks @"));
    dropped.abort();
    std::thread::sleep(Duration::from_millis(100));
    let text = dump_text();
    assert!(!logical_section(&text).contains("tests::handler"), "{text}");
}

/// Polls `f` once with a waker that does nothing.
fn poll_once<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
    f.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
}

#[test]
fn a_panic_inside_an_instrumented_future_leaves_the_thread_and_the_pool_clean() {
    let _s = serial();
    setup();
    // Each in turn, on one thread: a quick call (its record stays as the
    // thread's spare), a call that panics in its poll, then a call that parks.
    let quick = instrument(&OUTER, async { 1 });
    assert_eq!(poll_once(std::pin::pin!(quick)), std::task::Poll::Ready(1));
    let panicked = std::panic::catch_unwind(|| {
        let mut f = std::pin::pin!(instrument(&PANICKY, async {
            instrument(&INNER, async { panic!("on purpose") }).await
        }));
        let _ = poll_once(f.as_mut());
    });
    assert!(panicked.is_err());
    let mut parked = Box::pin(instrument(&HANDLER, std::future::pending::<()>()));
    assert!(poll_once(parked.as_mut()).is_pending());
    let text = dump_text();
    let section = logical_section(&text);
    // A root of its own (not inside the task that panicked), and nothing
    // left of the panicked one.
    assert!(section.contains("1 tasks @\n#\ttests::handler (longest"), "{section}");
    assert!(!section.contains("tests::panicky") && !section.contains("tests::inner"), "{section}");
    drop(parked);
    assert!(!logical_section(&dump_text()).contains("tests::handler"));
}

#[test]
fn one_hundred_thousand_parked_tasks_appear_in_a_dump() {
    let _s = serial();
    setup();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let handles: Vec<_> = (0..100_000)
        .map(|_| {
            let mut rx = release_rx.clone();
            rt.spawn(instrument(&WAIT, async move {
                let _ = rx.changed().await;
            }))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let text = dump_text();
    let section = logical_section(&text);
    assert!(
        section.contains("100000 tasks @\n#\ttests::wait_for_data"),
        "{}",
        &section[..section.len().min(2000)]
    );
    assert!(section.contains("...90000 more tasks not listed"), "listing is capped");
    release_tx.send(true).unwrap();
    for h in handles {
        rt.block_on(h).unwrap();
    }
}

#[test]
fn scope_profile_reads_back_with_go_tool_pprof() {
    let _s = serial();
    setup();
    // Each profile covers what happened since the one before: start the
    // count here, whatever the other tests of this process did first.
    let _ = hotprof::scope_profile().unwrap();
    for _ in 0..1000 {
        let _o = enter(&OUTER);
        let _i = enter(&INNER);
    }
    let gz = hotprof::scope_profile().unwrap();
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("scope-profile-test.pb.gz");
    std::fs::write(&path, gz).unwrap();
    let out = std::process::Command::new("go")
        .args(["tool", "pprof", "-raw"])
        .arg(&path)
        .output()
        .expect("go must be installed (the test script installs golang-go)");
    let raw = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{raw}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(raw.contains("calls/count wall/nanoseconds"), "{raw}");
    // The stack outer > inner completed 1000 times since the first profile.
    let inner_sample =
        raw.split("\n").skip_while(|l| !l.starts_with("Samples:")).collect::<Vec<_>>().join("\n");
    assert!(raw.contains("tests::inner") && raw.contains("tests::outer"), "{raw}");
    assert!(inner_sample.lines().any(|l| l.trim_start().starts_with("1000 ")), "{inner_sample}");
    // A second profile covers only what happened since the first.
    let again = hotprof::scope_profile().unwrap();
    std::fs::write(&path, again).unwrap();
    let out = std::process::Command::new("go").args(["tool", "pprof", "-raw"]).arg(&path).output().unwrap();
    let raw = String::from_utf8_lossy(&out.stdout);
    assert!(!raw.lines().any(|l| l.trim_start().starts_with("1000 ")), "{raw}");
}

//! The public API in-process: dump_threads, the switch, write_thread_dump.
#![allow(clippy::unwrap_used)]

use std::sync::mpsc;
use std::time::Duration;

#[inline(never)]
fn parked_in_a_known_function(ready: mpsc::Sender<()>) {
    ready.send(()).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn api_dumps_switches_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: set before hotprof or any other thread of this test reads the environment.
    unsafe { std::env::set_var("HOTPROF_DIR", dir.path()) };
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("api-parked".into())
        .spawn(move || parked_in_a_known_function(tx))
        .unwrap();
    rx.recv().unwrap();
    // Waiting in a futex (a call the kernel restarts after the handler),
    // and spinning in user code.
    let (_keep_open, waiting) = mpsc::channel::<()>();
    std::thread::Builder::new().name("api-waiting".into()).spawn(move || waiting.recv()).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spin_stop = stop.clone();
    std::thread::Builder::new()
        .name("api-spinning".into())
        .spawn(move || {
            while !spin_stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));

    let dump = hotprof::dump_threads().unwrap();
    let state = |name: &str| dump.threads().iter().find(|t| t.name == name).map(|t| t.state.clone());
    // Each thread's handler tells its state from where the signal found it.
    assert_eq!(state("api-parked").as_deref(), Some("sleeping"), "cut short in nanosleep");
    assert_eq!(state("api-waiting").as_deref(), Some("sleeping"), "restarted futex wait");
    assert_eq!(state("api-spinning").as_deref(), Some("running"));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let me = dump.threads().iter().find(|t| t.status == hotprof::ThreadStatus::Dumping).unwrap();
    assert!(me.functions().any(|f| f.contains("api_dumps_switches_and_writes")), "{me:?}");
    let parked = dump.threads().iter().find(|t| t.name == "api-parked").unwrap();
    assert!(matches!(parked.status, hotprof::ThreadStatus::Captured { .. }), "{:?}", parked.status);
    assert!(parked.functions().any(|f| f.ends_with("parked_in_a_known_function")), "{parked:?}");
    assert!(dump.to_string().contains("trigger: api"));

    hotprof::disable();
    assert!(!hotprof::is_enabled());
    let err = hotprof::dump_threads().unwrap_err();
    assert!(matches!(err, hotprof::DumpError::Disabled));
    assert!(err.to_string().contains("hotprof::enable()"));
    hotprof::enable();
    assert!(hotprof::is_enabled());

    let stats = hotprof::stats();
    let dumps = stats.kinds.iter().find(|(name, _)| *name == "thread dump").unwrap().1;
    assert_eq!(dumps.admitted, 1, "the disabled call never reached the guard");
    assert_eq!(dumps.refused(), 0);
    assert!(!stats.breaker_open);

    let path = hotprof::write_thread_dump().unwrap();
    assert!(path.starts_with(dir.path()));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"api-parked\""));
}

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

    let dump = hotprof::dump_threads().unwrap();
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

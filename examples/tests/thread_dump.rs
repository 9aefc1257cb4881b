//! SIGUSR1 thread dumps of a real process: content, switch, config errors,
//! signal storms, crash safety, many threads, and agreement with gdb.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const WAIT: Duration = Duration::from_secs(30);

/// Tests that load the machine run one at a time, so their own load is what they measure.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn sigusr1_dumps_every_named_thread_with_its_function() {
    let dir = fresh_dir("named");
    let mut svc = Service::start(&dir, &[], &[]);
    assert!(svc.stderr().contains("hotprof: ready"), "{}", svc.stderr());
    svc.kill("USR1");
    let files = svc.wait_dumps(1, WAIT);
    assert_eq!(files.len(), 1, "stderr: {}", svc.stderr());
    let name = files[0].file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("demo-service-") && name.ends_with(&format!("-{}-threads.txt", svc.pid)),
        "{name}"
    );

    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.starts_with("hotprof thread dump\n"));
    assert!(text.trim_end().ends_with(END_MARKER));
    let (header, threads) = parse_dump(&text);
    assert_eq!(header_value(&header, "app"), format!("demo-service {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(header_value(&header, "pid"), svc.pid.to_string());
    assert_eq!(header_value(&header, "trigger"), "signal SIGUSR1");
    assert!(header_value(&header, "binary").ends_with("/demo-service"));
    assert!(header_value(&header, "unwinder").starts_with("dwarf"), "{header:?}");
    for key in ["host", "time", "threads", "capture", "commit", "build", "process started"] {
        header_value(&header, key);
    }

    let expect = [
        ("sleeper", "sleepy_worker"),
        ("spinner", "spinning_worker"),
        ("waiter", "waiting_worker"),
        ("pinger", "serve_ping"),
        ("demo-service", "demo_service::main"),
        ("hotprof-signals", "hotprof::"),
    ];
    let missing = |threads: &[DumpThread]| -> Vec<String> {
        expect
            .iter()
            .filter_map(|(thread, function)| {
                let t = threads.iter().find(|t| t.name == *thread)?;
                let ok = t.has_function(function) && !t.status.contains("not answering");
                (!ok).then(|| {
                    format!("thread {thread} lacks {function} [{}]:\n{}", t.status, t.lines.join("\n"))
                })
            })
            .collect()
    };
    for (thread, _) in expect {
        assert!(threads.iter().any(|t| t.name == thread), "no thread {thread} in\n{text}");
    }
    // A thread that has just been started may not have reached its function
    // when a loaded machine lets the dump in first: look again, at most twice.
    let mut latest = missing(&threads);
    for attempt in 2..=3 {
        if latest.is_empty() {
            break;
        }
        svc.kill("USR1");
        let files = svc.wait_dumps(attempt, WAIT);
        let (_, again) = parse_dump(&std::fs::read_to_string(files.last().unwrap()).unwrap());
        latest = missing(&again);
    }
    assert!(latest.is_empty(), "{}", latest.join("\n\n"));
    let main = threads.iter().find(|t| t.name == "demo-service").unwrap();
    assert_eq!(main.tid, svc.pid, "the main thread's tid is the pid");
    assert_eq!(threads.iter().filter(|t| t.name == "tokio-rt-worker").count(), 2);
    // Frames carry file:line where debug info exists.
    let sleeper = threads.iter().find(|t| t.name == "sleeper").unwrap();
    assert!(
        sleeper.lines.iter().any(|l| l.starts_with('\t') && l.contains("examples/src/lib.rs:")),
        "{sleeper:?}"
    );

    assert!(svc.alive(), "the service survives the dump");
    assert!(svc.ping());
    assert!(svc.wait_stderr("thread dump written to", WAIT));
}

#[test]
fn dump_lists_the_same_threads_as_gdb() {
    let dir = fresh_dir("gdb");
    let svc = Service::start(&dir, &["--extra", "20"], &[]);
    svc.kill("USR1");
    let files = svc.wait_dumps(1, WAIT);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let ours: BTreeSet<i32> = parse_dump(&text).1.iter().map(|t| t.tid).collect();

    let out = Command::new("gdb")
        .args(["-p", &svc.pid.to_string(), "-batch", "-nx", "-ex", "info threads"])
        .output()
        .expect("gdb must be installed (the test script installs it)");
    let gdb_text = String::from_utf8_lossy(&out.stdout);
    let theirs: BTreeSet<i32> =
        gdb_text.split("(LWP ").skip(1).filter_map(|s| s.split(')').next()?.trim().parse().ok()).collect();
    assert!(
        theirs.len() >= 27,
        "gdb saw too few threads:\n{gdb_text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ours, theirs, "our dump vs gdb");
}

#[test]
fn off_switch_makes_sigusr1_harmless() {
    let dir = fresh_dir("off");
    let mut svc = Service::start(&dir, &[], &[("HOTPROF", "off")]);
    assert!(svc.stderr().contains("capture off"), "{}", svc.stderr());
    for _ in 0..3 {
        svc.kill("USR1");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(svc.wait_stderr("SIGUSR1 ignored: capture is off", WAIT), "{}", svc.stderr());
    std::thread::sleep(Duration::from_millis(300));
    assert!(svc.alive());
    assert!(svc.ping());
    assert!(dumps(&dir).is_empty());
    assert!(temps(&dir).is_empty());
}

#[test]
fn invalid_env_value_is_one_clear_line_and_the_default_holds() {
    let dir = fresh_dir("invalid");
    let svc = Service::start(&dir, &[], &[("HOTPROF", "maybe"), ("HOTPROF_RATE_BURST", "lots")]);
    let err = svc.stderr();
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("ignoring HOTPROF=")).collect();
    assert_eq!(
        lines,
        [
            "hotprof: ignoring HOTPROF=\"maybe\": expected one of on, off, true, false, 1, 0, yes, no; using on"
        ]
    );
    assert!(
        err.contains(
            "hotprof: ignoring HOTPROF_RATE_BURST=\"lots\": expected a whole number above 0; using 5"
        )
    );
    svc.kill("USR1");
    assert_eq!(svc.wait_dumps(1, WAIT).len(), 1, "default (on) still dumps");
}

#[test]
fn storm_of_1000_sigusr1_is_rate_limited_and_harmless() {
    let _serial = heavy();
    let dir = fresh_dir("storm");
    let mut svc = Service::start(&dir, &[], &[("HOTPROF_RATE_BURST", "3"), ("HOTPROF_RATE_REFILL", "1m")]);
    let start = Instant::now();
    for i in 0..1000 {
        // SAFETY: kill(2) on a child pid we own; no memory is involved.
        let rc = unsafe { libc::kill(svc.pid, libc::SIGUSR1) };
        assert_eq!(rc, 0);
        if i % 50 == 0 {
            // The kernel merges a pending SIGUSR1 with the next; pausing now and
            // then lets the service see many separate triggers, not one.
            std::thread::sleep(Duration::from_millis(5));
            assert!(svc.ping(), "service unresponsive during the storm");
        }
    }
    // Excess signals are either merged into a running dump or refused by the
    // guard; both are counted and logged once per window.
    let noticed = |s: &str| s.contains("dump refused") || s.contains("were merged into it");
    assert!(wait_until(WAIT, || noticed(&svc.stderr())), "{}", svc.stderr());
    std::thread::sleep(Duration::from_secs(1));
    assert!(svc.alive());
    assert!(svc.ping());
    let allowed = 3 + (start.elapsed().as_secs() / 60) as usize;
    let n = dumps(&dir).len();
    assert!((1..=allowed).contains(&n), "{n} dumps, limiter allows {allowed}");
    for kind in ["dump refused", "were merged into it"] {
        let notices = svc.stderr().lines().filter(|l| l.contains(kind)).count();
        assert!(notices <= 2, "'{kind}' is logged once per window, got {notices}:\n{}", svc.stderr());
    }
}

#[test]
fn sigkill_during_dumps_never_leaves_a_partial_final_file() {
    let _serial = heavy();
    let dir = fresh_dir("sigkill");
    let env = [("HOTPROF_RATE_BURST", "1000")];
    let mut killed_mid_write = 0;
    for _ in 0..12 {
        let mut svc = Service::start(&dir, &["--extra", "300"], &env);
        svc.kill("USR1");
        // Kill the moment a temp file shows up: the dump is being written.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = false;
        while !seen && Instant::now() < deadline {
            seen = !temps(&dir).is_empty();
        }
        svc.sigkill();
        let prefix = format!(".hotprof-tmp-{}-", svc.pid);
        if seen && temps(&dir).iter().any(|t| t.file_name().unwrap().to_str().unwrap().starts_with(&prefix)) {
            killed_mid_write += 1;
        }
    }
    for f in dumps(&dir) {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.trim_end().ends_with(END_MARKER), "partial file with a final name: {}", f.display());
    }
    assert!(killed_mid_write > 0, "no kill landed mid-write; the test did not exercise anything");

    // Each start removed the temps of the process killed before it; the last one's remain.
    let left = temps(&dir).len();
    let svc = Service::start(&dir, &[], &[]);
    assert!(temps(&dir).is_empty(), "temps survive a restart: {:?}", temps(&dir));
    if left > 0 {
        assert!(svc.stderr().contains(&format!("removed {left} temp file(s)")), "{}", svc.stderr());
    }
}

#[test]
fn dump_of_1000_threads_under_malloc_and_loader_load() {
    let _serial = heavy();
    let dir = fresh_dir("many");
    let mut svc = Service::start(&dir, &["--extra", "1000", "--malloc", "4", "--loader", "2"], &[]);
    std::thread::sleep(Duration::from_millis(500)); // let new threads reach their functions
    for round in 1..=3 {
        svc.kill("USR1");
        let files = svc.wait_dumps(round, WAIT);
        assert_eq!(files.len(), round, "dump {round} did not complete: {}", svc.stderr());
        let text = std::fs::read_to_string(files.last().unwrap()).unwrap();
        let (header, threads) = parse_dump(&text);
        assert!(threads.len() >= 1013, "{}", threads.len());
        let summary = header_value(&header, "threads");
        assert!(summary.contains(" 0 not answering"), "{summary}");
        for t in threads.iter().filter(|t| t.name.starts_with("malloc-")) {
            assert!(t.has_function("malloc_churn"), "{t:?}");
        }
        for t in threads.iter().filter(|t| t.name.starts_with("loader-")) {
            assert!(t.has_function("loader_churn"), "{t:?}");
        }
    }
    assert!(svc.alive());
    assert!(svc.ping());
}

/// Stops one thread of another process with ptrace (the rest keep running).
fn ptrace_stop(tid: i32) {
    // SAFETY: ptrace/waitpid on a thread id we name; no memory is shared.
    unsafe {
        assert_eq!(libc::ptrace(libc::PTRACE_SEIZE, tid, 0, 0), 0, "PTRACE_SEIZE {tid}");
        assert_eq!(libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0), 0, "PTRACE_INTERRUPT {tid}");
        let mut status = 0;
        assert_eq!(libc::waitpid(tid, &mut status, libc::__WALL), tid);
    }
}

fn ptrace_detach(tid: i32) {
    // SAFETY: as above; detaching lets the thread run again.
    unsafe { assert_eq!(libc::ptrace(libc::PTRACE_DETACH, tid, 0, 0), 0, "PTRACE_DETACH {tid}") };
}

/// The thread named `name`; waits a little, since a new thread names itself
/// only once it runs (on a loaded machine, after the service says ready).
fn tid_of(pid: i32, name: &str) -> i32 {
    let find = || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
            .find(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == name))
            .and_then(|e| e.file_name().to_str()?.parse().ok())
    };
    wait_until(Duration::from_secs(10), || find().is_some());
    find().unwrap_or_else(|| panic!("no thread {name} in {pid}"))
}

/// More threads than the user may have signals pending (`ulimit -i 64`,
/// 300 threads): the dump waits for handlers to take theirs and captures
/// every thread, rather than listing some as "signal queue full".
#[test]
fn more_threads_than_pending_signals_allowed_are_all_captured() {
    let dir = fresh_dir("sigpending");
    let demo = env!("CARGO_BIN_EXE_demo-service");
    let script = r#"ulimit -i 64 && exec "$0" "$@""#;
    let svc = Service::start_bin("/bin/bash", &dir, &["-c", script, demo, "--extra", "300"], &[]);
    std::thread::sleep(Duration::from_millis(300)); // let new threads reach their functions
    svc.kill("USR1");
    let files = svc.wait_dumps(1, WAIT);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let (_, threads) = parse_dump(&text);
    let extras: Vec<_> = threads.iter().filter(|t| t.name.starts_with("extra-")).collect();
    assert_eq!(extras.len(), 300, "{text}");
    let missed =
        |t: &&DumpThread| t.status.contains("signal queue full") || t.status.contains("not answering");
    assert!(!threads.iter().any(|t| missed(&t)), "{text}");
    assert!(extras.iter().all(|t| t.has_function("sleepy_worker")), "{text}");
}

#[test]
fn stopped_and_blocking_threads_are_listed_and_the_dump_still_completes() {
    let dir = fresh_dir("late");
    let env = [("HOTPROF_DUMP_TIMEOUT", "300ms")];
    let mut svc = Service::start(&dir, &["--extra", "50", "--blocker"], &env);
    std::thread::sleep(Duration::from_millis(300)); // let new threads reach their functions
    let sleeper = tid_of(svc.pid, "sleeper");
    ptrace_stop(sleeper);
    svc.kill("USR1");
    let files = svc.wait_dumps(1, WAIT);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.trim_end().ends_with(END_MARKER));
    let (header, threads) = parse_dump(&text);
    assert!(header_value(&header, "threads").contains("1 not answering, 1 signal blocked"), "{header:?}");
    let stopped = threads.iter().find(|t| t.tid == sleeper).unwrap();
    assert!(stopped.status.starts_with("tracing stop, not answering"), "{}", stopped.status);
    let blocker = threads.iter().find(|t| t.name == "blocker").unwrap();
    assert!(blocker.status.ends_with("blocks the capture signal"), "{}", blocker.status);
    assert!(threads.iter().filter(|t| t.name.starts_with("extra-")).all(|t| t.has_function("sleepy_worker")));

    // Once resumed, the stale capture signal reaches the thread's handler,
    // which must find nothing to write into; the next dump is whole again.
    ptrace_detach(sleeper);
    std::thread::sleep(Duration::from_millis(200));
    svc.kill("USR1");
    let files = svc.wait_dumps(2, WAIT);
    let text = std::fs::read_to_string(&files[1]).unwrap();
    let (header, threads) = parse_dump(&text);
    assert!(header_value(&header, "threads").contains(" 0 not answering"), "{header:?}");
    let resumed = threads.iter().find(|t| t.tid == sleeper).unwrap();
    assert!(resumed.has_function("sleepy_worker"), "{resumed:?}");
    assert!(svc.alive());
    assert!(svc.ping());
}

#[test]
fn frame_pointer_unwinder_can_be_forced() {
    let dir = fresh_dir("fp");
    let svc = Service::start(&dir, &[], &[("HOTPROF_UNWINDER", "frame-pointers")]);
    svc.kill("USR1");
    let files = svc.wait_dumps(1, WAIT);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let (header, threads) = parse_dump(&text);
    assert!(header_value(&header, "unwinder").starts_with("frame-pointers (forced"), "{header:?}");
    assert!(threads.len() >= 8);
    for t in threads.iter().filter(|t| !t.status.contains("not answering")) {
        assert!(!t.lines.is_empty(), "thread {} [{}] has no frames", t.name, t.status);
    }
    assert!(svc.ping());
}

#[test]
fn panic_in_main_shuts_hotprof_down_and_exits() {
    let dir = fresh_dir("panic");
    let mut svc = Service::start(&dir, &["--panic"], &[]);
    assert!(wait_until(WAIT, || !svc.alive()), "process did not exit after the panic");
    assert!(svc.stderr().contains("panicking on purpose"), "{}", svc.stderr());
}

#[test]
fn threads_at_the_edge_of_their_stack_are_dumped_and_survive() {
    let dir = fresh_dir("edge");
    let mut svc = Service::start(&dir, &["--edge"], &[]);
    for round in 1..=3 {
        svc.kill("USR1");
        let files = svc.wait_dumps(round, WAIT);
        assert_eq!(files.len(), round, "stderr: {}", svc.stderr());
        assert!(svc.alive(), "a dump killed the process: {}", svc.stderr());
        let text = std::fs::read_to_string(files.last().unwrap()).unwrap();
        let (_, threads) = parse_dump(&text);
        for (name, leaf) in [("edge-parked", "parked_at_the_edge"), ("edge-spinning", "spinning_at_the_edge")]
        {
            let t =
                threads.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name} missing:\n{text}"));
            assert!(t.has_function(leaf), "{name} has no {leaf}:\n{text}");
            assert!(t.has_function("descend_to_the_edge"), "{name} lost its callers:\n{text}");
        }
    }
    assert!(svc.ping(), "{}", svc.stderr());
}

#[test]
fn a_folder_that_takes_no_file_gets_the_dump_on_stderr() {
    let dir = std::path::Path::new("/proc/hotprof-no-such-folder");
    let svc = Service::start(dir, &[], &[]);
    assert!(svc.stderr().contains("NOT WRITABLE"), "the ready line says so: {}", svc.stderr());
    svc.kill("USR1");
    let begin = "-- begin hotprof thread dump --";
    assert!(
        wait_until(WAIT, || svc.stderr().split(begin).nth(1).is_some_and(|rest| rest.contains(END_MARKER))),
        "{}",
        svc.stderr()
    );
    let stderr = svc.stderr();
    assert!(
        stderr
            .contains("hotprof: thread dump not written (cannot create folder /proc/hotprof-no-such-folder"),
        "{stderr}"
    );
    let text = stderr.split(begin).nth(1).unwrap();
    let text = &text[..text.find(END_MARKER).unwrap() + END_MARKER.len()];
    let (header, threads) = parse_dump(text.trim_start());
    assert_eq!(header_value(&header, "trigger"), "signal SIGUSR1");
    let sleeper = threads.iter().find(|t| t.name == "sleeper").unwrap_or_else(|| panic!("{text}"));
    assert!(sleeper.has_function("sleepy_worker"), "{text}");
    assert!(svc.ping());
}

#[test]
fn a_dump_of_10000_threads_opens_with_a_short_grouped_summary() {
    let _heavy = heavy();
    let dir = fresh_dir("summary");
    let svc = Service::start(&dir, &["--extra", "10000"], &[("HOTPROF_DUMP_TIMEOUT", "20s")]);
    svc.kill("USR1");
    let files = svc.wait_dumps(1, Duration::from_secs(120));
    assert_eq!(files.len(), 1, "{}", svc.stderr());
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let summary_at = text.find("\nsummary (").expect("a summary");
    let threads_at = text.find("\nthread ").expect("the full list");
    assert!(summary_at < threads_at, "the summary comes first");
    let summary = &text[summary_at..threads_at];
    assert!(summary.len() < 16 * 1024, "bounded: {} bytes", summary.len());
    let first = summary.split("\n\n").nth(1).unwrap();
    let count: usize = first.split_whitespace().next().unwrap().parse().unwrap();
    assert!(count >= 10_000, "the 10,000 sleepers are one group, shown first: {first}");
    assert!(first.contains("and ") && first.contains("sleepy_worker"), "{first}");
    let (_, threads) = parse_dump(&text);
    assert!(threads.len() > 10_000, "every thread follows in full");
    assert!(svc.ping());
}

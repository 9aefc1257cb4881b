//! `hotprof::tracing::layer()` in a real service instrumented with
//! `tracing` only (`traced-service`): entered spans are logical frames in
//! SIGUSR1 dumps, with their fields, and the `scope` label of CPU samples.

mod common;

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn entered_spans_are_logical_frames_in_dumps_and_scope_labels_in_cpu_profiles() {
    let dir = fresh_dir("tracing-layer");
    let svc =
        Service::start_bin(env!("CARGO_BIN_EXE_traced-service"), &dir, &[], &[("HOTPROF_CPU_SECONDS", "2s")]);
    svc.kill("USR1");
    let dumps = svc.wait_dumps(1, WAIT);
    let text = std::fs::read_to_string(&dumps[0]).unwrap();
    let logical = &text[text.find("logical stacks:").expect(&text)..];
    // Innermost first, with the span's recorded fields and its callsite.
    let worker = &logical[logical.find("\"traced-worker\":").expect(logical)..];
    let nest = worker.find("lookup_nest{table=\"eggs\"}, elapsed").expect(worker);
    let request = worker.find("heron_request{id=7 client=\"osprey\"}, elapsed").expect(worker);
    assert!(nest < request, "{worker}");
    assert!(worker.contains("examples/src/bin/traced-service.rs:"), "{worker}");
    // Grouped by span names, like marked calls.
    assert!(logical.contains("1 threads @\n#\tlookup_nest (longest"), "{logical}");

    svc.kill("USR2");
    assert!(wait_until(WAIT, || !files_ending(&svc.dir, "-cpu.pb.gz").is_empty()), "{}", svc.stderr());
    let profile = files_ending(&svc.dir, "-cpu.pb.gz").remove(0);
    let tags = Command::new("go").args(["tool", "pprof", "-tags"]).arg(&profile).output().unwrap();
    let tags = String::from_utf8_lossy(&tags.stdout);
    let scope = &tags[tags.find(" scope:").expect(&tags)..];
    assert!(scope.lines().nth(1).is_some_and(|l| l.ends_with(": hot_span")), "the spinner's span: {tags}");
}

#[test]
fn tasks_parked_inside_instrumented_async_fns_are_grouped_with_their_fields() {
    let dir = fresh_dir("tracing-tasks");
    let svc = Service::start_bin(env!("CARGO_BIN_EXE_traced-service"), &dir, &["--tasks", "50"], &[]);
    svc.kill("USR1");
    let dumps = svc.wait_dumps(1, WAIT);
    let text = std::fs::read_to_string(&dumps[0]).unwrap();
    let logical = &text[text.find("logical stacks:").expect(&text)..];
    assert!(logical.contains("and 50 tasks in"), "{logical}");
    let group = "50 tasks @\n#\twait_for_data (longest ";
    let at = logical.find(group).unwrap_or_else(|| panic!("{logical}"));
    assert!(
        logical[at..].lines().nth(2).is_some_and(|l| l.starts_with("#\tparked_handler (longest ")),
        "{logical}"
    );
    // One by one: innermost first, the handler with its own id.
    for id in [0, 17, 49] {
        let field = format!("parked_handler{{id={id}}}, elapsed");
        assert_eq!(logical.matches(&field).count(), 1, "{field} in {logical}");
    }
    let task = &logical[logical.find("\ntask ").expect(logical)..];
    assert!(task.find("wait_for_data, elapsed") < task.find("parked_handler{id="), "{task}");
}

#[test]
fn spans_open_past_slow_spans_write_one_event_each_with_their_fields() {
    let dir = fresh_dir("tracing-slow");
    let svc = Service::start_bin(
        env!("CARGO_BIN_EXE_traced-service"),
        &dir,
        &["--slow-spans", "200"],
        &[("HOTPROF_RATE_BURST", "20")],
    );
    // heron_request, lookup_nest and hot_span stay open: one event each, however long.
    assert!(wait_until(WAIT, || files_ending(&svc.dir, "-slowcall.txt").len() >= 3), "{}", svc.stderr());
    std::thread::sleep(Duration::from_millis(600));
    let events: Vec<String> =
        files_ending(&svc.dir, "-slowcall.txt").iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    assert_eq!(events.len(), 3, "{events:#?}");
    let request =
        events.iter().find(|e| e.contains("scope: heron_request\n")).expect("heron_request's event");
    assert!(request.contains("fields: id=7 client=\"osprey\"\n"), "{request}");
    assert!(request.contains("state: still running") && request.contains("threshold: 200ms"), "{request}");
    assert!(!request.contains("thread: 0\n"), "the thread it runs on: {request}");
    let nest = events.iter().find(|e| e.contains("scope: lookup_nest\n")).expect("lookup_nest's event");
    assert!(nest.contains("\tlookup_nest\n\theron_request\n"), "its logical stack: {nest}");
    assert!(svc.stderr().contains("slow call heron_request ("), "{}", svc.stderr());
}

#[test]
fn spans_entered_while_capture_is_off_are_never_frames() {
    let dir = fresh_dir("tracing-off");
    let svc = Service::start_bin(env!("CARGO_BIN_EXE_traced-service"), &dir, &[], &[("HOTPROF", "off")]);
    // Turn capture on through the attach socket, after the spans were entered.
    let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap();
    let mut socket = UnixStream::connect(format!("/tmp/hotprof-{uid}/{}.sock", svc.pid)).unwrap();
    socket.write_all(b"HOTPROF/1 enable\n").unwrap();
    let mut answer = String::new();
    let _ = socket.read_to_string(&mut answer);
    assert!(answer.contains("capture: on"), "{answer}");
    svc.kill("USR1");
    let dumps = svc.wait_dumps(1, WAIT);
    let text = std::fs::read_to_string(&dumps[0]).unwrap();
    assert!(text.contains("logical stacks: 0 threads and 0 tasks"), "{text}");
}

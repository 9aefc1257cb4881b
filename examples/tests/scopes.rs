//! `#[hotprof::profile]` in a real process: logical stacks of sync workers and
//! parked tokio tasks in SIGUSR1 dumps, the scope profile next to each dump
//! (read with `go tool pprof`), and slow-call events through the rate limit.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);

fn start(tag: &str, args: &[&str], env: &[(&str, &str)]) -> Service {
    Service::start_bin(env!("CARGO_BIN_EXE_scoped-service"), &fresh_dir(tag), args, env)
}

#[test]
fn dumps_show_logical_stacks_of_threads_and_parked_tasks() {
    let svc = start("scoped", &["--workers", "3", "--tasks", "50"], &[]);
    std::thread::sleep(Duration::from_millis(300));
    svc.kill("USR1");
    let dumps = svc.wait_dumps(1, WAIT);
    let text = std::fs::read_to_string(&dumps[0]).unwrap();
    let section = &text[text.find("logical stacks:").expect("logical stacks section")..];
    assert!(section.starts_with("logical stacks: 3 threads and 50 tasks"), "{section}");

    // debug=1: the 50 tasks share one stack, counted once.
    assert!(
        section.contains("50 tasks @\n#\tscoped_service::wait_for_data (longest")
            && section.contains("#\tscoped_service::handle_request (longest"),
        "{section}"
    );
    assert!(section.contains("3 threads @\n#\trecords::parse (longest"), "{section}");

    // debug=2: each task and thread, innermost first, with elapsed times.
    let tasks: Vec<&str> = section.split("\ntask ").skip(1).collect();
    assert_eq!(tasks.len(), 50);
    for t in &tasks {
        let wait = t.find("scoped_service::wait_for_data, elapsed ").unwrap();
        let handle = t.find("scoped_service::handle_request, elapsed ").unwrap();
        assert!(wait < handle, "{t}");
        assert!(t.contains("examples/src/bin/scoped-service.rs:"), "{t}");
    }
    let worker = section.split("\nthread ").find(|b| b.contains("\"sync-worker-0\"")).expect(section);
    let parse = worker.find("records::parse, elapsed").unwrap();
    let batch = worker.find("scoped_service::process_batch, elapsed").unwrap();
    assert!(parse < batch, "{worker}");
    // The outer call has been running since start: its elapsed time is real.
    let elapsed: f64 =
        worker[batch..].split("elapsed ").nth(1).unwrap().split('s').next().unwrap().parse().unwrap();
    assert!(elapsed >= 0.2, "{worker}");
}

#[test]
fn scope_profile_is_written_next_to_each_dump_and_go_reads_it() {
    let svc = start("scope-profile", &["--workers", "2", "--tasks", "5"], &[]);
    std::thread::sleep(Duration::from_millis(700));
    svc.kill("USR1");
    svc.wait_dumps(1, WAIT);
    assert!(svc.wait_stderr("scope profile written to", WAIT), "{}", svc.stderr());
    let profiles = files_ending(&svc.dir, "-scopes.pb.gz");
    assert_eq!(profiles.len(), 1);
    let out =
        Command::new("go").args(["tool", "pprof", "-raw"]).arg(&profiles[0]).output().expect("go tool pprof");
    let raw = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{raw}{}", String::from_utf8_lossy(&out.stderr));
    assert!(raw.contains("calls/count wall/nanoseconds"), "{raw}");
    for name in ["records::parse", "scoped_service::process_batch", "scoped_service::wait_for_data"] {
        assert!(raw.contains(name), "{name} missing:\n{raw}");
    }
    // Wall time was sampled for the parked tasks: some sample has wall > 0.
    let samples: Vec<(u64, u64)> = raw
        .lines()
        .skip_while(|l| !l.starts_with("Samples:"))
        .skip(2)
        .take_while(|l| !l.starts_with("Locations"))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.parse().ok()?, it.next()?.trim_end_matches(':').parse().ok()?))
        })
        .collect();
    assert!(samples.iter().any(|(_, wall)| *wall > 0), "{raw}");
    let comments =
        Command::new("go").args(["tool", "pprof", "-comments"]).arg(&profiles[0]).output().unwrap();
    let comments = String::from_utf8_lossy(&comments.stdout);
    assert!(
        comments.contains("app: scoped-service") && comments.contains("trigger: signal SIGUSR1"),
        "{comments}"
    );
}

#[test]
fn a_slow_call_writes_one_event() {
    let svc = start("slow-one", &["--workers", "0", "--tasks", "0", "--slow", "1"], &[]);
    assert!(svc.wait_stderr("slow call scoped_service::slow_operation", WAIT), "{}", svc.stderr());
    std::thread::sleep(Duration::from_millis(300));
    let events = files_ending(&svc.dir, "-slowcall.txt");
    assert_eq!(events.len(), 1);
    let text = std::fs::read_to_string(&events[0]).unwrap();
    assert!(text.contains("scope: scoped_service::slow_operation"), "{text}");
    assert!(text.contains("threshold: 50µs"), "{text}");
    assert!(text.contains("state: completed") || text.contains("state: still running"), "{text}");
    assert!(text.contains("trigger: threshold"), "{text}");
    assert!(text.trim_end().ends_with("-- end of hotprof slow call --"));
}

#[test]
fn a_burst_of_10000_slow_calls_is_rate_limited() {
    let env = [("HOTPROF_RATE_BURST", "3"), ("HOTPROF_RATE_REFILL", "1m")];
    let mut svc = start("slow-burst", &["--workers", "0", "--tasks", "0", "--slow", "10000"], &env);
    assert!(svc.wait_stderr("refused by the rate limit", WAIT), "{}", svc.stderr());
    std::thread::sleep(Duration::from_millis(500));
    let events = files_ending(&svc.dir, "-slowcall.txt");
    assert!((1..=3).contains(&events.len()), "{} events written", events.len());
    assert!(svc.alive());
    // SIGUSR1 has its own budget: the burst did not use it up.
    svc.kill("USR1");
    assert_eq!(svc.wait_dumps(1, WAIT).len(), 1);
}

#[test]
fn a_call_still_running_past_its_threshold_can_start_a_cpu_profile() {
    let env = [("HOTPROF_SLOW_CPU", "on"), ("HOTPROF_CPU_SECONDS", "2s")];
    let svc = start("slow-cpu", &["--workers", "0", "--tasks", "0", "--stuck", "6"], &env);
    assert!(wait_until(WAIT, || !files_ending(&svc.dir, "-cpu.pb.gz").is_empty()), "{}", svc.stderr());
    let event = std::fs::read_to_string(&files_ending(&svc.dir, "-slowcall.txt")[0]).unwrap();
    assert!(
        event.contains("scope: scoped_service::stuck_call") && event.contains("state: still running"),
        "{event}"
    );
    let pb = &files_ending(&svc.dir, "-cpu.pb.gz")[0];
    let run = |args: &[&str]| {
        let out = Command::new("go").args(["tool", "pprof"]).args(args).arg(pb).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let comments = run(&["-comments"]);
    assert!(comments.contains("trigger: threshold"), "{comments}");
    assert!(comments.contains("reason: slow call scoped_service::stuck_call running for"), "{comments}");
    let top = run(&["-top", "-cum", "-nodecount=30"]);
    assert!(top.contains("stuck_call"), "{top}");
    let tags = run(&["-tags"]);
    assert!(tags.contains("scoped_service::stuck_call"), "the samples carry the scope as a label:\n{tags}");
}

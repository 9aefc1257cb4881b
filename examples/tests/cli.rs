//! The `hotprof` command against real services: list, dump, CPU and wall-clock profiles
//! `go tool pprof` reads (one with dumps taken during it), the switch, and every refusal with its message and
//! exit code; garbage on the socket leaves the service alive.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::*;

/// `target/debug/hotprof`, built if this test run has not built it.
fn hotprof_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().to_path_buf();
        let bin = target.join("debug").join("hotprof");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = Command::new(cargo)
            .args(["build", "-p", "hotprof-cli"])
            .arg("--target-dir")
            .arg(&target)
            .status();
        assert!(built.unwrap().success() && bin.exists(), "building the hotprof command failed");
        bin
    })
}

fn hotprof(args: &[&str]) -> Output {
    Command::new(hotprof_bin()).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn list_dump_cpu_and_the_switch() {
    let dir = fresh_dir("cli");
    let svc = Service::start(&dir, &["--hot", "1"], &[]);
    let pid = svc.pid.to_string();
    assert!(svc.stderr().contains("attach at /tmp/hotprof-"), "{}", svc.stderr());

    let list = hotprof(&["list"]);
    assert!(list.status.success(), "{}", text(&list));
    let row = String::from_utf8_lossy(&list.stdout)
        .lines()
        .find(|l| l.trim_start().starts_with(&pid))
        .map(String::from);
    let row = row.unwrap_or_else(|| panic!("{pid} not listed:\n{}", text(&list)));
    assert!(row.contains("demo-service") && row.contains(" on "), "{row}");

    let dump = hotprof(&["dump", &pid]);
    assert!(dump.status.success(), "{}", text(&dump));
    let (_, threads) = parse_dump(&String::from_utf8_lossy(&dump.stdout));
    assert!(
        threads.iter().any(|t| t.name == "sleeper" && t.has_function("sleepy_worker")),
        "{}",
        text(&dump)
    );

    let file = dir.join("cli-cpu.pb.gz");
    let cpu = hotprof(&["cpu", &pid, "--seconds", "2", "--hz", "199", "-o", file.to_str().unwrap()]);
    assert!(cpu.status.success(), "{}", text(&cpu));
    let top = Command::new("go").args(["tool", "pprof", "-top"]).arg(&file).output().unwrap();
    let top = String::from_utf8_lossy(&top.stdout);
    assert!(top.contains("hot_loop") && top.contains("trigger: attach"), "{top}");

    assert!(hotprof(&["disable", &pid]).status.success());
    let off = hotprof(&["dump", &pid]);
    assert_eq!(off.status.code(), Some(6), "{}", text(&off));
    assert!(text(&off).contains("capture is off"), "{}", text(&off));
    assert!(hotprof(&["enable", &pid]).status.success());
    // Which traffic scopes are recorded for, flipped at run time.
    let dyed = hotprof(&["scopes", "dyed", &pid]);
    assert!(dyed.status.success() && text(&dyed).contains("scopes: dyed"), "{}", text(&dyed));
    let list = String::from_utf8_lossy(&hotprof(&["list"]).stdout).into_owned();
    assert!(list.lines().any(|l| l.trim_start().starts_with(&pid) && l.contains(" dyed ")), "{list}");
    assert!(text(&hotprof(&["scopes", "all", &pid])).contains("scopes: all"));
    let bad = hotprof(&["scopes", "some", &pid]);
    assert_eq!(bad.status.code(), Some(2), "clap refuses it: {}", text(&bad));
    let stats = hotprof(&["stats", &pid]);
    assert!(String::from_utf8_lossy(&stats.stdout).contains("thread dump: 1 admitted"), "{}", text(&stats));
}

/// Wall-clock windows and thread dumps signal the threads that read from
/// clients: an interrupted read is neither a hang-up nor a timeout.
#[test]
fn wall_profile_and_dumps_while_clients_wait() {
    let dir = fresh_dir("cli-wall");
    let svc = Service::start(&dir, &["--hot", "1"], &[("HOTPROF_RATE_BURST", "30")]);
    let pid = svc.pid.to_string();

    let file = dir.join("cli-wall.pb.gz");
    let wall = hotprof(&["wall", &pid, "--seconds", "2", "-o", file.to_str().unwrap()]);
    assert!(wall.status.success(), "{}\n{}", text(&wall), svc.stderr());
    let top = Command::new("go")
        .args(["tool", "pprof", "-top", "-tagfocus=thread=sleeper"])
        .arg(&file)
        .output()
        .unwrap();
    let top = String::from_utf8_lossy(&top.stdout);
    assert!(top.contains("Type: wall") && top.contains("sleepy_worker"), "{top}");

    // A client that is slow to send its request while a dump signals the
    // thread reading it still gets its answer.
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let mut slow = UnixStream::connect(format!("/tmp/hotprof-{uid}/{pid}.sock")).unwrap();
    slow.write_all(b"HOTPROF/1 st").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    svc.kill("USR1");
    std::thread::sleep(std::time::Duration::from_millis(500));
    slow.write_all(b"ats\n").unwrap();
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    assert!(answer.starts_with("HOTPROF/1 ok"), "{answer:?}\n{}", svc.stderr());

    let cpu_file = dir.join("cli-cpu.pb.gz");
    let cpu = Command::new(hotprof_bin())
        .args(["cpu", &pid, "--seconds", "3", "--hz", "999", "-o", cpu_file.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    for _ in 0..10 {
        let dump = hotprof(&["dump", &pid]);
        assert!(dump.status.success(), "{}\n{}", text(&dump), svc.stderr());
    }
    let cpu = cpu.wait_with_output().unwrap();
    assert!(cpu.status.success(), "{}\n{}", text(&cpu), svc.stderr());
    assert!(!svc.stderr().contains("cancelled"), "{}", svc.stderr());
    let top = Command::new("go").args(["tool", "pprof", "-top"]).arg(&cpu_file).output().unwrap();
    assert!(String::from_utf8_lossy(&top.stdout).contains("hot_loop"), "{}", text(&top));
}

#[test]
fn each_failure_has_its_message_and_exit_code() {
    let missing = hotprof(&["dump", "999999999"]);
    assert_eq!(missing.status.code(), Some(3), "{}", text(&missing));
    assert!(text(&missing).contains("no such process"));
    let not_ours = hotprof(&["dump", "1"]);
    assert_eq!(not_ours.status.code(), Some(4), "{}", text(&not_ours));
    assert!(text(&not_ours).contains("not a hotprof process"));

    let dir = fresh_dir("cli-off");
    let svc = Service::start(&dir, &[], &[("HOTPROF", "off")]);
    let off = hotprof(&["dump", &svc.pid.to_string()]);
    assert_eq!(off.status.code(), Some(6), "{}", text(&off));
    assert!(text(&off).contains("capture is off"));

    // Another user cannot reach this user's socket: its folder is 0700.
    let other = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(hotprof_bin())
        .args(["dump", &svc.pid.to_string()])
        .output()
        .expect("setpriv (util-linux)");
    assert_eq!(other.status.code(), Some(5), "{}", text(&other));
    assert!(text(&other).contains("permission denied"), "{}", text(&other));

    // The guard's refusal says once when to try again.
    let limited = Service::start(&fresh_dir("cli-refused"), &[], &[("HOTPROF_RATE_BURST", "1")]);
    let pid = limited.pid.to_string();
    assert!(hotprof(&["dump", &pid]).status.success());
    let refused = hotprof(&["dump", &pid]);
    assert_eq!(refused.status.code(), Some(7), "{}", text(&refused));
    let message = text(&refused);
    assert!(message.starts_with("hotprof: refused by the rate limit; try again in "), "{message}");
    assert_eq!(message.matches("again in").count() + message.matches("retry in").count(), 1, "{message}");
}

#[test]
fn garbage_on_the_socket_gets_an_error_and_the_service_lives() {
    let dir = fresh_dir("cli-garbage");
    let mut svc = Service::start(&dir, &[], &[]);
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let socket = format!("/tmp/hotprof-{uid}/{}.sock", svc.pid);
    let long = vec![b'x'; 5000];
    let cases: [&[u8]; 6] = [
        b"garbage\n",
        b"HOTPROF/1 cpu 0 99\n",
        b"HOTPROF/9 dump\n",
        b"\xff\xfe\n",
        &long,
        b"HOTPROF/1 dump extra\n",
    ];
    for raw in cases {
        let mut s = UnixStream::connect(&socket).unwrap();
        let _ = s.write_all(raw);
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(
            answer.starts_with("HOTPROF/1 error bad-request"),
            "{:?} -> {answer:?}",
            String::from_utf8_lossy(raw)
        );
    }
    // A client that connects and says nothing is dropped after the timeout.
    let silent = UnixStream::connect(&socket).unwrap();
    assert!(svc.alive() && svc.ping());
    drop(silent);
    let ok = hotprof(&["stats", &svc.pid.to_string()]);
    assert!(ok.status.success(), "{}", text(&ok));
}

#[test]
fn ctrl_c_cancels_the_window_in_the_service() {
    let dir = fresh_dir("cli-cancel");
    let svc = Service::start(&dir, &["--hot", "1"], &[]);
    let pid = svc.pid.to_string();
    let mut cpu = Command::new(hotprof_bin())
        .args(["cpu", &pid, "--seconds", "60", "-o", "/dev/null"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    // SAFETY: kill(2) on a child we spawned; no memory is involved.
    assert_eq!(unsafe { libc::kill(cpu.id() as i32, libc::SIGINT) }, 0);
    let _ = cpu.wait();
    assert!(
        svc.wait_stderr(
            "CPU profile cancelled: the attached client left",
            std::time::Duration::from_secs(10)
        ),
        "{}",
        svc.stderr()
    );
    // The one-session slot is free again (within moments: the cancelled
    // window skips its report) and a new window runs.
    let file = dir.join("again.pb.gz");
    let again = || hotprof(&["cpu", &pid, "--seconds", "1", "-o", file.to_str().unwrap()]);
    let mut last = again();
    for _ in 0..20 {
        if last.status.code() != Some(8) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
        last = again();
    }
    assert!(last.status.success(), "{}", text(&last));
}

#[test]
fn heap_profile_through_the_socket() {
    let dir = fresh_dir("cli-heap");
    let svc =
        Service::start_bin(env!("CARGO_BIN_EXE_heap-service"), &dir, &[], &[("HOTPROF_HEAP_RATE", "128KiB")]);
    let pid = svc.pid.to_string();
    let file = dir.join("cli-heap.pb.gz");
    let heap = hotprof(&["heap", &pid, "-o", file.to_str().unwrap()]);
    assert!(heap.status.success(), "{}", text(&heap));
    let top = Command::new("go")
        .args(["tool", "pprof", "-sample_index=inuse_space", "-top", "-cum"])
        .arg(&file)
        .output()
        .unwrap();
    let top = String::from_utf8_lossy(&top.stdout);
    assert!(top.contains("hotprof_examples::hold_blocks") && top.contains("trigger: attach"), "{top}");
    // A service without the sampling allocator says what is missing.
    let plain = Service::start(&fresh_dir("cli-heap-none"), &[], &[]);
    let none = hotprof(&["heap", &plain.pid.to_string(), "-o", dir.join("none.pb.gz").to_str().unwrap()]);
    assert_eq!(none.status.code(), Some(1), "{}", text(&none));
    assert!(text(&none).contains("hotprof::SampledAlloc"), "{}", text(&none));
}

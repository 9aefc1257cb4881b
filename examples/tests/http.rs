//! The debug HTTP server (`HOTPROF_HTTP`) in a real process, over real
//! sockets: `go tool pprof` against `/debug/pprof/profile`, Go's statuses and
//! headers, access control, the switch, one CPU session at a time, a
//! table of malformed requests that must all get a 4xx, and stalled clients
//! that must not lock the port.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// `ops:s3cret`, as sent in `Authorization: Basic`.
const GOOD_AUTH: &str = "Authorization: Basic b3BzOnMzY3JldA==\r\n";
const WRONG_AUTH: &str = "Authorization: Basic b3BzOndyb25n\r\n";

/// hotprof's bound on reading a request body (`routes::BODY_TIMEOUT`).
const BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections the server keeps at once (`server::MAX_CONNECTIONS`).
const MAX_CONNECTIONS: usize = 64;

/// CPU tests burn cores; run them one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A demo-service with the debug server on a free loopback port.
fn start(args: &[&str], env: &[(&str, &str)]) -> (Service, SocketAddr) {
    let mut all = vec![("HOTPROF_HTTP", "127.0.0.1:0"), ("HOTPROF_RATE_BURST", "50")];
    all.extend_from_slice(env);
    let svc = Service::start(&fresh_dir("http"), args, &all);
    let addr = announced_addr(&svc, "debug HTTP server on http://");
    (svc, addr)
}

fn assert_go_error(a: &Answer, status: u16, body: &str) {
    assert_eq!(a.status, status, "{a:?}");
    assert_eq!(a.text(), format!("{body}\n"), "{a:?}");
    assert_eq!(a.header("content-type"), Some("text/plain; charset=utf-8"), "{a:?}");
    assert_eq!(a.header("x-go-pprof"), Some("1"), "{a:?}");
    assert_eq!(a.header("x-content-type-options"), Some("nosniff"), "{a:?}");
    assert_eq!(a.header("content-disposition"), None, "{a:?}");
}

fn go_pprof(args: &[&str], target: &str, tmp: &std::path::Path) -> std::process::Output {
    Command::new("go")
        .arg("tool")
        .arg("pprof")
        .args(args)
        .arg(target)
        .env("PPROF_TMPDIR", tmp)
        .output()
        .expect("go tool pprof")
}

/// A profile answer, checked for Go's headers and read by `go tool pprof`
/// once per set of flags: the outputs, in order.
fn read_attachment(a: &Answer, name: &str, runs: &[&[&str]]) -> Vec<String> {
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("content-type"), Some("application/octet-stream"));
    assert_eq!(a.header("content-disposition"), Some(format!("attachment; filename=\"{name}\"").as_str()));
    assert_eq!(a.header("content-encoding"), None);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join(format!("{name}.pb.gz"));
    std::fs::write(&file, &a.body).unwrap();
    let output = |flags: &&[&str]| {
        let out = go_pprof(flags, file.to_str().unwrap(), tmp.path());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    runs.iter().map(output).collect()
}

#[test]
fn go_tool_pprof_profiles_the_service_over_http() {
    let _serial = serial();
    let (svc, addr) = start(&["--hot", "1"], &[]);
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/debug/pprof/profile?seconds=2");
    let out = go_pprof(&["-top", "-nodecount=10"], &url, tmp.path());
    let top = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{top}\n{}\n{}", String::from_utf8_lossy(&out.stderr), svc.stderr());
    let listing: Vec<&str> =
        top.lines().skip_while(|l| !l.trim_start().starts_with("flat")).skip(1).collect();
    assert!(listing.iter().any(|l| l.contains("hot_loop")), "{top}");
    assert!(top.contains("Type: cpu"), "{top}");
}

#[test]
fn endpoints_answer_like_go() {
    let (svc, addr) = start(&[], &[]);

    let index = get(addr, "/debug/pprof/");
    assert_eq!(index.status, 200, "{index:?}");
    assert_eq!(index.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(index.header("x-content-type-options"), Some("nosniff"));
    let page = index.text();
    for needle in [
        "<title>/debug/pprof/</title>",
        "<a href='goroutine?debug=1'>goroutine</a>",
        "<a href='threadcreate?debug=1'>threadcreate</a>",
        "goroutine?debug=2",
    ] {
        assert!(page.contains(needle), "{needle} missing:\n{page}");
    }

    let moved = get(addr, "/debug/pprof");
    assert_eq!((moved.status, moved.header("location")), (301, Some("pprof/")), "{moved:?}");

    let cmdline = get(addr, "/debug/pprof/cmdline");
    assert_eq!(cmdline.status, 200);
    assert!(cmdline.text().contains("demo-service"), "{cmdline:?}");

    let dump = get(addr, "/debug/pprof/goroutine?debug=2");
    assert_eq!(dump.status, 200, "{dump:?}");
    assert_eq!(dump.header("content-type"), Some("text/plain; charset=utf-8"));
    let text = dump.text();
    assert!(text.starts_with("goroutine ") && text.contains("\n\nhotprof thread dump\n"), "{text}");
    assert!(text.contains("trigger: http"), "{text}");
    assert!(text.contains("thread \"sleeper\"]:") && text.ends_with(&format!("{END_MARKER}\n")), "{text}");
    assert!(text.contains("\"hotprof-http\""), "the server's own thread is listed: {text}");

    // debug=1: grouped like Go's, one group per distinct stack and thread name.
    let grouped = get(addr, "/debug/pprof/goroutine?debug=1");
    assert_eq!(grouped.status, 200, "{grouped:?}");
    let text = grouped.text();
    assert!(text.starts_with("goroutine profile: total "), "{text}");
    let sleeper = text.find("# labels: {\"thread_name\":\"sleeper\"}").expect(&text);
    let group_line = text[..sleeper].lines().last().unwrap();
    assert!(group_line.starts_with("1 @ 0x"), "{group_line}");
    assert!(text[sleeper..].lines().nth(1).unwrap().starts_with("#\t0x"), "{text}");
    assert!(text.contains("sleepy_worker"), "{text}");

    // debug=0: a goroutine/count profile that go tool pprof reads.
    let counts = get(addr, "/debug/pprof/goroutine");
    let top = &read_attachment(&counts, "goroutine", &[&["-top"]])[0];
    assert!(top.contains("Type: goroutine") && top.contains("sleepy_worker"), "{top}");

    let scopes = get(addr, "/debug/pprof/scopes");
    assert_eq!(scopes.status, 200, "{scopes:?}");
    assert_eq!(scopes.header("content-disposition"), Some("attachment; filename=\"scopes\""));

    let symbol = request(addr, "POST", "/debug/pprof/symbol", "Content-Length: 9\r\n\r\n0x0+junk");
    assert_eq!((symbol.status, symbol.text().as_str()), (200, "num_symbols: 1\n"), "{symbol:?}");
    assert_eq!(get(addr, "/debug/pprof/symbol").text(), "num_symbols: 1\n");
    // A program counter of debug=1's text names its function.
    let pc = text
        .lines()
        .find(|l| l.starts_with("#\t0x") && l.contains("sleepy_worker"))
        .and_then(|l| l.split('\t').nth(1))
        .expect(&text)
        .to_string();
    let named =
        request(addr, "POST", "/debug/pprof/symbol", &format!("Content-Length: {}\r\n\r\n{pc}", pc.len()));
    assert!(named.text().contains(&format!("{pc} hotprof_examples::sleepy_worker")), "{named:?}");

    assert_go_error(&get(addr, "/debug/pprof/trace"), 404, "Unknown profile");
    let heap = get(addr, "/debug/pprof/heap");
    assert_eq!(heap.status, 404, "{heap:?}");
    assert!(heap.text().starts_with("Unknown profile: hotprof: heap profiling needs hotprof::SampledAlloc"));
    let bad = r#"invalid value for "seconds" - must be a positive integer"#;
    assert_go_error(&get(addr, "/debug/pprof/profile?seconds=0"), 400, bad);
    assert_go_error(&get(addr, "/debug/pprof/profile?seconds=x&seconds=1"), 400, bad);
    let over = get(addr, "/debug/pprof/profile?seconds=301");
    assert_eq!(over.status, 400);
    assert!(over.text().contains("HOTPROF_HTTP_MAX_SECONDS"), "{over:?}");
    assert_go_error(
        &get(addr, "/debug/pprof/goroutine?debug=2&seconds=5"),
        400,
        "seconds and debug params are incompatible",
    );

    let admin = get(addr, "/debug/pprof/admin/enable");
    assert_eq!((admin.status, admin.header("allow")), (405, Some("POST")), "{admin:?}");
    let admin = get(addr, "/debug/pprof/admin/disable");
    assert_eq!((admin.status, admin.header("allow")), (405, Some("POST")), "{admin:?}");
    drop(svc);
}

/// Threads of process `pid`, from `/proc/PID/task`.
fn thread_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().count()
}

/// `ask()` when the thread count of `pid` is the same before and after it
/// (a request may start a thread of the server's blocking pool), with that count.
fn with_steady_threads<T>(pid: i32, mut ask: impl FnMut() -> T) -> (T, usize) {
    for _ in 0..20 {
        let before = thread_count(pid);
        let answer = ask();
        if thread_count(pid) == before {
            return (answer, before);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the thread count of {pid} kept changing");
}

/// `^goroutine \d+ \[[^\]]+\]:$`
fn is_go_header(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("goroutine ") else { return false };
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let inside = rest[digits..].strip_prefix(" [").and_then(|r| r.strip_suffix("]:"));
    digits > 0 && inside.is_some_and(|i| !i.is_empty() && !i.contains(']'))
}

/// The block of `text` whose header names thread `name`.
fn block_of<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let header = format!(" thread \"{name}\"]:");
    text.split("\n\n").find(|b| b.lines().next().is_some_and(|h| h.ends_with(&header)))
}

#[test]
fn goroutine_debug2_has_a_go_block_per_thread() {
    let (svc, addr) = start(&["--extra", "2"], &[]);
    let mut attempts = 0;
    // A thread that just started may not have reached its function yet: look again.
    let (text, threads) = loop {
        let (dump, threads) = with_steady_threads(svc.pid, || get(addr, "/debug/pprof/goroutine?debug=2"));
        assert_eq!(dump.status, 200, "{dump:?}");
        let text = dump.text();
        attempts += 1;
        if attempts == 10 || block_of(&text, "extra-1").is_some_and(|b| b.contains("sleepy_worker")) {
            break (text, threads);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (go, ours) = text.split_at(text.find("\n\nhotprof thread dump\n").expect(&text));
    let blocks: Vec<&str> = go.split("\n\n").collect();
    assert_eq!(blocks.len(), threads, "one block per thread in /proc/{}/task:\n{text}", svc.pid);
    for block in &blocks {
        let mut lines = block.lines();
        let header = lines.next().unwrap();
        assert!(is_go_header(header), "{header:?}\n{text}");
        for line in lines {
            let frame = line.ends_with("()") || line.ends_with("(...)") || line.starts_with('\t');
            assert!(frame || line == "...additional frames elided...", "{line:?} in\n{block}");
        }
    }
    let headers = text.lines().filter(|l| l.starts_with("goroutine")).collect::<Vec<_>>();
    assert!(headers.iter().all(|h| is_go_header(h)) && headers.len() == threads, "{text}");

    let worker = block_of(go, "extra-1").unwrap_or_else(|| panic!("no block for extra-1:\n{text}"));
    let tid: i32 = worker["goroutine ".len()..].split(' ').next().unwrap().parse().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{}/task/{tid}/comm", svc.pid)).unwrap();
    assert_eq!(comm, "extra-1\n", "the number in the header is the thread id");
    assert!(worker.contains("\nhotprof_examples::sleepy_worker("), "{worker}");
    let ours_in_rust = |l: &&str| l.starts_with('\t') && l.contains(".rs:") && l.contains(" +0x");
    assert!(worker.lines().any(|l| ours_in_rust(&l)), "{worker}");
    assert!(ours.contains("\ntrigger: http\n") && ours.contains("\n\nlogical stacks: "), "{ours}");
    assert!(ours.ends_with(&format!("\n\n{END_MARKER}\n")), "{ours}");
}

#[test]
fn threadcreate_counts_live_threads_by_name() {
    let (svc, addr) = start(&["--extra", "3"], &[]);
    let (grouped, threads) = with_steady_threads(svc.pid, || get(addr, "/debug/pprof/threadcreate?debug=1"));
    assert_eq!(grouped.status, 200, "{grouped:?}");
    assert_eq!(grouped.header("content-type"), Some("text/plain; charset=utf-8"));
    let text = grouped.text();
    assert!(text.starts_with(&format!("threadcreate profile: total {threads}\n")), "{threads}: {text}");
    let counts: Vec<usize> =
        text.lines().filter_map(|l| l.strip_suffix(" @")?.parse().ok()).collect::<Vec<usize>>();
    assert_eq!(counts.iter().sum::<usize>(), threads, "{text}");
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "largest first: {text}");
    let extra = "3 @\n# labels: {\"thread_name\":\"extra-*\"}\n#\t0x0\tthread \"extra-*\"\n";
    assert!(text.contains(extra), "{text}");
    assert!(text.contains("1 @\n# labels: {\"thread_name\":\"sleeper\"}\n"), "{text}");
    assert!(text.contains("not the stacks that created the threads"), "{text}");

    let counts = get(addr, "/debug/pprof/threadcreate");
    let [raw, top] = &read_attachment(&counts, "threadcreate", &[&["-raw"], &["-top"]])[..] else {
        unreachable!()
    };
    assert!(raw.contains("threadcreate/count") && raw.contains("thread_name:[sleeper]"), "{raw}");
    assert!(raw.contains("not the stacks that created the threads"), "{raw}");
    assert!(top.contains("Type: threadcreate") && top.contains("thread \"sleeper\""), "{top}");

    let unsupported = r#""seconds" parameter is not supported for this profile type"#;
    assert_go_error(&get(addr, "/debug/pprof/threadcreate?seconds=5"), 400, unsupported);
    let with_debug = "seconds and debug params are incompatible";
    assert_go_error(&get(addr, "/debug/pprof/threadcreate?debug=1&seconds=5"), 400, with_debug);
    let bad = r#"invalid value for "seconds" - must be a positive integer"#;
    assert_go_error(&get(addr, "/debug/pprof/threadcreate?seconds=0"), 400, bad);
    let (page, threads) = with_steady_threads(svc.pid, || get(addr, "/debug/pprof/").text());
    let row = format!("<td>{threads}</td><td><a href='threadcreate?debug=1'>threadcreate</a></td>");
    assert!(page.contains(&row), "{page}");

    let off = request(addr, "POST", "/debug/pprof/admin/disable", "Content-Length: 0\r\n");
    assert_eq!(off.status, 200, "{off:?}");
    let refused = get(addr, "/debug/pprof/threadcreate?debug=1");
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.text().contains("capture is disabled"), "{refused:?}");
}

#[test]
fn switch_off_closes_capture_endpoints_only() {
    let (svc, addr) = start(&[], &[]);
    let off = request(addr, "POST", "/debug/pprof/admin/disable", "Content-Length: 0\r\n");
    assert_eq!((off.status, off.text().as_str()), (200, "capture disabled\n"), "{off:?}");
    for path in [
        "/debug/pprof/goroutine?debug=2",
        "/debug/pprof/goroutine",
        "/debug/pprof/profile?seconds=1",
        "/debug/pprof/flamegraph?seconds=1",
        "/debug/pprof/scopes",
        "/debug/pprof/threadcreate",
        "/debug/pprof/threadcreate?debug=1",
    ] {
        let a = get(addr, path);
        assert_eq!(a.status, 403, "{path}: {a:?}");
        assert!(a.text().contains("capture is disabled") && a.text().contains("admin/enable"), "{a:?}");
    }
    for path in ["/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/symbol?0x1"] {
        assert_eq!(get(addr, path).status, 200, "{path}");
    }
    assert!(get(addr, "/debug/pprof/").text().contains("capture is off"));
    let on = request(addr, "POST", "/debug/pprof/admin/enable", "Content-Length: 0\r\n");
    assert_eq!((on.status, on.text().as_str()), (200, "capture enabled\n"), "{on:?}");
    assert_eq!(get(addr, "/debug/pprof/goroutine?debug=1").status, 200);
    assert!(svc.stderr().contains("capture disabled over HTTP"), "{}", svc.stderr());
}

#[test]
fn the_guard_answers_429_with_retry_after() {
    let (_svc, addr) = start(&[], &[("HOTPROF_RATE_BURST", "1"), ("HOTPROF_RATE_REFILL", "10m")]);
    assert_eq!(get(addr, "/debug/pprof/goroutine?debug=2").status, 200);
    let refused = get(addr, "/debug/pprof/goroutine?debug=2");
    assert_eq!(refused.status, 429, "{refused:?}");
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((500..=600).contains(&retry), "{refused:?}");
    assert_eq!(refused.header("x-go-pprof"), Some("1"));
}

#[test]
fn a_storm_locks_its_kind_then_opens_the_breaker_and_says_so() {
    let guard = [
        ("HOTPROF_RATE_BURST", "1"),
        ("HOTPROF_RATE_REFILL", "10m"),
        ("HOTPROF_LOCK_AFTER", "3"),
        ("HOTPROF_LOCK_WINDOW", "1m"),
        ("HOTPROF_LOCK_COOLDOWN", "10m"),
        ("HOTPROF_BREAKER_AFTER", "1"),
        ("HOTPROF_BREAKER_COOLDOWN", "10m"),
    ];
    let (svc, addr) = start(&[], &guard);
    assert_eq!(get(addr, "/debug/pprof/goroutine?debug=1").status, 200);
    let statuses: Vec<u16> = (0..6).map(|_| get(addr, "/debug/pprof/goroutine?debug=1").status).collect();
    assert_eq!(statuses, [429; 6]);
    let stderr = svc.stderr();
    let said = |needle: &str| stderr.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(
        said("dump triggers locked for 600s after 3 refusals within 60s (HOTPROF_LOCK_*)"),
        1,
        "{stderr}"
    );
    assert_eq!(said("breaker open: every capture refused for 600s"), 1, "{stderr}");

    // The breaker covers every kind: a CPU profile is refused too, at once,
    // with a Retry-After as long as the breaker stays open.
    let cpu = get(addr, "/debug/pprof/profile?seconds=1");
    assert_eq!(cpu.status, 429, "{cpu:?}");
    let retry: u64 = cpu.header("retry-after").unwrap().parse().unwrap();
    assert!((500..=600).contains(&retry), "{cpu:?}");
    assert!(cpu.text().contains("breaker"), "{cpu:?}");
}

#[test]
fn access_control_over_real_sockets() {
    let env = [("HOTPROF_ALLOW", "127.0.0.1/32"), ("HOTPROF_AUTH", "ops:s3cret")];
    let (svc, addr) = start(&[], &env);
    assert!(svc.stderr().contains("basic auth required"), "{}", svc.stderr());

    // From 127.0.0.2: not in the allowlist, even with the right password.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    socket.connect_timeout(&addr.into(), Duration::from_secs(5)).unwrap();
    let raw = format!("GET /debug/pprof/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{GOOD_AUTH}\r\n");
    let denied = exchange(socket.into(), raw.as_bytes());
    assert_eq!(denied.status, 403, "{denied:?}");
    assert!(denied.text().contains("127.0.0.2 is not in HOTPROF_ALLOW"), "{denied:?}");

    for headers in ["", WRONG_AUTH] {
        let a = request(addr, "GET", "/debug/pprof/", headers);
        assert_eq!(a.status, 401, "{a:?}");
        assert_eq!(a.header("www-authenticate"), Some("Basic realm=\"hotprof\""), "{a:?}");
    }
    assert_eq!(request(addr, "GET", "/debug/pprof/", GOOD_AUTH).status, 200);
    assert_eq!(request(addr, "GET", "/debug/pprof/admin/enable", GOOD_AUTH).status, 405);
    assert!(!svc.stderr().contains("s3cret"), "credentials are never logged");
}

#[test]
fn a_bearer_token_opens_the_door_beside_basic_auth() {
    let env =
        [("HOTPROF_HTTP", "0.0.0.0:0"), ("HOTPROF_AUTH", "ops:s3cret"), ("HOTPROF_AUTH_TOKEN", "t0k3n")];
    let (svc, addr) = start(&[], &env);
    assert!(svc.stderr().contains("(basic auth or bearer token required)"), "{}", svc.stderr());
    let addr = SocketAddr::from(([127, 0, 0, 1], addr.port()));
    for headers in ["", "Authorization: Bearer t0k3\r\n", "Authorization: Bearer s3cret\r\n", WRONG_AUTH] {
        let a = request(addr, "GET", "/debug/pprof/goroutine?debug=1", headers);
        assert_eq!(a.status, 401, "{headers}: {a:?}");
        let challenges = Some("Basic realm=\"hotprof\", Bearer realm=\"hotprof\"");
        assert_eq!(a.header("www-authenticate"), challenges, "{a:?}");
    }
    for headers in ["Authorization: Bearer t0k3n\r\n", GOOD_AUTH] {
        let a = request(addr, "GET", "/debug/pprof/goroutine?debug=1", headers);
        assert_eq!(a.status, 200, "{headers}: {a:?}");
    }
    assert!(!svc.stderr().contains("t0k3n"), "tokens are never logged");
}

#[test]
fn invalid_settings_leave_the_server_off_and_the_service_up() {
    let cases = [
        (vec![("HOTPROF_HTTP", "6060")], "HOTPROF_HTTP=\"6060\" is not an address"),
        (vec![("HOTPROF_HTTP", "0.0.0.0:0")], "is not a loopback address"),
        (vec![("HOTPROF_HTTP", "127.0.0.1:0"), ("HOTPROF_ALLOW", "10.0.0.0/99")], "HOTPROF_ALLOW"),
        (vec![("HOTPROF_HTTP", "127.0.0.1:0"), ("HOTPROF_AUTH", "nocolon")], "HOTPROF_AUTH must hold"),
    ];
    for (env, needle) in cases {
        let svc = Service::start(&fresh_dir("http-bad"), &[], &env);
        let stderr = svc.stderr();
        assert!(
            stderr.contains(needle) && stderr.contains("the debug HTTP server is not started"),
            "{stderr}"
        );
        assert!(!stderr.contains("debug HTTP server on"), "{stderr}");
        assert!(svc.ping(), "{stderr}");
    }
}

#[test]
fn concurrent_profiles_get_one_200_and_gos_500() {
    let _serial = serial();
    let (_svc, addr) = start(&[], &[]);
    let first = std::thread::spawn(move || get(addr, "/debug/pprof/profile?seconds=2"));
    std::thread::sleep(Duration::from_millis(500));
    let second = get(addr, "/debug/pprof/profile?seconds=1");
    assert_go_error(&second, 500, "Could not enable CPU profiling: cpu profiling already in use");
    let first = first.join().unwrap();
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.header("content-disposition"), Some("attachment; filename=\"profile\""));
    assert_eq!(&first.body[..2], &[0x1f, 0x8b], "gzip");
    let svg = get(addr, "/debug/pprof/flamegraph?seconds=1");
    assert_eq!((svg.status, svg.header("content-type")), (200, Some("image/svg+xml")), "{svg:?}");
    assert!(svg.text().contains("<svg"), "{svg:?}");
}

/// (method, path, extra header lines, body, expected status)
fn malformed_cases() -> Vec<(String, String, String, Vec<u8>, u16)> {
    let mut cases: Vec<(String, String, String, Vec<u8>, u16)> = Vec::new();
    let mut add = |method: &str, path: &str, headers: &str, body: &[u8], status: u16| {
        cases.push((method.into(), path.into(), headers.into(), body.to_vec(), status));
    };
    let huge_number = "9".repeat(10_000);
    for q in [
        "seconds=0",
        "seconds=-1",
        "seconds=abc",
        "seconds=",
        "seconds=1.5",
        "seconds=301",
        "seconds=99999999999999999999999",
        "seconds=0&seconds=1",
        "seconds=%zz",
        "seconds=1e3",
        "seconds=0x10",
        "seconds=%00",
        "seconds=%20%201",
        &format!("seconds={huge_number}"),
    ] {
        add("GET", &format!("/debug/pprof/profile?{q}"), GOOD_AUTH, b"", 400);
    }
    for q in ["seconds=0", "seconds=-5", "seconds=nope"] {
        add("GET", &format!("/debug/pprof/flamegraph?{q}"), GOOD_AUTH, b"", 400);
    }
    for q in [
        "debug=3",
        "debug=-1",
        "debug=x",
        "debug=",
        "debug=1&seconds=5",
        "debug=2&seconds=5",
        "seconds=0",
        "seconds=5",
        "debug=99999999999999999999",
        "debug=%00",
        "debug=2%00",
    ] {
        add("GET", &format!("/debug/pprof/goroutine?{q}"), GOOD_AUTH, b"", 400);
    }
    add("GET", "/debug/pprof/scopes?seconds=5", GOOD_AUTH, b"", 400);
    add("GET", "/debug/pprof/scopes?seconds=abc", GOOD_AUTH, b"", 400);
    for (method, path) in [
        ("POST", "/debug/pprof/profile"),
        ("DELETE", "/debug/pprof/"),
        ("PUT", "/debug/pprof/goroutine"),
        ("GET", "/debug/pprof/admin/enable"),
        ("GET", "/debug/pprof/admin/disable"),
        ("PUT", "/debug/pprof/admin/enable"),
        ("PATCH", "/debug/pprof/cmdline"),
        ("FOO", "/debug/pprof/"),
        ("DELETE", "/debug/pprof/symbol"),
    ] {
        add(method, path, GOOD_AUTH, b"", 405);
    }
    for path in [
        "/debug/pprof/trace",
        "/debug/pprof/heap",
        "/debug/pprof/nosuch",
        "/debug/pprof/../../etc/passwd",
        "/debug/pprof/..%2f..%2fetc%2fpasswd",
        "/debug/pprof/%2e%2e/%2e%2e/etc/passwd",
        "/etc/passwd",
        "/",
        "/debug/pprof/admin",
        "/debug/pprof/admin/enable/extra",
        "/debug/pprof//goroutine",
        "/debug/pprof/goroutine/",
        "/DEBUG/PPROF/",
        "http://evil.example/debug/pprof/trace",
    ] {
        add("GET", path, GOOD_AUTH, b"", 404);
    }
    let long_auth = format!("Authorization: Basic {}\r\n", "QUFB".repeat(2000));
    for headers in [
        "",
        WRONG_AUTH,
        "Authorization: Basic !!!!\r\n",
        "Authorization: Bearer b3BzOnMzY3JldA==\r\n",
        "Authorization: Basic\r\n",
        "Authorization: Basic b3Bz\r\n",
        "Authorization: b3BzOnMzY3JldA==\r\n",
        &format!("{WRONG_AUTH}{GOOD_AUTH}"),
        &long_auth,
    ] {
        add("GET", "/debug/pprof/", headers, b"", 401);
    }
    add("GET", "/debug/pprof/", "Authorization: Basic \u{00ff}\u{00fe}\r\n", b"", 401);
    add("POST", "/debug/pprof/symbol", GOOD_AUTH, &[0xff, 0xfe, b'+', 0x80], 400);
    add("POST", "/debug/pprof/symbol", GOOD_AUTH, "0x1+".repeat(20_000).as_bytes(), 413);
    cases
}

#[test]
fn malformed_requests_get_a_4xx_and_the_service_stays_up() {
    let (mut svc, addr) = start(&[], &[("HOTPROF_AUTH", "ops:s3cret")]);
    let cases = malformed_cases();
    let mut raw_cases: Vec<(String, Vec<u8>)> = cases
        .into_iter()
        .map(|(method, path, headers, body, status)| {
            let mut raw = format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            raw.extend_from_slice(&body);
            (format!("{status} {method} {}", path.chars().take(80).collect::<String>()), raw)
        })
        .collect();
    // Broken HTTP itself: hyper answers 4xx before any route runs.
    raw_cases.push(("400 garbage".into(), b"GARBAGE\r\n\r\n".to_vec()));
    raw_cases
        .push(("400 header without colon".into(), b"GET /debug/pprof/ HTTP/1.1\r\nHost x\r\n\r\n".to_vec()));
    raw_cases.push((
        "400 non-UTF-8 path".into(),
        b"GET /debug/pprof/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    ));
    let mut huge = b"GET /debug/pprof/ HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 600_000));
    huge.extend_from_slice(b"\r\n\r\n");
    raw_cases.push(("431 huge header".into(), huge));
    assert!(raw_cases.len() >= 50, "{} cases", raw_cases.len());

    let mut wrong = Vec::new();
    for (what, raw) in &raw_cases {
        let expected: u16 = what[..3].parse().unwrap();
        let answer = send(addr, raw);
        if !(400..500).contains(&answer.status) || (answer.status != expected && !what.contains("non-UTF-8"))
        {
            wrong.push(format!("{what}: got {} {:?}", answer.status, answer.text()));
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases:\n{}", wrong.len(), raw_cases.len(), wrong.join("\n"));
    assert!(svc.alive() && svc.ping(), "{}", svc.stderr());
    assert_eq!(request(addr, "GET", "/debug/pprof/", GOOD_AUTH).status, 200);
    assert!(!svc.stderr().contains("panicked"), "{}", svc.stderr());
}

#[test]
fn router_mounts_under_a_prefix_in_the_apps_own_server() {
    let bin = env!("CARGO_BIN_EXE_router-service");
    let svc = Service::start_bin(bin, &fresh_dir("http-router"), &[], &[("HOTPROF_RATE_BURST", "50")]);
    let addr = announced_addr(&svc, "router-service: app on http://");
    let stderr = svc.stderr();
    assert!(!stderr.contains("debug HTTP server on"), "no second port: {stderr}");

    assert_eq!(get(addr, "/").text(), "hello\n");
    let moved = get(addr, "/internal/debug/pprof");
    assert_eq!((moved.status, moved.header("location")), (301, Some("pprof/")), "{moved:?}");
    let index = get(addr, "/internal/debug/pprof/");
    assert_eq!(index.status, 200, "{index:?}");
    assert!(index.text().contains("<a href='goroutine?debug=1'>goroutine</a>"));
    let dump = get(addr, "/internal/debug/pprof/goroutine?debug=2");
    assert_eq!(dump.status, 200, "{dump:?}");
    assert!(dump.text().contains("trigger: http"), "{dump:?}");
    assert_go_error(&get(addr, "/internal/debug/pprof/trace"), 404, "Unknown profile");
    assert_eq!(get(addr, "/internal/debug/pprof/admin/disable").status, 405);
}

#[test]
fn the_service_exits_on_time_with_a_profile_request_in_flight() {
    let _serial = serial();
    let (mut svc, addr) = start(&["--exit-after", "2"], &[]);
    let mut stream = TcpStream::connect(addr).unwrap();
    let raw = "GET /debug/pprof/profile?seconds=60 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    stream.write_all(raw.as_bytes()).unwrap();
    assert!(wait_until(Duration::from_secs(10), || !svc.alive()), "still running: {}", svc.stderr());
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest); // closed: the server went away with the process
}

#[test]
fn idle_connections_are_dropped_and_a_flood_does_not_wedge_the_server() {
    let (mut svc, addr) = start(&[], &[]);
    // Far more silent connections than the server keeps (64): the extra ones
    // are closed at once, the rest after the 5 s header timeout.
    let idle: Vec<TcpStream> = (0..200).filter_map(|_| TcpStream::connect(addr).ok()).collect();
    let closed = |mut s: &TcpStream| {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 64];
        // A read timeout is not a close; a reset is.
        match s.read(&mut buf) {
            Ok(n) => n == 0,
            Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        }
    };
    let started = std::time::Instant::now();
    assert!(idle.iter().all(closed), "every idle connection is closed");
    assert!(started.elapsed() < Duration::from_secs(9), "{:?}", started.elapsed());
    assert_eq!(get(addr, "/debug/pprof/").status, 200);
    assert!(svc.alive() && svc.ping());

    // A keep-alive connection left idle after an answer is closed too.
    let stream = TcpStream::connect(addr).unwrap();
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    (&stream).write_all(b"GET /debug/pprof/cmdline HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(read_head(&mut reader).starts_with("HTTP/1.1 200"));
    assert!(closed(&stream), "an idle keep-alive connection is closed");
}

/// A POST whose headers promise 100 bytes of body, of which it sends 4.
fn stalled_post(addr: SocketAddr, path: &str, auth: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 100\r\n\r\n0x12");
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

/// What the server sent on `stream` until it closed it (a reset counts as a
/// close), or `None` if it was still open after `wait`.
fn until_closed(mut stream: &TcpStream, wait: Duration) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut sent = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(sent),
            Ok(n) => sent.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return None;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Some(sent),
        }
    }
}

/// hotprof's 408 for a body that did not arrive, then the close.
fn assert_body_timeout(sent: &[u8]) {
    let text = String::from_utf8_lossy(sent);
    assert!(text.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{text:?}");
    let head = text.to_ascii_lowercase();
    for line in ["connection: close", "x-go-pprof: 1", "content-type: text/plain; charset=utf-8"] {
        assert!(head.contains(&format!("\r\n{line}\r\n")), "no {line}: {text:?}");
    }
    assert!(text.ends_with("\r\n\r\nhotprof: the request body did not arrive within 5s\n"), "{text:?}");
}

#[test]
fn stalled_request_bodies_get_a_408_and_free_the_port() {
    let (mut svc, addr) = start(&[], &[("HOTPROF_AUTH", "ops:s3cret")]);
    let started = Instant::now();
    let stalled: Vec<TcpStream> =
        (0..70).map(|_| stalled_post(addr, "/debug/pprof/symbol", GOOD_AUTH)).collect();
    let cmdline =
        format!("GET /debug/pprof/cmdline HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{GOOD_AUTH}\r\n");
    // They hold every slot: a new connection is closed unanswered.
    let locked = TcpStream::connect(addr).unwrap();
    let _ = (&locked).write_all(cmdline.as_bytes());
    assert_eq!(until_closed(&locked, Duration::from_secs(2)), Some(Vec::new()), "the port was not locked");

    // Within the body timeout and a margin, the port answers again.
    let answered = wait_until(BODY_TIMEOUT + Duration::from_secs(3), || {
        let Ok(stream) = TcpStream::connect(addr) else { return false };
        let _ = (&stream).write_all(cmdline.as_bytes());
        until_closed(&stream, Duration::from_secs(2)).is_some_and(|a| a.starts_with(b"HTTP/1.1 200"))
    });
    let freed = started.elapsed();
    assert!(answered, "no answer {freed:?} after the stalled requests: {}", svc.stderr());
    assert!(freed >= BODY_TIMEOUT, "answered before the stalled bodies timed out: {freed:?}");

    // Every stalled connection was closed by the server: those it served with
    // a 408, those over the cap at once and unanswered.
    let ends: Vec<Option<Vec<u8>>> =
        stalled.iter().map(|s| until_closed(s, Duration::from_secs(1))).collect();
    let open = ends.iter().filter(|e| e.is_none()).count();
    assert_eq!(open, 0, "{open} stalled connections still open");
    let (timed_out, unanswered): (Vec<_>, Vec<_>) = ends.into_iter().flatten().partition(|e| !e.is_empty());
    timed_out.iter().for_each(|sent| assert_body_timeout(sent));
    assert_eq!((timed_out.len(), unanswered.len()), (MAX_CONNECTIONS, 70 - MAX_CONNECTIONS));
    assert!(svc.alive() && svc.ping(), "{}", svc.stderr());
    assert!(!svc.stderr().contains("panicked"), "{}", svc.stderr());
}

#[test]
fn a_stalled_body_gets_a_408_in_the_apps_own_server_too() {
    let bin = env!("CARGO_BIN_EXE_router-service");
    let svc = Service::start_bin(bin, &fresh_dir("http-router-stall"), &[], &[]);
    let addr = announced_addr(&svc, "router-service: app on http://");
    let started = Instant::now();
    let stalled = ["/internal/debug/pprof/symbol", "/internal/debug/pprof/trigger"]
        .map(|path| stalled_post(addr, path, ""));
    for stream in &stalled {
        let sent = until_closed(stream, BODY_TIMEOUT + Duration::from_secs(3));
        assert_body_timeout(&sent.unwrap_or_else(|| panic!("still open after {:?}", started.elapsed())));
    }
    assert!(started.elapsed() >= BODY_TIMEOUT, "{:?}", started.elapsed());
    assert_eq!(get(addr, "/internal/debug/pprof/cmdline").status, 200);
}

#[test]
fn an_alertmanager_webhook_starts_a_dump_and_a_cpu_profile() {
    let _serial = serial();
    let (svc, addr) = start(&["--hot", "1"], &[("HOTPROF_CPU_SECONDS", "1s")]);
    let post = |body: &str| {
        let raw = format!(
            "POST /debug/pprof/trigger HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        send(addr, raw.as_bytes())
    };
    let firing = r#"{"version":"4","status":"firing","receiver":"hotprof","alerts":[{"status":"firing","labels":{"alertname":"HighLatency","service":"demo"},"annotations":{}}]}"#;
    let a = post(firing);
    assert_eq!(a.status, 202, "{a:?}");
    assert!(a.text().contains("thread dump written to"), "{a:?}");
    assert!(a.text().contains("CPU profile started for 1.0s"), "{a:?}");
    assert_eq!(svc.wait_dumps(1, Duration::from_secs(30)).len(), 1);
    assert!(svc.wait_stderr("CPU profile (", Duration::from_secs(30)), "{}", svc.stderr());

    let resolved = r#"{"version":"4","status":"resolved","alerts":[{"labels":{"alertname":"HighLatency"}}]}"#;
    let a = post(resolved);
    assert_eq!((a.status, a.text()), (200, "nothing started: HighLatency is resolved\n".to_string()));
    assert_go_error(
        &post("not json"),
        400,
        "hotprof: the body is not JSON; an Alertmanager webhook is expected",
    );
    assert_go_error(&post(r#"{"status":"firing"}"#), 400, "hotprof: the webhook has no \"alerts\" array");
    assert_eq!(get(addr, "/debug/pprof/trigger").status, 405);
}

/// web-service: `#[hotprof::main(http = "127.0.0.1:0")]`.
fn start_web_service(env: &[(&str, &str)]) -> Service {
    let bin = env!("CARGO_BIN_EXE_web-service");
    let svc = Service::start_bin(bin, &fresh_dir("http-macro"), &[], env);
    announced_addr(&svc, "web-service: app on http://");
    svc
}

#[test]
fn the_macro_address_serves_unless_hotprof_http_says_otherwise() {
    let svc = start_web_service(&[]);
    let addr = announced_addr(&svc, "debug HTTP server on http://");
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    assert_eq!(get(addr, "/debug/pprof/").status, 200);

    let svc = start_web_service(&[("HOTPROF_HTTP", "127.0.0.2:0")]);
    let addr = announced_addr(&svc, "debug HTTP server on http://");
    assert_eq!(addr.ip().to_string(), "127.0.0.2", "the env wins over the macro");
    assert_eq!(get(addr, "/debug/pprof/").status, 200);

    let svc = start_web_service(&[("HOTPROF_HTTP", "off")]);
    assert!(!svc.stderr().contains("debug HTTP server"), "{}", svc.stderr());

    let mut svc = start_web_service(&[("HOTPROF_HTTP", "nowhere")]);
    let stderr = svc.stderr();
    assert!(stderr.contains("HOTPROF_HTTP=\"nowhere\" is not an address"), "{stderr}");
    assert!(svc.alive(), "{stderr}");
}

#[test]
fn a_flood_waits_its_turn_instead_of_being_refused() {
    // 5 turns a second, 5 at once: a connection and 20 requests on it are
    // 21 turns, so at least 16 / 5 = 3.2 s, and every request is answered.
    let (svc, addr) = start(&[], &[("HOTPROF_HTTP_RATE", "5")]);
    let stream = TcpStream::connect(addr).unwrap();
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let started = std::time::Instant::now();
    for i in 0..20 {
        (&stream).write_all(b"GET /debug/pprof/cmdline HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let head = read_head(&mut reader);
        assert!(head.starts_with("HTTP/1.1 200"), "request {i}: {head}");
    }
    assert!(started.elapsed() >= Duration::from_millis(3100), "{:?}", started.elapsed());
    assert!(svc.stderr().lines().all(|l| !l.contains("error")), "{}", svc.stderr());
}

/// The head of one answer on a keep-alive connection; its body is skipped.
fn read_head(reader: &mut std::io::BufReader<TcpStream>) -> String {
    use std::io::BufRead;
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        assert!(reader.read_line(&mut head).unwrap() > 0, "closed after {head:?}");
    }
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    reader.read_exact(&mut vec![0; length]).unwrap();
    head
}

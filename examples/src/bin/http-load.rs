//! Benchmark: the application's own throughput while hotprof's debug port is
//! hammered with requests it rejects (401, no credentials), against the same
//! service left alone, in alternating rounds of one run.
//!
//! It starts `web-service` (built next to this binary) once per
//! `HOTPROF_HTTP_RATE` value (the default 100 and an effectively unpaced
//! 100000) and attack style. Keep-alive clients load the app's `GET /work`;
//! in hammered rounds, more clients send `GET /debug/pprof/goroutine` as fast
//! as they get answers, either on one keep-alive connection each or on a new
//! connection for every request. Prints one markdown row per rate and style,
//! each column the median over the rounds: app requests a second quiet and
//! hammered, the change within a round (hammered against the quiet window
//! next to it), rejected answers a second, and the CPU the `hotprof-http`
//! threads used.
//!
//!   cargo build --release -p hotprof-examples --bin web-service --bin http-load
//!   ./target/release/http-load --rounds 5 --seconds 3 --app-conns 8 --attack-conns 64

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hotprof_examples::arg;

fn main() {
    let rounds: usize = arg("--rounds", 5);
    let seconds: f64 = arg("--seconds", 3.0);
    let app_conns: usize = arg("--app-conns", 8);
    let attack_conns: usize = arg("--attack-conns", 64);
    let window = Duration::from_secs_f64(seconds);
    println!(
        "{rounds} rounds of {seconds} s quiet + {seconds} s hammered; {app_conns} app clients, {attack_conns} attackers"
    );
    println!();
    println!(
        "| HOTPROF_HTTP_RATE | attackers | app req/s, quiet | app req/s, hammered | change | rejected answers/s | hotprof-http CPU |"
    );
    println!("|---|---|---|---|---|---|---|");
    for rate in [100, 100_000] {
        for attack in [Attack::KeepAlive, Attack::NewConnections] {
            let row = measure(rate, attack, rounds, window, app_conns, attack_conns);
            println!("| {rate} | {} | {row} |", attack.name());
        }
    }
}

/// How the attackers talk to the debug port.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Attack {
    /// One connection each, request after request (wrk's way).
    KeepAlive,
    /// A new connection for every request (`Connection: close`).
    NewConnections,
}

impl Attack {
    fn name(self) -> &'static str {
        match self {
            Attack::KeepAlive => "keep-alive",
            Attack::NewConnections => "a connection a request",
        }
    }
}

/// One table row (without its first two cells): medians over the rounds.
fn measure(
    rate: u32,
    attack: Attack,
    rounds: usize,
    window: Duration,
    app_conns: usize,
    attack_conns: usize,
) -> String {
    let service = Service::start(rate);
    let load = Load::start(service.app, "/work", app_conns, false);
    std::thread::sleep(Duration::from_secs(1)); // warm up
    let mut seen = Vec::new();
    for i in 0..rounds {
        // Alternate which half comes first, so a drift in the machine's
        // load does not always favour one side.
        let hammered = || hammered_round(&service, &load, attack, attack_conns, window);
        seen.push(if i % 2 == 0 {
            let quiet = load.rate_over(window);
            (quiet, hammered())
        } else {
            let hammered = hammered();
            (load.rate_over(window), hammered)
        });
    }
    load.stop();
    let column = |f: &dyn Fn(&(f64, Round)) -> f64| median(&mut seen.iter().map(f).collect::<Vec<_>>());
    format!(
        "{:.0} | {:.0} | {:+.2}% | {:.0} | {:.2}% of a core",
        column(&|(q, _)| *q),
        column(&|(_, h)| h.app),
        column(&|(q, h)| (h.app / q - 1.0) * 100.0),
        column(&|(_, h)| h.rejected),
        column(&|(_, h)| h.http_cpu * 100.0),
    )
}

/// What one hammered window measured, each a second's worth.
struct Round {
    app: f64,
    rejected: f64,
    /// Seconds of CPU the `hotprof-http` threads used.
    http_cpu: f64,
}

fn hammered_round(
    service: &Service,
    load: &Load,
    attack: Attack,
    attackers: usize,
    window: Duration,
) -> Round {
    let close = attack == Attack::NewConnections;
    let attack = Load::start(service.debug, "/debug/pprof/goroutine", attackers, close);
    std::thread::sleep(Duration::from_millis(200)); // let every attacker connect
    let (app, bad, cpu, started) = (load.counter(), attack.counter(), service.http_cpu(), Instant::now());
    std::thread::sleep(window);
    let seconds = started.elapsed().as_secs_f64();
    let round = Round {
        app: (load.counter() - app) as f64 / seconds,
        rejected: (attack.counter() - bad) as f64 / seconds,
        http_cpu: (service.http_cpu() - cpu).as_secs_f64() / seconds,
    };
    attack.stop();
    round
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// A running web-service.
struct Service {
    child: Child,
    app: SocketAddr,
    debug: SocketAddr,
    dir: std::path::PathBuf,
}

impl Service {
    fn start(rate: u32) -> Service {
        let dir = std::env::temp_dir().join(format!("http-load-{}-{rate}", std::process::id()));
        let exe = std::env::current_exe().expect("own path");
        let mut child = Command::new(exe.with_file_name("web-service"))
            .env("HOTPROF_DIR", &dir)
            .env("HOTPROF_AUTH", "ops:s3cret")
            .env("HOTPROF_HTTP_RATE", rate.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start web-service (build it first: see the header of this file)");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let (mut app, mut debug) = (None, None);
        let (app, debug) = loop {
            if let (Some(app), Some(debug)) = (app, debug) {
                break (app, debug);
            }
            let line = lines.next().expect("web-service exited early").expect("read stderr");
            app = app.or_else(|| address_after(&line, "app on http://"));
            debug = debug.or_else(|| address_after(&line, "debug HTTP server on http://"));
        };
        std::thread::spawn(move || lines.for_each(drop));
        Service { child, app, debug, dir }
    }

    /// CPU time used so far by the threads named `hotprof-http`.
    fn http_cpu(&self) -> Duration {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.child.id())).expect("tasks");
        let ticks: u64 = tasks
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "hotprof-http")
            })
            .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
            .map(|stat| {
                // utime and stime, fields 14 and 15, counted after the `(comm)`.
                let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
                rest.split_whitespace().skip(11).take(2).filter_map(|v| v.parse::<u64>().ok()).sum::<u64>()
            })
            .sum();
        // /proc counts in USER_HZ, which Linux fixes at 100 a second.
        Duration::from_millis(ticks * 10)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn address_after(line: &str, needle: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(needle)? + needle.len()..];
    rest[..rest.find('/')?].parse().ok()
}

/// Keep-alive clients sending one GET after another, counting answers.
struct Load {
    answers: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// `close`: a new connection for every request.
    fn start(addr: SocketAddr, path: &str, conns: usize, close: bool) -> Load {
        let answers = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let connection = if close { "Connection: close\r\n" } else { "" };
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{connection}\r\n").into_bytes();
        let threads = (0..conns)
            .map(|_| {
                let (answers, stop, request) = (answers.clone(), stop.clone(), request.clone());
                std::thread::spawn(move || client(addr, &request, close, &answers, &stop))
            })
            .collect();
        Load { answers, stop, threads }
    }

    fn counter(&self) -> u64 {
        self.answers.load(Ordering::Relaxed)
    }

    fn rate_over(&self, window: Duration) -> f64 {
        let (before, started) = (self.counter(), Instant::now());
        std::thread::sleep(window);
        (self.counter() - before) as f64 / started.elapsed().as_secs_f64()
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.into_iter().for_each(|t| drop(t.join()));
    }
}

/// One connection at a time, reconnecting when the server closes it, or
/// after every answer when `close`.
fn client(addr: SocketAddr, request: &[u8], close: bool, answers: &AtomicU64, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(stream) = TcpStream::connect(addr) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        // Paced answers come within a second; a stuck one ends the connection.
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut reader = BufReader::new(stream);
        while !stop.load(Ordering::Relaxed) {
            if reader.get_mut().write_all(request).is_err() || read_answer(&mut reader).is_err() {
                break;
            }
            answers.fetch_add(1, Ordering::Relaxed);
            if close {
                break;
            }
        }
    }
}

/// Reads one answer: the head, then `Content-Length` bytes of body.
fn read_answer(reader: &mut BufReader<TcpStream>) -> std::io::Result<()> {
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)
}

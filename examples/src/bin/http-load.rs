//! Benchmark: the application's own throughput while hotprof's debug port is
//! hammered with requests it rejects (401, no credentials), against the same
//! service left alone, in alternating rounds of one run.
//!
//! It starts `web-service` (built next to this binary) once per
//! `HOTPROF_HTTP_RATE` value (the default 100 and an effectively unpaced
//! 100000) and attack style. Keep-alive clients load the app's `GET /work`;
//! in hammered rounds, more clients send `GET /debug/pprof/goroutine` as fast
//! as they get answers, either on one keep-alive connection each or on a new
//! connection for every request. With `--tls`, the server speaks HTTPS with
//! an RSA 2048 certificate and the attackers are `--tls-attackers`
//! `openssl s_time -new` processes, each making TLS handshake after handshake
//! (this needs the `openssl` command). Prints one markdown row per rate and
//! style, each column the median over the rounds: app requests a second quiet
//! and hammered, the change within a round (hammered against the quiet window
//! next to it), attacks served a second (rejected requests or handshakes), and
//! the CPU the `hotprof-http` threads used.
//!
//!   cargo build --release -p hotprof-examples --bin web-service --bin http-load
//!   ./target/release/http-load --rounds 5 --seconds 3 --app-conns 8 --attack-conns 64
//!   ./target/release/http-load --rounds 5 --seconds 3 --tls --tls-attackers 4

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
    let tls_attackers: usize = arg("--tls-attackers", 4);
    let window = Duration::from_secs_f64(seconds);
    println!(
        "{rounds} rounds of {seconds} s quiet + {seconds} s hammered; {app_conns} app clients, {attack_conns} attackers"
    );
    println!();
    println!(
        "| HOTPROF_HTTP_RATE | attackers | app req/s, quiet | app req/s, hammered | change | attacks served/s | hotprof-http CPU |"
    );
    println!("|---|---|---|---|---|---|---|");
    let tls = std::env::args().any(|a| a == "--tls");
    let attacks: &[Attack] =
        if tls { &[Attack::TlsHandshakes] } else { &[Attack::KeepAlive, Attack::NewConnections] };
    for rate in [100, 100_000] {
        for &attack in attacks {
            let attackers = if attack == Attack::TlsHandshakes { tls_attackers } else { attack_conns };
            let row = measure(rate, attack, rounds, window, app_conns, attackers);
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
    /// TLS handshakes, one after another on new connections, by
    /// `openssl s_time -new`, against a server with an RSA 2048 certificate.
    TlsHandshakes,
}

impl Attack {
    fn name(self) -> &'static str {
        match self {
            Attack::KeepAlive => "keep-alive",
            Attack::NewConnections => "a connection a request",
            Attack::TlsHandshakes => "TLS handshakes",
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
    let service = Service::start(rate, attack == Attack::TlsHandshakes);
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
        column(&|(_, h)| h.served),
        column(&|(_, h)| h.http_cpu * 100.0),
    )
}

/// What one hammered window measured, each a second's worth.
struct Round {
    app: f64,
    /// Attacks served: rejected requests, or TLS handshakes.
    served: f64,
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
    let flood = Flood::start(service, attack, attackers, window);
    std::thread::sleep(Duration::from_millis(200)); // let every attacker connect
    let (app, cpu, started) = (load.counter(), service.http_cpu(), Instant::now());
    std::thread::sleep(window);
    let seconds = started.elapsed().as_secs_f64();
    let (app, http_cpu) = (load.counter() - app, service.http_cpu() - cpu);
    Round {
        app: app as f64 / seconds,
        served: flood.stop(seconds + 0.2),
        http_cpu: http_cpu.as_secs_f64() / seconds,
    }
}

/// The attackers of one hammered window.
enum Flood {
    Http(Load),
    /// `openssl s_time` processes, each running for the window.
    Tls(Vec<Child>),
}

impl Flood {
    fn start(service: &Service, attack: Attack, attackers: usize, window: Duration) -> Flood {
        if attack != Attack::TlsHandshakes {
            let close = attack == Attack::NewConnections;
            return Flood::Http(Load::start(service.debug, "/debug/pprof/goroutine", attackers, close));
        }
        let seconds = (window.as_secs_f64() + 0.2).ceil().to_string();
        let connect = service.debug.to_string();
        let spawn = |_| {
            Command::new("openssl")
                .args(["s_time", "-new", "-connect", connect.as_str(), "-time", seconds.as_str()])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("openssl s_time (the --tls rows need the openssl command)")
        };
        Flood::Tls((0..attackers).map(spawn).collect())
    }

    /// Stops the attackers; requests or handshakes served a second over
    /// their `seconds`.
    fn stop(self, seconds: f64) -> f64 {
        match self {
            Flood::Http(load) => {
                let served = load.counter();
                load.stop();
                served as f64 / seconds
            }
            Flood::Tls(children) => children.into_iter().map(handshake_rate).sum(),
        }
    }
}

/// Handshakes a second of one `openssl s_time -new`, from its line
/// "N connections in T real seconds".
fn handshake_rate(child: Child) -> f64 {
    let out = child.wait_with_output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let rate = |line: &str| {
        let (n, rest) = line.split_once(" connections in ")?;
        let seconds: f64 = rest.split_once(" real seconds")?.0.parse().ok()?;
        Some(n.trim().parse::<f64>().ok()? / seconds.max(1.0))
    };
    out.unwrap_or_default().lines().find_map(rate).unwrap_or(0.0)
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
    /// `tls`: with an RSA 2048 certificate made by `openssl req`.
    fn start(rate: u32, tls: bool) -> Service {
        let dir = std::env::temp_dir().join(format!("http-load-{}-{rate}-{tls}", std::process::id()));
        let exe = std::env::current_exe().expect("own path");
        let mut command = Command::new(exe.with_file_name("web-service"));
        command
            .env("HOTPROF_DIR", &dir)
            .env("HOTPROF_AUTH", "ops:s3cret")
            .env("HOTPROF_HTTP_RATE", rate.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if tls {
            let (cert, key) = rsa_certificate(&dir);
            command.env("HOTPROF_TLS_CERT", cert).env("HOTPROF_TLS_KEY", key);
        }
        let mut child =
            command.spawn().expect("start web-service (build it first: see the header of this file)");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let (mut app, mut debug) = (None, None);
        let (app, debug) = loop {
            if let (Some(app), Some(debug)) = (app, debug) {
                break (app, debug);
            }
            let line = lines.next().expect("web-service exited early").expect("read stderr");
            app = app.or_else(|| address_after(&line, "app on http://"));
            debug = debug.or_else(|| address_after(&line, "debug HTTP server on http://"));
            debug = debug.or_else(|| address_after(&line, "debug HTTP server on https://"));
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

/// A self-signed RSA 2048 certificate for 127.0.0.1 and its key, in `dir`.
fn rsa_certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    std::fs::create_dir_all(dir).expect("service folder");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl req (the --tls rows need the openssl command)");
    assert!(made.success(), "openssl req failed");
    (cert, key)
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

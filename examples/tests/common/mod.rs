//! Spawns the demo service as a real process and talks to it the way an
//! operator would: signals with `kill`, files on disk, a TCP ping.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const END_MARKER: &str = "-- end of hotprof thread dump --";

/// A fresh, empty folder under the target dir (a real disk, unlike tmpfs).
pub fn fresh_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub struct Service {
    child: Child,
    pub pid: i32,
    pub dir: PathBuf,
    pub ping_addr: Option<String>,
    stderr: Arc<Mutex<String>>,
}

impl Service {
    /// Starts `demo-service` with `args`, `HOTPROF_DIR=dir` and `env`, and waits for it to be ready.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Service {
        Service::start_bin(env!("CARGO_BIN_EXE_demo-service"), dir, args, env)
    }

    /// Starts example binary `bin` and waits for its `ready` line on stdout.
    pub fn start_bin(bin: &str, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Service {
        let mut cmd = Command::new(bin);
        cmd.args(args).env("HOTPROF_DIR", dir).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn demo-service");
        let pid = child.id() as i32;
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).expect("read ready line");
        assert!(line.contains(": ready pid="), "no ready line from {bin}: {line:?}");
        let ping_addr = line.split_whitespace().find_map(|w| w.strip_prefix("ping=")).map(str::to_string);
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let svc = Service { child, pid, dir: dir.to_path_buf(), ping_addr, stderr };
        // hotprof's ready line comes before the service's; give the stderr reader time to catch up.
        svc.wait_stderr("hotprof: ready", Duration::from_secs(10));
        svc
    }

    /// `kill -SIG pid` with the real `kill` command.
    pub fn kill(&self, sig: &str) {
        let st = Command::new("kill").arg(format!("-{sig}")).arg(self.pid.to_string()).status().unwrap();
        assert!(st.success(), "kill -{sig} {} failed", self.pid);
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The service answers on its TCP port.
    pub fn ping(&self) -> bool {
        let addr = self.ping_addr.as_deref().expect("this service has no ping port");
        let Ok(mut s) = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(5)) else {
            return false;
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).is_ok() && answer == "pong\n"
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `needle`.
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.stderr().contains(needle))
    }

    /// Waits until `n` thread dumps exist in the folder; returns them oldest first.
    pub fn wait_dumps(&self, n: usize, timeout: Duration) -> Vec<PathBuf> {
        wait_until(timeout, || dumps(&self.dir).len() >= n);
        dumps(&self.dir)
    }

    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.sigkill();
    }
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Final-named thread dumps in `dir`, sorted by name (which sorts by time).
pub fn dumps(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, "-threads.txt")
}

/// Files in `dir` whose names end with `suffix` (`-cpu.pb.gz`), sorted by
/// name (which sorts hotprof's files by time).
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(suffix)).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Leftover temp files in `dir`.
pub fn temps(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(".hotprof-tmp-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One thread of a parsed dump.
#[derive(Debug)]
pub struct DumpThread {
    pub tid: i32,
    pub name: String,
    pub status: String,
    pub lines: Vec<String>,
}

impl DumpThread {
    pub fn has_function(&self, needle: &str) -> bool {
        self.lines.iter().any(|l| !l.starts_with('\t') && l.contains(needle))
    }
}

/// A dump's header (key: value lines) and thread sections.
pub fn parse_dump(text: &str) -> (Vec<(String, String)>, Vec<DumpThread>) {
    let mut header = Vec::new();
    let mut threads: Vec<DumpThread> = Vec::new();
    let mut in_header = true;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("thread ") {
            in_header = false;
            let (tid, rest) = rest.split_once(' ').unwrap();
            let name = rest.split('"').nth(1).unwrap().to_string();
            let status = rest.rsplit_once('[').unwrap().1.trim_end_matches("]:").to_string();
            threads.push(DumpThread { tid: tid.parse().unwrap(), name, status, lines: Vec::new() });
        } else if in_header {
            if let Some((k, v)) = line.split_once(": ") {
                header.push((k.to_string(), v.to_string()));
            }
        } else if let (Some(t), false) = (threads.last_mut(), line.is_empty() || line == END_MARKER) {
            t.lines.push(line.to_string());
        }
    }
    (header, threads)
}

pub fn header_value<'a>(header: &'a [(String, String)], key: &str) -> &'a str {
    header
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in header"))
}

/// The `host:port` that `svc` printed after `needle` on stderr (e.g.
/// `"debug HTTP server on http://"`), once the whole line is in.
pub fn announced_addr(svc: &Service, needle: &str) -> std::net::SocketAddr {
    let addr = |stderr: &str| {
        let rest = &stderr[stderr.find(needle)? + needle.len()..];
        rest[..rest.find('/')?].parse().ok()
    };
    assert!(wait_until(Duration::from_secs(10), || addr(&svc.stderr()).is_some()), "{}", svc.stderr());
    addr(&svc.stderr()).unwrap()
}

/// A parsed HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `raw` on `stream` and reads the answer until the server closes.
pub fn exchange(mut stream: TcpStream, raw: &[u8]) -> Answer {
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = stream.write_all(raw);
    let mut buf = Vec::new();
    let read = stream.read_to_end(&mut buf);
    assert!(read.is_ok() || !buf.is_empty(), "no answer to {:?}: {read:?}", String::from_utf8_lossy(raw));
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = buf.get(split + 4..).unwrap_or_default().to_vec();
    Answer { status, head, body }
}

/// `raw` on a fresh connection to `addr`.
pub fn send(addr: SocketAddr, raw: &[u8]) -> Answer {
    exchange(TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap(), raw)
}

pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &str) -> Answer {
    let raw = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n");
    send(addr, raw.as_bytes())
}

pub fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, "")
}

/// `go tool pprof ARGS SOURCE` (a file or a URL): its output; a failure fails the test.
pub fn go_pprof(args: &[&str], source: impl AsRef<std::ffi::OsStr>) -> String {
    let out =
        Command::new("go").args(["tool", "pprof"]).args(args).arg(source).output().expect("go tool pprof");
    assert!(out.status.success(), "go tool pprof {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

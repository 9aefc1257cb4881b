//! Finding a service's socket, asking it one request, and what can go wrong,
//! each failure with its own message and exit code.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use hotprof::__attach::{self as protocol, ErrorCode, Request, Status};

/// Why a command did not do its work.
#[derive(Debug)]
pub enum Failure {
    NoSuchProcess(u32),
    NotHotprof(u32),
    PermissionDenied(String),
    CaptureOff(String),
    Refused(String),
    Busy(String),
    Other(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Other(_) => 1,
            Failure::NoSuchProcess(_) => 3,
            Failure::NotHotprof(_) => 4,
            Failure::PermissionDenied(_) => 5,
            Failure::CaptureOff(_) => 6,
            Failure::Refused(_) => 7,
            Failure::Busy(_) => 8,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Failure::NoSuchProcess(pid) => format!("no such process: {pid}"),
            Failure::NotHotprof(pid) => {
                format!(
                    "process {pid} is not a hotprof process (no attach socket; it needs #[hotprof::main])"
                )
            }
            Failure::PermissionDenied(why) => format!("permission denied: {why}"),
            Failure::CaptureOff(why) => why.clone(),
            Failure::Refused(why) => why.clone(),
            Failure::Busy(why) => format!("busy: {why}"),
            Failure::Other(why) => why.clone(),
        }
    }
}

/// A hotprof process and its socket.
#[derive(Debug)]
pub struct Target {
    pub pid: u32,
    socket: PathBuf,
}

impl Target {
    /// The socket of `pid`: in the folder of the user the process runs as.
    pub fn find(pid: u32) -> Result<Target, Failure> {
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let owner = std::fs::metadata(&proc).map_err(|_| Failure::NoSuchProcess(pid))?.uid();
        let socket = protocol::socket_path(&protocol::socket_dir(owner), pid);
        match std::fs::symlink_metadata(&socket) {
            Ok(_) => Ok(Target { pid, socket }),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(Failure::PermissionDenied(format!(
                "process {pid} runs as uid {owner}; only that user or root may attach"
            ))),
            Err(_) => Err(Failure::NotHotprof(pid)),
        }
    }

    /// Sends `request` and returns the answer's body.
    pub fn ask(&self, request: Request) -> Result<Vec<u8>, Failure> {
        let mut stream = UnixStream::connect(&self.socket).map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => {
                Failure::PermissionDenied(format!("{}: {e}", self.socket.display()))
            }
            io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => Failure::NotHotprof(self.pid),
            _ => Failure::Other(format!("cannot connect to {}: {e}", self.socket.display())),
        })?;
        stream.set_read_timeout(Some(request.patience())).map_err(|e| Failure::Other(e.to_string()))?;
        stream
            .write_all(request.line().as_bytes())
            .map_err(|e| Failure::Other(format!("cannot send: {e}")))?;
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        (&mut reader)
            .take(protocol::MAX_STATUS as u64)
            .read_until(b'\n', &mut line)
            .map_err(|e| Failure::Other(format!("no answer from process {}: {e}", self.pid)))?;
        let line = String::from_utf8_lossy(&line);
        let status = protocol::parse_status(line.trim_end())
            .map_err(|e| Failure::Other(format!("process {}: {e}: {:?}", self.pid, line.trim_end())))?;
        match status {
            Status::Ok(length) => {
                let mut body = vec![0u8; length];
                reader
                    .read_exact(&mut body)
                    .map_err(|e| Failure::Other(format!("the answer was cut short: {e}")))?;
                Ok(body)
            }
            Status::Error(code, message) => Err(refusal(code, message)),
        }
    }
}

fn refusal(code: ErrorCode, message: String) -> Failure {
    match code {
        ErrorCode::Denied => Failure::PermissionDenied(message),
        ErrorCode::Off => Failure::CaptureOff(message),
        ErrorCode::Busy => Failure::Busy(message),
        ErrorCode::Refused => {
            // `<milliseconds> <reason>`
            let (ms, why) = message.split_once(' ').unwrap_or(("", &message));
            // The service's reason already says when to try again; older
            // ones may not, so the hint is added only where it is missing.
            let retry = ms
                .parse::<u64>()
                .ok()
                .filter(|_| !why.contains("try again"))
                .map(|ms| format!("; retry in {:.1} s", ms as f64 / 1000.0))
                .unwrap_or_default();
            Failure::Refused(format!("{why}{retry}"))
        }
        ErrorCode::BadRequest | ErrorCode::Failed => Failure::Other(message),
    }
}

/// Every live hotprof process whose socket this user can open: its own
/// folder, and every user's as root. Sockets of dead processes in our own
/// folder are removed.
pub fn reachable() -> Vec<Target> {
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    let dirs: Vec<PathBuf> = if me == 0 {
        std::fs::read_dir("/tmp")
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("hotprof-"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        vec![protocol::socket_dir(me)]
    };
    let mut targets = Vec::new();
    for dir in dirs {
        targets.extend(sockets_in(&dir, me));
    }
    targets.sort_by_key(|t| t.pid);
    targets
}

fn sockets_in(dir: &Path, me: u32) -> Vec<Target> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(pid) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".sock"))
            .and_then(|p| p.parse().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            out.push(Target { pid, socket: path });
        } else if dir == protocol::socket_dir(me) {
            let _ = std::fs::remove_file(&path); // a dead process's
        }
    }
    out
}

/// `key: value` lines.
pub fn fields(text: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(text)
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

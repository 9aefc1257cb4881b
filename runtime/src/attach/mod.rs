//! The attach channel, for the `hotprof` command: a Unix socket at
//! `/tmp/hotprof-<uid>/<pid>.sock` (folder 0700, socket 0600) served by the
//! `hotprof-attach` thread, with no TCP port. Every connection's peer is
//! checked with `SO_PEERCRED`: this user or root only. Requests go through
//! the same switch, guard and capture paths as signals and HTTP
//! (`protocol.rs` has the wire format, docs/cli.md the story).

pub mod protocol;

use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use protocol::{ErrorCode, Request};

use crate::capture::{Capture, DumpError, Trigger};
use crate::cpu_session::CpuError;
use crate::heap::HeapError;
use crate::notices::{error, notice};
use crate::sampler::Mode;
use crate::{meta, switch, sys};

/// Connections served at once; more are told `busy`.
const MAX_CONNECTIONS: usize = 4;
/// A client must send its request line within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The running attach thread; `stop` ends it and removes the socket.
#[derive(Debug)]
pub(crate) struct AttachThread {
    path: PathBuf,
    stopping: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl AttachThread {
    /// Makes the folder and the socket and starts serving. `Err` says why
    /// the channel is off (the rest of hotprof works without it).
    pub(crate) fn start(capture: &'static Capture) -> io::Result<AttachThread> {
        let dir = protocol::socket_dir(sys::uid());
        private_folder(&dir)?;
        remove_stale_sockets(&dir);
        let path = protocol::socket_path(&dir, capture.app.pid);
        let _ = std::fs::remove_file(&path); // ours from an earlier exec, if any
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let thread = std::thread::Builder::new()
            .name("hotprof-attach".into())
            .spawn(move || serve(listener, capture, &stop))?;
        Ok(AttachThread { path, stopping, thread })
    }

    /// Where clients connect.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting (a connection to itself wakes the accept), waits for
    /// the thread, removes the socket.
    pub(crate) fn stop(self) {
        self.stopping.store(true, Ordering::Release);
        let _ = UnixStream::connect(&self.path);
        let _ = self.thread.join();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Creates `dir` (0700) or checks it: ours, a folder, nobody else's way in.
fn private_folder(dir: &Path) -> io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() || meta.uid() != sys::uid() || meta.mode() & 0o077 != 0 {
        return Err(io::Error::other(format!(
            "{} is not a private folder of uid {} (owner {}, mode {:o})",
            dir.display(),
            sys::uid(),
            meta.uid(),
            meta.mode() & 0o777
        )));
    }
    Ok(())
}

/// Removes the sockets of processes that are gone.
fn remove_stale_sockets(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) =
            name.to_str().and_then(|n| n.strip_suffix(".sock")).and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn serve(listener: UnixListener, capture: &'static Capture, stopping: &AtomicBool) {
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stopping.load(Ordering::Acquire) {
            return;
        }
        let Ok(mut stream) = stream else { continue };
        if open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::AcqRel);
            let _ = stream
                .write_all(protocol::error_line(ErrorCode::Busy, "too many attached clients").as_bytes());
            continue;
        }
        let mine = open.clone();
        let spawned = std::thread::Builder::new().name("hotprof-attach".into()).spawn(move || {
            answer(&mut stream, capture);
            mine.fetch_sub(1, Ordering::AcqRel);
        });
        if spawned.is_err() {
            // The closure and its stream were dropped: the client sees EOF.
            open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Checks the peer, reads one request, writes one answer.
fn answer(stream: &mut UnixStream, capture: &'static Capture) {
    let me = sys::uid();
    match sys::peer_uid(stream) {
        Ok(uid) if uid == me || uid == 0 => {}
        Ok(uid) => {
            error(&format!("refused an attach from uid {uid}: only uid {me} or root may attach"));
            let why = format!("only uid {me} or root may attach to this process");
            let _ = stream.write_all(protocol::error_line(ErrorCode::Denied, &why).as_bytes());
            return;
        }
        Err(e) => {
            let _ = stream.write_all(protocol::error_line(ErrorCode::Denied, &e.to_string()).as_bytes());
            return;
        }
    }
    let request = match read_request(stream) {
        Ok(r) => r,
        Err(why) => {
            let _ = stream.write_all(protocol::error_line(ErrorCode::BadRequest, &why).as_bytes());
            return;
        }
    };
    let reply = match execute(request, stream, capture) {
        Ok(body) => {
            let mut reply = protocol::ok_line(body.len()).into_bytes();
            reply.extend_from_slice(&body);
            reply
        }
        Err((code, why)) => protocol::error_line(code, &why).into_bytes(),
    };
    let _ = stream.write_all(&reply);
}

/// One request line, within [`REQUEST_TIMEOUT`] and [`protocol::MAX_REQUEST`] bytes.
fn read_request(stream: &mut UnixStream) -> Result<Request, String> {
    stream.set_read_timeout(Some(REQUEST_TIMEOUT)).map_err(|e| e.to_string())?;
    let mut line = Vec::with_capacity(64);
    let mut byte = [0u8; 1];
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    loop {
        match stream.read(&mut byte) {
            // A dump or a wall-clock window signalled this thread: read on
            // for the time left, as the next read's timeout starts afresh.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(format!("no request line within {REQUEST_TIMEOUT:?}"));
                }
                stream.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
            }
            Ok(0) => return Err("the request ended before its newline".into()),
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if line.len() + 1 >= protocol::MAX_REQUEST => {
                return Err(format!("request line longer than {} bytes", protocol::MAX_REQUEST));
            }
            Ok(_) => line.push(byte[0]),
            Err(e) => return Err(format!("no request line within {REQUEST_TIMEOUT:?}: {e}")),
        }
    }
    let line = String::from_utf8(line).map_err(|_| "the request line is not UTF-8".to_string())?;
    Request::parse(line.trim_end_matches('\r'))
}

type Outcome = Result<Vec<u8>, (ErrorCode, String)>;

fn execute(request: Request, stream: &mut UnixStream, capture: &'static Capture) -> Outcome {
    match request {
        Request::Info => Ok(info(capture).into_bytes()),
        Request::Stats => Ok(stats(capture).into_bytes()),
        Request::Enable => {
            switch::enable();
            notice("capture enabled through the attach socket");
            Ok(b"capture: on\n".to_vec())
        }
        Request::Disable => {
            switch::disable();
            notice("capture disabled through the attach socket");
            Ok(b"capture: off\n".to_vec())
        }
        Request::Scopes(which) => {
            switch::set_scope_capture(which);
            notice(&format!("scopes recorded for {} traffic, through the attach socket", which.word()));
            Ok(format!("scopes: {}\n", which.word()).into_bytes())
        }
        Request::Dump => {
            capture.dump(Trigger::Attach).map(|d| d.to_string().into_bytes()).map_err(dump_error)
        }
        Request::Cpu { seconds, hz } => profile(Mode::Cpu, seconds, hz, stream, capture),
        Request::Wall { seconds, hz } => profile(Mode::Wall, seconds, hz, stream, capture),
        Request::Heap => capture.heap_profile(Trigger::Attach).map(|p| p.pprof_gz).map_err(heap_error),
    }
}

/// Runs the window on its own thread while watching the client: a client
/// that closes its end (Ctrl-C) cancels the window.
fn profile(mode: Mode, seconds: u64, hz: u32, stream: &mut UnixStream, capture: &'static Capture) -> Outcome {
    let cancel = Arc::new(AtomicBool::new(false));
    let run = {
        let cancel = cancel.clone();
        std::thread::Builder::new()
            .name("hotprof-attach".into())
            .spawn(move || {
                capture.profile(mode, Trigger::Attach, Duration::from_secs(seconds), Some(hz), Some(&cancel))
            })
            .map_err(|e| (ErrorCode::Failed, format!("cannot start a thread: {e}")))?
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut byte = [0u8; 1];
    while !run.is_finished() {
        match stream.read(&mut byte) {
            Ok(0) => {
                cancel.store(true, Ordering::Release);
                notice(&format!("{} profile cancelled: the attached client left", mode.title()));
                break;
            }
            Ok(_) => {} // nothing more is expected; ignore it
            // Wall-clock windows and thread dumps signal this thread too, and a
            // read with a timeout returns EINTR even under SA_RESTART (signal(7)).
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                cancel.store(true, Ordering::Release);
                notice(&format!("{} profile cancelled: the attach socket failed: {e}", mode.title()));
                break;
            }
        }
    }
    let profile = run.join().map_err(|_| (ErrorCode::Failed, "the profile thread panicked".to_string()))?;
    profile.map(|p| p.pprof_gz).map_err(cpu_error)
}

fn dump_error(e: DumpError) -> (ErrorCode, String) {
    match e {
        DumpError::Disabled => (ErrorCode::Off, e.to_string()),
        DumpError::Refused(r) => (ErrorCode::Refused, format!("{} {r}", r.retry_after.as_millis())),
        other => (ErrorCode::Failed, other.to_string()),
    }
}

fn heap_error(e: HeapError) -> (ErrorCode, String) {
    match e {
        HeapError::Disabled => (ErrorCode::Off, e.to_string()),
        other => (ErrorCode::Failed, other.to_string()),
    }
}

fn cpu_error(e: CpuError) -> (ErrorCode, String) {
    match e {
        CpuError::Disabled => (ErrorCode::Off, e.to_string()),
        CpuError::Busy => (ErrorCode::Busy, e.to_string()),
        CpuError::Refused(r) => (ErrorCode::Refused, format!("{} {r}", r.retry_after.as_millis())),
        other => (ErrorCode::Failed, other.to_string()),
    }
}

/// `key: value` lines: who the service is, for `hotprof list`.
fn info(capture: &Capture) -> String {
    let app = &capture.app;
    let uptime = SystemTime::now().duration_since(app.started).unwrap_or_default().as_secs();
    let last = capture.last_dump().map_or_else(|| "never".to_string(), meta::rfc3339);
    format!(
        "app: {}\nversion: {}\npid: {}\nstarted: {}\nuptime: {uptime}\ncapture: {}\nscopes: {}\nlast dump: {last}\nfolder: {}\n",
        app.name,
        app.version,
        app.pid,
        meta::rfc3339(app.started),
        if switch::is_enabled() { "on" } else { "off" },
        switch::scope_capture().word(),
        capture.output.dir.display()
    )
}

fn stats(capture: &Capture) -> String {
    let s = capture.stats();
    let mut out = format!(
        "capture: {}\nbreaker open: {}\nbreaker trips: {}\nmerged signals: {}\ndye values ignored: {}\n",
        if switch::is_enabled() { "on" } else { "off" },
        s.breaker_open,
        s.breaker_trips,
        s.merged_signals,
        s.dye_values_ignored
    );
    for (kind, k) in &s.kinds {
        out.push_str(&format!(
            "{kind}: {} admitted, {} rate limited, {} locked, {} breaker, {} locks\n",
            k.admitted, k.rate_limited, k.locked, k.breaker, k.locks
        ));
    }
    out
}

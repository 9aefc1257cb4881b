//! The attach protocol, version 1, shared by the runtime and the `hotprof`
//! command (docs/cli.md):
//!
//! - the client sends one request line, at most [`MAX_REQUEST`] bytes:
//!   `HOTPROF/1 <command> [<argument> ...]\n`;
//! - the service answers one status line, at most [`MAX_STATUS`] bytes:
//!   `HOTPROF/1 ok <length>\n` followed by exactly `<length>` bytes (at
//!   most [`MAX_BODY`]), or `HOTPROF/1 error <code> <message>\n`, and closes.
//!
//! Commands: `info`, `dump`, `stats`, `enable`, `disable`, and
//! `cpu <seconds> <hz>` / `wall <seconds> <hz>` (a gzipped pprof body).
//! A client that closes its end during a `cpu` or `wall` window cancels it.

use std::path::PathBuf;
use std::time::Duration;

/// The first word of every line.
pub const VERSION: &str = "HOTPROF/1";
/// Longest request line, newline included.
pub const MAX_REQUEST: usize = 1024;
/// Longest status line, newline included.
pub const MAX_STATUS: usize = 1024;
/// Largest answer body.
pub const MAX_BODY: usize = 256 << 20;
/// Longest profile window a request may ask for.
pub const MAX_SECONDS: u64 = 3600;

/// A parsed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `info`: who the service is (key: value lines).
    Info,
    /// `dump`: a thread dump's text.
    Dump,
    /// `stats`: the guard's counters (key: value lines).
    Stats,
    /// `enable`: capture on.
    Enable,
    /// `disable`: capture off.
    Disable,
    /// `scopes all|dyed`: which traffic scopes are recorded for.
    Scopes(crate::ScopeCapture),
    /// `cpu <seconds> <hz>`: a CPU profile.
    Cpu {
        /// The window.
        seconds: u64,
        /// Samples a second per thread.
        hz: u32,
    },
    /// `wall <seconds> <hz>`: a wall-clock profile.
    Wall {
        /// The window.
        seconds: u64,
        /// Samples a second per thread.
        hz: u32,
    },
    /// `heap`: the heap profile now (gzipped pprof).
    Heap,
}

/// Why a request was refused; its word on the status line and the
/// command's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request line is malformed.
    BadRequest,
    /// The client's user may not attach.
    Denied,
    /// Capture is off.
    Off,
    /// The guard refused; the message starts with the milliseconds to wait.
    Refused,
    /// A profile is already running.
    Busy,
    /// The capture itself failed.
    Failed,
}

impl ErrorCode {
    /// The word on the status line.
    pub fn word(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad-request",
            ErrorCode::Denied => "denied",
            ErrorCode::Off => "off",
            ErrorCode::Refused => "refused",
            ErrorCode::Busy => "busy",
            ErrorCode::Failed => "failed",
        }
    }

    /// The code a status word names.
    pub fn from_word(word: &str) -> Option<ErrorCode> {
        [
            ErrorCode::BadRequest,
            ErrorCode::Denied,
            ErrorCode::Off,
            ErrorCode::Refused,
            ErrorCode::Busy,
            ErrorCode::Failed,
        ]
        .into_iter()
        .find(|c| c.word() == word)
    }
}

impl Request {
    /// The request line, newline included.
    pub fn line(self) -> String {
        match self {
            Request::Info => format!("{VERSION} info\n"),
            Request::Dump => format!("{VERSION} dump\n"),
            Request::Stats => format!("{VERSION} stats\n"),
            Request::Enable => format!("{VERSION} enable\n"),
            Request::Disable => format!("{VERSION} disable\n"),
            Request::Scopes(which) => format!("{VERSION} scopes {}\n", which.word()),
            Request::Cpu { seconds, hz } => format!("{VERSION} cpu {seconds} {hz}\n"),
            Request::Wall { seconds, hz } => format!("{VERSION} wall {seconds} {hz}\n"),
            Request::Heap => format!("{VERSION} heap\n"),
        }
    }

    /// Parses a request line (without its newline); `Err` says what is wrong.
    pub fn parse(line: &str) -> Result<Request, String> {
        let mut words = line.split_ascii_whitespace();
        match words.next() {
            Some(VERSION) => {}
            Some(other) => return Err(format!("this service speaks {VERSION}, not {other:?}")),
            None => return Err("empty request".into()),
        }
        let command = words.next().ok_or("no command")?;
        let args: Vec<&str> = words.collect();
        let none =
            |r: Request| if args.is_empty() { Ok(r) } else { Err(format!("{command} takes no argument")) };
        match command {
            "info" => none(Request::Info),
            "dump" => none(Request::Dump),
            "stats" => none(Request::Stats),
            "enable" => none(Request::Enable),
            "disable" => none(Request::Disable),
            "heap" => none(Request::Heap),
            "scopes" => match args[..] {
                ["all"] => Ok(Request::Scopes(crate::ScopeCapture::All)),
                ["dyed"] => Ok(Request::Scopes(crate::ScopeCapture::Dyed)),
                _ => Err("scopes takes all or dyed".into()),
            },
            "cpu" | "wall" => {
                let [seconds, hz] = args[..] else { return Err(format!("{command} takes <seconds> <hz>")) };
                let seconds = seconds
                    .parse::<u64>()
                    .ok()
                    .filter(|s| (1..=MAX_SECONDS).contains(s))
                    .ok_or(format!("seconds must be a whole number from 1 to {MAX_SECONDS}"))?;
                let hz = hz
                    .parse::<u32>()
                    .ok()
                    .filter(|h| (1..=1000).contains(h))
                    .ok_or("hz must be a whole number from 1 to 1000")?;
                Ok(if command == "cpu" {
                    Request::Cpu { seconds, hz }
                } else {
                    Request::Wall { seconds, hz }
                })
            }
            other => Err(format!("unknown command {other:?}")),
        }
    }

    /// How long a client should wait for the answer.
    pub fn patience(self) -> Duration {
        match self {
            Request::Cpu { seconds, .. } | Request::Wall { seconds, .. } => {
                Duration::from_secs(seconds) + Duration::from_secs(60)
            }
            _ => Duration::from_secs(60),
        }
    }
}

/// The status line of a successful answer with `length` body bytes.
pub fn ok_line(length: usize) -> String {
    format!("{VERSION} ok {length}\n")
}

/// The status line of a refusal; newlines in `message` become spaces.
pub fn error_line(code: ErrorCode, message: &str) -> String {
    let message: String = message.chars().map(|c| if c.is_control() { ' ' } else { c }).take(900).collect();
    format!("{VERSION} error {} {message}\n", code.word())
}

/// A parsed status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// A body of this many bytes follows.
    Ok(usize),
    /// Refused, with the code and the message.
    Error(ErrorCode, String),
}

/// Parses a status line (without its newline).
pub fn parse_status(line: &str) -> Result<Status, String> {
    let rest = line.strip_prefix(VERSION).and_then(|r| r.strip_prefix(' ')).ok_or("not a hotprof answer")?;
    let (word, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    match word {
        "ok" => rest
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= MAX_BODY)
            .map(Status::Ok)
            .ok_or_else(|| "bad length".to_string()),
        "error" => {
            let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
            let code = ErrorCode::from_word(code).ok_or("unknown error code")?;
            Ok(Status::Error(code, message.to_string()))
        }
        _ => Err("not a hotprof answer".into()),
    }
}

/// The folder of this user's sockets: `/tmp/hotprof-<uid>`, mode 0700.
pub fn socket_dir(uid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/hotprof-{uid}"))
}

/// Process `pid`'s socket in `dir`.
pub fn socket_path(dir: &std::path::Path, pid: u32) -> PathBuf {
    dir.join(format!("{pid}.sock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_bad_ones_say_why() {
        for r in [
            Request::Info,
            Request::Dump,
            Request::Stats,
            Request::Enable,
            Request::Disable,
            Request::Cpu { seconds: 30, hz: 199 },
            Request::Wall { seconds: 1, hz: 99 },
            Request::Heap,
            Request::Scopes(crate::ScopeCapture::All),
            Request::Scopes(crate::ScopeCapture::Dyed),
        ] {
            assert_eq!(Request::parse(r.line().trim_end()), Ok(r));
        }
        for bad in
            ["", "HOTPROF/2 dump", "HOTPROF/1", "HOTPROF/1 fly", "HOTPROF/1 dump now", "HOTPROF/1 cpu 0 99"]
        {
            assert!(Request::parse(bad).is_err(), "{bad}");
        }
        assert!(Request::parse("HOTPROF/1 cpu 10 5000").unwrap_err().contains("hz"));
        assert_eq!(Request::parse("HOTPROF/1 scopes some").unwrap_err(), "scopes takes all or dyed");
        assert!(Request::parse("HOTPROF/1 scopes").is_err());
    }

    #[test]
    fn status_lines_round_trip() {
        assert_eq!(parse_status(ok_line(42).trim_end()), Ok(Status::Ok(42)));
        let line = error_line(ErrorCode::Refused, "1500 refused by the rate limit\nx");
        assert_eq!(
            parse_status(line.trim_end()),
            Ok(Status::Error(ErrorCode::Refused, "1500 refused by the rate limit x".into()))
        );
        assert!(parse_status("HTTP/1.1 200 OK").is_err());
    }
}

//! The value parsers of the variable declarations: each takes a trimmed,
//! non-empty value and says `None` when it is not valid.
// Without feature `http`, the debug server's parsers have no reader.
#![cfg_attr(not(feature = "http"), allow(dead_code))]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

/// How thread dumps unwind stacks inside the capture handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum UnwinderChoice {
    /// DWARF call frame information, read from a copy of each stack.
    #[default]
    Auto,
    Dwarf,
    FramePointers,
}

/// Where the debug HTTP server listens, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Listen {
    #[default]
    Off,
    At(SocketAddr),
}

/// The units every duration takes, as `#[hotprof::profile(threshold)]` does.
#[cfg(test)]
pub(crate) const DURATION_UNITS: [&str; 6] = ["ns", "us", "µs", "ms", "s", "m"];

pub(crate) fn on_off(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Some(true),
        "off" | "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// `HOTPROF_SCOPES`: `all` or `dyed`.
pub(crate) fn scopes(v: &str) -> Option<crate::switch::ScopeCapture> {
    use crate::switch::ScopeCapture;
    [ScopeCapture::All, ScopeCapture::Dyed].into_iter().find(|s| s.word().eq_ignore_ascii_case(v))
}

/// What `SIGUSR2` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sigusr2 {
    /// A CPU or wall-clock window of `HOTPROF_CPU_SECONDS`.
    Window(crate::sampler::Mode),
    /// A heap profile, at once.
    Heap,
}

impl Default for Sigusr2 {
    fn default() -> Self {
        Sigusr2::Window(crate::sampler::Mode::Cpu)
    }
}

impl Sigusr2 {
    /// How the ready line names it: `CPU`, `wall-clock`, `heap`.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Sigusr2::Window(mode) => mode.title(),
            Sigusr2::Heap => "heap",
        }
    }
}

pub(crate) fn profile_kind(v: &str) -> Option<Sigusr2> {
    match v.to_ascii_lowercase().as_str() {
        "cpu" => Some(Sigusr2::Window(crate::sampler::Mode::Cpu)),
        "wall" => Some(Sigusr2::Window(crate::sampler::Mode::Wall)),
        "heap" => Some(Sigusr2::Heap),
        _ => None,
    }
}

/// A heap sampling rate: a size (mean bytes between samples), or 0 for off.
pub(crate) fn heap_rate(v: &str) -> Option<u64> {
    if v.trim() == "0" { Some(0) } else { bytes(v) }
}

pub(crate) fn unwinder(v: &str) -> Option<UnwinderChoice> {
    match v.to_ascii_lowercase().as_str() {
        "auto" => Some(UnwinderChoice::Auto),
        "dwarf" => Some(UnwinderChoice::Dwarf),
        "frame-pointers" | "fp" => Some(UnwinderChoice::FramePointers),
        _ => None,
    }
}

/// A human duration: a whole number of seconds, or a whole number followed
/// by one of [`DURATION_UNITS`].
pub(crate) fn duration(v: &str) -> Option<Duration> {
    let Some(split) = v.find(|c: char| !c.is_ascii_digit()) else {
        return v.parse().ok().map(Duration::from_secs); // `HOTPROF_CPU_SECONDS=3`
    };
    let (digits, unit) = v.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let d = match unit.trim() {
        "ns" => Duration::from_nanos(n),
        "us" | "µs" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        _ => return None,
    };
    Some(d)
}

/// A duration above 0.
pub(crate) fn positive_duration(v: &str) -> Option<Duration> {
    duration(v).filter(|d| !d.is_zero())
}

/// A size: bytes, or a whole number with `KiB`, `MiB`, `GiB`, `KB`, `MB`, `GB`; above 0.
pub(crate) fn bytes(v: &str) -> Option<u64> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult).filter(|b| *b > 0)
}

/// A whole number above 0.
pub(crate) fn count(v: &str) -> Option<u32> {
    v.parse().ok().filter(|n| *n > 0)
}

/// A whole number of samples a second, 1 to 1000.
pub(crate) fn hz(v: &str) -> Option<u32> {
    v.parse().ok().filter(|n| (1..=1000).contains(n))
}

/// A whole number of requests a second, 1 to 100000.
pub(crate) fn rate(v: &str) -> Option<u32> {
    v.parse().ok().filter(|n| (1..=100_000).contains(n))
}

/// A whole number of seconds, 1 to 86400.
pub(crate) fn seconds(v: &str) -> Option<u64> {
    v.parse().ok().filter(|n| (1..=86_400).contains(n))
}

pub(crate) fn path(v: &str) -> Option<PathBuf> {
    Some(PathBuf::from(v))
}

pub(crate) fn text(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// `off`, `addr:port`, `[v6]:port`, `localhost:port`, or `:port` (loopback).
pub(crate) fn listen(v: &str) -> Option<Listen> {
    if v.eq_ignore_ascii_case("off") {
        return Some(Listen::Off);
    }
    if let Ok(addr) = v.parse::<SocketAddr>() {
        return Some(Listen::At(addr));
    }
    let (host, port) = v.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let ip = match host {
        "" | "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => return None,
    };
    Some(Listen::At(SocketAddr::new(ip, port)))
}

/// Comma-separated CIDRs or plain addresses, at least one.
pub(crate) fn allow(v: &str) -> Option<Vec<IpNet>> {
    let nets = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<IpNet>().map(|n| n.trunc()).or_else(|_| s.parse::<IpAddr>().map(IpNet::from)))
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    (!nets.is_empty()).then_some(nets)
}

/// `user:password` with a non-empty user (no `:`) and a non-empty password.
pub(crate) fn credentials(v: &str) -> Option<Vec<u8>> {
    let (user, password) = v.split_once(':')?;
    (!user.is_empty() && !password.is_empty()).then(|| v.as_bytes().to_vec())
}

/// A bearer token: printable ASCII without spaces, not empty.
pub(crate) fn token(v: &str) -> Option<Vec<u8>> {
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic())).then(|| v.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(duration("200ms"), Some(Duration::from_millis(200)));
        assert_eq!(duration("15us"), Some(Duration::from_micros(15)));
        assert_eq!(duration("15µs"), Some(Duration::from_micros(15)));
        assert_eq!(duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(duration("3 s"), Some(Duration::from_secs(3)));
        assert_eq!(duration("10"), Some(Duration::from_secs(10)), "a bare number is seconds");
        for bad in ["", "ms", "1.5s", "-1s", "10h", "1.5", " 3"] {
            assert_eq!(duration(bad), None, "{bad}");
        }
        assert_eq!(bytes("1048576"), Some(1 << 20));
        assert_eq!(bytes("256MiB"), Some(256 << 20));
        assert_eq!(bytes("2GB"), Some(2_000_000_000));
        for bad in ["", "0", "MiB", "1.5GiB", "12 parsecs"] {
            assert_eq!(bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_unit_is_a_duration() {
        for unit in DURATION_UNITS {
            assert!(duration(&format!("7{unit}")).is_some(), "{unit}");
        }
    }

    #[test]
    fn bind_addresses() {
        let at = |s: &str| Some(Listen::At(s.parse().unwrap()));
        assert_eq!(listen("127.0.0.1:6060"), at("127.0.0.1:6060"));
        assert_eq!(listen(":6060"), at("127.0.0.1:6060"));
        assert_eq!(listen("localhost:0"), at("127.0.0.1:0"));
        assert_eq!(listen("[::1]:6060"), at("[::1]:6060"));
        assert_eq!(listen("OFF"), Some(Listen::Off));
        for bad in ["6060", "127.0.0.1", "127.0.0.1:70000", "example.com:80", "::1:6060", ":", "1.2.3.4:x"] {
            assert_eq!(listen(bad), None, "{bad}");
        }
    }
}

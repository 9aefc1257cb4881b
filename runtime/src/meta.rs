//! Who and where we are: the facts every file hotprof writes carries.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{Env, vars};

/// Build facts captured in the user's crate by `#[hotprof::main]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildInfo {
    /// Git commit, from `HOTPROF_GIT_COMMIT` or `GIT_COMMIT` at build time.
    pub commit: Option<&'static str>,
    /// `cfg!(debug_assertions)` of the user's crate; `None` without the macro.
    pub debug: Option<bool>,
}

/// Identity of the watched service and its process.
#[derive(Debug, Clone)]
pub(crate) struct AppInfo {
    /// Short name used in file names (binary name, else package name).
    pub name: String,
    /// The service's own version, captured in its crate by `#[hotprof::main]`.
    pub version: String,
    pub binary: String,
    pub pid: u32,
    pub host: String,
    pub started: SystemTime,
    pub build: BuildInfo,
    /// (label, value) of the Kubernetes variables that are set.
    pub kubernetes: Vec<(&'static str, String)>,
}

impl AppInfo {
    pub(crate) fn new(
        pkg_name: Option<&str>,
        bin_name: Option<&str>,
        version: Option<&str>,
        build: BuildInfo,
    ) -> Self {
        let binary = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
        let exe_name = binary.rsplit('/').next().unwrap_or("app").to_string();
        let name = bin_name.or(pkg_name).map(str::to_string).unwrap_or(exe_name);
        AppInfo {
            name: sanitize(&name),
            version: version.unwrap_or("unknown").to_string(),
            binary,
            pid: std::process::id(),
            host: hostname(),
            started: process_start(),
            build,
            kubernetes: vars::KUBERNETES
                .iter()
                .filter_map(|(label, var)| Some((*label, var.read(Env::process()).ok().flatten()?)))
                .collect(),
        }
    }

    /// Header lines every file carries (text headers, pprof comments).
    pub(crate) fn header(&self) -> Vec<(&'static str, String)> {
        let profile = match self.build.debug {
            Some(true) => "debug",
            Some(false) => "release",
            None => "unknown",
        };
        let mut h = vec![
            ("app", format!("{} {}", self.name, self.version)),
            ("commit", self.build.commit.unwrap_or("unknown").to_string()),
            ("build", format!("{} {profile}", env!("HOTPROF_TARGET"))),
            ("binary", self.binary.clone()),
            ("pid", self.pid.to_string()),
            ("host", self.host.clone()),
        ];
        h.extend(self.kubernetes.iter().map(|(k, v)| (*k, v.clone())));
        h.push(("process started", rfc3339(self.started)));
        h
    }
}

/// When this process started, per the kernel (falls back to now).
pub(crate) fn process_start() -> SystemTime {
    static START: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok()));
        let ticks = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| {
            // Field 22 (starttime), counted after the ")" that ends the command name.
            s.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse::<u64>().ok()
        });
        match (boot, ticks) {
            (Some(boot), Some(ticks)) => {
                UNIX_EPOCH + std::time::Duration::from_millis(boot * 1000 + ticks * 10)
            }
            _ => SystemTime::now(),
        }
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| vars::HOSTNAME.read(Env::process()).ok().flatten())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Keeps names safe for file names: letters, digits, `_`, `.`, `-`.
pub(crate) fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with('.') { format!("app{s}") } else { s }
}

/// UTC broken-down time from a `SystemTime`: (year, month, day, hour, minute, second, millisecond).
fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = ((rem / 3600) as u32, (rem % 3600 / 60) as u32, (rem % 60) as u32);
    (year, month, day, h, m, s, d.subsec_millis())
}

/// `2026-11-27T02:45:00.123Z`
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, ms) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// `20261127T024500123Z`: sorts in time order as plain text.
pub(crate) fn compact_utc(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, ms) = civil(t);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}{ms:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_747_500_123);
        assert_eq!(rfc3339(t), "2026-11-27T02:45:00.123Z");
        assert_eq!(compact_utc(t), "20261127T024500123Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn sanitizes_names() {
        assert_eq!(sanitize("my service/v2"), "my_service_v2");
        assert_eq!(sanitize(".hidden"), "app.hidden");
        assert_eq!(sanitize(""), "app");
    }
}

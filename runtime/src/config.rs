//! Settings from the environment and from `#[hotprof::main(...)]`, validated.
//!
//! The environment beats the macro arguments, which beat the defaults. An
//! invalid value never stops the program: it yields one line naming the
//! variable and the accepted values, and the setting falls back.

use std::path::PathBuf;
use std::time::Duration;

use crate::guard::GuardConfig;

/// Every environment variable hotprof reads, with its default, for docs and errors.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    ("HOTPROF", "on", "capture on or off: on|off|true|false|1|0|yes|no"),
    ("HOTPROF_DIR", "./hotprof", "folder for dumps (created 0700)"),
    ("HOTPROF_DUMP_TIMEOUT", "1s", "how long a dump waits for each thread to answer"),
    ("HOTPROF_CPU_SECONDS", "10s", "length of a CPU profile started by SIGUSR2"),
    ("HOTPROF_CPU_HZ", "99", "CPU samples per second (1 to 1000)"),
    ("HOTPROF_SLOW_CPU", "off", "on: a call still running past its threshold starts a CPU profile"),
    ("HOTPROF_RATE_BURST", "5", "captures of one kind allowed back to back (token bucket size)"),
    ("HOTPROF_RATE_REFILL", "12s", "time to earn back one token"),
    ("HOTPROF_LOCK_AFTER", "20", "refusals of one kind within HOTPROF_LOCK_WINDOW that lock it"),
    ("HOTPROF_LOCK_WINDOW", "10s", "window for counting refusals"),
    ("HOTPROF_LOCK_COOLDOWN", "1m", "how long a locked kind stays locked"),
    ("HOTPROF_BREAKER_AFTER", "3", "locks within HOTPROF_BREAKER_WINDOW that open the breaker"),
    ("HOTPROF_BREAKER_WINDOW", "10m", "window for counting locks"),
    ("HOTPROF_BREAKER_COOLDOWN", "5m", "first breaker cooldown; doubled on each trip"),
    ("HOTPROF_BREAKER_MAX", "60m", "longest breaker cooldown"),
    ("HOTPROF_MAX_FILES", "50", "most hotprof files kept in the folder; oldest removed first"),
    ("HOTPROF_MAX_BYTES", "256MiB", "most bytes of hotprof files kept in the folder"),
    ("HOTPROF_UNWINDER", "auto", "auto|dwarf|frame-pointers"),
    ("HOTPROF_QUIET", "off", "on: no notices on stderr (errors still print)"),
    (
        "HOTPROF_HTTP",
        "off",
        "feature `http`: serve /debug/pprof on addr:port (127.0.0.1:6060, [::1]:6060, :6060 = loopback; \
         loopback is the safe choice, any other address needs HOTPROF_AUTH)",
    ),
    (
        "HOTPROF_ALLOW",
        "127.0.0.0/8,::1",
        "client addresses the debug HTTP server answers: comma-separated CIDRs or addresses (else 403)",
    ),
    ("HOTPROF_AUTH", "unset", "user:password for HTTP Basic auth on the debug server (else 401)"),
    ("HOTPROF_AUTH_FILE", "unset", "file holding user:password (instead of HOTPROF_AUTH)"),
    (
        "HOTPROF_AUTH_TOKEN",
        "unset",
        "bearer token the debug server accepts (beside or instead of Basic auth)",
    ),
    ("HOTPROF_AUTH_TOKEN_FILE", "unset", "file holding that token (instead of HOTPROF_AUTH_TOKEN)"),
    ("HOTPROF_HTTP_MAX_SECONDS", "300", "longest seconds= a profile request may ask for (else 400)"),
    (
        "HOTPROF_TLS_CERT",
        "unset",
        "feature `tls`: PEM certificate chain; with HOTPROF_TLS_KEY the server speaks HTTPS",
    ),
    ("HOTPROF_TLS_KEY", "unset", "feature `tls`: PEM private key of HOTPROF_TLS_CERT"),
    (
        "HOTPROF_HTTP_RATE",
        "100",
        "connections and requests the debug server takes a second (more wait their turn)",
    ),
];

/// How stacks are unwound inside the capture handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnwinderChoice {
    /// DWARF when the toolchain makes it signal-safe, else frame pointers.
    Auto,
    Dwarf,
    FramePointers,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub enabled: bool,
    pub dir: PathBuf,
    pub dump_timeout: Duration,
    pub cpu_window: Duration,
    pub cpu_hz: u32,
    pub slow_cpu: bool,
    pub guard: GuardConfig,
    pub max_files: usize,
    pub max_bytes: u64,
    pub unwinder: UnwinderChoice,
    pub quiet: bool,
}

/// What `#[hotprof::main(...)]` said; `None` means "not given".
#[derive(Debug, Clone, Default)]
pub(crate) struct MacroArgs {
    pub dir: Option<&'static str>,
    pub enabled: Option<bool>,
    /// Read by the debug HTTP server, which only exists with feature `http`.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub http: Option<&'static str>,
}

impl Config {
    /// Builds the config from `env` (a lookup such as `std::env::var`) over the
    /// macro arguments. Returns the config and one message per rejected value.
    pub(crate) fn load(args: &MacroArgs, env: impl Fn(&str) -> Option<String>) -> (Config, Vec<String>) {
        let mut errors = Vec::new();
        let mut get = |name: &str, default: &str, parse: &dyn Fn(&str) -> Result<(), String>| -> String {
            match env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                None => default.to_string(),
                Some(v) => match parse(&v) {
                    Ok(()) => v,
                    Err(expected) => {
                        errors.push(format!(
                            "hotprof: ignoring {name}={v:?}: expected {expected}; using {default}"
                        ));
                        default.to_string()
                    }
                },
            }
        };
        let check = |f: fn(&str) -> Option<()>, expected: &'static str| {
            move |v: &str| f(v).ok_or_else(|| expected.to_string())
        };
        let on_off = check(|v| parse_bool(v).map(drop), "one of on, off, true, false, 1, 0, yes, no");
        let duration = check(
            |v| parse_duration(v).filter(|d| !d.is_zero()).map(drop),
            "a duration above 0 such as 250ms, 2s or 1m",
        );
        let count = check(|v| v.parse::<u32>().ok().filter(|n| *n > 0).map(drop), "a whole number above 0");
        let hz = check(
            |v| v.parse::<u32>().ok().filter(|n| (1..=1000).contains(n)).map(drop),
            "a whole number from 1 to 1000",
        );
        let bytes = check(|v| parse_bytes(v).map(drop), "a size such as 256MiB, 1GiB or 1048576");
        let unwinder = check(|v| parse_unwinder(v).map(drop), "one of auto, dwarf, frame-pointers (or fp)");

        let enabled_default = if args.enabled.unwrap_or(true) { "on" } else { "off" };
        let dir_default = args.dir.unwrap_or("hotprof");
        let config = Config {
            enabled: parse_bool(&get("HOTPROF", enabled_default, &on_off)).unwrap_or(true),
            dir: PathBuf::from(get("HOTPROF_DIR", dir_default, &|_| Ok(()))),
            dump_timeout: parse_duration(&get("HOTPROF_DUMP_TIMEOUT", "1s", &duration))
                .unwrap_or(Duration::from_secs(1)),
            cpu_window: parse_duration(&get("HOTPROF_CPU_SECONDS", "10s", &duration))
                .unwrap_or(Duration::from_secs(10)),
            cpu_hz: get("HOTPROF_CPU_HZ", "99", &hz).parse().unwrap_or(99),
            slow_cpu: parse_bool(&get("HOTPROF_SLOW_CPU", "off", &on_off)).unwrap_or(false),
            guard: GuardConfig {
                burst: get("HOTPROF_RATE_BURST", "5", &count).parse().unwrap_or(5),
                refill: parse_duration(&get("HOTPROF_RATE_REFILL", "12s", &duration))
                    .unwrap_or(Duration::from_secs(12)),
                lock_after: get("HOTPROF_LOCK_AFTER", "20", &count).parse().unwrap_or(20),
                lock_window: parse_duration(&get("HOTPROF_LOCK_WINDOW", "10s", &duration))
                    .unwrap_or(Duration::from_secs(10)),
                lock_cooldown: parse_duration(&get("HOTPROF_LOCK_COOLDOWN", "1m", &duration))
                    .unwrap_or(Duration::from_secs(60)),
                breaker_after: get("HOTPROF_BREAKER_AFTER", "3", &count).parse().unwrap_or(3),
                breaker_window: parse_duration(&get("HOTPROF_BREAKER_WINDOW", "10m", &duration))
                    .unwrap_or(Duration::from_secs(600)),
                breaker_cooldown: parse_duration(&get("HOTPROF_BREAKER_COOLDOWN", "5m", &duration))
                    .unwrap_or(Duration::from_secs(300)),
                breaker_max: parse_duration(&get("HOTPROF_BREAKER_MAX", "60m", &duration))
                    .unwrap_or(Duration::from_secs(3600)),
            },
            max_files: get("HOTPROF_MAX_FILES", "50", &count).parse().unwrap_or(50),
            max_bytes: parse_bytes(&get("HOTPROF_MAX_BYTES", "256MiB", &bytes)).unwrap_or(256 << 20),
            unwinder: parse_unwinder(&get("HOTPROF_UNWINDER", "auto", &unwinder))
                .unwrap_or(UnwinderChoice::Auto),
            quiet: parse_bool(&get("HOTPROF_QUIET", "off", &on_off)).unwrap_or(false),
        };
        (config, errors)
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Some(true),
        "off" | "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

fn parse_unwinder(v: &str) -> Option<UnwinderChoice> {
    match v.to_ascii_lowercase().as_str() {
        "auto" => Some(UnwinderChoice::Auto),
        "dwarf" => Some(UnwinderChoice::Dwarf),
        "frame-pointers" | "fp" => Some(UnwinderChoice::FramePointers),
        _ => None,
    }
}

/// Parses a human duration: a whole number followed by `ns`, `us`, `ms`, `s` or `m`.
pub(crate) fn parse_duration(v: &str) -> Option<Duration> {
    let split = v.find(|c: char| !c.is_ascii_digit())?;
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

/// Parses a size: bytes, or a whole number with `KiB`, `MiB`, `GiB`, `KB`, `MB`, `GB`.
fn parse_bytes(v: &str) -> Option<u64> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)], args: MacroArgs) -> (Config, Vec<String>) {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::load(&args, |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_without_env_or_args() {
        let (c, errors) = load(&[], MacroArgs::default());
        assert!(errors.is_empty());
        assert!(c.enabled);
        assert_eq!(c.dir, PathBuf::from("hotprof"));
        assert_eq!(c.dump_timeout, Duration::from_secs(1));
        assert_eq!((c.guard.burst, c.guard.refill), (5, Duration::from_secs(12)));
        assert_eq!(
            (c.guard.lock_after, c.guard.lock_window, c.guard.lock_cooldown),
            (20, Duration::from_secs(10), Duration::from_secs(60))
        );
        assert_eq!(
            (c.guard.breaker_after, c.guard.breaker_cooldown, c.guard.breaker_max),
            (3, Duration::from_secs(300), Duration::from_secs(3600))
        );
        assert_eq!((c.max_files, c.max_bytes), (50, 256 << 20));
        assert_eq!(c.unwinder, UnwinderChoice::Auto);
        assert_eq!((c.cpu_window, c.cpu_hz), (Duration::from_secs(10), 99));
    }

    #[test]
    fn cpu_settings_are_validated() {
        let (c, errors) =
            load(&[("HOTPROF_CPU_HZ", "5000"), ("HOTPROF_CPU_SECONDS", "0s")], MacroArgs::default());
        assert_eq!((c.cpu_window, c.cpu_hz), (Duration::from_secs(10), 99));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("HOTPROF_CPU_SECONDS=\"0s\": expected a duration above 0"), "{errors:?}");
        assert!(
            errors[1].contains("HOTPROF_CPU_HZ=\"5000\": expected a whole number from 1 to 1000"),
            "{errors:?}"
        );
        let (c, _) = load(&[("HOTPROF_CPU_HZ", "250"), ("HOTPROF_CPU_SECONDS", "3s")], MacroArgs::default());
        assert_eq!((c.cpu_window, c.cpu_hz), (Duration::from_secs(3), 250));
    }

    #[test]
    fn env_beats_macro_args() {
        let args = MacroArgs { dir: Some("/var/macro"), enabled: Some(false), http: None };
        let (c, _) = load(&[("HOTPROF", "ON"), ("HOTPROF_DIR", "/var/env")], args.clone());
        assert!(c.enabled);
        assert_eq!(c.dir, PathBuf::from("/var/env"));
        let (c, _) = load(&[], args);
        assert!(!c.enabled);
        assert_eq!(c.dir, PathBuf::from("/var/macro"));
    }

    #[test]
    fn invalid_values_name_the_variable_and_fall_back() {
        let args = MacroArgs { dir: None, enabled: Some(false), http: None };
        let (c, errors) = load(
            &[("HOTPROF", "maybe"), ("HOTPROF_DUMP_TIMEOUT", "250"), ("HOTPROF_MAX_BYTES", "lots")],
            args,
        );
        assert!(!c.enabled, "falls back to the macro's value, not to a guess");
        assert_eq!(c.dump_timeout, Duration::from_secs(1));
        assert_eq!(errors.len(), 3);
        assert_eq!(
            errors[0],
            "hotprof: ignoring HOTPROF=\"maybe\": expected one of on, off, true, false, 1, 0, yes, no; using off"
        );
        assert!(errors[1].contains("HOTPROF_DUMP_TIMEOUT=\"250\": expected a duration"));
        assert!(errors[2].contains("HOTPROF_MAX_BYTES"));
    }

    #[test]
    fn empty_value_means_unset() {
        let (c, errors) = load(&[("HOTPROF", ""), ("HOTPROF_RATE_BURST", " ")], MacroArgs::default());
        assert!(errors.is_empty());
        assert!(c.enabled);
        assert_eq!(c.guard.burst, 5);
    }

    #[test]
    fn zero_counts_are_rejected() {
        let (c, errors) =
            load(&[("HOTPROF_RATE_BURST", "0"), ("HOTPROF_MAX_FILES", "-3")], MacroArgs::default());
        assert_eq!((c.guard.burst, c.max_files), (5, 50));
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("200ms"), Some(Duration::from_millis(200)));
        assert_eq!(parse_duration("15us"), Some(Duration::from_micros(15)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("3 s"), Some(Duration::from_secs(3)));
        for bad in ["", "ms", "10", "1.5s", "-1s", "10h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_bytes("1048576"), Some(1 << 20));
        assert_eq!(parse_bytes("256MiB"), Some(256 << 20));
        assert_eq!(parse_bytes("2GB"), Some(2_000_000_000));
        for bad in ["", "0", "MiB", "1.5GiB", "12 parsecs"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }
}

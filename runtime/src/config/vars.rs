//! Every environment variable hotprof reads, each declared once: name,
//! default, parser, accepted values and doc line. `hotprof::VARIABLES`, the
//! error lines and the docs tables (checked by `runtime/tests/docs.rs`) all
//! come from here.

use std::path::PathBuf;
use std::time::Duration;

use super::parse::{self, Listen, Sigusr2, UnwinderChoice};
use super::var::{UNSET, Var};
use crate::switch::ScopeCapture;

const ON_OFF: &str = "one of on, off, true, false, 1, 0, yes, no";
const DURATION: &str = "a duration above 0: seconds (3) or with a unit (250ms, 2s, 1m)";
const COUNT: &str = "a whole number above 0";
const PATH: &str = "a path";

/// Declares each variable as a `Var` constant and lists them all, in order,
/// in `VARIABLES`.
macro_rules! variables {
    ($(
        $(#[$attr:meta])*
        $id:ident: $ty:ty = $name:literal, $default:expr, $parse:expr, $expected:expr, $doc:literal $(, $secret:ident)?;
    )*) => {
        $(
            $(#[$attr])*
            // Without feature `http`, the debug server's variables are only documented.
            #[cfg_attr(not(feature = "http"), allow(dead_code))]
            pub(crate) const $id: Var<$ty> = Var {
                name: $name,
                default: $default,
                expected: $expected,
                parse: $parse,
                secret: variables!(@secret $($secret)?),
            };
        )*

        /// Every environment variable hotprof reads at run time, in the
        /// order of the docs: (name, default, meaning).
        pub const VARIABLES: &[(&str, &str, &str)] = &[$(($name, $default, $doc)),*];

        /// (name, whether its declared default is a valid value), for tests.
        #[cfg(test)]
        pub(crate) fn defaults_parse() -> Vec<(&'static str, bool)> {
            vec![$(($name, $id.default == UNSET || $id.default_value().is_some())),*]
        }
    };
    (@secret secret) => { true };
    (@secret) => { false };
}

variables! {
    ENABLED: bool = "HOTPROF", "on", parse::on_off, ON_OFF,
        "capture on or off: on|off|true|false|1|0|yes|no";
    DIR: PathBuf = "HOTPROF_DIR", "./hotprof", parse::path, PATH,
        "folder for every file hotprof writes (created 0700), resolved at start";
    DUMP_TIMEOUT: Duration = "HOTPROF_DUMP_TIMEOUT", "1s", parse::positive_duration, DURATION,
        "how long a dump waits for each thread to answer";
    CPU_SECONDS: Duration = "HOTPROF_CPU_SECONDS", "10s", parse::positive_duration, DURATION,
        "length of a CPU profile started by SIGUSR2";
    CPU_HZ: u32 = "HOTPROF_CPU_HZ", "99", parse::hz, "a whole number from 1 to 1000",
        "CPU samples per second (1 to 1000)";
    SLOW_CPU: bool = "HOTPROF_SLOW_CPU", "off", parse::on_off, ON_OFF,
        "on: a call still running past its threshold starts a CPU profile";
    SCOPES: ScopeCapture = "HOTPROF_SCOPES", "all", parse::scopes, "one of all, dyed",
        "which traffic #[hotprof::profile] scopes and tracing spans are recorded for: all, or dyed \
         (only traffic dyed with hotprof::dyed or hotprof::DyeLayer)";
    SIGUSR2: Sigusr2 = "HOTPROF_SIGUSR2", "cpu", parse::profile_kind, "one of cpu, wall, heap",
        "what SIGUSR2 profiles: cpu|wall (a window of HOTPROF_CPU_SECONDS) or heap (at once)";
    HEAP_RATE: u64 = "HOTPROF_HEAP_RATE", "512KiB", parse::heap_rate,
        "a size such as 512KiB, 1MiB or 4096, or 0 for off",
        "mean bytes allocated between heap samples (with hotprof::SampledAlloc); 0 turns heap sampling off";
    RATE_BURST: u32 = "HOTPROF_RATE_BURST", "5", parse::count, COUNT,
        "captures of one kind allowed back to back (token bucket size)";
    RATE_REFILL: Duration = "HOTPROF_RATE_REFILL", "12s", parse::positive_duration, DURATION,
        "time to earn back one token";
    LOCK_AFTER: u32 = "HOTPROF_LOCK_AFTER", "20", parse::count, COUNT,
        "refusals of one kind within HOTPROF_LOCK_WINDOW that lock it";
    LOCK_WINDOW: Duration = "HOTPROF_LOCK_WINDOW", "10s", parse::positive_duration, DURATION,
        "window for counting refusals";
    LOCK_COOLDOWN: Duration = "HOTPROF_LOCK_COOLDOWN", "1m", parse::positive_duration, DURATION,
        "how long a locked kind stays locked";
    BREAKER_AFTER: u32 = "HOTPROF_BREAKER_AFTER", "3", parse::count, COUNT,
        "locks within HOTPROF_BREAKER_WINDOW that open the breaker";
    BREAKER_WINDOW: Duration = "HOTPROF_BREAKER_WINDOW", "10m", parse::positive_duration, DURATION,
        "window for counting locks";
    BREAKER_COOLDOWN: Duration = "HOTPROF_BREAKER_COOLDOWN", "5m", parse::positive_duration, DURATION,
        "first breaker cooldown; doubled on each trip";
    BREAKER_MAX: Duration = "HOTPROF_BREAKER_MAX", "60m", parse::positive_duration, DURATION,
        "longest breaker cooldown";
    MAX_FILES: u32 = "HOTPROF_MAX_FILES", "50", parse::count, COUNT,
        "most hotprof files kept in the folder; oldest removed first";
    MAX_BYTES: u64 = "HOTPROF_MAX_BYTES", "256MiB", parse::bytes, "a size such as 256MiB, 1GiB or 1048576",
        "most bytes of hotprof files kept in the folder";
    UNWINDER: UnwinderChoice = "HOTPROF_UNWINDER", "auto", parse::unwinder,
        "one of auto, dwarf, frame-pointers (or fp)",
        "auto|dwarf|frame-pointers";
    QUIET: bool = "HOTPROF_QUIET", "off", parse::on_off, ON_OFF,
        "on: no notices on stderr (errors still print)";
    HTTP: Listen = "HOTPROF_HTTP", "off", parse::listen,
        "addr:port such as 127.0.0.1:6060, [::1]:6060, :6060 (loopback) or off",
        "feature `http`: serve /debug/pprof on addr:port (127.0.0.1:6060, [::1]:6060, :6060 = loopback; \
         loopback is the safe choice, any other address needs HOTPROF_AUTH)";
    ALLOW: Vec<ipnet::IpNet> = "HOTPROF_ALLOW", "127.0.0.0/8,::1", parse::allow,
        "a comma-separated list of addresses or CIDRs such as 127.0.0.1/32,10.0.0.0/8,::1",
        "client addresses the debug HTTP server answers: comma-separated CIDRs or addresses (else 403)";
    AUTH: Vec<u8> = "HOTPROF_AUTH", UNSET, parse::credentials,
        "user:password (a non-empty user without ':' and a non-empty password)",
        "user:password for HTTP Basic auth on the debug server (else 401)", secret;
    AUTH_FILE: PathBuf = "HOTPROF_AUTH_FILE", UNSET, parse::path, PATH,
        "file holding user:password (instead of HOTPROF_AUTH)";
    AUTH_TOKEN: Vec<u8> = "HOTPROF_AUTH_TOKEN", UNSET, parse::token,
        "a token: printable characters, no spaces",
        "bearer token the debug server accepts (beside or instead of Basic auth)", secret;
    AUTH_TOKEN_FILE: PathBuf = "HOTPROF_AUTH_TOKEN_FILE", UNSET, parse::path, PATH,
        "file holding that token (instead of HOTPROF_AUTH_TOKEN)";
    HTTP_MAX_SECONDS: u64 = "HOTPROF_HTTP_MAX_SECONDS", "300", parse::seconds,
        "a whole number of seconds from 1 to 86400",
        "longest seconds= a profile request may ask for (else 400)";
    TLS_CERT: PathBuf = "HOTPROF_TLS_CERT", UNSET, parse::path, PATH,
        "feature `tls`: PEM certificate chain; with HOTPROF_TLS_KEY the server speaks HTTPS";
    TLS_KEY: PathBuf = "HOTPROF_TLS_KEY", UNSET, parse::path, PATH,
        "feature `tls`: PEM private key of HOTPROF_TLS_CERT";
    HTTP_RATE: u32 = "HOTPROF_HTTP_RATE", "100", parse::rate,
        "a whole number of requests a second from 1 to 100000",
        "connections and requests the debug server takes a second (more wait their turn)";
}

/// Metadata read at start and copied into every file when set: not
/// hotprof's own settings, so not in `VARIABLES`.
const fn metadata(name: &'static str) -> Var<String> {
    Var { name, default: UNSET, expected: "any text", parse: parse::text, secret: false }
}

/// The Kubernetes downward-API variables, with their label in file headers.
pub(crate) const KUBERNETES: [(&str, Var<String>); 4] = [
    ("pod", metadata("POD_NAME")),
    ("namespace", metadata("POD_NAMESPACE")),
    ("pod uid", metadata("POD_UID")),
    ("node", metadata("NODE_NAME")),
];

/// The host name when `/proc/sys/kernel/hostname` cannot be read.
pub(crate) const HOSTNAME: Var<String> = metadata("HOSTNAME");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_a_valid_value() {
        for (name, ok) in defaults_parse() {
            assert!(ok, "{name}'s default does not parse");
        }
    }

    #[test]
    fn names_are_unique_and_ours() {
        let mut names: Vec<&str> = VARIABLES.iter().map(|v| v.0).collect();
        assert!(names.iter().all(|n| *n == "HOTPROF" || n.starts_with("HOTPROF_")));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), VARIABLES.len());
    }
}

//! `HOTPROF_HTTP` and `HOTPROF_HTTP_MAX_SECONDS`: where the debug server
//! listens and the longest profile it takes. Read through an env lookup so
//! tests pass their own.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::access::Access;
use super::tls::Tls;

/// Longest `seconds=` a request may ask for, unless `HOTPROF_HTTP_MAX_SECONDS` says otherwise.
pub(crate) const DEFAULT_MAX_SECONDS: u64 = 300;
/// Connections accepted and requests served a second, unless `HOTPROF_HTTP_RATE` says otherwise.
pub(crate) const DEFAULT_RATE: u32 = 100;

/// What the standalone server needs.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub bind: SocketAddr,
    pub access: Access,
    pub limits: Limits,
    /// `HOTPROF_HTTP_RATE`: see [`super::pacer`].
    pub rate: u32,
    /// `HOTPROF_TLS_CERT` and `HOTPROF_TLS_KEY`: HTTPS when set.
    pub tls: Option<Tls>,
}

/// Per-request limits shared by the standalone server and [`super::router`].
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub max_seconds: u64,
}

impl Settings {
    /// The address comes from `HOTPROF_HTTP`, else from the macro's
    /// `http = "..."` (`macro_addr`); `HOTPROF_HTTP=off` turns both off.
    /// `Ok(None)` when neither asks for a server; an error line naming where
    /// the bad value came from when a value is invalid (the server then stays off).
    pub(crate) fn load(
        env: &dyn Fn(&str) -> Option<String>,
        macro_addr: Option<&str>,
    ) -> Result<Option<Settings>, String> {
        Settings::read(env, macro_addr).map_err(|e| format!("{e}; the debug HTTP server is not started"))
    }

    fn read(
        env: &dyn Fn(&str) -> Option<String>,
        macro_addr: Option<&str>,
    ) -> Result<Option<Settings>, String> {
        let (value, source) = match (var(env, "HOTPROF_HTTP"), macro_addr) {
            (Some(v), _) => (v.clone(), format!("HOTPROF_HTTP={v:?}")),
            (None, Some(v)) => (v.to_string(), format!("#[hotprof::main(http = {v:?})]")),
            (None, None) => return Ok(None),
        };
        if value.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let bind = parse_bind(&value).ok_or_else(|| {
            format!(
                "{source} is not an address: expected addr:port such as 127.0.0.1:6060, \
                 [::1]:6060, :6060 (loopback) or off"
            )
        })?;
        let access = Access::load(env)?;
        let limits = Limits::load(env)?;
        if !bind.ip().is_loopback() && !access.has_auth() {
            return Err(format!(
                "{source} is not a loopback address and no credentials are set (HOTPROF_AUTH, \
                 HOTPROF_AUTH_FILE, HOTPROF_AUTH_TOKEN or HOTPROF_AUTH_TOKEN_FILE): set some or bind \
                 127.0.0.1"
            ));
        }
        let rate = match var(env, "HOTPROF_HTTP_RATE") {
            None => DEFAULT_RATE,
            Some(v) => v.parse::<u32>().ok().filter(|n| (1..=100_000).contains(n)).ok_or_else(|| {
                format!(
                    "HOTPROF_HTTP_RATE={v:?}: expected a whole number of requests a second from 1 to 100000"
                )
            })?,
        };
        let tls = Tls::load(env)?;
        Ok(Some(Settings { bind, access, limits, rate, tls }))
    }
}

impl Limits {
    pub(crate) fn load(env: &dyn Fn(&str) -> Option<String>) -> Result<Limits, String> {
        let max_seconds = match var(env, "HOTPROF_HTTP_MAX_SECONDS") {
            None => DEFAULT_MAX_SECONDS,
            Some(v) => v.parse::<u64>().ok().filter(|n| (1..=86_400).contains(n)).ok_or_else(|| {
                format!("HOTPROF_HTTP_MAX_SECONDS={v:?}: expected a whole number of seconds from 1 to 86400")
            })?,
        };
        Ok(Limits { max_seconds })
    }
}

/// A trimmed, non-empty value.
pub(crate) fn var(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// `addr:port`, `[v6]:port`, `localhost:port`, or `:port` (loopback).
pub(crate) fn parse_bind(v: &str) -> Option<SocketAddr> {
    if let Ok(addr) = v.parse::<SocketAddr>() {
        return Some(addr);
    }
    let (host, port) = v.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let ip = match host {
        "" | "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn bind_addresses() {
        assert_eq!(parse_bind("127.0.0.1:6060"), Some("127.0.0.1:6060".parse().unwrap()));
        assert_eq!(parse_bind(":6060"), Some("127.0.0.1:6060".parse().unwrap()));
        assert_eq!(parse_bind("localhost:0"), Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(parse_bind("[::1]:6060"), Some("[::1]:6060".parse().unwrap()));
        for bad in ["6060", "127.0.0.1", "127.0.0.1:70000", "example.com:80", "::1:6060", ":", "1.2.3.4:x"] {
            assert_eq!(parse_bind(bad), None, "{bad}");
        }
    }

    #[test]
    fn unset_or_off_means_no_server() {
        assert!(Settings::load(&env(&[]), None).unwrap().is_none());
        assert!(Settings::load(&env(&[("HOTPROF_HTTP", " ")]), None).unwrap().is_none());
        assert!(Settings::load(&env(&[("HOTPROF_HTTP", "OFF")]), None).unwrap().is_none());
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let e = Settings::load(&env(&[("HOTPROF_HTTP", "6060")]), None).unwrap_err();
        assert!(e.starts_with("HOTPROF_HTTP=\"6060\" is not an address: expected addr:port"), "{e}");
        let e = Settings::load(&env(&[("HOTPROF_HTTP", ":6060"), ("HOTPROF_ALLOW", "10.0.0.0/33")]), None)
            .unwrap_err();
        assert!(e.contains("HOTPROF_ALLOW"), "{e}");
    }

    #[test]
    fn non_loopback_needs_credentials() {
        let e = Settings::load(&env(&[("HOTPROF_HTTP", "0.0.0.0:6060")]), None).unwrap_err();
        assert!(e.contains("not a loopback address") && e.contains("HOTPROF_AUTH"), "{e}");
        assert!(e.ends_with("; the debug HTTP server is not started"), "{e}");
        let s =
            Settings::load(&env(&[("HOTPROF_HTTP", "0.0.0.0:6060"), ("HOTPROF_AUTH", "ops:s3cret")]), None)
                .unwrap()
                .unwrap();
        assert_eq!(s.bind, "0.0.0.0:6060".parse().unwrap());
    }

    #[test]
    fn the_macro_address_is_used_unless_the_env_says_otherwise() {
        let s = Settings::load(&env(&[]), Some(":6061")).unwrap().unwrap();
        assert_eq!(s.bind, "127.0.0.1:6061".parse().unwrap());
        let s = Settings::load(&env(&[("HOTPROF_HTTP", "127.0.0.1:6062")]), Some(":6061")).unwrap().unwrap();
        assert_eq!(s.bind, "127.0.0.1:6062".parse().unwrap());
        assert!(Settings::load(&env(&[("HOTPROF_HTTP", "off")]), Some(":6061")).unwrap().is_none());
        let e = Settings::load(&env(&[]), Some("0.0.0.0:6060")).unwrap_err();
        assert!(e.starts_with("#[hotprof::main(http = \"0.0.0.0:6060\")] is not a loopback address"), "{e}");
        let e = Settings::load(&env(&[("HOTPROF_HTTP", "nope")]), Some(":6061")).unwrap_err();
        assert!(e.starts_with("HOTPROF_HTTP=\"nope\" is not an address"), "{e}");
    }

    #[test]
    fn rate() {
        let load = |v: &str| Settings::load(&env(&[("HOTPROF_HTTP", ":0"), ("HOTPROF_HTTP_RATE", v)]), None);
        assert_eq!(Settings::load(&env(&[("HOTPROF_HTTP", ":0")]), None).unwrap().unwrap().rate, 100);
        assert_eq!(load("5").unwrap().unwrap().rate, 5);
        for bad in ["0", "-1", "fast", "100001", "1.5"] {
            let e = load(bad).unwrap_err();
            assert!(e.starts_with("HOTPROF_HTTP_RATE="), "{e}");
        }
    }

    #[test]
    fn max_seconds() {
        assert_eq!(Limits::load(&env(&[])).unwrap().max_seconds, 300);
        assert_eq!(Limits::load(&env(&[("HOTPROF_HTTP_MAX_SECONDS", "60")])).unwrap().max_seconds, 60);
        for bad in ["0", "-1", "1m", "999999"] {
            let e = Limits::load(&env(&[("HOTPROF_HTTP_MAX_SECONDS", bad)])).unwrap_err();
            assert!(e.starts_with("HOTPROF_HTTP_MAX_SECONDS="), "{e}");
        }
    }
}

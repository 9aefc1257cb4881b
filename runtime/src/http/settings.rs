//! Where the debug server listens, who may use it and its limits, read
//! through the variable declarations (`config::vars`) from an `Env`, so
//! tests pass their own.
//!
//! A bad `HOTPROF_HTTP`, an unusable access or TLS setting keeps the server
//! off (a default there would change who gets in); the limits fall back to
//! their defaults, with one line each, as every other variable does.

use std::net::SocketAddr;

use super::access::Access;
use super::tls::Tls;
use crate::config::{Env, Listen, vars};

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
    /// the bad value came from when the server cannot start. Limits that
    /// fell back add a line to `lines`.
    pub(crate) fn load(
        env: Env<'_>,
        macro_addr: Option<&str>,
        lines: &mut Vec<String>,
    ) -> Result<Option<Settings>, String> {
        Settings::read(env, macro_addr, lines)
            .map_err(|e| format!("{e}; the debug HTTP server is not started"))
    }

    fn read(
        env: Env<'_>,
        macro_addr: Option<&str>,
        lines: &mut Vec<String>,
    ) -> Result<Option<Settings>, String> {
        let (value, source) = match (env.get(vars::HTTP.name), macro_addr) {
            (Some(v), _) => (v.clone(), format!("{}={v:?}", vars::HTTP.name)),
            (None, Some(v)) => (v.to_string(), format!("#[hotprof::main(http = {v:?})]")),
            (None, None) => return Ok(None),
        };
        let bind = match (vars::HTTP.parse)(&value) {
            Some(Listen::Off) => return Ok(None),
            Some(Listen::At(bind)) => bind,
            None => return Err(format!("{source} is not an address: expected {}", vars::HTTP.expected)),
        };
        let access = Access::load(env)?;
        if !bind.ip().is_loopback() && !access.has_auth() {
            return Err(format!(
                "{source} is not a loopback address and no credentials are set (HOTPROF_AUTH, \
                 HOTPROF_AUTH_FILE, HOTPROF_AUTH_TOKEN or HOTPROF_AUTH_TOKEN_FILE): set some or bind \
                 127.0.0.1"
            ));
        }
        let tls = Tls::load(env)?;
        let limits = Limits::load(env, lines);
        let rate = vars::HTTP_RATE.get(env, lines);
        Ok(Some(Settings { bind, access, limits, rate, tls }))
    }
}

impl Limits {
    /// `HOTPROF_HTTP_MAX_SECONDS`; a bad value adds a line and the default is used.
    pub(crate) fn load(env: Env<'_>, lines: &mut Vec<String>) -> Limits {
        Limits { max_seconds: vars::HTTP_MAX_SECONDS.get(env, lines) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn load(vars: &[(&str, &str)], macro_addr: Option<&str>) -> Result<Option<Settings>, String> {
        Settings::load(Env::from_fn(&lookup(vars)), macro_addr, &mut Vec::new())
    }

    #[test]
    fn unset_or_off_means_no_server() {
        assert!(load(&[], None).unwrap().is_none());
        assert!(load(&[("HOTPROF_HTTP", " ")], None).unwrap().is_none());
        assert!(load(&[("HOTPROF_HTTP", "OFF")], None).unwrap().is_none());
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let e = load(&[("HOTPROF_HTTP", "6060")], None).unwrap_err();
        assert!(e.starts_with("HOTPROF_HTTP=\"6060\" is not an address: expected addr:port"), "{e}");
        let e = load(&[("HOTPROF_HTTP", ":6060"), ("HOTPROF_ALLOW", "10.0.0.0/33")], None).unwrap_err();
        assert!(e.contains("HOTPROF_ALLOW"), "{e}");
    }

    #[test]
    fn non_loopback_needs_credentials() {
        let e = load(&[("HOTPROF_HTTP", "0.0.0.0:6060")], None).unwrap_err();
        assert!(e.contains("not a loopback address") && e.contains("HOTPROF_AUTH"), "{e}");
        assert!(e.ends_with("; the debug HTTP server is not started"), "{e}");
        let s =
            load(&[("HOTPROF_HTTP", "0.0.0.0:6060"), ("HOTPROF_AUTH", "ops:s3cret")], None).unwrap().unwrap();
        assert_eq!(s.bind, "0.0.0.0:6060".parse().unwrap());
    }

    #[test]
    fn the_macro_address_is_used_unless_the_env_says_otherwise() {
        let s = load(&[], Some(":6061")).unwrap().unwrap();
        assert_eq!(s.bind, "127.0.0.1:6061".parse().unwrap());
        let s = load(&[("HOTPROF_HTTP", "127.0.0.1:6062")], Some(":6061")).unwrap().unwrap();
        assert_eq!(s.bind, "127.0.0.1:6062".parse().unwrap());
        assert!(load(&[("HOTPROF_HTTP", "off")], Some(":6061")).unwrap().is_none());
        let e = load(&[], Some("0.0.0.0:6060")).unwrap_err();
        assert!(e.starts_with("#[hotprof::main(http = \"0.0.0.0:6060\")] is not a loopback address"), "{e}");
        let e = load(&[("HOTPROF_HTTP", "nope")], Some(":6061")).unwrap_err();
        assert!(e.starts_with("HOTPROF_HTTP=\"nope\" is not an address"), "{e}");
    }

    #[test]
    fn bad_limits_fall_back_with_a_line_and_the_server_starts() {
        let with = |name: &str, v: &str| {
            let map = lookup(&[("HOTPROF_HTTP", ":0"), (name, v)]);
            let mut lines = Vec::new();
            let s = Settings::load(Env::from_fn(&map), None, &mut lines).unwrap().unwrap();
            (s, lines)
        };
        assert_eq!(load(&[("HOTPROF_HTTP", ":0")], None).unwrap().unwrap().rate, 100);
        assert_eq!(with("HOTPROF_HTTP_RATE", "5").0.rate, 5);
        for bad in ["0", "-1", "fast", "100001", "1.5"] {
            let (s, lines) = with("HOTPROF_HTTP_RATE", bad);
            assert_eq!(s.rate, 100);
            assert_eq!(lines.len(), 1);
            assert!(
                lines[0].starts_with(&format!("hotprof: ignoring HOTPROF_HTTP_RATE={bad:?}")),
                "{lines:?}"
            );
            assert!(lines[0].ends_with("; using 100"), "{lines:?}");
        }
        assert_eq!(with("HOTPROF_HTTP_MAX_SECONDS", "60").0.limits.max_seconds, 60);
        for bad in ["0", "-1", "1m", "999999"] {
            let (s, lines) = with("HOTPROF_HTTP_MAX_SECONDS", bad);
            assert_eq!(s.limits.max_seconds, 300);
            assert!(lines[0].starts_with("hotprof: ignoring HOTPROF_HTTP_MAX_SECONDS="), "{lines:?}");
        }
    }
}

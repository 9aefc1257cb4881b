//! Who may use the debug server, checked in this order: the IP allowlist
//! (`HOTPROF_ALLOW`, 403), then credentials (401): HTTP Basic
//! (`HOTPROF_AUTH` or `HOTPROF_AUTH_FILE`) and/or a bearer token
//! (`HOTPROF_AUTH_TOKEN` or `HOTPROF_AUTH_TOKEN_FILE`, what Parca and Alloy
//! send with `bearer_token`). Either configured one lets a request in; both
//! are compared in constant time and never logged.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use ipnet::IpNet;
use subtle::ConstantTimeEq;

use super::responses;
use crate::config::{Env, Var, vars};

/// The allowlist and the expected credentials.
#[derive(Clone)]
pub(crate) struct Access {
    allow: Vec<IpNet>,
    /// `user:password`, as sent inside `Authorization: Basic`.
    credentials: Option<Arc<[u8]>>,
    /// The token of `Authorization: Bearer`.
    token: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        f.debug_struct("Access")
            .field("allow", &self.allow)
            .field("basic", &self.credentials.is_some())
            .field("bearer", &self.token.is_some())
            .finish()
    }
}

impl Access {
    /// Reads `HOTPROF_ALLOW`, `HOTPROF_AUTH[_FILE]` and `HOTPROF_AUTH_TOKEN[_FILE]`.
    pub(crate) fn load(env: Env<'_>) -> Result<Access, String> {
        let allow = vars::ALLOW.read(env)?.or_else(|| vars::ALLOW.default_value()).unwrap_or_default();
        let credentials = secret(env, &vars::AUTH, &vars::AUTH_FILE)?;
        let token = secret(env, &vars::AUTH_TOKEN, &vars::AUTH_TOKEN_FILE)?;
        Ok(Access { allow, credentials, token })
    }

    /// An access that lets no one in (used when the settings are invalid).
    pub(crate) fn deny_all() -> Access {
        Access { allow: Vec::new(), credentials: None, token: None }
    }

    /// What a client must send, as the start-up line says it; `None` when
    /// nothing is required.
    pub(crate) fn required(&self) -> Option<&'static str> {
        match (self.credentials.is_some(), self.token.is_some()) {
            (true, true) => Some("basic auth or bearer token required"),
            (true, false) => Some("basic auth required"),
            (false, true) => Some("bearer token required"),
            (false, false) => None,
        }
    }

    pub(crate) fn has_auth(&self) -> bool {
        self.credentials.is_some() || self.token.is_some()
    }

    fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical(); // ::ffff:127.0.0.1 is 127.0.0.1
        self.allow.iter().any(|net| net.contains(&ip))
    }

    /// True when the request carries credentials of a configured kind that
    /// match (or none are needed).
    fn authorized(&self, headers: &HeaderMap) -> bool {
        if !self.has_auth() {
            return true;
        }
        let Some((scheme, sent)) = presented(headers) else { return false };
        let expected = match scheme {
            Scheme::Basic => &self.credentials,
            Scheme::Bearer => &self.token,
        };
        expected.as_ref().is_some_and(|expected| constant_time_equal(&sent, expected))
    }

    /// The challenges of a 401: one per configured kind.
    fn challenge(&self) -> &'static str {
        match (self.credentials.is_some(), self.token.is_some()) {
            (true, true) => "Basic realm=\"hotprof\", Bearer realm=\"hotprof\"",
            (false, true) => "Bearer realm=\"hotprof\"",
            _ => "Basic realm=\"hotprof\"",
        }
    }

    /// The response that refuses `peer`, or `None` to let the request through.
    pub(crate) fn refuse(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<Response> {
        let Some(ip) = peer else {
            return Some(responses::error(
                StatusCode::FORBIDDEN,
                "hotprof: the client address is unknown; serve with \
                 into_make_service_with_connect_info::<SocketAddr>()",
            ));
        };
        if !self.allows(ip) {
            return Some(responses::error(
                StatusCode::FORBIDDEN,
                &format!("hotprof: {ip} is not in HOTPROF_ALLOW"),
            ));
        }
        if !self.authorized(headers) {
            let mut r = responses::error(StatusCode::UNAUTHORIZED, "hotprof: credentials required");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static(self.challenge()));
            return Some(r);
        }
        None
    }
}

/// The middleware: allowlist, then credentials, then the route.
pub(crate) async fn check(State(access): State<Arc<Access>>, request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    match access.refuse(peer, request.headers()) {
        Some(refusal) => refusal,
        None => next.run(request).await.into_response(),
    }
}

/// A secret from `var` or from the file named by `file` (not both), checked
/// by `var`'s parser; errors name the variable, never the value.
fn secret(env: Env<'_>, var: &Var<Vec<u8>>, file: &Var<PathBuf>) -> Result<Option<Arc<[u8]>>, String> {
    let value = match (var.read(env)?, file.read(env)?) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(format!("{} and {} are both set: set one of them", var.name, file.name));
        }
        (Some(v), None) => v,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}={path:?}: {e}", file.name))?;
            (var.parse)(text.trim_end_matches(['\n', '\r'])).ok_or_else(|| {
                format!("{}={path:?}: the file must hold {}; the value is not shown", file.name, var.expected)
            })?
        }
    };
    Ok(Some(Arc::from(value)))
}

/// The kinds of `Authorization` header hotprof reads.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scheme {
    Basic,
    Bearer,
}

/// The scheme of the `Authorization` header and what it carries: the
/// decoded `user:password` of Basic, the token of Bearer.
fn presented(headers: &HeaderMap) -> Option<(Scheme, Vec<u8>)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
        Some((Scheme::Basic, decoded))
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some((Scheme::Bearer, rest.trim().as_bytes().to_vec()))
    } else {
        None
    }
}

/// Compares in time that depends only on the expected length: neither the
/// content nor the length of the secret shows in how long a wrong guess takes
/// (a plain slice compare returns early on a length mismatch).
fn constant_time_equal(sent: &[u8], expected: &[u8]) -> bool {
    let mut same = (sent.len() as u64).ct_eq(&(expected.len() as u64));
    for (i, e) in expected.iter().enumerate() {
        same &= sent.get(i).copied().unwrap_or(0).ct_eq(e);
    }
    same.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    #[test]
    fn credentials_compare_whole_and_only_whole() {
        assert!(constant_time_equal(b"user:secret", b"user:secret"));
        assert!(!constant_time_equal(b"user:secreT", b"user:secret"));
        assert!(!constant_time_equal(b"user:secret2", b"user:secret"), "longer");
        assert!(!constant_time_equal(b"user:secre", b"user:secret"), "prefix");
        assert!(!constant_time_equal(b"", b"user:secret"));
        assert!(!constant_time_equal(b"user:secret\0", b"user:secret"), "padded with zero");
    }
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Access, String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = |k: &str| map.get(k).cloned();
        Access::load(Env::from_fn(&lookup))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Headers with `Authorization: v`.
    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn cidrs_and_addresses() {
        let nets = parse::allow("10.0.0.0/8, 192.168.1.7 ,::1,fd00::/8").unwrap();
        assert_eq!(nets.len(), 4);
        let a = Access { allow: nets, credentials: None, token: None };
        for yes in ["10.1.2.3", "192.168.1.7", "::1", "fd12::1", "::ffff:10.0.0.1"] {
            assert!(a.allows(ip(yes)), "{yes}");
        }
        for no in ["11.0.0.1", "192.168.1.8", "127.0.0.1", "fe80::1"] {
            assert!(!a.allows(ip(no)), "{no}");
        }
        // Host bits are ignored, as in most CIDR readers.
        assert!(parse::allow("10.1.2.3/8").unwrap()[0].contains(&ip("10.200.0.1")));
        for bad in ["10.0.0.0/33", "localhost", "10.0.0", "1.2.3.4/-1", ",", "::1/129", "10.0.0.0/8;"] {
            assert!(parse::allow(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn default_allow_is_loopback_only() {
        let a = load(&[]).unwrap();
        assert!(a.allows(ip("127.0.0.1")) && a.allows(ip("127.0.0.2")) && a.allows(ip("::1")));
        assert!(!a.allows(ip("10.0.0.1")) && !a.allows(ip("::2")));
        assert!(!a.has_auth());
        let e = load(&[("HOTPROF_ALLOW", "10.0.0.0/8,nope")]).unwrap_err();
        assert!(e.starts_with("HOTPROF_ALLOW=\"10.0.0.0/8,nope\": expected a comma-separated list"), "{e}");
    }

    #[test]
    fn credentials() {
        assert_eq!(parse::credentials("ops:s3:cret").as_deref(), Some(&b"ops:s3:cret"[..]));
        for bad in ["", "ops", "ops:", ":pw", ":"] {
            assert_eq!(parse::credentials(bad), None, "{bad}");
        }
        let e = load(&[("HOTPROF_AUTH", "nopassword")]).unwrap_err();
        assert!(e.starts_with("HOTPROF_AUTH must hold user:password"), "{e}");
        assert!(e.ends_with("; the value is not shown"), "{e}");
        assert!(!e.contains("nopassword"), "the value is never echoed: {e}");
        let e = load(&[("HOTPROF_AUTH", "a:b"), ("HOTPROF_AUTH_FILE", "/x")]).unwrap_err();
        assert_eq!(e, "HOTPROF_AUTH and HOTPROF_AUTH_FILE are both set: set one of them");
        let e = load(&[("HOTPROF_AUTH_FILE", "/nonexistent/hotprof-auth")]).unwrap_err();
        assert!(e.starts_with("HOTPROF_AUTH_FILE=\"/nonexistent/hotprof-auth\""), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth");
        std::fs::write(&path, "ops:from-file\n").unwrap();
        let a = load(&[("HOTPROF_AUTH_FILE", path.to_str().unwrap())]).unwrap();
        assert_eq!(a.credentials.as_deref(), Some(&b"ops:from-file"[..]));
    }

    #[test]
    fn basic_header() {
        let a = load(&[("HOTPROF_AUTH", "ops:s3cret")]).unwrap();
        let good = base64::engine::general_purpose::STANDARD.encode("ops:s3cret");
        assert!(a.authorized(&with(&format!("Basic {good}"))));
        assert!(a.authorized(&with(&format!("basic  {good}"))));
        let wrong = base64::engine::general_purpose::STANDARD.encode("ops:s3cre");
        for bad in [format!("Basic {wrong}"), format!("Bearer {good}"), "Basic !!!".into(), "Basic".into()] {
            assert!(!a.authorized(&with(&bad)), "{bad}");
        }
        assert!(!a.authorized(&HeaderMap::new()));
        assert!(load(&[]).unwrap().authorized(&HeaderMap::new()), "no credentials configured");
        let r = a.refuse(Some(ip("127.0.0.1")), &HeaderMap::new()).unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Basic realm=\"hotprof\"");
        let r = a.refuse(Some(ip("10.0.0.1")), &with(&format!("Basic {good}"))).unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "the allowlist comes first");
        assert!(a.refuse(Some(ip("127.0.0.1")), &with(&format!("Basic {good}"))).is_none());
        assert_eq!(a.refuse(None, &HeaderMap::new()).unwrap().status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn bearer_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "t0k3n-from-file\n").unwrap();
        let a = load(&[("HOTPROF_AUTH_TOKEN_FILE", path.to_str().unwrap())]).unwrap();
        assert!(a.has_auth());
        assert_eq!(a.token.as_deref(), Some(&b"t0k3n-from-file"[..]));
        for bad in ["two words", "tab\there", "\u{e9}t\u{e9}"] {
            let e = load(&[("HOTPROF_AUTH_TOKEN", bad)]).unwrap_err();
            assert!(e.starts_with("HOTPROF_AUTH_TOKEN must hold a token") && !e.contains(bad), "{e}");
        }
        let both = load(&[("HOTPROF_AUTH_TOKEN", "a"), ("HOTPROF_AUTH_TOKEN_FILE", "/x")]).unwrap_err();
        assert!(both.contains("both set"), "{both}");
        std::fs::write(&path, "\n").unwrap();
        let e = load(&[("HOTPROF_AUTH_TOKEN_FILE", path.to_str().unwrap())]).unwrap_err();
        assert!(e.contains(": the file must hold a token"), "{e}");
    }

    #[test]
    fn basic_and_bearer_each_let_in_only_their_own() {
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("ops:s3cret"));
        let only_token = load(&[("HOTPROF_AUTH_TOKEN", "t0k3n")]).unwrap();
        assert!(
            only_token.authorized(&with("Bearer t0k3n")) && only_token.authorized(&with("bearer  t0k3n"))
        );
        for bad in ["Bearer t0k3", "Bearer t0k3n2", "Bearer", &basic, "Token t0k3n"] {
            assert!(!only_token.authorized(&with(bad)), "{bad}");
        }
        let r = only_token.refuse(Some(ip("127.0.0.1")), &HeaderMap::new()).unwrap();
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer realm=\"hotprof\"");

        let both = load(&[("HOTPROF_AUTH", "ops:s3cret"), ("HOTPROF_AUTH_TOKEN", "t0k3n")]).unwrap();
        assert!(both.authorized(&with("Bearer t0k3n")) && both.authorized(&with(&basic)));
        assert!(!both.authorized(&with("Bearer ops:s3cret")), "a password is not a token");
        let r = both.refuse(Some(ip("127.0.0.1")), &HeaderMap::new()).unwrap();
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"hotprof\", Bearer realm=\"hotprof\""
        );
    }
}

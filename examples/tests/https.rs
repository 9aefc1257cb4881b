//! HTTPS on the debug server (`HOTPROF_TLS_CERT`, `HOTPROF_TLS_KEY`, feature
//! `tls`) in a real process: `go tool pprof` fetches over https with the
//! service's certificate as its CA, with and without Basic auth; plain HTTP on
//! the TLS port is closed, not answered; half a configuration keeps the
//! server off and the service up.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// A self-signed certificate for 127.0.0.1 and its key, as PEM files in `dir`.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(names).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// demo-service serving HTTPS on `bind`; the announced port, on 127.0.0.1.
fn start_https(bind: &str, extra: &[(&str, &str)]) -> (Service, SocketAddr, PathBuf) {
    let dir = fresh_dir("https");
    let (cert, key) = certificate(&dir.join("tls"));
    let mut env = vec![
        ("HOTPROF_HTTP", bind),
        ("HOTPROF_TLS_CERT", cert.to_str().unwrap()),
        ("HOTPROF_TLS_KEY", key.to_str().unwrap()),
    ];
    env.extend_from_slice(extra);
    let svc = Service::start(&dir, &[], &env);
    let announced = announced_addr(&svc, "debug HTTP server on https://");
    (svc, SocketAddr::from(([127, 0, 0, 1], announced.port())), cert)
}

/// `go tool pprof -raw` of `url`, trusting `ca` and no other certificate.
/// (`go tool pprof` fetches URLs itself and ignores `-tls_ca`; Go reads its
/// roots from `SSL_CERT_FILE`.)
fn go_pprof_raw(url: &str, ca: &Path) -> std::process::Output {
    let tmp = tempfile::tempdir().unwrap();
    Command::new("go")
        .args(["tool", "pprof", "-raw", "-timeout=30"])
        .arg(url)
        .env("SSL_CERT_FILE", ca)
        .env("SSL_CERT_DIR", tmp.path())
        .env("PPROF_TMPDIR", tmp.path())
        .output()
        .expect("go tool pprof")
}

#[test]
fn go_tool_pprof_fetches_over_https() {
    let (svc, addr, ca) = start_https("127.0.0.1:0", &[]);
    let out = go_pprof_raw(&format!("https://{addr}/debug/pprof/goroutine"), &ca);
    let raw = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), svc.stderr());
    assert!(raw.contains("goroutine/count") && raw.contains("sleepy_worker"), "{raw}");
}

#[test]
fn https_with_basic_auth_on_every_interface() {
    let (svc, addr, ca) = start_https("0.0.0.0:0", &[("HOTPROF_AUTH", "ops:s3cret")]);
    let ok = go_pprof_raw(&format!("https://ops:s3cret@{addr}/debug/pprof/goroutine"), &ca);
    assert!(ok.status.success(), "{}\n{}", String::from_utf8_lossy(&ok.stderr), svc.stderr());
    let refused = go_pprof_raw(&format!("https://ops:wrong@{addr}/debug/pprof/goroutine"), &ca);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"), "{refused:?}");
}

#[test]
fn plain_http_on_the_tls_port_is_closed_and_https_goes_on() {
    let (mut svc, addr, ca) = start_https("127.0.0.1:0", &[]);
    let mut plain = TcpStream::connect(addr).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    plain.write_all(b"GET /debug/pprof/cmdline HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer); // closed (maybe after a TLS alert), not timed out
    assert!(!answer.starts_with(b"HTTP/"), "{:?}", String::from_utf8_lossy(&answer));
    let out = go_pprof_raw(&format!("https://{addr}/debug/pprof/goroutine"), &ca);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(svc.alive() && svc.ping());
}

#[test]
fn half_a_tls_configuration_keeps_the_server_off() {
    let dir = fresh_dir("https-half");
    let (cert, _) = certificate(&dir.join("tls"));
    let env = [("HOTPROF_HTTP", "127.0.0.1:0"), ("HOTPROF_TLS_CERT", cert.to_str().unwrap())];
    let mut svc = Service::start(&dir, &[], &env);
    let said = "HOTPROF_TLS_CERT and HOTPROF_TLS_KEY go together: set both (PEM files) or neither; \
                the debug HTTP server is not started";
    assert!(wait_until(Duration::from_secs(10), || svc.stderr().contains(said)), "{}", svc.stderr());
    assert!(!svc.stderr().contains("debug HTTP server on"), "{}", svc.stderr());
    assert!(svc.alive() && svc.ping());
}

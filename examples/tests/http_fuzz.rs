//! 1,200 generated malformed requests over real sockets: every one gets an
//! answer, none a 5xx but Go's documented 500 for a CPU profile already
//! running, and the service still answers afterwards.

mod common;

use std::time::{Duration, Instant};

use common::*;

const AUTH: &str = "Authorization: Basic b3BzOnMzY3JldA==\r\n";

/// xorshift64: the same requests every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }

    fn junk(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"abcXYZ019%&=?+-._~!$'()*,;:@/[]{}<>\\^`|\"#\x7f ";
        (0..len).map(|_| CHARS[(self.next() % CHARS.len() as u64) as usize] as char).collect()
    }
}

/// One request: a real route with bad parameters, headers or body, always
/// complete (the body is as long as `Content-Length` says).
fn generate(rng: &mut Rng) -> (String, Vec<u8>) {
    let paths = [
        "/debug/pprof/",
        "/debug/pprof/profile",
        "/debug/pprof/wall",
        "/debug/pprof/flamegraph",
        "/debug/pprof/goroutine",
        "/debug/pprof/threadcreate",
        "/debug/pprof/symbol",
        "/debug/pprof/cmdline",
        "/debug/pprof/trigger",
        "/debug/pprof/admin/enable",
        "/debug/pprof/heap",
        "/debug/pprof/../../etc/passwd",
        "/debug/pprof/%ff%fe",
        "/debug//pprof",
    ];
    let params = ["seconds", "debug", "gc", "seconds", "x"];
    let values =
        ["0", "-1", "1e3", "99999999999999999999", "0x10", "abc", "", "%", "%zz", "1", "2", " 1", "1 "];
    let methods = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "get"];
    let bodies = [
        "",
        "0x1+0x2",
        "0xffffffffffffffffff",
        "{\"alerts\":[{\"labels\":{\"alertname\":\"x\"}}]}",
        "{\"alerts\":5}",
        "{",
        "null",
        "[]",
        "+++++",
    ];
    let method = rng.pick(&methods);
    let mut path = rng.pick(&paths).to_string();
    for i in 0..rng.next() % 4 {
        path.push(if i == 0 { '?' } else { '&' });
        path.push_str(rng.pick(&params));
        path.push('=');
        let value = if rng.next().is_multiple_of(4) { rng.junk(8) } else { rng.pick(&values).to_string() };
        path.push_str(&value.replace([' ', '#'], "%20"));
    }
    let body = if rng.next().is_multiple_of(5) { rng.junk(40) } else { rng.pick(&bodies).to_string() };
    let auth = if rng.next().is_multiple_of(6) { "Authorization: Basic bad\r\n" } else { AUTH };
    let extra = match rng.next() % 6 {
        0 => format!("X-Junk: {}\r\n", rng.junk(20).replace(['\r', '\n'], "")),
        1 => "Content-Type: application/json\r\n".to_string(),
        2 => "Accept: */*\r\nAccept: text/html\r\n".to_string(),
        _ => String::new(),
    };
    let what = format!("{method} {path} body {body:?}");
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n{auth}{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    (what, raw.into_bytes())
}

#[test]
fn twelve_hundred_malformed_requests_get_answers_and_the_service_stays_up() {
    let dir = fresh_dir("http-fuzz");
    let env = [
        ("HOTPROF_HTTP", "127.0.0.1:0"),
        ("HOTPROF_AUTH", "ops:s3cret"),
        ("HOTPROF_HTTP_RATE", "100000"),
        ("HOTPROF_HTTP_MAX_SECONDS", "1"),
    ];
    let mut svc = Service::start(&dir, &[], &env);
    let addr = announced_addr(&svc, "debug HTTP server on http://");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..1200 {
        let (what, raw) = generate(&mut rng);
        let answer = send(addr, &raw);
        *statuses.entry(answer.status).or_insert(0) += 1;
        let documented = answer.status == 500 && answer.text().contains("Could not enable CPU profiling");
        assert!(
            (100..500).contains(&answer.status) || documented,
            "{what} -> {} {:?}",
            answer.status,
            answer.text()
        );
    }
    assert!(svc.alive() && svc.ping(), "{}", svc.stderr());
    let index = request(addr, "GET", "/debug/pprof/cmdline", AUTH);
    assert_eq!(index.status, 200, "still serving: {index:?}");
    assert!(started.elapsed() < Duration::from_secs(240), "no request hung");
    eprintln!("statuses: {statuses:?}");
}

//! Dyed requests in a real axum service (`dyed-service`, behind
//! `DyeLayer::header("x-hotprof-dye")`, with `HOTPROF_SCOPES=dyed`): a dyed
//! request's samples carry its `dye` label in a CPU profile read by
//! `go tool pprof` while undyed traffic's do not; a parked dyed request
//! shows its scopes and spans in a SIGUSR1 dump and reports its slow call,
//! an undyed one neither; bad and flooding header values never fail a request.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);

/// The service with scopes recorded for dyed traffic only, and its app's address.
fn dyed_service(tag: &str) -> (Service, SocketAddr) {
    let dir = fresh_dir(tag);
    let svc =
        Service::start_bin(env!("CARGO_BIN_EXE_dyed-service"), &dir, &[], &[("HOTPROF_SCOPES", "dyed")]);
    let app = announced_addr(&svc, "dyed-service: app on http://");
    (svc, app)
}

fn dyed_get(app: SocketAddr, path: &str, dye: &str) -> Answer {
    request(app, "GET", path, &format!("x-hotprof-dye: {dye}\r\n"))
}

#[test]
fn a_dyed_request_carries_its_label_in_a_cpu_profile_and_undyed_traffic_does_not() {
    let (svc, app) = dyed_service("dye-cpu");
    let debug = announced_addr(&svc, "debug HTTP server on http://");
    let stop = AtomicBool::new(false);
    let profile = std::thread::scope(|s| {
        for dye in [Some("canary"), None] {
            let stop = &stop;
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let answer = match dye {
                        Some(dye) => dyed_get(app, "/burn/20", dye),
                        None => get(app, "/burn/20"),
                    };
                    assert_eq!(answer.status, 200, "{}", answer.text());
                }
            });
        }
        let profile = get(debug, "/debug/pprof/profile?seconds=2");
        stop.store(true, Ordering::Relaxed);
        profile
    });
    assert_eq!(profile.status, 200, "{}", profile.text());
    let file = svc.dir.join("dye.pb.gz");
    std::fs::create_dir_all(&svc.dir).unwrap();
    std::fs::write(&file, &profile.body).unwrap();

    // Dyed samples: the label, and the scope recorded for them alone.
    let dyed = go_pprof(&["-tags", "-tagfocus=dye=canary"], &file);
    assert!(dyed.contains("canary") && dyed.contains("dyed_service::burn_cpu"), "{dyed}");
    let dyed_top = go_pprof(&["-top", "-tagfocus=dye=canary"], &file);
    assert!(dyed_top.contains("dyed_service::burn_cpu"), "{dyed_top}");
    // Undyed traffic burned the same code, and its samples carry neither.
    let undyed_top = go_pprof(&["-top", "-tagignore=dye=canary"], &file);
    assert!(undyed_top.contains("dyed_service::burn_cpu"), "undyed samples are in the profile: {undyed_top}");
    let undyed = go_pprof(&["-tags", "-tagignore=dye=canary"], &file);
    assert!(!undyed.contains("dye:") && !undyed.contains("scope:"), "{undyed}");
}

#[test]
fn a_parked_dyed_request_shows_in_a_dump_and_reports_its_slow_call_and_an_undyed_one_does_not() {
    let (svc, app) = dyed_service("dye-dump");
    std::thread::scope(|s| {
        let dyed = s.spawn(|| dyed_get(app, "/wait/1500", "trace-42"));
        let undyed = s.spawn(|| get(app, "/wait/1501"));
        // Both are parked in their sleep once the dyed one's slow call is out.
        assert!(svc.wait_stderr("slow call dyed_service::wait_upstream", WAIT), "{}", svc.stderr());
        svc.kill("USR1");
        let dumps = svc.wait_dumps(1, WAIT);
        let dump = std::fs::read_to_string(&dumps[0]).unwrap();
        let logical = &dump[dump.find("logical stacks:").expect("a logical stacks section")..];
        assert!(logical.starts_with("logical stacks: 0 threads and 2 tasks"), "{logical}");
        assert!(logical.contains("upstream_call{ms=1500}"), "the dyed span, with its fields: {logical}");
        assert!(!logical.contains("ms=1501"), "the undyed span is no frame: {logical}");
        assert!(logical.contains("dyed_service::wait_upstream, elapsed"), "{logical}");
        assert_eq!(logical.matches("# labels: {\"dye\":\"trace-42\"}").count(), 4, "{logical}");
        assert!(dyed.join().unwrap().text().contains("(dye: trace-42)"));
        assert!(undyed.join().unwrap().text().contains("(dye: none)"));
    });
    let events = files_ending(&svc.dir, "-slowcall.txt");
    assert_eq!(events.len(), 1, "only the dyed request's slow call: {events:?}");
    let event = std::fs::read_to_string(&events[0]).unwrap();
    assert!(
        event.contains("scope: dyed_service::wait_upstream\n") && event.contains("\ndye: trace-42\n"),
        "{event}"
    );
}

#[test]
fn bad_and_flooding_dye_values_never_fail_a_request() {
    let (mut svc, app) = dyed_service("dye-bad");
    // Empty, not ASCII, too long, with characters labels do not keep: each an answer.
    let long = "x".repeat(500);
    for value in ["", "  ", "caf\u{e9}", long.as_str(), "a \"b\" {c}"] {
        let answer = dyed_get(app, "/wait/1", value);
        assert_eq!(answer.status, 200, "{value:?}: {}", answer.text());
    }
    // Said once a minute at most, whatever the number of requests.
    assert!(svc.wait_stderr("DyeLayer: dye value ignored (empty)", WAIT), "{}", svc.stderr());
    assert_eq!(svc.stderr().matches("dye value ignored").count(), 1, "{}", svc.stderr());
    let cut = dyed_get(app, "/wait/1", &long).text();
    assert!(cut.contains(&format!("(dye: {})", "x".repeat(64))), "cut to 64 bytes: {cut}");
    let cleaned = dyed_get(app, "/wait/1", "a \"b\" {c}").text();
    assert!(cleaned.contains("(dye: a__b___c_)"), "{cleaned}");
    // A fresh value with every request: the tag table stays bounded.
    for i in 0..400 {
        assert_eq!(dyed_get(app, "/wait/0", &format!("flood-{i}")).status, 200);
    }
    let past = dyed_get(app, "/wait/0", "one-more").text();
    assert!(past.contains("(dye: (more dye tags than hotprof tracks))"), "{past}");
    svc.kill("USR1");
    assert_eq!(svc.wait_dumps(1, WAIT).len(), 1);
    assert!(svc.alive());
}

#[test]
fn scope_capture_flips_to_dyed_and_back_over_http() {
    let dir = fresh_dir("dye-flip");
    let svc = Service::start_bin(env!("CARGO_BIN_EXE_dyed-service"), &dir, &[], &[]);
    let app = announced_addr(&svc, "dyed-service: app on http://");
    let debug = announced_addr(&svc, "debug HTTP server on http://");
    let post = |path: &str| request(debug, "POST", path, "Content-Length: 0\r\n");
    let dyed_only = post("/debug/pprof/admin/scopes/dyed");
    assert_eq!((dyed_only.status, dyed_only.text().as_str()), (200, "scopes: dyed\n"));
    assert_eq!(get(debug, "/debug/pprof/admin/scopes/dyed").status, 405, "POST only");
    std::thread::scope(|s| {
        let dyed = s.spawn(|| dyed_get(app, "/wait/1500", "flip"));
        let undyed = s.spawn(|| get(app, "/wait/1501"));
        assert!(svc.wait_stderr("slow call dyed_service::wait_upstream", WAIT), "{}", svc.stderr());
        svc.kill("USR1");
        let dump = std::fs::read_to_string(&svc.wait_dumps(1, WAIT)[0]).unwrap();
        assert!(dump.contains("upstream_call{ms=1500}") && !dump.contains("ms=1501"), "{dump}");
        dyed.join().unwrap();
        undyed.join().unwrap();
    });
    let all = post("/debug/pprof/admin/scopes/all");
    assert_eq!((all.status, all.text().as_str()), (200, "scopes: all\n"));
    assert!(svc.stderr().contains("scopes recorded for dyed traffic, over HTTP"), "{}", svc.stderr());
}

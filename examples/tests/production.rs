//! The demo built as services ship: optimised, `debug = "line-tables-only"`
//! (the workspace's `production` profile), and a stripped copy of it.
//! Dumps name functions with their crate path; the stripped copy's frames
//! keep what offline symbolization needs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);

/// `target/production/demo-service`, built once for these tests.
fn production_demo() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--profile", "production", "-p", "hotprof-examples", "--bin", "demo-service"])
            .arg("--target-dir")
            .arg(&target)
            .status()
            .unwrap();
        assert!(status.success(), "building the production demo failed");
        target.join("production").join("demo-service")
    })
}

fn dump_of(bin: &Path, tag: &str) -> (Vec<(String, String)>, Vec<DumpThread>, String) {
    let dir = fresh_dir(tag);
    let svc = Service::start_bin(bin.to_str().unwrap(), &dir, &[], &[]);
    svc.kill("USR1");
    let files = svc.wait_dumps(1, WAIT);
    assert_eq!(files.len(), 1, "{}", svc.stderr());
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let (header, threads) = parse_dump(&text);
    (header, threads, text)
}

#[test]
fn line_tables_only_dumps_name_functions_with_their_crate_path() {
    let (_, threads, text) = dump_of(production_demo(), "production");
    let sleeper = threads.iter().find(|t| t.name == "sleeper").unwrap_or_else(|| panic!("{text}"));
    assert!(sleeper.has_function("hotprof_examples::sleepy_worker"), "{text}");
    let main = threads.iter().find(|t| t.name == "demo-service").unwrap_or_else(|| panic!("{text}"));
    assert!(main.has_function("demo_service::main"), "{text}");
}

#[test]
fn a_stripped_binary_keeps_file_addresses_and_its_build_id() {
    let dir = fresh_dir("stripped-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let stripped = dir.join("demo-stripped");
    let status = Command::new("strip").arg("-o").arg(&stripped).arg(production_demo()).status().unwrap();
    assert!(status.success());
    let notes = Command::new("readelf").arg("-n").arg(&stripped).output().unwrap();
    let notes = String::from_utf8_lossy(&notes.stdout);
    let build_id = notes.split("Build ID: ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();

    let (_, threads, text) = dump_of(&stripped, "stripped");
    let sleeper = threads.iter().find(|t| t.name == "sleeper").unwrap_or_else(|| panic!("{text}"));
    assert!(!sleeper.has_function("sleepy_worker"), "nothing names it in a stripped binary:\n{text}");
    // `demo-stripped+0xADDR` then `\t<path> build-id=<id> pc=...`.
    let at = sleeper
        .lines
        .iter()
        .position(|l| l.starts_with("demo-stripped+0x"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(sleeper.lines[at + 1].contains(&format!("build-id={build_id}")), "{text}");
    // The unstripped binary, with the same build ID, names those addresses.
    let addrs: Vec<&str> = sleeper.lines.iter().filter_map(|l| l.strip_prefix("demo-stripped+")).collect();
    let named = Command::new("addr2line")
        .args(["-f", "-C", "-e"])
        .arg(production_demo())
        .args(&addrs)
        .output()
        .unwrap();
    let named = String::from_utf8_lossy(&named.stdout);
    assert!(named.contains("sleepy_worker"), "addr2line on the unstripped binary:\n{named}\n{text}");
}

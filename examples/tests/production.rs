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
            .args(["build", "--profile", "production", "-p", "hotprof-examples"])
            .args(["--bin", "demo-service", "--bin", "heap-service"])
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

/// The goroutine profile (`/debug/pprof/goroutine`, every thread's stack) of
/// `bin`, saved to `dir`, and the binary's GNU build ID per `readelf -n`.
fn goroutine_profile(bin: &Path, dir: &Path) -> (PathBuf, String) {
    std::fs::create_dir_all(dir).unwrap();
    let svc = Service::start_bin(bin.to_str().unwrap(), dir, &[], &[("HOTPROF_HTTP", "127.0.0.1:0")]);
    let addr = announced_addr(&svc, "debug HTTP server on http://");
    let answer = get(addr, "/debug/pprof/goroutine");
    assert_eq!(answer.status, 200, "{answer:?}");
    let file = dir.join("goroutine.pb.gz");
    std::fs::write(&file, &answer.body).unwrap();
    let notes = Command::new("readelf").arg("-n").arg(bin).output().unwrap();
    let notes = String::from_utf8_lossy(&notes.stdout);
    let build_id = notes.split("Build ID: ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    (file, build_id)
}

fn go_pprof(args: &[&str], env: &[(&str, &Path)]) -> String {
    // Local symbolization only: a profile never makes pprof fetch anything.
    let mut cmd = Command::new("go");
    cmd.arg("tool").arg("pprof").args(args).env("PPROF_TMPDIR", env!("CARGO_TARGET_TMPDIR"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("go tool pprof");
    assert!(out.status.success(), "go tool pprof {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn profiles_carry_mappings_build_ids_addresses_and_inline_lines() {
    let bin = production_demo();
    let (profile, build_id) = goroutine_profile(bin, &fresh_dir("go-grade"));
    let p = profile.to_str().unwrap();
    let raw = go_pprof(&["-raw", p], &[]);
    let mappings = raw.split("Mappings").nth(1).unwrap_or_else(|| panic!("no mappings:\n{raw}"));
    assert!(mappings.contains(&build_id), "the binary's build ID {build_id}:\n{raw}");
    let locations = raw.split("Locations").nth(1).unwrap().split("Mappings").next().unwrap();
    // `     5: 0x55d0f2a1b2c3 M=1 hotprof_examples::sleepy_worker ...`, then
    // indented lines for the functions inlined at the same address.
    let addressed = locations
        .lines()
        .filter(|l| l.split_whitespace().nth(1).is_some_and(|a| a.starts_with("0x") && a != "0x0"));
    assert!(addressed.count() > 10, "real addresses:\n{locations}");
    let mut inline_groups = 0;
    let lines: Vec<&str> = locations.lines().collect();
    for pair in lines.windows(2) {
        if pair[0].contains(": 0x") && !pair[1].contains(": 0x") && !pair[1].trim().is_empty() {
            inline_groups += 1;
        }
    }
    assert!(inline_groups > 0, "inlined functions grouped under one address:\n{locations}");
    assert!(locations.contains("<"), "Rust names keep their <...>:\n{locations}");

    let top = go_pprof(&["-noinlines", "-top", p], &[]);
    assert!(top.contains("hotprof_examples::sleepy_worker"), "{top}");
    let traces = go_pprof(&["-traces", p], &[]);
    assert!(traces.contains("hotprof_examples::sleepy_worker"), "{traces}");
    // Not checked: `-disasm`. Go 1.19's pprof (Debian 12's golang-go) panics
    // disassembling any binary whose code segment's address and file offset
    // differ, as rust-lld lays them out (docs/formats.md#pprof).
}

#[test]
fn a_stripped_binarys_profile_keeps_what_offline_symbolization_needs() {
    let dir = fresh_dir("stripped-profile");
    let (stripped_dir, debug_dir) = (dir.join("shipped"), dir.join("debug"));
    std::fs::create_dir_all(&stripped_dir).unwrap();
    std::fs::create_dir_all(&debug_dir).unwrap();
    // Ship the stripped copy; keep the unstripped one, same name, as the build artifact.
    let shipped = stripped_dir.join("demo-service");
    assert!(Command::new("strip").arg("-o").arg(&shipped).arg(production_demo()).status().unwrap().success());
    std::fs::copy(production_demo(), debug_dir.join("demo-service")).unwrap();
    let (profile, build_id) = goroutine_profile(&shipped, &dir.join("run"));
    let p = profile.to_str().unwrap();
    let raw = go_pprof(&["-raw", "-symbolize=none", p], &[]);
    assert!(raw.contains(&build_id), "{raw}");
    let top = go_pprof(&["-top", "-symbolize=none", p], &[]);
    assert!(!top.contains("sleepy_worker"), "nothing names it in the stripped binary:\n{top}");
    // The profile says where each address lies in the file: translated as a
    // symbolizer does (mapping start and offset, then the file's program
    // headers), the addresses of the stripped binary's mapping name the
    // right functions in the unstripped one. (Go 1.19's pprof, Debian 12's,
    // gets this translation wrong for rust-lld's layout: docs/formats.md.)
    let unstripped = debug_dir.join("demo-service");
    let named = addr2line(&unstripped, &file_addresses(&raw, "shipped/demo-service", &unstripped));
    assert!(named.contains("hotprof_examples::sleepy_worker"), "{named}");
    assert!(named.contains("hotprof_examples::waiting_worker"), "{named}");
}

/// The addresses of the mapping whose file ends with `file`, in the raw
/// profile text, as addresses of `binary`'s own numbering: address minus
/// mapping start plus file offset gives the offset in the file, and the
/// PT_LOAD segment holding that offset gives its address.
fn file_addresses(raw: &str, file: &str, binary: &Path) -> Vec<String> {
    let mappings = raw.split("Mappings").nth(1).unwrap();
    // `1: 0xSTART/0xLIMIT/0xOFFSET /path build-id [flags]`
    let (id, start, offset) = mappings
        .lines()
        .find(|l| l.contains(file))
        .map(|l| {
            let (id, rest) = l.trim().split_once(": ").unwrap();
            let nums: Vec<u64> = rest
                .split_whitespace()
                .next()
                .unwrap()
                .split('/')
                .map(|n| u64::from_str_radix(n.trim_start_matches("0x"), 16).unwrap())
                .collect();
            (id.to_string(), nums[0], nums[2])
        })
        .unwrap_or_else(|| panic!("no mapping of {file}:\n{raw}"));
    let headers = Command::new("readelf").args(["-lW"]).arg(binary).output().unwrap();
    let loads: Vec<(u64, u64, u64)> = String::from_utf8_lossy(&headers.stdout)
        .lines()
        .filter(|l| l.trim_start().starts_with("LOAD"))
        .map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .take(5)
                .map(|n| u64::from_str_radix(n.trim_start_matches("0x"), 16).unwrap())
                .collect();
            (f[0], f[1], f[3]) // offset, vaddr, filesz
        })
        .collect();
    let locations = raw.split("Locations").nth(1).unwrap().split("Mappings").next().unwrap();
    locations
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace().skip(1);
            let (addr, m) = (words.next()?, words.next()?);
            if m != format!("M={id}") {
                return None;
            }
            let file_offset = u64::from_str_radix(addr.trim_start_matches("0x"), 16).ok()? - start + offset;
            let (off, vaddr, _) = loads.iter().find(|(o, _, size)| (*o..o + size).contains(&file_offset))?;
            Some(format!("{:#x}", file_offset - off + vaddr))
        })
        .collect()
}

fn addr2line(binary: &Path, addrs: &[String]) -> String {
    assert!(!addrs.is_empty(), "no address to look up");
    let out = Command::new("addr2line").args(["-f", "-C", "-e"]).arg(binary).args(addrs).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn heap_profiles_of_a_production_build_start_at_the_allocating_code() {
    let bin = production_demo().with_file_name("heap-service");
    let dir = fresh_dir("production-heap");
    let env = [("HOTPROF_SIGUSR2", "heap"), ("HOTPROF_HEAP_RATE", "128KiB")];
    let svc = Service::start_bin(bin.to_str().unwrap(), &dir, &[], &env);
    svc.kill("USR2");
    let file = || files_ending(&dir, "-heap.pb.gz").pop();
    assert!(wait_until(WAIT, || file().is_some()), "{}", svc.stderr());
    let file = file().unwrap();
    let top = go_pprof(
        &["-sample_index=inuse_space", "-unit=B", "-top", "-cum", "-nodecount=1000", file.to_str().unwrap()],
        &[],
    );
    let held: f64 = top
        .lines()
        .find(|l| l.ends_with(" hotprof_examples::hold_blocks"))
        .and_then(|l| l.split_whitespace().nth(3)?.trim_end_matches('B').parse().ok())
        .unwrap_or_else(|| panic!("{top}"));
    let mib = held / 1048576.0;
    assert!((54.4..=73.6).contains(&mib), "hold_blocks holds 64 MiB, the profile says {mib:.1}\n{top}");
    // The sampler's frames, the allocator shims and alloc::alloc, inlined
    // into the caller with their bare names, are gone from every stack.
    let traces = go_pprof(&["-traces", file.to_str().unwrap()], &[]);
    for ours in ["on_alloc", "__rust_alloc", "copy_own_stack", "crossed", "alloc_impl"] {
        assert!(!traces.contains(ours), "{ours} in\n{traces}");
    }
}

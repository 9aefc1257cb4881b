//! Feature `jemalloc`: jemalloc's own heap profile, for programs that run
//! jemalloc with its profiler on (`prof:true`) instead of `SampledAlloc`.
//! `jemalloc_pprof` reads it (through a temporary file, its way) as
//! in-use space only.

use std::io::Read as _;
use std::time::{Duration, Instant};

use pprof::protos::Message as _;

/// How long a profile waits for another one still being dumped.
const WAIT: Duration = Duration::from_secs(10);

type Ctl = &'static std::sync::Arc<tokio::sync::Mutex<jemalloc_pprof::JemallocProfCtl>>;

/// jemalloc's profiler, when jemalloc was built with it and runs it.
fn ctl() -> Option<Ctl> {
    // jemalloc_pprof unwraps the read of `opt.prof`, which fails when
    // jemalloc was built without profiling: that means "no profile" here.
    std::panic::catch_unwind(|| jemalloc_pprof::PROF_CTL.as_ref()).ok()?
}

/// Whether jemalloc profiles this program now.
pub(crate) fn active() -> bool {
    ctl().is_some_and(|c| c.try_lock().map_or(true, |c| c.activated()))
}

/// jemalloc's heap profile as gzipped pprof, with `comments` added, and
/// its in-use bytes; `None` unless jemalloc profiles this program now.
pub(crate) fn profile(comments: &[String]) -> Option<Result<(Vec<u8>, i64), String>> {
    let ctl = ctl()?;
    let deadline = Instant::now() + WAIT;
    // `try_lock`, not `blocking_lock`: this may run on a tokio worker.
    let mut ctl = loop {
        match ctl.try_lock() {
            Ok(ctl) => break ctl,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => return Some(Err("another jemalloc profile is still being dumped".into())),
        }
    };
    if !ctl.activated() {
        return None;
    }
    Some(ctl.dump_pprof().map_err(|e| format!("jemalloc: {e}")).and_then(|gz| annotate(&gz, comments)))
}

/// The profile with `comments` added (hotprof's metadata), re-encoded, and
/// the sum of its first sample type (`inuse_space`).
fn annotate(gz: &[u8], comments: &[String]) -> Result<(Vec<u8>, i64), String> {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz).read_to_end(&mut raw).map_err(|e| format!("jemalloc's profile: {e}"))?;
    let mut p = pprof::protos::Profile::decode(&raw[..]).map_err(|e| format!("jemalloc's profile: {e}"))?;
    for c in comments {
        p.comment.push(p.string_table.len() as i64);
        p.string_table.push(c.clone());
    }
    let inuse = p.sample.iter().filter_map(|s| s.value.first()).sum();
    let mut out = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut out, &p.encode_to_vec()).map_err(|e| e.to_string())?;
    Ok((out.finish().map_err(|e| e.to_string())?, inuse))
}

//! The heap profile paths: the API, HTTP and the attach socket answer at
//! once; `HOTPROF_SIGUSR2=heap` writes a file. A heap profile signals no
//! thread and takes no sample (the samples are already there), so only the
//! file path is metered by the guard; building one (symbolization, mostly)
//! runs one at a time.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::{Capture, Trigger, lock};
use crate::guard::Kind;
use crate::heap::profile::{self, Snapshot, View};
use crate::heap::{self, HeapError, HeapProfile};
use crate::notices::{error, notice};
use crate::switch;

/// Held while a heap profile is symbolized and encoded.
static BUILDING: Mutex<()> = Mutex::new(());

impl Capture {
    /// The heap sampler's counts now, or why there are none.
    pub(crate) fn heap_snapshot(&self) -> Result<Snapshot, HeapError> {
        heap_ready()?;
        Ok(profile::snapshot())
    }

    /// `snap` as gzipped pprof; `window` for a delta of that length.
    pub(crate) fn heap_pprof(
        &self,
        snap: &Snapshot,
        view: View,
        window: Option<Duration>,
        trigger: Trigger,
    ) -> Result<Vec<u8>, HeapError> {
        let _one = lock(&BUILDING);
        let comments = self.comments(trigger);
        profile::pprof(snap, view, window, &comments, &mut self.symbolizer())
            .map_err(|e| HeapError::Encode(e.to_string()))
    }

    /// `snap` as Go's `debug=1` text.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn heap_text(&self, snap: &Snapshot) -> String {
        let _one = lock(&BUILDING);
        profile::text(snap, &mut self.symbolizer())
    }

    /// Whether jemalloc's own profiler stands in for `SampledAlloc`
    /// (feature `jemalloc`: the program runs jemalloc with profiling on).
    pub(crate) fn jemalloc_heap(&self) -> bool {
        #[cfg(feature = "jemalloc")]
        return !heap::in_use() && heap::jemalloc::active();
        #[cfg(not(feature = "jemalloc"))]
        false
    }

    /// The heap profile now (the API and the attach socket): hotprof's, or
    /// jemalloc's where it stands in.
    pub(crate) fn heap_profile(&self, trigger: Trigger) -> Result<HeapProfile, HeapError> {
        if self.jemalloc_heap() && switch::is_enabled() {
            return self.jemalloc_profile(trigger);
        }
        let snap = self.heap_snapshot()?;
        let pprof_gz = self.heap_pprof(&snap, View::Heap, None, trigger)?;
        let (inuse_objects, inuse_bytes, alloc_objects, alloc_bytes) = snap.totals();
        Ok(HeapProfile { pprof_gz, inuse_objects, inuse_bytes, alloc_objects, alloc_bytes })
    }

    #[cfg(feature = "jemalloc")]
    fn jemalloc_profile(&self, trigger: Trigger) -> Result<HeapProfile, HeapError> {
        let _one = lock(&BUILDING);
        match heap::jemalloc::profile(&self.comments(trigger)) {
            Some(Ok((pprof_gz, inuse_bytes))) => {
                Ok(HeapProfile { pprof_gz, inuse_objects: 0, inuse_bytes, alloc_objects: 0, alloc_bytes: 0 })
            }
            Some(Err(e)) => Err(HeapError::Encode(e)),
            None => Err(HeapError::NotInstalled),
        }
    }

    #[cfg(not(feature = "jemalloc"))]
    fn jemalloc_profile(&self, _trigger: Trigger) -> Result<HeapProfile, HeapError> {
        Err(HeapError::NotInstalled)
    }

    /// Writes a heap profile file (`HOTPROF_SIGUSR2=heap`), through the guard.
    pub(crate) fn write_heap_profile(&self, trigger: Trigger, reason: &str) {
        if let (false, Err(e)) = (self.jemalloc_heap(), heap_ready()) {
            notice(&format!("{trigger} ignored: {e}"));
            return;
        }
        if self.admit(Kind::Heap).is_err() {
            return; // logged once per window
        }
        let profile = match self.heap_profile(trigger) {
            Ok(p) => p,
            Err(e) => return error(&format!("heap profile failed ({reason}): {e}")),
        };
        match self.output.write_at(SystemTime::now(), "heap", "pb.gz", &profile.pprof_gz) {
            Ok(path) => notice(&format!(
                "{trigger}: heap profile ({} MiB in use, {} MiB allocated since the start) written to {}",
                mib(profile.inuse_bytes),
                mib(profile.alloc_bytes),
                path.display()
            )),
            Err(e) => error(&format!("heap profile file lost: {e}")),
        }
    }
}

fn mib(bytes: i64) -> String {
    format!("{:.1}", bytes as f64 / f64::from(1 << 20))
}

/// Whether hotprof's heap sampler has samples to give: the switch, the
/// allocator, the rate.
fn heap_ready() -> Result<(), HeapError> {
    if !switch::is_enabled() {
        return Err(HeapError::Disabled);
    }
    if !heap::in_use() {
        return Err(HeapError::NotInstalled);
    }
    if heap::rate() == 0 {
        return Err(HeapError::Off);
    }
    Ok(())
}

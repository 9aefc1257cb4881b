//! Heap and allocation profiles from a sampling global allocator.
//!
//! [`SampledAlloc`] wraps any `GlobalAlloc`. Allocations are sampled by
//! bytes (`sampling.rs`); a sampled block's stack is copied into the ring
//! (`ring.rs`) and the block itself remembered in the live table
//! (`live.rs`) until it is freed. The collector (`collector.rs`) unwinds the
//! copies off the allocating threads; `profile.rs` turns the counts into
//! Go's heap profile.

mod collector;
#[cfg(feature = "jemalloc")]
pub(crate) mod jemalloc;
mod live;
pub(crate) mod profile;
mod ring;
mod sampling;
mod stats;

use std::fmt;
use std::sync::atomic::Ordering;

pub(crate) use collector::start as start_collector;

/// A global allocator that samples what it hands out, for
/// [`heap_profile`](crate::heap_profile), `/debug/pprof/heap` and
/// `/debug/pprof/allocs`. Every call goes to the wrapped allocator.
///
/// ```
/// #[global_allocator]
/// static ALLOC: hotprof::SampledAlloc<std::alloc::System> = hotprof::SampledAlloc::new(std::alloc::System);
/// ```
///
/// One allocation in about `HOTPROF_HEAP_RATE` bytes (512 KiB by default,
/// Go's `MemProfileRate`) is sampled while capture is on. An unsampled
/// allocation costs a per-thread countdown and a branch, an unsampled free
/// one hash lookup in a small filter; a sampled one copies the thread's
/// stack, which the `hotprof-heap` thread unwinds later.
#[derive(Debug, Default)]
pub struct SampledAlloc<A> {
    inner: A,
}

impl<A> SampledAlloc<A> {
    /// Wraps `inner`, which serves every allocation.
    pub const fn new(inner: A) -> Self {
        SampledAlloc { inner }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

/// After an allocation of `size` bytes at `ptr` (0 when it failed).
#[inline(always)]
pub(crate) fn on_alloc(ptr: usize, size: usize) {
    if sampling::due(size) {
        sampling::crossed(ptr, size);
    }
}

/// Before the block at `ptr` is freed.
#[inline(always)]
pub(crate) fn on_free(ptr: usize) {
    live::remove(ptr);
}

/// Whether this program's global allocator is a `SampledAlloc`.
pub(crate) fn in_use() -> bool {
    sampling::IN_USE.load(Ordering::Relaxed)
}

/// Sets the mean bytes between samples (`HOTPROF_HEAP_RATE`); 0 stops sampling.
pub(crate) fn set_rate(bytes: u64) {
    sampling::RATE.store(bytes, Ordering::Relaxed);
}

pub(crate) fn rate() -> u64 {
    sampling::RATE.load(Ordering::Relaxed)
}

/// A heap profile: gzipped pprof protobuf and its unbiased totals.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HeapProfile {
    /// Gzipped pprof protobuf in Go's layout: `alloc_objects`,
    /// `alloc_space`, `inuse_objects`, `inuse_space` (shown first).
    pub pprof_gz: Vec<u8>,
    /// Estimated blocks allocated and not freed, now.
    pub inuse_objects: i64,
    /// Estimated bytes allocated and not freed, now.
    pub inuse_bytes: i64,
    /// Estimated blocks allocated since the start.
    pub alloc_objects: i64,
    /// Estimated bytes allocated since the start.
    pub alloc_bytes: i64,
}

/// Why no heap profile was made.
#[derive(Debug)]
#[non_exhaustive]
pub enum HeapError {
    /// Capture is switched off.
    Disabled,
    /// The global allocator is not a [`SampledAlloc`].
    NotInstalled,
    /// `HOTPROF_HEAP_RATE=0` turned heap sampling off.
    Off,
    /// The profile could not be encoded.
    Encode(String),
}

impl fmt::Display for HeapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeapError::Disabled => f.write_str(crate::switch::OFF),
            HeapError::NotInstalled => f.write_str(
                "heap profiling needs hotprof::SampledAlloc as the global allocator \
                 (#[global_allocator] static ALLOC: hotprof::SampledAlloc<std::alloc::System> = \
                 hotprof::SampledAlloc::new(std::alloc::System);)",
            ),
            HeapError::Off => f.write_str("heap sampling is off (HOTPROF_HEAP_RATE=0)"),
            HeapError::Encode(e) => write!(f, "cannot encode the heap profile: {e}"),
        }
    }
}

impl std::error::Error for HeapError {}

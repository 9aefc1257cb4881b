//! `unsafe fn` and `extern "C" fn` with a body are profiled like any other.

/// # Safety
///
/// `ptr` must point to a live `u32`.
#[hotprof::profile]
unsafe fn read(ptr: *const u32) -> u32 {
    // SAFETY: the caller guarantees `ptr` points to a live `u32`.
    unsafe { *ptr }
}

#[hotprof::profile]
extern "C" fn callback(n: i32) -> i32 {
    n + 1
}

#[hotprof::profile]
async unsafe fn read_later(ptr: *const u32) -> u32 {
    // SAFETY: the caller guarantees `ptr` points to a live `u32`.
    unsafe { *ptr }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let value = 7;
    // SAFETY: `value` lives until the end of `main`.
    assert_eq!(unsafe { read(&value) }, 7);
    // SAFETY: as above.
    assert_eq!(unsafe { read_later(&value) }.await, 7);
    let pointer: extern "C" fn(i32) -> i32 = callback;
    assert_eq!(pointer(1), 2);
}

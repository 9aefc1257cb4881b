//! Every call into the OS that needs `unsafe`, kept in one small module.
//!
//! The rest of the crate only sees safe wrappers. Functions marked
//! "async-signal-safe" are the only ones the capture signal handler may use:
//! they do not allocate, lock or panic.

use std::ffi::{CStr, c_int, c_void};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// What the interrupted thread was doing when the capture signal arrived.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Interrupted {
    /// Value the sender attached (`sigqueue` payload).
    pub value: u64,
    /// True when the signal was queued by this very process with `SI_QUEUE`.
    pub from_self: bool,
    /// Program counter, frame pointer and stack pointer at the interruption (0 if unknown).
    pub pc: usize,
    pub fp: usize,
    pub sp: usize,
}

/// The kernel's `siginfo_t` for a queued signal on 64-bit Linux: the fields we
/// send and read, padded to the kernel's 128 bytes.
#[repr(C)]
struct QueuedSigInfo {
    signo: c_int,
    errno: c_int,
    code: c_int,
    _pad: c_int,
    pid: libc::pid_t,
    uid: libc::uid_t,
    value: u64,
    _rest: [u8; 128 - 32],
}

/// What a capture handler delivers the interrupted registers to. This layer
/// knows nothing of what is done with them; implementations must be
/// async-signal-safe (atomics and single syscalls only).
pub(crate) trait SignalSink {
    fn on_signal(interrupted: Interrupted);
}

extern "C" fn raw_capture_handler<S: SignalSink>(_sig: c_int, info: *mut libc::siginfo_t, uctx: *mut c_void) {
    // SAFETY: errno is thread-local; saving and restoring it keeps the
    // interrupted code's view of errno unchanged.
    let saved_errno = unsafe { *libc::__errno_location() };
    if !info.is_null() {
        // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers; our
        // QueuedSigInfo mirrors its 64-bit layout for the fields read here.
        let si = unsafe { &*(info as *const QueuedSigInfo) };
        // SAFETY: getpid is async-signal-safe and has no preconditions.
        let me = unsafe { libc::getpid() };
        let (pc, fp, sp) = registers(uctx);
        S::on_signal(Interrupted {
            value: si.value,
            from_self: si.code == libc::SI_QUEUE && si.pid == me,
            pc,
            fp,
            sp,
        });
    }
    // SAFETY: see above.
    unsafe { *libc::__errno_location() = saved_errno };
}

#[cfg(target_arch = "x86_64")]
fn registers(uctx: *mut c_void) -> (usize, usize, usize) {
    if uctx.is_null() {
        return (0, 0, 0);
    }
    // SAFETY: for SA_SIGINFO handlers the third argument is the interrupted
    // thread's ucontext_t, valid for the duration of the handler.
    let gregs = unsafe { &(*(uctx as *const libc::ucontext_t)).uc_mcontext.gregs };
    let reg = |r: c_int| gregs.get(r as usize).map_or(0, |v| *v as usize);
    (reg(libc::REG_RIP), reg(libc::REG_RBP), reg(libc::REG_RSP))
}

#[cfg(target_arch = "aarch64")]
fn registers(uctx: *mut c_void) -> (usize, usize, usize) {
    if uctx.is_null() {
        return (0, 0, 0);
    }
    // SAFETY: as on x86_64, the ucontext_t is valid during the handler.
    let mc = unsafe { &(*(uctx as *const libc::ucontext_t)).uc_mcontext };
    (mc.pc as usize, mc.regs[29] as usize, mc.sp as usize)
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn registers(_uctx: *mut c_void) -> (usize, usize, usize) {
    (0, 0, 0)
}

/// Returns the current disposition of `sig`: true when nobody handles it
/// (default action, no handler installed by anyone).
pub(crate) fn signal_is_unused(sig: c_int) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_DFL
    }
}

/// Installs the capture handler for `sig` with `SA_SIGINFO | SA_RESTART`; it
/// forwards the interrupted registers to `S`.
pub(crate) fn install_capture_handler<S: SignalSink>(sig: c_int) -> io::Result<()> {
    // SAFETY: we build a fully initialised sigaction whose handler is an
    // `extern "C"` fn with the SA_SIGINFO signature; the mask is emptied with sigemptyset.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = raw_capture_handler::<S> as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Queues `sig` to thread `tid` of this process with a 64-bit payload
/// (`rt_tgsigqueueinfo`). Errors: ESRCH (thread gone), EAGAIN (queue full).
pub(crate) fn queue_signal_to_thread(tid: i32, sig: c_int, value: u64) -> io::Result<()> {
    // SAFETY: getpid/getuid have no preconditions.
    let (pid, uid) = unsafe { (libc::getpid(), libc::getuid()) };
    let info = QueuedSigInfo {
        signo: sig,
        errno: 0,
        code: libc::SI_QUEUE,
        _pad: 0,
        pid,
        uid,
        value,
        _rest: [0; 96],
    };
    // SAFETY: `info` is a valid, initialised 128-byte siginfo for the kernel to copy;
    // the kernel only accepts SI_QUEUE-style codes from user space, which we send.
    let rc =
        unsafe { libc::syscall(libc::SYS_rt_tgsigqueueinfo, pid, tid, sig, &info as *const QueuedSigInfo) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// The calling thread's kernel thread id. Async-signal-safe.
pub(crate) fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// CLOCK_MONOTONIC in nanoseconds. Async-signal-safe (vDSO clock_gettime).
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own; POSIX lists it as async-signal-safe.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

const FUTEX_WAIT_PRIVATE: c_int = 128;
const FUTEX_WAKE_PRIVATE: c_int = 1 | 128;

/// Wakes every waiter on `word`. Async-signal-safe (a single syscall).
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: the address is a valid, aligned u32 that outlives the call.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), FUTEX_WAKE_PRIVATE, i32::MAX) };
}

/// Sleeps while `*word == expected`, at most `timeout`. Spurious wake-ups are possible.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    if word.load(Ordering::Acquire) != expected {
        return;
    }
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: valid aligned u32 address and a timespec that lives across the call.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), FUTEX_WAIT_PRIVATE, expected, &ts) };
}

/// Walks the DWARF call frame information of the current thread, calling `f`
/// with each instruction pointer until it returns false.
///
/// Async-signal-safe only where the loader offers a lock-free `_dl_find_object`
/// (glibc >= 2.35) and libgcc uses it (GCC >= 12): see [`dwarf_unwind_is_signal_safe`].
pub(crate) fn dwarf_unwind(mut f: impl FnMut(usize) -> bool) {
    // SAFETY: `trace_unsynchronized` is unsafe only because it does not take
    // backtrace's global lock; it is called from a signal handler on purpose
    // (a lock could deadlock there) and the callback does not touch shared state.
    unsafe { backtrace::trace_unsynchronized(|frame| f(frame.ip() as usize)) }
}

/// Reads one machine word at `addr` without faulting: unmapped memory gives
/// `None`. Async-signal-safe (one `process_vm_readv` syscall on ourselves).
pub(crate) fn read_word(addr: usize) -> Option<usize> {
    let mut out: usize = 0;
    let local = libc::iovec { iov_base: (&mut out as *mut usize).cast(), iov_len: 8 };
    let remote = libc::iovec { iov_base: addr as *mut c_void, iov_len: 8 };
    // SAFETY: the kernel validates the remote range and fails with EFAULT instead
    // of faulting; the local iovec points at our own stack variable.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    (n == 8).then_some(out)
}

/// The toolchain facts that decide whether DWARF unwinding is safe in a signal handler.
#[derive(Debug, Clone)]
pub(crate) struct Toolchain {
    pub glibc: Option<String>,
    pub dl_find_object: bool,
    pub libgcc_12: bool,
}

impl Toolchain {
    pub(crate) fn dwarf_unwind_is_signal_safe(&self) -> bool {
        self.dl_find_object && self.libgcc_12
    }
}

/// Inspects the running process's glibc and libgcc_s.
pub(crate) fn toolchain() -> Toolchain {
    // SAFETY: gnu_get_libc_version returns a static NUL-terminated string.
    let glibc = unsafe {
        let p = libc::gnu_get_libc_version();
        (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
    };
    // SAFETY: dlsym on RTLD_DEFAULT with a NUL-terminated name only looks the symbol up.
    let dl_find_object = unsafe { !libc::dlsym(libc::RTLD_DEFAULT, c"_dl_find_object".as_ptr()).is_null() };
    Toolchain { glibc, dl_find_object, libgcc_12: libgcc_is_12_or_newer() }
}

/// libgcc_s from GCC 12 on finds unwind tables through `_dl_find_object`. Its
/// `GCC_12.0.0` symbol version marks that release; we probe one symbol of it.
#[cfg(target_arch = "x86_64")]
fn libgcc_is_12_or_newer() -> bool {
    // SAFETY: RTLD_NOLOAD only returns a handle if libgcc_s is already mapped;
    // dlvsym only looks a symbol up; dlclose balances the dlopen reference.
    unsafe {
        let h = libc::dlopen(c"libgcc_s.so.1".as_ptr(), libc::RTLD_NOLOAD | libc::RTLD_LAZY);
        if h.is_null() {
            return false;
        }
        let found = !libc::dlvsym(h, c"__extendhfsf2".as_ptr(), c"GCC_12.0.0".as_ptr()).is_null();
        libc::dlclose(h);
        found
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn libgcc_is_12_or_newer() -> bool {
    false
}

/// Counts every delivery of `sig` in `counter` (the kernel merges a pending
/// signal with the next, and so does signal-hook's iterator; the count does not).
pub(crate) fn count_deliveries(sig: c_int, counter: &'static std::sync::atomic::AtomicU64) -> io::Result<()> {
    // SAFETY: the action is one relaxed atomic increment: async-signal-safe,
    // no allocation, no lock, cannot panic.
    unsafe {
        signal_hook::low_level::register(sig, move || {
            counter.fetch_add(1, Ordering::Relaxed);
        })
    }
    .map(drop)
}

/// Sets `sig` to be ignored if nobody handles it (default action), so that a
/// stray signal cannot terminate the process (pprof-rs#288).
pub(crate) fn ignore_if_default(sig: c_int) {
    if signal_is_unused(sig) {
        // SAFETY: SIG_IGN is a valid disposition for any catchable signal.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
}

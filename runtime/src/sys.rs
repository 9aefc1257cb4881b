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
    /// The interrupted registers the unwinder starts from (0 where unknown).
    pub regs: Registers,
}

/// Program counter, stack pointer, frame pointer and (aarch64) link register.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Registers {
    pub pc: usize,
    pub sp: usize,
    pub fp: usize,
    pub lr: usize,
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
        S::on_signal(Interrupted {
            value: si.value,
            from_self: si.code == libc::SI_QUEUE && si.pid == me,
            regs: registers(uctx),
        });
    }
    // SAFETY: see above.
    unsafe { *libc::__errno_location() = saved_errno };
}

#[cfg(target_arch = "x86_64")]
fn registers(uctx: *mut c_void) -> Registers {
    if uctx.is_null() {
        return Registers::default();
    }
    // SAFETY: for SA_SIGINFO handlers the third argument is the interrupted
    // thread's ucontext_t, valid for the duration of the handler.
    let gregs = unsafe { &(*(uctx as *const libc::ucontext_t)).uc_mcontext.gregs };
    let reg = |r: c_int| gregs.get(r as usize).map_or(0, |v| *v as usize);
    Registers { pc: reg(libc::REG_RIP), sp: reg(libc::REG_RSP), fp: reg(libc::REG_RBP), lr: 0 }
}

#[cfg(target_arch = "aarch64")]
fn registers(uctx: *mut c_void) -> Registers {
    if uctx.is_null() {
        return Registers::default();
    }
    // SAFETY: as on x86_64, the ucontext_t is valid during the handler.
    let mc = unsafe { &(*(uctx as *const libc::ucontext_t)).uc_mcontext };
    Registers { pc: mc.pc as usize, sp: mc.sp as usize, fp: mc.regs[29] as usize, lr: mc.regs[30] as usize }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn registers(_uctx: *mut c_void) -> Registers {
    Registers::default()
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

/// Installs the capture handler for `sig` with `SA_SIGINFO | SA_RESTART |
/// SA_ONSTACK`; it forwards the interrupted registers to `S`. On the
/// alternate signal stack where the thread has one (every thread std
/// spawns does), the handler costs the interrupted stack nothing.
pub(crate) fn install_capture_handler<S: SignalSink>(sig: c_int) -> io::Result<()> {
    // SAFETY: we build a fully initialised sigaction whose handler is an
    // `extern "C"` fn with the SA_SIGINFO signature; the mask is emptied with sigemptyset.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = raw_capture_handler::<S> as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
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

/// Copies this process's memory from `addr` into `buf` without faulting:
/// returns how many bytes were read, fewer than asked where the range runs
/// into unmapped memory. Async-signal-safe: `process_vm_readv` on ourselves,
/// with iovecs on the stack. The kernel never splits one remote iovec, so
/// the range goes in page-sized pieces and stops at the first unmapped page.
pub(crate) fn read_into(addr: usize, buf: &mut [u8]) -> usize {
    const PAGE: usize = 4096;
    const BATCH: usize = 32;
    let mut done = 0;
    while done < buf.len() {
        let empty = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
        let (mut local, mut remote) = ([empty; BATCH], [empty; BATCH]);
        let (mut n, mut asked, mut at) = (0, 0, done);
        while n < BATCH && at < buf.len() {
            let start = addr.wrapping_add(at);
            let len = (PAGE - start % PAGE).min(buf.len() - at);
            local[n] = libc::iovec { iov_base: buf[at..].as_mut_ptr().cast(), iov_len: len };
            remote[n] = libc::iovec { iov_base: start as *mut c_void, iov_len: len };
            (n, asked, at) = (n + 1, asked + len, at + len);
        }
        // SAFETY: the kernel validates the remote ranges and stops at the first
        // unmapped page instead of faulting; each local iovec is a piece of
        // `buf`, which we borrow mutably for the call.
        let got = unsafe {
            libc::process_vm_readv(libc::getpid(), local.as_ptr(), n as _, remote.as_ptr(), n as _, 0)
        };
        let got = usize::try_from(got).unwrap_or(0);
        done += got;
        if got < asked {
            break;
        }
    }
    done
}

/// One loaded ELF object (the executable, a shared library, the vDSO).
#[derive(Debug, Clone)]
pub(crate) struct LoadedObject {
    /// Path as the loader knows it; empty for the main executable.
    pub name: String,
    /// Load bias: add it to an address of the file to get one in memory.
    pub bias: usize,
    /// Its program headers of interest.
    pub segments: Vec<Segment>,
}

/// One program header: type, file-relative address, size in memory, flags,
/// and where it starts in the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    pub kind: u32,
    pub vaddr: usize,
    pub memsz: usize,
    pub flags: u32,
    pub offset: usize,
}

/// Every object the dynamic loader has loaded, with the loader's counts of
/// loads and unloads so far (they change when the list may have changed).
pub(crate) fn loaded_objects() -> (Vec<LoadedObject>, (u64, u64)) {
    struct Found {
        objects: Vec<LoadedObject>,
        counts: (u64, u64),
    }
    extern "C" fn each(info: *mut libc::dl_phdr_info, size: libc::size_t, data: *mut c_void) -> c_int {
        if info.is_null() || data.is_null() || size < std::mem::size_of::<libc::dl_phdr_info>() {
            return 0;
        }
        // SAFETY: the loader passes a valid dl_phdr_info of at least `size`
        // bytes for the duration of the call, and `data` is the `Found` we
        // passed to dl_iterate_phdr, borrowed only for this call.
        let (info, found) = unsafe { (&*info, &mut *(data as *mut Found)) };
        let name = if info.dlpi_name.is_null() {
            String::new()
        } else {
            // SAFETY: dlpi_name is a NUL-terminated string owned by the loader.
            unsafe { CStr::from_ptr(info.dlpi_name) }.to_string_lossy().into_owned()
        };
        let phdrs: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
            &[]
        } else {
            // SAFETY: dlpi_phdr points at dlpi_phnum program headers of a loaded object.
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
        };
        let segments = phdrs
            .iter()
            .map(|p| Segment {
                kind: p.p_type,
                vaddr: p.p_vaddr as usize,
                memsz: p.p_memsz as usize,
                flags: p.p_flags,
                offset: p.p_offset as usize,
            })
            .collect();
        found.objects.push(LoadedObject { name, bias: info.dlpi_addr as usize, segments });
        found.counts = (info.dlpi_adds, info.dlpi_subs);
        0
    }
    let mut found = Found { objects: Vec::new(), counts: (0, 0) };
    // SAFETY: `each` matches the callback signature and only touches `found`
    // through the pointer we pass, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut found as *mut Found).cast()) };
    (found.objects, found.counts)
}

/// True when DWARF unwinding inside a signal handler is safe in this
/// process: glibc's lock-free `_dl_find_object` is there and libgcc_s (GCC
/// 12+) uses it. Otherwise unwinding there can deadlock on the loader lock.
pub(crate) fn dwarf_unwind_is_signal_safe() -> bool {
    // SAFETY: dlsym on RTLD_DEFAULT with a NUL-terminated name only looks the symbol up.
    let dl_find_object = unsafe { !libc::dlsym(libc::RTLD_DEFAULT, c"_dl_find_object".as_ptr()).is_null() };
    dl_find_object && libgcc_is_12_or_newer()
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

/// Zeroed memory straight from `mmap`: pages become resident only when
/// written, whatever global allocator the program uses (a wrapper that
/// zeroes `alloc_zeroed` by hand would touch every page). Unmapped on drop.
#[derive(Debug)]
pub(crate) struct MappedBuf {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone; moving it to another
// thread moves that ownership, as with a Vec<u8>.
unsafe impl Send for MappedBuf {}

impl MappedBuf {
    /// No memory at all.
    pub(crate) fn empty() -> MappedBuf {
        MappedBuf { ptr: std::ptr::NonNull::dangling().as_ptr(), len: 0 }
    }

    /// Maps `len` bytes of private, zeroed, not-yet-reserved memory.
    pub(crate) fn new(len: usize) -> io::Result<MappedBuf> {
        if len == 0 {
            return Ok(MappedBuf::empty());
        }
        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choosing; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(MappedBuf { ptr: ptr.cast(), len })
    }
}

impl std::ops::Deref for MappedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` readable bytes (mapped in `new`,
        // zero-filled by the kernel) until drop; dangling only when len is 0.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl std::ops::DerefMut for MappedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes this the only borrow.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for MappedBuf {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: exactly the range `new` mapped, unmapped once.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }
}

//! Every call into the OS that needs `unsafe`, kept in one small module.
//!
//! The rest of the crate only sees safe wrappers. Functions marked
//! "async-signal-safe" are the only ones the capture signal handler may use:
//! they do not allocate, lock or panic.

use std::ffi::{CStr, c_int, c_void};
use std::io;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

/// What the interrupted thread was doing when the capture signal arrived.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Interrupted {
    /// Value the sender attached (`sigqueue` payload).
    pub value: u64,
    /// True when this very process sent it: queued with `SI_QUEUE` by us,
    /// or by one of our timers (`SI_TIMER`, whose value sits at the same place).
    pub from_self: bool,
    /// The interrupted registers the unwinder starts from (0 where unknown).
    pub regs: Registers,
    /// The register a system call returns in (`rax`, `x0`): `-EINTR` when
    /// the signal cut a system call short.
    pub result: usize,
}

/// Program counter, stack pointer, frame pointer and (aarch64) link register.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Registers {
    pub pc: usize,
    pub sp: usize,
    pub fp: usize,
    pub lr: usize,
}

/// [`Registers`] in a slot a signal handler writes and another thread
/// reads: four relaxed atomics, published by the slot's own state word.
#[derive(Debug, Default)]
pub(crate) struct AtomicRegisters {
    pc: AtomicUsize,
    sp: AtomicUsize,
    fp: AtomicUsize,
    lr: AtomicUsize,
}

impl AtomicRegisters {
    pub(crate) const fn new() -> Self {
        AtomicRegisters {
            pc: AtomicUsize::new(0),
            sp: AtomicUsize::new(0),
            fp: AtomicUsize::new(0),
            lr: AtomicUsize::new(0),
        }
    }

    /// Async-signal-safe.
    pub(crate) fn store(&self, regs: Registers) {
        self.pc.store(regs.pc, Ordering::Relaxed);
        self.sp.store(regs.sp, Ordering::Relaxed);
        self.fp.store(regs.fp, Ordering::Relaxed);
        self.lr.store(regs.lr, Ordering::Relaxed);
    }

    pub(crate) fn load(&self) -> Registers {
        Registers {
            pc: self.pc.load(Ordering::Relaxed),
            sp: self.sp.load(Ordering::Relaxed),
            fp: self.fp.load(Ordering::Relaxed),
            lr: self.lr.load(Ordering::Relaxed),
        }
    }
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
            from_self: (si.code == libc::SI_QUEUE && si.pid == me) || si.code == libc::SI_TIMER,
            regs: registers(uctx),
            result: result_register(uctx),
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

#[cfg(target_arch = "x86_64")]
fn result_register(uctx: *mut c_void) -> usize {
    if uctx.is_null() {
        return 0;
    }
    // SAFETY: as in `registers`.
    let gregs = unsafe { &(*(uctx as *const libc::ucontext_t)).uc_mcontext.gregs };
    gregs.get(libc::REG_RAX as usize).map_or(0, |v| *v as usize)
}

#[cfg(target_arch = "aarch64")]
fn result_register(uctx: *mut c_void) -> usize {
    if uctx.is_null() {
        return 0;
    }
    // SAFETY: as in `registers`.
    unsafe { (*(uctx as *const libc::ucontext_t)).uc_mcontext.regs[0] as usize }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn result_register(_uctx: *mut c_void) -> usize {
    0
}

/// The machine code of a system call instruction, as it lies in memory
/// (`syscall` on x86_64, `svc #0` on aarch64); empty elsewhere.
pub(crate) const SYSCALL_INSTRUCTION: &[u8] = if cfg!(target_arch = "x86_64") {
    &[0x0f, 0x05]
} else if cfg!(target_arch = "aarch64") {
    &[0x01, 0x00, 0x00, 0xd4]
} else {
    &[]
};

/// The calling thread's name (`comm`, at most 15 bytes and a NUL) into
/// `buf`. Async-signal-safe: one `prctl`.
pub(crate) fn own_thread_name(buf: &mut [u8; 16]) {
    // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL included, into the
    // buffer, which is 16 bytes we borrow mutably.
    let ok = unsafe { libc::prctl(libc::PR_GET_NAME, buf.as_mut_ptr()) } == 0;
    if !ok {
        buf.fill(0);
    }
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
///
/// Every asynchronous signal stays blocked while the handler runs. The
/// alternate stack is small (std gives a few KiB), and a thread parked in
/// the dump handler could otherwise take a CPU sample, or any other
/// handler, on top of it there and overflow it. They are delivered when the
/// handler returns. Faults (`SIGSEGV` and the like) are left unblocked: the
/// kernel kills a thread that faults with them blocked.
pub(crate) fn install_capture_handler<S: SignalSink>(sig: c_int) -> io::Result<()> {
    const FAULTS: [c_int; 6] =
        [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGTRAP, libc::SIGSYS];
    // SAFETY: we build a fully initialised sigaction whose handler is an
    // `extern "C"` fn with the SA_SIGINFO signature; the mask is filled with
    // sigfillset and then only has valid signal numbers removed.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = raw_capture_handler::<S> as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
        libc::sigfillset(&mut action.sa_mask);
        for fault in FAULTS {
            libc::sigdelset(&mut action.sa_mask, fault);
        }
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

/// The calling thread's stack, lowest and highest address, from
/// `pthread_getattr_np`. For the main thread glibc reads
/// `/proc/self/maps` to answer, which allocates: a caller on an allocation
/// path must have its reentry guard up.
pub(crate) fn current_stack_bounds() -> Option<(usize, usize)> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: pthread_getattr_np initialises `attr` for the calling thread
    // when it returns 0; we read it only then, and destroy it once.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let (mut addr, mut size) = (std::ptr::null_mut::<c_void>(), 0usize);
        let rc = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        (rc == 0 && !addr.is_null()).then(|| (addr as usize, addr as usize + size))
    }
}

/// This very function's registers, taken where the stack copy below starts,
/// so an unwinder can start from them over that copy.
#[inline(always)]
fn own_registers() -> Registers {
    let (pc, sp, fp, lr): (usize, usize, usize, usize);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads rip, rsp and rbp into registers; touches no memory.
    unsafe {
        std::arch::asm!(
            "lea {pc}, [rip]", "mov {sp}, rsp", "mov {fp}, rbp",
            pc = out(reg) pc, sp = out(reg) sp, fp = out(reg) fp,
            options(nomem, nostack, preserves_flags)
        );
        lr = 0;
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads pc, sp, x29 and x30 into registers; touches no memory.
    unsafe {
        std::arch::asm!(
            "adr {pc}, .", "mov {sp}, sp", "mov {fp}, x29", "mov {lr}, x30",
            pc = out(reg) pc, sp = out(reg) sp, fp = out(reg) fp, lr = out(reg) lr,
            options(nomem, nostack, preserves_flags)
        );
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        (pc, sp, fp, lr) = (0, 0, 0, 0);
    }
    Registers { pc, sp, fp, lr }
}

/// Copies the calling thread's own stack, from this function's stack
/// pointer up, into bytes `at..at + window` of `buf`, and returns the
/// registers to unwind that copy from and the bytes copied. With `bounds`
/// (the thread's stack, `current_stack_bounds`) holding the stack pointer,
/// a plain copy up to the stack's top; else through the kernel, which stops
/// at unmapped memory. Never inlined: the registers must be this frame's,
/// which stays alive while the copy is made. Allocates nothing.
#[inline(never)]
pub(crate) fn copy_own_stack(
    buf: &MappedBuf,
    at: usize,
    window: usize,
    bounds: Option<(usize, usize)>,
) -> (Registers, usize) {
    let regs = own_registers();
    let room = buf.len.saturating_sub(at).min(window);
    let len = match bounds {
        Some((low, top)) if low <= regs.sp && regs.sp < top => (top - regs.sp).min(room),
        _ => return (regs, buf.fill_from(at, room, regs.sp)),
    };
    // SAFETY: `sp..sp + len` lies within this thread's own mapped stack
    // (between the stack pointer and the stack's top, which `bounds` says),
    // all of it live frames of this thread; `at..at + len` lies inside the
    // mapping, whose range the caller holds exclusively (the ring's slot protocol).
    unsafe { std::ptr::copy_nonoverlapping(regs.sp as *const u8, buf.ptr.add(at), len) };
    (regs, len)
}

/// The allocator hooks of `hotprof::SampledAlloc`: every call goes to the
/// wrapped allocator unchanged; the heap sampler only sees the addresses
/// and sizes.
mod global_alloc {
    use std::alloc::{GlobalAlloc, Layout};

    use crate::heap::{self, SampledAlloc};

    // SAFETY: each method passes its arguments, unchanged, to the wrapped
    // allocator's same method and returns its answer; the hooks neither
    // touch the memory nor allocate through `self`.
    unsafe impl<A: GlobalAlloc> GlobalAlloc for SampledAlloc<A> {
        #[inline]
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: our caller upholds `alloc`'s contract for `layout`.
            let ptr = unsafe { self.inner().alloc(layout) };
            heap::on_alloc(ptr as usize, layout.size());
            ptr
        }

        #[inline]
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: as for `alloc`.
            let ptr = unsafe { self.inner().alloc_zeroed(layout) };
            heap::on_alloc(ptr as usize, layout.size());
            ptr
        }

        #[inline]
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            heap::on_free(ptr as usize);
            // SAFETY: our caller upholds `dealloc`'s contract: `ptr` came
            // from this allocator (so from the wrapped one) with `layout`.
            unsafe { self.inner().dealloc(ptr, layout) }
        }

        #[inline]
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // Forgotten before the call: once it returns, the old address may
            // already be another thread's new block. (Should the call fail,
            // the old block lives on unsampled: one sample lost, never a wrong one.)
            heap::on_free(ptr as usize);
            // SAFETY: our caller upholds `realloc`'s contract, passed on as is.
            let new = unsafe { self.inner().realloc(ptr, layout, new_size) };
            heap::on_alloc(new as usize, new_size);
            new
        }
    }
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

impl MappedBuf {
    /// Copies our own memory at `addr` into bytes `at..at + len` of the
    /// mapping (clamped to it), through the kernel, without faulting; returns
    /// how many bytes it copied. Async-signal-safe. Writers of one range must
    /// own it exclusively (the sample ring's slot protocol sees to it).
    pub(crate) fn fill_from(&self, at: usize, len: usize, addr: usize) -> usize {
        let Some(len) = self.len.checked_sub(at).map(|room| room.min(len)) else { return 0 };
        // SAFETY: `at..at + len` lies inside the mapping, which lives as long
        // as `self`; only the kernel writes through this slice, while the
        // caller holds that range exclusively.
        let dest = unsafe { std::slice::from_raw_parts_mut(self.ptr.add(at), len) };
        read_into(addr, dest)
    }

    /// Hands every page back to the kernel (they read as zero again), so
    /// the memory a session touched leaves the RSS.
    pub(crate) fn release(&self) {
        self.release_range(0, self.len);
    }

    /// Hands the pages of bytes `at..at + len` back to the kernel; `at` and
    /// `len` are multiples of the page size. The caller holds that range.
    pub(crate) fn release_range(&self, at: usize, len: usize) {
        let len = len.min(self.len.saturating_sub(at));
        if len > 0 {
            // SAFETY: MADV_DONTNEED on a range of our own private anonymous
            // mapping only drops its pages; later reads see zeros and writes
            // fault in fresh pages.
            unsafe { libc::madvise(self.ptr.add(at).cast(), len, libc::MADV_DONTNEED) };
        }
    }
}

// SAFETY: shared access only reads, or writes through `fill_from` to ranges
// the caller owns; the mapping itself never moves or shrinks.
unsafe impl Sync for MappedBuf {}

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

/// A directory kept open so that small files under it are read relative to
/// it (`openat`), one `read` each: for `/proc/self/task`, cheaper than
/// walking the whole path and sizing the file for every thread.
#[derive(Debug)]
pub(crate) struct Dir(std::fs::File);

impl Dir {
    pub(crate) fn open(path: &str) -> io::Result<Dir> {
        std::fs::File::open(path).map(Dir)
    }

    /// Reads file `name` under the directory with one `read` into `buf`;
    /// the bytes read. Enough for the short files of `/proc`, which a
    /// single read returns whole when the buffer holds them.
    pub(crate) fn read_small(&self, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::Read as _;
        use std::os::fd::{AsRawFd as _, FromRawFd as _};
        // SAFETY: `openat` reads the NUL-terminated `name` and returns a new
        // descriptor or -1; the directory descriptor lives as long as `self`.
        let fd = unsafe { libc::openat(self.0.as_raw_fd(), name.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nothing else; the File
        // closes it when dropped.
        let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
        file.read(buf)
    }
}

/// A POSIX timer on one thread's CPU clock that signals that very thread
/// (`SIGEV_THREAD_ID`), as Go's profiler does since 1.18. Deleted on drop.
#[derive(Debug)]
pub(crate) struct ThreadTimer(libc::timer_t);

// SAFETY: a timer id is a plain kernel handle, usable from any thread.
unsafe impl Send for ThreadTimer {}

/// The CPU-time clock of thread `tid` of this process (Linux's encoding:
/// `~tid << 3 | CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED`).
fn thread_cpu_clock(tid: i32) -> libc::clockid_t {
    ((!tid) << 3) | 6
}

/// CPU time thread `tid` of this process has used; `None` once it exited.
pub(crate) fn thread_cpu_time(tid: i32) -> Option<Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own; an exited thread's clock fails with EINVAL.
    let rc = unsafe { libc::clock_gettime(thread_cpu_clock(tid), &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

impl ThreadTimer {
    /// A timer on `tid`'s CPU clock that sends `sig` with `value` to `tid`,
    /// first after `first`, then every `every` of that thread's CPU time.
    pub(crate) fn start(
        tid: i32,
        sig: c_int,
        value: u64,
        first: Duration,
        every: Duration,
    ) -> io::Result<ThreadTimer> {
        // SAFETY: a zeroed sigevent is valid; we fill the fields the kernel
        // reads for SIGEV_THREAD_ID. timer_create writes the new id into `id`.
        let id = unsafe {
            let mut ev: libc::sigevent = std::mem::zeroed();
            ev.sigev_notify = libc::SIGEV_THREAD_ID;
            ev.sigev_signo = sig;
            ev.sigev_value = libc::sigval { sival_ptr: value as usize as *mut c_void };
            ev.sigev_notify_thread_id = tid;
            let mut id: libc::timer_t = std::ptr::null_mut();
            if libc::timer_create(thread_cpu_clock(tid), &mut ev, &mut id) != 0 {
                return Err(io::Error::last_os_error());
            }
            id
        };
        let timer = ThreadTimer(id);
        let spec = |d: Duration| libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        };
        let value =
            libc::itimerspec { it_interval: spec(every), it_value: spec(first.max(Duration::from_nanos(1))) };
        // SAFETY: `timer.0` is the timer just created; `value` lives across the call.
        if unsafe { libc::timer_settime(timer.0, 0, &value, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(timer)
    }

    /// Expirations the kernel merged into the last signal it sent.
    pub(crate) fn overruns(&self) -> u64 {
        // SAFETY: `self.0` is a live timer until drop.
        u64::try_from(unsafe { libc::timer_getoverrun(self.0) }).unwrap_or(0)
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        // SAFETY: deletes the timer this value owns, once; no signal is
        // queued by it afterwards (one already queued is still delivered).
        unsafe { libc::timer_delete(self.0) };
    }
}

/// Gives glibc malloc's free memory back to the kernel (`malloc_trim(0)`),
/// after work that allocated and freed a lot (a profile's symbolization).
/// Harmless under another global allocator: glibc's arenas are then small.
pub(crate) fn trim_heap() {
    // SAFETY: malloc_trim only returns free memory of glibc's arenas.
    unsafe { libc::malloc_trim(0) };
}

/// The user id of the process on the other end of a Unix socket
/// (`SO_PEERCRED`, set by the kernel at connect time; cannot be forged).
pub(crate) fn peer_uid(socket: &impl std::os::fd::AsRawFd) -> io::Result<u32> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, which we
    // own; the fd is a live socket borrowed for the call.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc == 0 { Ok(cred.uid) } else { Err(io::Error::last_os_error()) }
}

/// This process's real user id.
pub(crate) fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

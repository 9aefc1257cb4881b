//! hotprof's own sampler: CPU samples from a timer on each thread's CPU
//! clock (`timer_create(CLOCK_THREAD_CPUTIME_ID)` + `SIGEV_THREAD_ID`, as
//! Go since 1.18), wall-clock samples from a ticker that signals the threads
//! that ran (an idle thread's last stack is counted again, as
//! async-profiler does). Both go through one real-time signal whose handler
//! copies registers and stack into the ring (`ring.rs`); the session thread
//! drains it every tick and unwinds the copies off the handler.
//!
//! Nothing is written to disk and nothing else is allocated per sample: the
//! ring is 256 slots of 32 KiB, its pages handed back after each session.

mod ring;

use std::collections::{HashMap, HashSet};
use std::ffi::c_int;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::stacks::{self, Unwinders};
use crate::sys::{self, ThreadTimer};

/// How often the session thread rescans threads and drains the ring.
const TICK: Duration = Duration::from_millis(10);
/// The fastest wall-clock rate: one check of every thread per [`TICK`].
pub(crate) const WALL_MAX_HZ: u32 = 100;
/// Threads signalled per wall-clock tick at most.
const WALL_SIGNALS_PER_TICK: usize = 64;
/// Deepest stack a sample keeps.
const MAX_FRAMES: usize = 128;

/// What a session samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Mode {
    #[default]
    /// CPU time: each thread is sampled every `1/hz` of its own CPU time.
    Cpu,
    /// Wall-clock time: every thread is sampled every `1/hz` of real time.
    Wall,
}

/// A sampled stack of one thread: the interrupted pc then return
/// addresses, its innermost scope's node, its dye, and (wall) whether it ran.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct StackKey {
    pub tid: i32,
    pub frames: Vec<usize>,
    pub node: u32,
    pub dye: u32,
    pub running: bool,
}

/// What a session collected.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    pub counts: HashMap<StackKey, u64>,
    /// Samples the ring had no room for.
    pub dropped: u64,
    /// Timer expirations merged into an earlier signal by the kernel.
    pub overruns: u64,
    /// Threads sampled, by tid: their names.
    pub names: HashMap<i32, String>,
    /// Threads whose timer could not be created.
    pub timer_errors: u64,
}

impl Mode {
    /// How notices name it: `CPU`, `wall-clock`.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Mode::Cpu => "CPU",
            Mode::Wall => "wall-clock",
        }
    }

    /// The kind in its file names: `cpu`, `wall`.
    pub(crate) fn file_kind(self) -> &'static str {
        match self {
            Mode::Cpu => "cpu",
            Mode::Wall => "wall",
        }
    }
}

impl Samples {
    pub(crate) fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// The sample signal, claimed and its handler installed once per process.
fn signal() -> Result<c_int, String> {
    static SIGNAL: OnceLock<Result<c_int, String>> = OnceLock::new();
    SIGNAL
        .get_or_init(|| {
            let sig = stacks::free_signal().ok_or("no free real-time signal for the sampler")?;
            sys::install_capture_handler::<ring::SampleSink>(sig)
                .map_err(|e| format!("cannot install the sample handler for signal {sig}: {e}"))?;
            Ok(sig)
        })
        .clone()
}

static GENERATION: AtomicU32 = AtomicU32::new(0);

/// Samples the whole process in `mode` at `hz` on this thread, while
/// `keep_going` says so (asked every tick).
pub(crate) fn run(mode: Mode, hz: u32, mut keep_going: impl FnMut() -> bool) -> Result<Samples, String> {
    let sig = signal()?;
    let generation = loop {
        let g = GENERATION.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if g != 0 {
            break g;
        }
    };
    if !ring::open(generation) {
        return Err("cannot map the sample ring".into());
    }
    // The wall ticker checks threads once a tick: faster than that it
    // would count idle threads more often than running ones.
    let hz = if mode == Mode::Wall { hz.min(WALL_MAX_HZ) } else { hz };
    let period = Duration::from_nanos(1_000_000_000 / u64::from(hz.max(1)));
    let mut session = Session::new(mode, sig, generation, period);
    while keep_going() {
        session.tick();
        std::thread::sleep(TICK);
    }
    ring::close();
    session.drain();
    ring::release();
    session.samples.dropped += ring::DROPPED.load(Ordering::Relaxed);
    session.samples.overruns += session.timers.values().map(ThreadTimer::overruns).sum::<u64>();
    Ok(session.samples)
}

struct Session {
    mode: Mode,
    sig: c_int,
    generation: u32,
    period: Duration,
    me: i32,
    timers: HashMap<i32, ThreadTimer>,
    unwinders: Unwinders,
    samples: Samples,
    /// Wall: each thread's CPU time at the last tick, and its last stack.
    cpu_seen: HashMap<i32, Duration>,
    /// Wall: threads that block the sample signal (never signalled: it
    /// would queue up), checked once per thread.
    blocking: HashMap<i32, bool>,
    last: HashMap<i32, StackKey>,
    next_wall: Instant,
    rng: u64,
}

impl Session {
    fn new(mode: Mode, sig: c_int, generation: u32, period: Duration) -> Session {
        let mut unwinders = Unwinders::default();
        unwinders.refresh();
        Session {
            mode,
            sig,
            generation,
            period,
            me: sys::gettid(),
            timers: HashMap::new(),
            unwinders,
            samples: Samples::default(),
            cpu_seen: HashMap::new(),
            blocking: HashMap::new(),
            last: HashMap::new(),
            next_wall: Instant::now(),
            rng: sys::monotonic_ns() | 1,
        }
    }

    fn payload(&self) -> u64 {
        u64::from(self.generation) << 32
    }

    /// Drains the ring, then keeps up with the threads and samples (wall).
    /// Draining first gives an idle thread's reused stack the sample its
    /// last signal took, a tick ago.
    fn tick(&mut self) {
        self.drain();
        let tids: Vec<i32> = stacks::thread_ids().into_iter().filter(|t| *t != self.me).collect();
        match self.mode {
            Mode::Cpu => self.keep_timers(&tids),
            Mode::Wall => self.wall_tick(&tids),
        }
    }

    /// A timer for every thread that has none yet; dead threads' timers go.
    fn keep_timers(&mut self, tids: &[i32]) {
        let alive: HashSet<i32> = tids.iter().copied().collect();
        self.timers.retain(|tid, _| alive.contains(tid));
        for &tid in tids {
            if self.timers.contains_key(&tid) {
                continue;
            }
            // The first expiry is random in (0, period], so threads started
            // together are not sampled in lockstep.
            let first = self.period.mul_f64(self.random());
            match ThreadTimer::start(tid, self.sig, self.payload(), first, self.period) {
                Ok(timer) => {
                    self.timers.insert(tid, timer);
                }
                Err(_) => self.samples.timer_errors += 1, // exited meanwhile, mostly
            }
        }
    }

    /// Every `period` of real time: signal the threads whose CPU time moved
    /// (at most [`WALL_SIGNALS_PER_TICK`]); count an idle thread's last stack again.
    fn wall_tick(&mut self, tids: &[i32]) {
        let now = Instant::now();
        let mut periods = 0;
        while self.next_wall <= now {
            self.next_wall += self.period;
            periods += 1;
        }
        if periods == 0 {
            return;
        }
        let mut signalled = 0;
        for &tid in tids {
            let Some(cpu) = sys::thread_cpu_time(tid) else { continue };
            // Ran for more than a fiftieth of the period since the last
            // tick. (Being sampled makes a sleeping thread run a few
            // microseconds: that must not count as running.)
            let seen = self.cpu_seen.insert(tid, cpu);
            let moved = seen.is_none_or(|seen| cpu.saturating_sub(seen) * 50 > self.period);
            let idle_key = (!moved).then(|| self.last.get(&tid).cloned()).flatten();
            match idle_key {
                Some(mut key) => {
                    key.running = false;
                    *self.samples.counts.entry(key).or_default() += periods;
                }
                None if self.blocks(tid) => self.samples.dropped += periods,
                None if signalled < WALL_SIGNALS_PER_TICK => {
                    signalled += 1;
                    let _ = sys::queue_signal_to_thread(tid, self.sig, self.payload());
                }
                None => self.samples.dropped += periods,
            }
        }
    }

    fn blocks(&mut self, tid: i32) -> bool {
        let sig = self.sig;
        *self.blocking.entry(tid).or_insert_with(|| stacks::thread_blocks(tid, sig))
    }

    /// Unwinds every ready sample and counts its stack.
    fn drain(&mut self) {
        let (unwinders, samples, last, wall) =
            (&mut self.unwinders, &mut self.samples, &mut self.last, self.mode == Mode::Wall);
        ring::drain(self.generation, |s| {
            let copy = stacks::StackCopy { start: s.regs.sp, bytes: s.stack };
            let frames = unwinders.dwarf(s.regs, copy, MAX_FRAMES).frames;
            let key = StackKey { tid: s.tid, frames, node: s.node, dye: s.dye, running: true };
            if wall {
                last.insert(s.tid, key.clone());
            }
            *samples.counts.entry(key).or_default() += 1;
        });
        let unnamed: Vec<i32> = self
            .samples
            .counts
            .keys()
            .map(|k| k.tid)
            .filter(|t| !self.samples.names.contains_key(t))
            .collect();
        for tid in unnamed {
            let name = stacks::thread_name(tid).unwrap_or_else(|| tid.to_string());
            self.samples.names.insert(tid, name);
        }
    }

    /// xorshift: spreads first expiries; not for anything else.
    fn random(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        ((self.rng >> 11) as f64 / (1u64 << 53) as f64).max(1e-6)
    }
}

//! The `hotprof-signals` thread: signal-hook turns SIGUSR1 and SIGUSR2 into
//! messages to this thread, which does the work (CPU sessions run on a thread
//! of their own); the signal handlers themselves do nothing else.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use signal_hook::consts::{SIGUSR1, SIGUSR2};
use signal_hook::iterator::{Handle, Signals};

use crate::capture::Capture;
use crate::sys;

/// Every SIGUSR1 delivered, including those merged while a dump was running.
static USR1_DELIVERED: AtomicU64 = AtomicU64::new(0);

/// The running signal thread; `stop` ends it.
#[derive(Debug)]
pub(crate) struct SignalThread {
    handle: Handle,
    thread: JoinHandle<()>,
}

impl SignalThread {
    /// Registers the handlers (from here on SIGUSR1 can no longer kill the
    /// process) and starts the thread that serves them.
    pub(crate) fn start(rt: &'static Capture) -> io::Result<SignalThread> {
        sys::count_deliveries(SIGUSR1, &USR1_DELIVERED)?;
        let mut signals = Signals::new([SIGUSR1, SIGUSR2])?;
        let handle = signals.handle();
        let thread = std::thread::Builder::new().name("hotprof-signals".into()).spawn(move || {
            for sig in signals.forever() {
                if sig == SIGUSR1 {
                    // One iteration stands for every delivery since the last one.
                    let delivered = USR1_DELIVERED.swap(0, Ordering::Relaxed).max(1);
                    rt.on_dump_signal("SIGUSR1", delivered);
                } else if sig == SIGUSR2 {
                    rt.on_profile_signal("SIGUSR2");
                }
            }
        })?;
        Ok(SignalThread { handle, thread })
    }

    /// What each signal does, for the ready line.
    pub(crate) fn names(&self, sigusr2: crate::config::parse::Sigusr2) -> String {
        format!("SIGUSR1 -> thread dump, SIGUSR2 -> {} profile", sigusr2.title())
    }

    /// Stops serving signals and waits for a dump in progress to finish. The
    /// handlers stay registered with nothing to do, so a late SIGUSR1 during
    /// process exit is ignored instead of killing the process.
    pub(crate) fn stop(self) {
        self.handle.close();
        let _ = self.thread.join();
    }
}

//! Dyed traffic: profile only the requests you choose. A future wrapped by
//! [`dyed`] (or a request carrying the header a [`DyeLayer`] watches) marks
//! the thread that polls it with its tag. While marked, the thread's marked
//! calls and `tracing` spans become logical frames even when
//! `HOTPROF_SCOPES=dyed` keeps them off for everything else, and its CPU,
//! wall and heap samples, slow calls and dump entries carry a `dye` label.

#[cfg(feature = "http")]
mod layer;
mod tags;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use crate::scope::threads::{self, ThreadFrames};
use crate::switch;

#[cfg(feature = "http")]
pub use layer::{DyeLayer, DyeService};
pub use tags::MAX_TAG_LEN;
pub(crate) use tags::{IGNORED, name};

/// Runs `future` dyed with `tag`: while it is polled, its marked calls and
/// spans are recorded even when scopes are captured for dyed traffic only
/// (`HOTPROF_SCOPES=dyed`), and its samples, slow calls and dump entries
/// carry the label `dye=<tag>`.
///
/// The tag is trimmed, cut to [`MAX_TAG_LEN`] bytes, and characters other
/// than letters, digits and `._-:/+=@` become `_`. An empty tag, or one
/// that is not visible ASCII, is ignored with a counted notice: the future
/// then runs undyed. Tasks it spawns are not dyed; wrap them too, with
/// [`current_dye`].
///
/// ```no_run
/// # async fn handle() {}
/// # async fn demo() {
/// hotprof::dyed("canary", handle()).await;
/// # }
/// ```
pub fn dyed<F: Future>(tag: &str, future: F) -> Dyed<F> {
    Dyed { future, dye: tags::tag_id(tag.as_bytes(), "hotprof::dyed"), counted: false }
}

/// The tag of the dyed traffic this thread is running now, if any: to dye
/// the tasks a dyed request spawns.
pub fn current_dye() -> Option<&'static str> {
    threads::peek().and_then(|t| name(t.dye.load(Ordering::Relaxed)))
}

/// Whether this thread is running dyed traffic. Async-signal-safe. Out of
/// line: the switch asks only while a dyed future is alive, and inlined
/// this would weigh on every marked call's capture-off path.
#[inline(never)]
pub(crate) fn here() -> bool {
    current_id() != 0
}

/// The dye id this thread runs under, 0 for none. Async-signal-safe (a
/// const thread-local, then an atomic), for the sample handlers.
#[inline]
pub(crate) fn current_id() -> u32 {
    threads::peek().map_or(0, |t| t.dye.load(Ordering::Relaxed))
}

pin_project_lite::pin_project! {
    /// A future that runs dyed (see [`dyed`]).
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Dyed<F> {
        #[pin]
        future: F,
        // The tag's id; 0 when the tag was ignored.
        dye: u32,
        // Counted among the live dyed futures the switch word holds.
        counted: bool,
    }

    impl<F> PinnedDrop for Dyed<F> {
        fn drop(this: Pin<&mut Self>) {
            if *this.project().counted {
                switch::dyed_ended();
            }
        }
    }
}

impl<F: Future> Future for Dyed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if *this.dye == 0 {
            return this.future.poll(cx);
        }
        if !*this.counted {
            *this.counted = true;
            switch::dyed_started();
        }
        let result = under(*this.dye, || this.future.poll(cx));
        if result.is_ready() {
            *this.counted = false;
            switch::dyed_ended();
        }
        result
    }
}

/// Runs `f` with this thread dyed `dye` (the dye before it back afterwards,
/// also when `f` panics).
fn under<R>(dye: u32, f: impl FnOnce() -> R) -> R {
    struct Restore(&'static ThreadFrames, u32);
    impl Drop for Restore {
        fn drop(&mut self) {
            self.0.dye.store(self.1, Ordering::Relaxed);
        }
    }
    // A thread being torn down has no record: its poll runs undyed.
    let Some(t) = threads::local() else { return f() };
    let _restore = Restore(t, t.dye.swap(dye, Ordering::Relaxed));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_dyed_poll_marks_its_thread_and_nothing_after() {
        let mut inner = std::pin::pin!(dyed("dye-test-inner", async { current_dye() }));
        let mut outer = std::pin::pin!(dyed("dye-test-outer", async {
            let before = current_dye();
            let inner = dyed("dye-test-inner", async { current_dye() }).await;
            (before, inner, current_dye())
        }));
        assert_eq!(
            poll_once(outer.as_mut()),
            Poll::Ready((Some("dye-test-outer"), Some("dye-test-inner"), Some("dye-test-outer")))
        );
        assert_eq!(current_dye(), None);
        assert_eq!(poll_once(inner.as_mut()), Poll::Ready(Some("dye-test-inner")));
    }

    #[test]
    fn a_bad_tag_runs_undyed() {
        let before = IGNORED.load(Ordering::Relaxed);
        let mut f = std::pin::pin!(dyed("\u{7}", async { current_dye() }));
        assert_eq!(poll_once(f.as_mut()), Poll::Ready(None));
        assert!(IGNORED.load(Ordering::Relaxed) > before);
    }

    #[test]
    fn a_panicking_poll_leaves_the_thread_undyed() {
        let caught = std::panic::catch_unwind(|| {
            let mut f = std::pin::pin!(dyed("dye-test-panic", async { panic!("boom") }));
            let _ = poll_once(f.as_mut());
        });
        assert!(caught.is_err());
        assert_eq!(current_dye(), None);
    }
}

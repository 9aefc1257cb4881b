//! `tracing` spans as logical frames (feature `tracing`).
//!
//! ```no_run
//! use tracing_subscriber::layer::SubscriberExt as _;
//! use tracing_subscriber::util::SubscriberInitExt as _;
//!
//! tracing_subscriber::registry().with(hotprof::tracing::layer()).init();
//! ```
//!
//! Every span entered on a thread becomes a frame of that thread's logical
//! stack, exactly as a `#[hotprof::profile]` call does: thread dumps list
//! it with its recorded fields (`heron_request{id=7 client="osprey"}`), and
//! CPU and wall-clock samples taken inside it carry its name as the `scope`
//! label. A span entered before and not now (an async task parked inside
//! `Instrument` or an `#[instrument]` `async fn`) is listed as a parked
//! task, with its parent spans. Entering and exiting a span costs the layer no allocation and no
//! lock: spans and callsites are found in fixed lock-free tables; fields are
//! formatted when a span is created or records.

use std::fmt::Write as _;

use ::tracing::field::{Field, Visit};
use ::tracing::{Id, Subscriber, span};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::scope::{self, Scope, spans};

/// The layer; see the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct HotprofLayer {
    slow_ns: u64,
}

/// A `tracing_subscriber` layer that makes entered spans logical frames.
pub fn layer() -> HotprofLayer {
    HotprofLayer::default()
}

impl HotprofLayer {
    /// A span open longer than `threshold` (from its first enter) writes a
    /// slow-call event, with its fields, through the guard: once while it
    /// is still open (and, with `HOTPROF_SLOW_CPU=on`, a CPU profile window
    /// labelled with it), or when it closes. As `#[hotprof::profile(threshold)]`
    /// does for a marked call; set before the first span is created.
    pub fn slow_spans(mut self, threshold: std::time::Duration) -> Self {
        self.slow_ns = u64::try_from(threshold.as_nanos()).unwrap_or(u64::MAX).max(1);
        self
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for HotprofLayer {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let meta = attrs.metadata();
        let key = std::ptr::from_ref(meta) as usize as u64;
        let slow = self.slow_ns;
        let make = || Scope::new(meta.name(), meta.file().unwrap_or("?"), meta.line().unwrap_or(0), slow);
        let Some(callsite) = spans::callsite(key, make) else { return };
        let mut fields = FieldText::default();
        attrs.record(&mut fields);
        let parent = ctx.span(id).and_then(|s| s.parent()).map_or(0, |p| p.id().into_u64());
        spans::open(id.into_u64(), callsite, parent, fields.0);
    }

    fn on_record(&self, id: &Id, values: &span::Record<'_>, _ctx: Context<'_, S>) {
        let mut fields = FieldText::default();
        values.record(&mut fields);
        spans::record(id.into_u64(), &fields.0);
    }

    fn on_enter(&self, id: &Id, _ctx: Context<'_, S>) {
        scope::enter_span(id.into_u64());
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        scope::exit_span(id.into_u64());
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        spans::close(id.into_u64());
    }
}

/// Fields as `name=value` pairs, strings quoted (`id=7 client="osprey"`).
#[derive(Default)]
struct FieldText(String);

impl Visit for FieldText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        let _ = write!(self.0, "{}={value:?}", field.name());
    }
}

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
//! label. A live span not entered now (an async task parked inside
//! `Instrument` or an `#[instrument]` `async fn`, or not polled yet) is
//! listed as a parked task, with its parent spans. Entering and exiting a
//! span costs the layer no allocation, no lock and no lookup (the span's
//! id goes on the thread's logical stack); spans and callsites are kept in
//! fixed lock-free tables; fields are formatted when a span is created or
//! records.

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
    /// A span open longer than `threshold` (from its creation) writes a
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
        // Not recorded here (capture off, or undyed traffic with
        // `HOTPROF_SCOPES=dyed`): the span is never tracked, and costs one
        // load; its enters find nothing and push no frame.
        if !crate::switch::scopes_here() {
            return;
        }
        let meta = attrs.metadata();
        let key = std::ptr::from_ref(meta) as usize as u64;
        let slow = self.slow_ns;
        let make = || Scope::new(meta.name(), meta.file().unwrap_or("?"), meta.line().unwrap_or(0), slow);
        let Some(callsite) = spans::callsite(key, make) else { return };
        // The parent as the registry sets it, without looking the new span up.
        let parent = if attrs.is_contextual() {
            ctx.current_span().id().map_or(0, Id::into_u64)
        } else {
            attrs.parent().map_or(0, Id::into_u64)
        };
        spans::open(id.into_u64(), callsite, parent, |text| attrs.record(&mut FieldText(text)));
    }

    fn on_record(&self, id: &Id, values: &span::Record<'_>, _ctx: Context<'_, S>) {
        spans::record(id.into_u64(), |text| values.record(&mut FieldText(text)));
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

/// Appends fields as `name=value` pairs, strings quoted (`id=7
/// client="osprey"`), up to [`spans::MAX_FIELDS`] bytes in all.
struct FieldText<'a>(&'a mut String);

impl FieldText<'_> {
    /// Appends `name=` and then, through `value`, the value, within the bound.
    fn push(&mut self, field: &Field, value: impl FnOnce(&mut String) -> std::fmt::Result) {
        let text = &mut *self.0;
        if text.len() >= spans::MAX_FIELDS {
            return;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(field.name());
        text.push('=');
        let _ = value(text);
        if text.len() > spans::MAX_FIELDS {
            let mut cut = spans::MAX_FIELDS;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
    }
}

// Integers and booleans are written without the `Debug` machinery: most
// span fields are ids and counts, and this runs for every span created.
impl Visit for FieldText<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, |t| write!(t, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, |t| write!(t, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, |t| {
            t.push_str(if value { "true" } else { "false" });
            Ok(())
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, |t| write!(t, "{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn fields_are_kept_to_a_bounded_text() {
        crate::switch::set(true);
        let subscriber = tracing_subscriber::registry().with(layer());
        ::tracing::subscriber::with_default(subscriber, || {
            let long = "é".repeat(400);
            let span =
                ::tracing::info_span!("long_fields", id = 7, note = %long, more = ::tracing::field::Empty);
            let id = span.id().map(|id| id.into_u64()).unwrap_or(0);
            span.record("more", 8);
            let text = spans::fields(id).unwrap_or_default();
            assert!(text.starts_with("id=7 note=éé"), "{text}");
            assert!(text.ends_with('…') && text.len() <= spans::MAX_FIELDS + '…'.len_utf8(), "{text}");
            assert!(!text.contains("more"), "fields past the bound are dropped: {text}");
        });
    }
}

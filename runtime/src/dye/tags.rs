//! Dye tags: what a caller or a request header names its traffic, cleaned
//! and interned. A tag is a small id on hot paths (the sample handler copies
//! the id, never the text) and its text for readers. The table is bounded:
//! past [`MAX_TAGS`] distinct tags, new ones share one overflow tag, so a
//! client sending a fresh header value with every request cannot grow it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::notices::{self, RefusalLog};

/// Longest tag kept, in bytes; longer values are cut to it.
pub const MAX_TAG_LEN: usize = 64;
/// Distinct tags tracked.
const MAX_TAGS: usize = 256;
/// Where tags past [`MAX_TAGS`] go; no cleaned value can look like it.
const OVERFLOW: &str = "(more dye tags than hotprof tracks)";

/// Tag texts by id - 1 (id 0 means undyed). Written once each.
static NAMES: [OnceLock<&'static str>; MAX_TAGS + 1] = [const { OnceLock::new() }; MAX_TAGS + 1];
static IDS: OnceLock<RwLock<HashMap<&'static str, u32>>> = OnceLock::new();
/// Values ignored because they were empty or not visible ASCII.
pub(crate) static IGNORED: AtomicU64 = AtomicU64::new(0);
static IGNORED_LOG: Mutex<Option<RefusalLog>> = Mutex::new(None);

/// Why a value is no tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bad {
    Empty,
    NotVisibleAscii,
}

/// `raw` as a tag: surrounding spaces trimmed, cut to [`MAX_TAG_LEN`], and
/// every character other than letters, digits and `._-:/+=@` replaced by
/// `_`, so that a tag reads the same in every file format.
pub(crate) fn clean(raw: &[u8]) -> Result<Cow<'_, str>, Bad> {
    let raw = raw.trim_ascii();
    if raw.is_empty() {
        return Err(Bad::Empty);
    }
    if !raw.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return Err(Bad::NotVisibleAscii);
    }
    let raw = &raw[..raw.len().min(MAX_TAG_LEN)];
    let kept = |b: &u8| b.is_ascii_alphanumeric() || b"._-:/+=@".contains(b);
    let text = std::str::from_utf8(raw).map_err(|_| Bad::NotVisibleAscii)?;
    Ok(if raw.iter().all(kept) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(raw.iter().map(|b| if kept(b) { *b as char } else { '_' }).collect())
    })
}

fn ids() -> &'static RwLock<HashMap<&'static str, u32>> {
    IDS.get_or_init(|| RwLock::new(HashMap::new()))
}

/// The id of cleaned tag `tag`, interned on first use.
pub(crate) fn intern(tag: &str) -> u32 {
    if let Some(&id) = ids().read().unwrap_or_else(PoisonError::into_inner).get(tag) {
        return id;
    }
    let mut ids = ids().write().unwrap_or_else(PoisonError::into_inner);
    if let Some(&id) = ids.get(tag) {
        return id;
    }
    let (text, id): (&'static str, u32) = if ids.len() < MAX_TAGS - 1 {
        (Box::leak(tag.into()), ids.len() as u32 + 1)
    } else {
        (OVERFLOW, MAX_TAGS as u32)
    };
    if let Some(slot) = NAMES.get(id as usize - 1) {
        let _ = slot.set(text);
    }
    if text != OVERFLOW {
        ids.insert(text, id);
    }
    id
}

/// The text of tag `id`; `None` for 0 (undyed) and unknown ids.
pub(crate) fn name(id: u32) -> Option<&'static str> {
    NAMES.get((id as usize).checked_sub(1)?)?.get().copied()
}

/// The tag id for `raw`, or 0 (undyed) with a counted notice when `raw` is
/// no tag; `from` says where it came from, for the notice.
pub(crate) fn tag_id(raw: &[u8], from: &str) -> u32 {
    match clean(raw) {
        Ok(tag) => intern(&tag),
        Err(bad) => {
            ignored(bad, from);
            0
        }
    }
}

/// Counts an ignored value and says so, once a minute at most.
fn ignored(bad: Bad, from: &str) {
    IGNORED.fetch_add(1, Ordering::Relaxed);
    let mut log = IGNORED_LOG.lock().unwrap_or_else(PoisonError::into_inner);
    let log = log.get_or_insert_with(|| RefusalLog::new(Duration::from_secs(60)));
    if let Some(before) = log.refuse(Instant::now(), 1) {
        let why = match bad {
            Bad::Empty => "empty",
            Bad::NotVisibleAscii => "not visible ASCII",
        };
        let more = if before > 0 {
            format!(" ({before} more ignored since the last notice)")
        } else {
            String::new()
        };
        notices::notice(&format!("{from}: dye value ignored ({why}); the traffic runs undyed{more}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_trimmed_cut_and_sanitized() {
        assert_eq!(clean(b" canary ").as_deref(), Ok("canary"));
        assert_eq!(clean(b"user 42/\"x\"{y}").as_deref(), Ok("user_42/_x__y_"));
        assert_eq!(clean(&[b'a'; 200]).map(|t| t.len()), Ok(MAX_TAG_LEN));
        assert_eq!(clean(b"  "), Err(Bad::Empty));
        assert_eq!(clean(b"caf\xc3\xa9"), Err(Bad::NotVisibleAscii));
        assert_eq!(clean(b"a\nb"), Err(Bad::NotVisibleAscii));
    }

    #[test]
    // The bound is tested with a real header flood (examples/tests/dye.rs):
    // filling the table here would leave the other unit tests no room.
    fn tags_are_interned_once() {
        let a = intern("tags-test-a");
        assert_eq!(intern("tags-test-a"), a);
        assert_ne!(intern("tags-test-b"), a);
        assert_eq!(name(a), Some("tags-test-a"));
        assert_eq!(name(0), None);
    }
}

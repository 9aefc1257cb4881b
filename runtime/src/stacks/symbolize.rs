//! Instruction pointers to function, file and line, off the signal handler,
//! with a bounded cache.

use std::collections::HashMap;
use std::sync::Arc;

/// One source-level frame; an address can map to several (inlining).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFrame {
    /// Demangled function name without the hash, or `??`.
    pub function: String,
    /// Source file, when debug info has it.
    pub file: Option<String>,
    /// Line in `file`.
    pub line: Option<u32>,
}

/// Most addresses kept between dumps; past it the cache starts over.
const CACHE_CAP: usize = 16_384;

/// Resolves addresses, remembering recent answers.
#[derive(Debug, Default)]
pub(crate) struct Symbolizer {
    cache: HashMap<usize, Arc<[SourceFrame]>>,
}

impl Symbolizer {
    /// Resolves one frame. `exact` is true for an interrupted program counter;
    /// false for return addresses, which point just past their call.
    pub(crate) fn resolve(&mut self, addr: usize, exact: bool) -> Arc<[SourceFrame]> {
        // backtrace::resolve looks up `addr - 1` (right for return addresses).
        let lookup = if exact { addr.wrapping_add(1) } else { addr };
        if let Some(hit) = self.cache.get(&lookup) {
            return hit.clone();
        }
        let mut frames = Vec::new();
        backtrace::resolve(lookup as *mut std::ffi::c_void, |sym| {
            frames.push(SourceFrame {
                function: sym.name().map_or_else(|| "??".to_string(), |n| format!("{n:#}")),
                file: sym.filename().map(|f| f.display().to_string()),
                line: sym.lineno(),
            });
        });
        if frames.is_empty() {
            frames.push(SourceFrame { function: "??".to_string(), file: None, line: None });
        }
        let frames: Arc<[SourceFrame]> = frames.into();
        if self.cache.len() >= CACHE_CAP {
            self.cache.clear();
        }
        self.cache.insert(lookup, frames.clone());
        frames
    }

    /// Drops the debug info parsed for this dump; our small address cache stays.
    pub(crate) fn release(&mut self) {
        backtrace::clear_symbol_cache();
    }
}

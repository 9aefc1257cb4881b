//! Instruction pointers to function, file and line: one symbolizer for the
//! process, on hotprof's own `hotprof-symbols` thread (started with
//! hotprof, so every dump lists it), kept warm between dumps.
//!
//! It reads each module's DWARF and ELF symbol table with `blazesym`, which
//! maps files and parses lazily; what it parsed for a dump stays until the
//! loaded modules change or [`IDLE`] passes without a lookup (a profile's
//! lookups drop it at once: see `resolve_once`). Names come from DWARF
//! (inlined frames included); a function whose DWARF name is short
//! (`debug = "line-tables-only"`) takes its full path from the ELF symbol
//! table. An address nothing names keeps its module, its address in that
//! file and the module's build ID, for symbolization elsewhere.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use blazesym::symbolize::source::{Elf, Source};
use blazesym::symbolize::{Input, Sym, Symbolized};

use super::modules::{LoadedModule, Modules};

/// One source-level frame; an address can map to several (inlining).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceFrame {
    /// Demangled function name without the hash, or `??`.
    pub function: String,
    /// The mangled symbol it was demangled from, when the debug info or
    /// symbol table had one (pprof's `system_name`).
    pub mangled: Option<String>,
    /// Source file, when debug info has it.
    pub file: Option<String>,
    /// Line in `file`.
    pub line: Option<u32>,
}

/// Where an address lies in the file it was loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModuleOffset {
    /// The file's path.
    pub path: Arc<str>,
    /// The address looked up, as the file numbers it (what `addr2line -e
    /// FILE` takes).
    pub address: u64,
    /// The file's GNU build ID, in hex.
    pub build_id: Option<Arc<str>>,
    /// The executable segment holding the address, in memory: start and end.
    pub segment: (u64, u64),
    /// That segment's offset in the file.
    pub segment_offset: u64,
}

/// What one address resolves to.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// Innermost inlined function first; `??` alone when nothing names it.
    pub source: Arc<[SourceFrame]>,
    pub module: Option<ModuleOffset>,
}

/// An address to resolve: an interrupted pc (`exact`) is looked up as is,
/// a return address one byte back, inside its call instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Lookup {
    pub pc: usize,
    pub exact: bool,
}

impl Lookup {
    fn address(self) -> usize {
        if self.exact { self.pc } else { self.pc.saturating_sub(1) }
    }
}

/// Most addresses kept between dumps; past it the cache starts over.
const CACHE_CAP: usize = 16_384;
/// Parsed symbols are dropped after this long without a lookup.
const IDLE: Duration = Duration::from_secs(300);
/// Longest a dump waits for its symbols before printing addresses alone.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// Lookups, whether to keep what was parsed for them, and where to answer.
type Job = (Vec<Lookup>, bool, Sender<Vec<Resolved>>);

/// The handle of the symbolizer thread; cheap to keep and to clone, `Send`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Symbolizer {
    jobs: Option<Sender<Job>>,
}

impl Symbolizer {
    /// Starts the symbolizer thread unless it runs.
    pub(crate) fn start(&mut self) -> std::io::Result<()> {
        if self.jobs.is_none() {
            self.jobs = Some(start()?);
        }
        Ok(())
    }

    /// Resolves every lookup, in order, and keeps what it parsed warm for
    /// the next dump. Without a symbolizer thread (it could not start, or
    /// failed), every frame is `??`.
    pub(crate) fn resolve_all(&mut self, lookups: Vec<Lookup>) -> Vec<Resolved> {
        self.resolve(lookups, true)
    }

    /// Like [`Self::resolve_all`], then drops what it parsed: for a profile,
    /// taken seldom, whose session must leave the RSS about as it found it.
    pub(crate) fn resolve_once(&mut self, lookups: Vec<Lookup>) -> Vec<Resolved> {
        self.resolve(lookups, false)
    }

    /// Starts parsing what a dump will need, without waiting: the
    /// modules holding `pcs` (this binary and libc, where most threads
    /// are). Sent as a dump's capture starts, so that the first dump's
    /// parsing overlaps its capture; a no-op for a warm symbolizer.
    pub(crate) fn prepare(&mut self, pcs: &[usize]) {
        let lookups = pcs.iter().map(|&pc| Lookup { pc, exact: true }).collect();
        // Nobody waits for the answer: the thread's send of it fails quietly.
        let (reply, _) = mpsc::channel();
        self.send((lookups, true, reply));
    }

    fn resolve(&mut self, lookups: Vec<Lookup>, keep_warm: bool) -> Vec<Resolved> {
        let n = lookups.len();
        match self.ask(lookups, keep_warm) {
            Some(answer) if answer.len() == n => answer,
            _ => vec![unknown(None); n],
        }
    }

    fn ask(&mut self, lookups: Vec<Lookup>, keep_warm: bool) -> Option<Vec<Resolved>> {
        let (reply, answer) = mpsc::channel();
        if !self.send((lookups, keep_warm, reply)) {
            return None;
        }
        answer.recv_timeout(ANSWER_WAIT).ok()
    }

    /// Hands `job` to the symbolizer thread, starting it if it does not
    /// run; false when there is none to take it.
    fn send(&mut self, job: Job) -> bool {
        if self.jobs.is_none() {
            self.jobs = start().ok();
        }
        let Some(jobs) = &self.jobs else { return false };
        if jobs.send(job).is_err() {
            self.jobs = None; // the thread ended; the next dump starts another
            return false;
        }
        true
    }
}

fn start() -> std::io::Result<Sender<Job>> {
    let (jobs, inbox) = mpsc::channel::<Job>();
    std::thread::Builder::new().name("hotprof-symbols".into()).spawn(move || serve(&inbox))?;
    Ok(jobs)
}

/// The symbolizer thread: answers jobs; drops what it parsed when idle.
fn serve(inbox: &Receiver<Job>) {
    let mut warm: Option<Warm> = None;
    loop {
        match inbox.recv_timeout(IDLE) {
            Ok((lookups, keep_warm, reply)) => {
                let w = warm.get_or_insert_with(Warm::default);
                let _ = reply.send(w.resolve_all(&lookups));
                if !keep_warm {
                    warm = None;
                    crate::sys::trim_heap();
                }
            }
            Err(RecvTimeoutError::Timeout) => warm = None,
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// What the symbolizer keeps between dumps.
#[derive(Default)]
struct Warm {
    blaze: Option<blazesym::symbolize::Symbolizer>,
    modules: Modules,
    cache: HashMap<Lookup, Resolved>,
}

impl Warm {
    fn resolve_all(&mut self, lookups: &[Lookup]) -> Vec<Resolved> {
        if self.modules.refresh() {
            // Other files at other places: start over.
            self.blaze = None;
            self.cache.clear();
        }
        if self.cache.len() >= CACHE_CAP {
            self.cache.clear();
        }
        let blaze = self.blaze.get_or_insert_with(|| {
            blazesym::symbolize::Symbolizer::builder()
                .enable_code_info(true)
                .enable_inlined_fns(true)
                .enable_demangling(false) // we demangle, keeping the hash off
                .enable_auto_reload(false)
                .build()
        });
        let misses: Vec<Lookup> = lookups.iter().filter(|l| !self.cache.contains_key(l)).copied().collect();
        let mut by_module: HashMap<usize, Vec<Lookup>> = HashMap::new();
        for l in misses {
            match self.modules.find(l.address()) {
                Some(i) => by_module.entry(i).or_default().push(l),
                None => {
                    self.cache.insert(l, unknown(None));
                }
            }
        }
        for (i, group) in by_module {
            let module = &self.modules.list[i];
            for (l, resolved) in group.iter().zip(symbolize(blaze, module, &group)) {
                self.cache.insert(*l, resolved);
            }
        }
        lookups.iter().map(|l| self.cache.get(l).cloned().unwrap_or_else(|| unknown(None))).collect()
    }
}

/// Resolves `group`, all inside `module`.
fn symbolize(
    blaze: &blazesym::symbolize::Symbolizer,
    module: &LoadedModule,
    group: &[Lookup],
) -> Vec<Resolved> {
    let addrs: Vec<u64> = group.iter().map(|l| module.file_address(l.address()) as u64).collect();
    let offsets = |l: &Lookup| {
        let (start, limit, offset) = module.segment(l.address()).unwrap_or_default();
        ModuleOffset {
            path: module.path.clone(),
            address: module.file_address(l.address()) as u64,
            build_id: module.build_id.clone(),
            segment: (start as u64, limit as u64),
            segment_offset: offset as u64,
        }
    };
    let Some(path) = module.open_path.as_deref() else {
        return group.iter().map(|l| unknown(Some(offsets(l)))).collect();
    };
    let mut debug = Elf::new(Path::new(path));
    debug.debug_syms = true;
    let mut table = Elf::new(Path::new(path));
    table.debug_syms = false;
    let from_debug = blaze.symbolize(&Source::Elf(debug), Input::VirtOffset(&addrs)).unwrap_or_default();
    let from_table = blaze.symbolize(&Source::Elf(table), Input::VirtOffset(&addrs)).unwrap_or_default();
    group
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let dwarf = from_debug.get(i).and_then(Symbolized::as_sym);
            let symtab = from_table.get(i).and_then(Symbolized::as_sym);
            match frames(dwarf, symtab) {
                Some(source) => Resolved { source, module: Some(offsets(l)) },
                None => unknown(Some(offsets(l))),
            }
        })
        .collect()
}

/// The source frames of one address, innermost first: the inlined
/// functions (each with the line inside it), then the function itself.
fn frames(dwarf: Option<&Sym<'_>>, symtab: Option<&Sym<'_>>) -> Option<Arc<[SourceFrame]>> {
    let sym = dwarf.or(symtab)?;
    let code = |c: Option<&blazesym::symbolize::CodeInfo<'_>>| {
        c.map_or((None, None), |c| (Some(c.to_path().display().to_string()), c.line))
    };
    let mut out = Vec::with_capacity(sym.inlined.len() + 1);
    // blazesym gives each inlined function the line inside it, and the
    // function the line of its first inlined call: walk innermost first.
    for f in sym.inlined.iter().rev() {
        let (file, line) = code(f.code_info.as_ref());
        out.push(named(&f.name, file, line));
    }
    let (file, line) = code(sym.code_info.as_deref());
    out.push(named(full_name(sym, symtab), file, line));
    Some(out.into())
}

fn named(raw: &str, file: Option<String>, line: Option<u32>) -> SourceFrame {
    let mangled = is_mangled(raw).then(|| raw.to_string());
    SourceFrame { function: demangle(raw), mangled, file, line }
}

/// The function's name as found: DWARF's linkage name when it has one,
/// else the symbol table's when it names the same function (full path),
/// else DWARF's short name.
fn full_name<'a>(sym: &'a Sym<'_>, symtab: Option<&'a Sym<'_>>) -> &'a str {
    if is_mangled(&sym.name) {
        return &sym.name;
    }
    match symtab {
        Some(t) if t.addr == sym.addr && is_mangled(&t.name) => &t.name,
        _ => &sym.name,
    }
}

fn is_mangled(name: &str) -> bool {
    name.starts_with("_ZN") || name.starts_with("_R")
}

/// Rust names without the hash suffix; others as they are.
fn demangle(name: &str) -> String {
    match rustc_demangle::try_demangle(name) {
        Ok(d) => format!("{d:#}"),
        Err(_) => name.to_string(),
    }
}

fn unknown(module: Option<ModuleOffset>) -> Resolved {
    Resolved {
        source: Arc::from(vec![SourceFrame { function: "??".into(), mangled: None, file: None, line: None }]),
        module,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_function_with_a_long_name_to_find() -> usize {
        std::hint::black_box(a_function_with_a_long_name_to_find as *const () as usize)
    }

    #[test]
    fn resolves_our_own_functions_with_their_path() {
        let pc = a_function_with_a_long_name_to_find();
        let mut symbolizer = Symbolizer::default();
        let answer = symbolizer.resolve_all(vec![Lookup { pc, exact: true }, Lookup { pc: 1, exact: true }]);
        let name = &answer[0].source.last().unwrap().function;
        assert!(name.ends_with("tests::a_function_with_a_long_name_to_find"), "{name}");
        assert!(name.starts_with("hotprof::"), "{name}");
        assert!(answer[0].module.as_ref().is_some_and(|m| m.build_id.is_some()), "{:?}", answer[0].module);
        assert_eq!(answer[1].source[0].function, "??", "not in any module");
        assert!(answer[1].module.is_none());
    }

    #[test]
    fn demangles_without_the_hash() {
        assert_eq!(demangle("_ZN4core3ptr13drop_in_place17h0123456789abcdefE"), "core::ptr::drop_in_place");
        assert_eq!(demangle("main"), "main");
        assert!(is_mangled("_ZN3foo3barE") && !is_mangled("pangolin_hot_loop"));
    }
}

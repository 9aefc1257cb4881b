//! The objects loaded in this process (the executable, each shared library,
//! the vDSO): where each lies in memory, the file it came from, its GNU
//! build ID, and an address's place in that file, for offline symbolization.

use std::sync::Arc;

use crate::sys::{self, LoadedObject};

pub(crate) const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
pub(crate) const PF_X: u32 = 1;
const NT_GNU_BUILD_ID: u32 = 3;

/// One loaded object.
#[derive(Debug, Clone)]
pub(crate) struct LoadedModule {
    /// The file as the process sees it (for the executable, its path).
    pub path: Arc<str>,
    /// A file hotprof can open for its symbols: `/proc/self/exe` for the
    /// executable (right even after a deploy replaced the file); `None` for
    /// the vDSO, which has no file.
    pub open_path: Option<Arc<str>>,
    pub bias: usize,
    /// The executable segments, in memory.
    pub exec: Vec<std::ops::Range<usize>>,
    /// Hex GNU build ID, when the object has one.
    pub build_id: Option<Arc<str>>,
    pub object: LoadedObject,
}

impl LoadedModule {
    fn new(object: LoadedObject) -> LoadedModule {
        let (path, open_path): (Arc<str>, Option<Arc<str>>) = if object.name.is_empty() {
            let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
            (exe.into(), Some("/proc/self/exe".into()))
        } else if object.name.starts_with("linux-vdso") || object.name.starts_with("linux-gate") {
            ("[vdso]".into(), None)
        } else {
            (object.name.as_str().into(), Some(object.name.as_str().into()))
        };
        let exec = object
            .segments
            .iter()
            .filter(|s| s.kind == PT_LOAD && s.flags & PF_X != 0)
            .map(|s| object.bias + s.vaddr..object.bias + s.vaddr + s.memsz)
            .collect();
        let build_id =
            build_id(&object).map(|id| id.iter().map(|b| format!("{b:02x}")).collect::<String>().into());
        LoadedModule { path, open_path, bias: object.bias, exec, build_id, object }
    }

    /// The address as the object's own file numbers it (what `addr2line -e`
    /// and `gdb` take): the address minus the load bias.
    pub(crate) fn file_address(&self, addr: usize) -> usize {
        addr.wrapping_sub(self.bias)
    }

    /// The executable segment holding `addr` as the kernel maps it (what
    /// `/proc/self/maps` lists and pprof's mappings expect): its page-aligned
    /// range in memory and offset in the file.
    pub(crate) fn segment(&self, addr: usize) -> Option<(usize, usize, usize)> {
        const PAGE: usize = 4096;
        let svma = self.file_address(addr);
        let s = self.object.segments.iter().find(|s| {
            s.kind == PT_LOAD && s.flags & PF_X != 0 && (s.vaddr..s.vaddr + s.memsz).contains(&svma)
        })?;
        let start = (self.bias + s.vaddr) & !(PAGE - 1);
        let limit = (self.bias + s.vaddr + s.memsz).next_multiple_of(PAGE);
        Some((start, limit, s.offset & !(PAGE - 1)))
    }
}

/// Every loaded object, and the loader's (loads, unloads) when they were listed.
#[derive(Debug, Default)]
pub(crate) struct Modules {
    pub list: Vec<LoadedModule>,
    pub counts: Option<(u64, u64)>,
}

impl Modules {
    /// Lists the objects again if any was loaded or unloaded since; true when it did.
    pub(crate) fn refresh(&mut self) -> bool {
        let (objects, counts) = sys::loaded_objects();
        if self.counts == Some(counts) {
            return false;
        }
        self.list = objects.into_iter().map(LoadedModule::new).collect();
        self.counts = Some(counts);
        true
    }

    /// The index of the module whose executable segments hold `addr`.
    pub(crate) fn find(&self, addr: usize) -> Option<usize> {
        self.list.iter().position(|m| m.exec.iter().any(|r| r.contains(&addr)))
    }
}

/// The GNU build ID from the object's notes, read from memory.
fn build_id(object: &LoadedObject) -> Option<Vec<u8>> {
    object.segments.iter().filter(|s| s.kind == PT_NOTE).find_map(|s| {
        let mut notes = vec![0u8; s.memsz.min(1 << 16)];
        let n = sys::read_into(object.bias + s.vaddr, &mut notes);
        gnu_build_id(&notes[..n])
    })
}

/// Walks ELF notes (namesz, descsz, type, name, desc; 4-byte aligned) for
/// the `GNU` note of type `NT_GNU_BUILD_ID`.
fn gnu_build_id(mut notes: &[u8]) -> Option<Vec<u8>> {
    let align = |n: usize| n.checked_add(3).map(|n| n & !3);
    while notes.len() >= 12 {
        let word = |i: usize| notes.get(i..i + 4).and_then(|b| b.try_into().ok()).map(u32::from_ne_bytes);
        let (namesz, descsz, kind) = (word(0)? as usize, word(4)? as usize, word(8)?);
        let name_end = 12usize.checked_add(align(namesz)?)?;
        let desc_end = name_end.checked_add(align(descsz)?)?;
        if kind == NT_GNU_BUILD_ID && notes.get(12..12 + namesz)? == b"GNU\0" {
            return notes.get(name_end..name_end + descsz).map(<[u8]>::to_vec);
        }
        notes = notes.get(desc_end..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_id_notes() {
        let mut notes = Vec::new();
        // An unrelated note first, then the build ID.
        for (name, kind, desc) in [(&b"XYZ\0"[..], 1u32, &[9u8, 9][..]), (b"GNU\0", 3, &[0xab, 0xcd, 0xef])] {
            notes.extend_from_slice(&(name.len() as u32).to_ne_bytes());
            notes.extend_from_slice(&(desc.len() as u32).to_ne_bytes());
            notes.extend_from_slice(&kind.to_ne_bytes());
            notes.extend_from_slice(name);
            notes.extend_from_slice(desc);
            notes.resize(notes.len().div_ceil(4) * 4, 0);
        }
        assert_eq!(gnu_build_id(&notes), Some(vec![0xab, 0xcd, 0xef]));
        assert_eq!(gnu_build_id(&notes[..20]), None, "cut short");
    }

    #[test]
    fn this_executable_is_listed_with_its_code() {
        let mut modules = Modules::default();
        assert!(modules.refresh());
        assert!(!modules.refresh(), "nothing loaded since");
        let here = this_executable_is_listed_with_its_code as *const () as usize;
        let m = &modules.list[modules.find(here).expect("our own code is in a module")];
        assert_eq!(m.open_path.as_deref(), Some("/proc/self/exe"));
        assert!(m.file_address(here) < here, "loaded above its file addresses (PIE)");
        let (start, limit, _) = m.segment(here).expect("in an executable segment");
        assert!((start..limit).contains(&here));
    }
}

//! Unwinding a thread from a copy of its stack, on hotprof's own thread:
//! DWARF call frame information through `framehop` (as samply does), or
//! the frame-pointer chain when forced.
//!
//! The unwind tables (`.eh_frame_hdr` and `.eh_frame` of every loaded
//! object, the vDSO included) are copied out of memory once and kept; they
//! are read again only when the loader's load/unload counts change.

use framehop::{CacheNative, FrameAddress, MayAllocateDuringUnwind, Module, Unwinder, UnwinderNative};

use super::modules::{Modules, PF_X, PT_LOAD};
use crate::sys::{self, LoadedObject, Registers, Segment};

const PT_GNU_EH_FRAME: u32 = 0x6474_e550;

/// A stack copy: the bytes from `start` (the interrupted stack pointer) upwards.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StackCopy<'a> {
    pub start: usize,
    pub bytes: &'a [u8],
}

impl StackCopy<'_> {
    /// The 8-byte word at `addr`, if the copy holds it.
    fn word(&self, addr: u64) -> Result<u64, ()> {
        let offset = usize::try_from(addr).map_err(drop)?.checked_sub(self.start).ok_or(())?;
        let bytes = self.bytes.get(offset..offset.checked_add(8).ok_or(())?).ok_or(())?;
        Ok(u64::from_ne_bytes(bytes.try_into().map_err(drop)?))
    }
}

/// What unwinding one stack gave.
#[derive(Debug, Default)]
pub(crate) struct Unwound {
    /// The interrupted pc, then return addresses, innermost first.
    pub frames: Vec<usize>,
    /// More frames existed than `max` allowed.
    pub truncated: bool,
}

/// The unwinder of this process, with the modules loaded when it was last refreshed.
pub(crate) struct Unwinders {
    dwarf: UnwinderNative<Vec<u8>, MayAllocateDuringUnwind>,
    cache: CacheNative<MayAllocateDuringUnwind>,
    modules: Modules,
}

impl std::fmt::Debug for Unwinders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unwinders").field("modules", &self.modules.list.len()).finish_non_exhaustive()
    }
}

impl Default for Unwinders {
    fn default() -> Self {
        Unwinders { dwarf: UnwinderNative::new(), cache: CacheNative::new(), modules: Modules::default() }
    }
}

impl Unwinders {
    /// Reads the unwind tables again if objects were loaded or unloaded since.
    pub(crate) fn refresh(&mut self) {
        if !self.modules.refresh() {
            return;
        }
        let mut dwarf = UnwinderNative::new();
        for loaded in &self.modules.list {
            if let Some(module) = module(&loaded.object) {
                dwarf.add_module(module);
            }
        }
        self.dwarf = dwarf;
        self.cache = CacheNative::new();
    }

    /// Unwinds with DWARF CFI from `regs` over `stack`, at most `max` frames.
    pub(crate) fn dwarf(&mut self, regs: Registers, stack: StackCopy<'_>, max: usize) -> Unwound {
        let mut read = |addr: u64| stack.word(addr);
        let mut frames =
            self.dwarf.iter_frames(regs.pc as u64, unwind_regs(regs), &mut self.cache, &mut read);
        let mut out = Unwound::default();
        while let Ok(Some(address)) = frames.next() {
            if out.frames.len() == max {
                out.truncated = true;
                break;
            }
            let addr = match address {
                FrameAddress::InstructionPointer(pc) => pc,
                FrameAddress::ReturnAddress(ret) => ret.get(),
            };
            out.frames.push(addr as usize);
        }
        out
    }
}

#[cfg(target_arch = "x86_64")]
fn unwind_regs(r: Registers) -> framehop::UnwindRegsNative {
    framehop::UnwindRegsNative::new(r.pc as u64, r.sp as u64, r.fp as u64)
}

#[cfg(target_arch = "aarch64")]
fn unwind_regs(r: Registers) -> framehop::UnwindRegsNative {
    framehop::UnwindRegsNative::new(r.lr as u64, r.sp as u64, r.fp as u64)
}

/// Largest distance between the interrupted stack pointer and a frame we trust.
const MAX_STACK_SPAN: usize = 64 << 20;

/// Follows the frame-pointer chain from `regs` over `stack`, at most `max` frames.
pub(crate) fn frame_pointers(regs: Registers, stack: StackCopy<'_>, max: usize) -> Unwound {
    let mut out = Unwound { frames: vec![regs.pc], truncated: false };
    let mut fp = regs.fp;
    loop {
        let sane = fp != 0 && fp.is_multiple_of(8) && fp >= regs.sp && fp - regs.sp < MAX_STACK_SPAN;
        if !sane {
            return out;
        }
        let (Ok(next), Ok(ret)) = (stack.word(fp as u64), stack.word(fp as u64 + 8)) else { return out };
        if ret == 0 {
            return out;
        }
        if out.frames.len() == max {
            out.truncated = true;
            return out;
        }
        out.frames.push(ret as usize);
        if next as usize <= fp {
            return out;
        }
        fp = next as usize;
    }
}

/// The framehop module of one loaded object: its executable range and a copy
/// of its `.eh_frame_hdr` and `.eh_frame`. `None` without unwind tables.
fn module(object: &LoadedObject) -> Option<Module<Vec<u8>>> {
    let hdr_segment = object.segments.iter().find(|s| s.kind == PT_GNU_EH_FRAME)?;
    let loads: Vec<&Segment> = object.segments.iter().filter(|s| s.kind == PT_LOAD).collect();
    let exec = loads.iter().filter(|s| s.flags & PF_X != 0);
    let start = exec.clone().map(|s| s.vaddr).min()?;
    let end = exec.clone().map(|s| s.vaddr + s.memsz).max()?;
    let hdr = copy(object.bias + hdr_segment.vaddr, hdr_segment.memsz)?;
    let eh_frame_svma = eh_frame_address(&hdr, hdr_segment.vaddr)?;
    // `.eh_frame` has no size of its own in memory: it runs at most to the
    // end of the segment that holds it, and the header's table only points inside it.
    let holder = loads.iter().find(|s| (s.vaddr..s.vaddr + s.memsz).contains(&eh_frame_svma))?;
    let eh_frame_len = holder.vaddr + holder.memsz - eh_frame_svma;
    let eh_frame = copy(object.bias + eh_frame_svma, eh_frame_len)?;
    let info = framehop::ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: Some(start as u64..end as u64),
        eh_frame_svma: Some(eh_frame_svma as u64..(eh_frame_svma + eh_frame_len) as u64),
        eh_frame: Some(eh_frame),
        eh_frame_hdr_svma: Some(hdr_segment.vaddr as u64..(hdr_segment.vaddr + hdr_segment.memsz) as u64),
        eh_frame_hdr: Some(hdr),
        ..Default::default()
    };
    let name = if object.name.is_empty() { "main".to_string() } else { object.name.clone() };
    let avma = (object.bias + start) as u64..(object.bias + end) as u64;
    Some(Module::new(name, avma, object.bias as u64, info))
}

/// Copies `len` bytes of our own memory at `addr`; `None` if any is unmapped.
fn copy(addr: usize, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    (sys::read_into(addr, &mut buf) == len).then_some(buf)
}

/// The file-relative address of `.eh_frame`, from the `eh_frame_ptr` field
/// of `.eh_frame_hdr` (at file-relative `hdr_svma`).
fn eh_frame_address(hdr: &[u8], hdr_svma: usize) -> Option<usize> {
    const DW_EH_PE_PCREL: u8 = 0x10;
    const DW_EH_PE_DATAREL: u8 = 0x30;
    let (&version, &encoding) = (hdr.first()?, hdr.get(1)?);
    if version != 1 {
        return None;
    }
    // The field starts at offset 4; its format is the low nibble, how it is
    // relative the high one.
    let field = hdr.get(4..)?;
    let value: i64 = match encoding & 0x0f {
        0x03 => i64::from(u32::from_ne_bytes(field.get(..4)?.try_into().ok()?)), // udata4
        0x0b => i64::from(i32::from_ne_bytes(field.get(..4)?.try_into().ok()?)), // sdata4
        0x04 | 0x0c => i64::from_ne_bytes(field.get(..8)?.try_into().ok()?),     // (u|s)data8
        _ => return None,
    };
    let base = match encoding & 0x70 {
        0 => 0,
        DW_EH_PE_PCREL => hdr_svma as i64 + 4,
        DW_EH_PE_DATAREL => hdr_svma as i64,
        _ => return None,
    };
    usize::try_from(base + value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eh_frame_pointer_encodings() {
        // version 1, pcrel|sdata4, then the pointer at offset 4: -0x20 from 0x1004.
        let mut hdr = vec![1u8, 0x1b, 0x03, 0x3b];
        hdr.extend_from_slice(&(-0x20i32).to_ne_bytes());
        assert_eq!(eh_frame_address(&hdr, 0x1000), Some(0x1004 - 0x20));
        hdr[1] = 0x03; // absolute udata4
        hdr[4..8].copy_from_slice(&0x5000u32.to_ne_bytes());
        assert_eq!(eh_frame_address(&hdr, 0x1000), Some(0x5000));
        hdr[0] = 2;
        assert_eq!(eh_frame_address(&hdr, 0x1000), None, "unknown version");
    }

    #[test]
    fn stack_copy_words_stay_inside_the_copy() {
        let bytes: Vec<u8> = (0..32u8).collect();
        let copy = StackCopy { start: 0x1000, bytes: &bytes };
        assert_eq!(copy.word(0x1000), Ok(u64::from_ne_bytes([0, 1, 2, 3, 4, 5, 6, 7])));
        assert!(copy.word(0x1018).is_ok());
        assert!(copy.word(0x1019).is_err(), "runs past the end");
        assert!(copy.word(0xfff).is_err(), "below the copy");
    }
}

//! Return addresses from a thread's registers and a copy of its stack, by the call frame
//! information (`.eh_frame`) of every file the process maps, with framehop.
//!
//! Files and copied bytes only: the stack is read from a [`MemorySource`] (a copy taken while
//! the process was frozen, or a core file), never from the running process. A garbage frame
//! ends the walk; the frames found so far are kept, and the walk is bounded.

use crate::memory::{FileMapping, MemorySource};
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder};
use object::{Object, ObjectSection, ObjectSegment};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// More frames than any real stack has: a loop in garbage ends here.
const MAX_FRAMES: usize = 256;

/// One file the process maps, placed.
#[derive(Clone, Debug)]
pub(super) struct Placed {
    pub path: PathBuf,
    /// Where its mappings are in the process.
    pub avma: Range<u64>,
    /// What to add to a link-time address of the file to get its address in the process.
    pub bias: u64,
}

/// The process's files and their unwind information.
pub(super) struct Unwind {
    unwinder: UnwinderX86_64<Vec<u8>>,
    pub modules: Vec<Placed>,
}

impl Unwind {
    /// Reads the unwind sections of every file in `mappings`; a file that cannot be read
    /// (gone since, or of another machine) is left out, and its frames stay unnamed.
    pub(super) fn new(mappings: &[FileMapping]) -> Unwind {
        let mut by_path: BTreeMap<&PathBuf, Vec<&FileMapping>> = BTreeMap::new();
        for m in mappings {
            by_path.entry(&m.path).or_default().push(m);
        }
        let mut unwinder = UnwinderX86_64::new();
        let mut modules = Vec::new();
        for (path, maps) in by_path {
            let Ok(data) = std::fs::read(path) else {
                continue;
            };
            let Ok(object) = object::File::parse(data.as_slice()) else {
                continue;
            };
            let Some(placed) = place(path, &object, &maps) else {
                continue;
            };
            unwinder.add_module(module(&placed, &object));
            modules.push(placed);
        }
        Unwind { unwinder, modules }
    }

    /// The code addresses of the thread's frames, innermost first: the instruction pointer,
    /// then return addresses. An error ends the walk with what was found.
    pub(super) fn frames(
        &self,
        pc: u64,
        sp: u64,
        fp: u64,
        stack: &dyn MemorySource,
    ) -> Vec<FrameAddress> {
        let mut cache = CacheX86_64::<_>::new();
        let mut read = |address: u64| {
            let mut word = [0u8; 8];
            stack
                .read(address, &mut word)
                .map(|()| u64::from_le_bytes(word))
                .map_err(|_| ())
        };
        let mut iter =
            self.unwinder
                .iter_frames(pc, UnwindRegsX86_64::new(pc, sp, fp), &mut cache, &mut read);
        let mut frames = Vec::new();
        while let Ok(Some(frame)) = iter.next() {
            frames.push(frame);
            if frames.len() >= MAX_FRAMES {
                break;
            }
        }
        frames
    }

    /// The file that maps `address`.
    pub(super) fn module_at(&self, address: u64) -> Option<&Placed> {
        self.modules.iter().find(|m| m.avma.contains(&address))
    }
}

/// Where the file's mappings are and its bias: the first mapping's start minus the link-time
/// address of the segment that holds its file offset.
fn place(path: &Path, object: &object::File<'_>, maps: &[&FileMapping]) -> Option<Placed> {
    let first = maps.iter().min_by_key(|m| m.start)?;
    let end = maps.iter().map(|m| m.end).max()?;
    let segment = object.segments().find(|s| {
        let (offset, size) = s.file_range();
        offset <= first.offset && first.offset < offset.saturating_add(size.max(1))
    })?;
    let (segment_offset, _) = segment.file_range();
    let svma = segment
        .address()
        .checked_add(first.offset - segment_offset)?;
    Some(Placed {
        path: path.to_owned(),
        avma: first.start..end,
        bias: first.start.wrapping_sub(svma),
    })
}

/// The framehop module of a placed file: its text and CFI sections (those it lacks, it
/// is unwound without: framehop falls back to frame pointers).
fn module(placed: &Placed, object: &object::File<'_>) -> Module<Vec<u8>> {
    let section = |name: &str| {
        let s = object.section_by_name(name)?;
        let svma = s.address()..s.address().checked_add(s.size())?;
        Some((svma, s.data().ok()?.to_vec()))
    };
    let (text_svma, text) = section(".text").unzip();
    let (eh_frame_svma, eh_frame) = section(".eh_frame").unzip();
    let (eh_frame_hdr_svma, eh_frame_hdr) = section(".eh_frame_hdr").unzip();
    let got_svma = object
        .section_by_name(".got")
        .and_then(|s| Some(s.address()..s.address().checked_add(s.size())?));
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma,
        text,
        got_svma,
        eh_frame_svma,
        eh_frame,
        eh_frame_hdr_svma,
        eh_frame_hdr,
        debug_frame: object
            .section_by_name(".debug_frame")
            .and_then(|s| Some(s.data().ok()?.to_vec())),
        ..Default::default()
    };
    Module::new(
        placed.path.display().to_string(),
        placed.avma.clone(),
        placed.bias,
        info,
    )
}

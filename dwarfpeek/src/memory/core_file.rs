//! An ELF core file (from `gcore` or the kernel) as a memory source: bytes the core holds
//! (`PT_LOAD` within `p_filesz`), and for file-backed ranges it left out (read-only code and
//! data), the mapped files themselves at the offsets its `NT_FILE` note gives. Its threads
//! and their registers come from the `NT_PRSTATUS` notes, the process's identity from
//! `NT_PRPSINFO`.
//!
//! `object` parses the ELF structure; only the note payloads are decoded here, and every
//! count and offset in them is checked against the bytes that are really there. It reads the
//! core with positioned reads, never whole: a core may be larger than memory.

use super::maps::FileMapping;
use super::{MemoryError, MemorySource};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, ReadCache};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CoreError {
    #[error("cannot read {}: {error}; check the path and that you may read it", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} is not an ELF core file this probe can read: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },
    #[error(
        "{} is truncated or damaged: {reason}; the dump was cut short (disk full, \
         interrupted gcore) and cannot be trusted",
        path.display()
    )]
    Truncated { path: PathBuf, reason: String },
}

/// One thread of the dumped process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreThread {
    pub tid: i32,
    /// The signal the thread was stopped by (`pr_cursig`), 0 if none.
    pub signal: u16,
    /// The general registers in the kernel's `user_regs_struct` order for x86-64 (r15, r14,
    /// r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs,
    /// eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs).
    pub registers: [u64; X86_64_REGISTERS],
}

/// How many words `user_regs_struct` has on x86-64.
pub const X86_64_REGISTERS: usize = 27;

impl CoreThread {
    /// The instruction pointer (rip).
    pub fn pc(&self) -> u64 {
        self.registers[16]
    }

    /// The stack pointer (rsp).
    pub fn sp(&self) -> u64 {
        self.registers[19]
    }

    /// The frame pointer (rbp).
    pub fn fp(&self) -> u64 {
        self.registers[4]
    }
}

/// The dumped process, from its `NT_PRPSINFO` note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreProcess {
    pub pid: i32,
    /// The real user and group ids.
    pub uid: u32,
    pub gid: u32,
    /// The state letter (`pr_sname`: R, S, D, T, t...) when it was dumped.
    pub state: char,
    /// The command name (`pr_fname`, at most 16 bytes).
    pub name: String,
}

/// A `PT_LOAD` segment of the core.
#[derive(Clone, Copy, Debug)]
struct Load {
    vaddr: u64,
    offset: u64,
    /// The bytes the core holds (a segment's tail beyond them was not dumped).
    filesz: u64,
}

/// An opened core file.
pub struct CoreFile {
    path: PathBuf,
    file: File,
    loads: Vec<Load>,
    mappings: Vec<FileMapping>,
    threads: Vec<CoreThread>,
    process: Option<CoreProcess>,
    /// The files of `mappings`, opened on first use; an error is remembered as text.
    mapped_files: Mutex<HashMap<PathBuf, Result<Arc<File>, String>>>,
}

impl CoreFile {
    pub fn open(path: &Path) -> Result<CoreFile, CoreError> {
        let file = File::open(path).map_err(|error| CoreError::Read {
            path: path.to_owned(),
            error,
        })?;
        let mut core = CoreFile {
            path: path.to_owned(),
            file,
            loads: Vec::new(),
            mappings: Vec::new(),
            threads: Vec::new(),
            process: None,
            mapped_files: Mutex::new(HashMap::new()),
        };
        core.read_headers()?;
        Ok(core)
    }

    /// Fills in the segments, mappings and threads from the program headers and notes.
    fn read_headers(&mut self) -> Result<(), CoreError> {
        let path = &self.path;
        let len = self
            .file
            .metadata()
            .map_err(|error| CoreError::Read {
                path: path.clone(),
                error,
            })?
            .len();
        let parse = |reason: &str| CoreError::Parse {
            path: path.clone(),
            reason: reason.to_owned(),
        };
        let truncated = |reason: String| CoreError::Truncated {
            path: path.clone(),
            reason,
        };
        let cache = ReadCache::new(&self.file);
        let header = elf::FileHeader64::<Endianness>::parse(&cache)
            .map_err(|e| parse(&format!("{e} (only 64-bit ELF is read)")))?;
        let endian = header.endian().map_err(|e| parse(&e.to_string()))?;
        if header.e_type(endian) != elf::ET_CORE {
            return Err(parse("its ELF type is not ET_CORE"));
        }
        if header.e_machine(endian) != elf::EM_X86_64 {
            return Err(parse(
                "only x86-64 cores are read (registers are decoded for it)",
            ));
        }
        let headers = header
            .program_headers(endian, &cache)
            .map_err(|e| truncated(format!("program headers: {e}")))?;
        for ph in headers {
            let (offset, filesz) = ph.file_range(endian);
            if offset.checked_add(filesz).is_none_or(|end| end > len) {
                return Err(truncated(format!(
                    "a segment needs bytes {offset:#x}+{filesz:#x} of a {len:#x}-byte file"
                )));
            }
            match ph.p_type(endian) {
                elf::PT_LOAD => self.loads.push(Load {
                    vaddr: ph.p_vaddr(endian),
                    offset,
                    filesz: filesz.min(ph.p_memsz(endian)),
                }),
                elf::PT_NOTE => {
                    let mut notes = ph
                        .notes(endian, &cache)
                        .map_err(|e| truncated(format!("notes: {e}")))?
                        .ok_or_else(|| parse("a PT_NOTE segment without notes"))?;
                    while let Some(note) =
                        notes.next().map_err(|e| truncated(format!("notes: {e}")))?
                    {
                        if note.name() != elf::ELF_NOTE_CORE {
                            continue;
                        }
                        let desc = note.desc();
                        match note.n_type(endian) {
                            elf::NT_FILE => self.mappings.extend(
                                parse_nt_file(desc, endian).map_err(|r| truncated(r.into()))?,
                            ),
                            elf::NT_PRSTATUS => self.threads.push(
                                parse_prstatus(desc, endian).map_err(|r| truncated(r.into()))?,
                            ),
                            elf::NT_PRPSINFO => {
                                self.process = Some(
                                    parse_prpsinfo(desc, endian)
                                        .map_err(|r| truncated(r.into()))?,
                                )
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The dumped threads, the one that caused the dump (if any) first.
    pub fn threads(&self) -> &[CoreThread] {
        &self.threads
    }

    /// The dumped process's identity, if the core has an `NT_PRPSINFO` note.
    pub fn process(&self) -> Option<&CoreProcess> {
        self.process.as_ref()
    }

    /// The file-backed ranges of the dumped process (its `NT_FILE` note).
    pub fn file_mappings(&self) -> &[FileMapping] {
        &self.mappings
    }

    fn mapped_file(&self, path: &Path) -> Result<Arc<File>, String> {
        // A poisoned lock only means another reader panicked; the map is still usable.
        let mut files = self
            .mapped_files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        files
            .entry(path.to_owned())
            .or_insert_with(|| File::open(path).map(Arc::new).map_err(|e| e.to_string()))
            .clone()
    }

    /// Reads up to `buf.len()` bytes at `address` from the one place that holds them, and
    /// says how many it read (at least one).
    fn read_some(&self, address: u64, buf: &mut [u8]) -> Result<usize, MemoryError> {
        let len = buf.len() as u64;
        if let Some(load) = self
            .loads
            .iter()
            .find(|l| address >= l.vaddr && address - l.vaddr < l.filesz)
        {
            let n = (load.filesz - (address - load.vaddr)).min(len) as usize;
            return self
                .file
                .read_exact_at(&mut buf[..n], load.offset + (address - load.vaddr))
                .map(|()| n)
                .map_err(|e| MemoryError::CoreFile {
                    address,
                    len,
                    reason: e.to_string(),
                });
        }
        let Some(mapping) = self
            .mappings
            .iter()
            .find(|m| address >= m.start && address < m.end)
        else {
            return Err(MemoryError::Unmapped {
                address,
                len,
                source_name: format!(
                    "the core file {} (neither dumped nor file-backed)",
                    self.path.display()
                ),
            });
        };
        let n = (mapping.end - address).min(len) as usize;
        let file_error = |reason: String| MemoryError::MappedFile {
            address,
            len,
            path: mapping.path.clone(),
            reason,
        };
        let file = self.mapped_file(&mapping.path).map_err(file_error)?;
        let offset = mapping
            .offset
            .checked_add(address - mapping.start)
            .ok_or_else(|| file_error("offset overflows".to_owned()))?;
        file.read_exact_at(&mut buf[..n], offset)
            .map(|()| n)
            .map_err(|e| file_error(format!("{e} (the file changed since the dump?)")))
    }
}

impl MemorySource for CoreFile {
    fn read(&self, address: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let mut filled = 0;
        while filled < buf.len() {
            let at = address
                .checked_add(filled as u64)
                .ok_or(MemoryError::Unmapped {
                    address,
                    len: buf.len() as u64,
                    source_name: "any address space (it wraps around)".to_owned(),
                })?;
            filled += self.read_some(at, &mut buf[filled..])?;
        }
        Ok(())
    }
}

/// A little reader of the words of a note's payload; every read is bounds-checked.
struct Words<'a> {
    data: &'a [u8],
    endian: Endianness,
}

impl Words<'_> {
    fn u64_at(&self, offset: usize) -> Option<u64> {
        let bytes: [u8; 8] = self
            .data
            .get(offset..offset.checked_add(8)?)?
            .try_into()
            .ok()?;
        Some(match self.endian {
            Endianness::Little => u64::from_le_bytes(bytes),
            Endianness::Big => u64::from_be_bytes(bytes),
        })
    }

    fn u32_at(&self, offset: usize) -> Option<u32> {
        let bytes: [u8; 4] = self
            .data
            .get(offset..offset.checked_add(4)?)?
            .try_into()
            .ok()?;
        Some(match self.endian {
            Endianness::Little => u32::from_le_bytes(bytes),
            Endianness::Big => u32::from_be_bytes(bytes),
        })
    }

    fn u16_at(&self, offset: usize) -> Option<u16> {
        let bytes: [u8; 2] = self
            .data
            .get(offset..offset.checked_add(2)?)?
            .try_into()
            .ok()?;
        Some(match self.endian {
            Endianness::Little => u16::from_le_bytes(bytes),
            Endianness::Big => u16::from_be_bytes(bytes),
        })
    }
}

/// `NT_FILE` (64-bit): count, page size, `count` × (start, end, offset in pages), then
/// `count` NUL-terminated paths.
fn parse_nt_file(desc: &[u8], endian: Endianness) -> Result<Vec<FileMapping>, &'static str> {
    const BAD: &str = "the NT_FILE note is shorter than its entry count says";
    let words = Words { data: desc, endian };
    let count = words.u64_at(0).ok_or(BAD)?;
    let page_size = words.u64_at(8).ok_or(BAD)?;
    // Each entry takes 24 bytes of the note: a count the note cannot hold is garbage, and
    // this check bounds the allocation below by the note's real size.
    let table_end = count
        .checked_mul(24)
        .and_then(|n| n.checked_add(16))
        .filter(|end| *end <= desc.len() as u64)
        .ok_or(BAD)? as usize;
    let mut names = desc[table_end..].split(|b| *b == 0);
    let mut mappings = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        let at = 16 + i * 24;
        let (start, end, pages) = (
            words.u64_at(at).ok_or(BAD)?,
            words.u64_at(at + 8).ok_or(BAD)?,
            words.u64_at(at + 16).ok_or(BAD)?,
        );
        let name = names.next().ok_or("the NT_FILE note lacks a path")?;
        if end < start {
            return Err("an NT_FILE range runs backwards");
        }
        let offset = pages
            .checked_mul(page_size)
            .ok_or("an NT_FILE offset overflows")?;
        mappings.push(FileMapping {
            start,
            end,
            offset,
            path: PathBuf::from(std::ffi::OsStr::from_bytes(name)),
        });
    }
    Ok(mappings)
}

/// `NT_PRSTATUS` for x86-64 (`struct elf_prstatus`): `pr_cursig` at byte 12, `pr_pid` at
/// 32, the registers (`pr_reg`) at 112.
fn parse_prstatus(desc: &[u8], endian: Endianness) -> Result<CoreThread, &'static str> {
    const BAD: &str = "an NT_PRSTATUS note is too short for x86-64";
    const CURSIG: usize = 12;
    const PID: usize = 32;
    const REGS: usize = 112;
    let words = Words { data: desc, endian };
    let mut registers = [0u64; X86_64_REGISTERS];
    for (i, register) in registers.iter_mut().enumerate() {
        *register = words.u64_at(REGS + i * 8).ok_or(BAD)?;
    }
    Ok(CoreThread {
        tid: words.u32_at(PID).ok_or(BAD)? as i32,
        signal: words.u16_at(CURSIG).ok_or(BAD)?,
        registers,
    })
}

/// `NT_PRPSINFO` for x86-64 (`struct elf_prpsinfo`): `pr_sname` at byte 1, `pr_uid` and
/// `pr_gid` (32-bit) at 16 and 20, `pr_pid` at 24, `pr_fname[16]` at 40.
fn parse_prpsinfo(desc: &[u8], endian: Endianness) -> Result<CoreProcess, &'static str> {
    const BAD: &str = "the NT_PRPSINFO note is too short for x86-64";
    const SNAME: usize = 1;
    const UID: usize = 16;
    const GID: usize = 20;
    const PID: usize = 24;
    const FNAME: std::ops::Range<usize> = 40..56;
    let words = Words { data: desc, endian };
    let fname = desc.get(FNAME).ok_or(BAD)?;
    let name_len = fname.iter().position(|b| *b == 0).unwrap_or(fname.len());
    Ok(CoreProcess {
        pid: words.u32_at(PID).ok_or(BAD)? as i32,
        uid: words.u32_at(UID).ok_or(BAD)?,
        gid: words.u32_at(GID).ok_or(BAD)?,
        state: char::from(*desc.get(SNAME).ok_or(BAD)?),
        name: String::from_utf8_lossy(&fname[..name_len]).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nt_file(entries: &[(u64, u64, u64, &str)], count: u64) -> Vec<u8> {
        let mut desc = Vec::new();
        desc.extend(count.to_le_bytes());
        desc.extend(4096u64.to_le_bytes());
        for (start, end, pages, _) in entries {
            for w in [start, end, pages] {
                desc.extend(w.to_le_bytes());
            }
        }
        for (.., name) in entries {
            desc.extend(name.as_bytes());
            desc.push(0);
        }
        desc
    }

    #[test]
    fn nt_file_entries_are_decoded() {
        let desc = nt_file(
            &[(0x1000, 0x3000, 2, "/bin/a"), (0x5000, 0x6000, 0, "/lib/b")],
            2,
        );
        let maps = parse_nt_file(&desc, Endianness::Little).expect("valid");
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[0].offset, 0x2000);
        assert_eq!(maps[1].path, Path::new("/lib/b"));
    }

    #[test]
    fn lying_nt_file_notes_are_errors() {
        let one = [(0x1000, 0x3000, 2, "/bin/a")];
        for desc in [
            nt_file(&one, 1 << 60),
            nt_file(&one, u64::MAX),
            nt_file(&one, 2),
            nt_file(&[(0x3000, 0x1000, 0, "/x")], 1),
            nt_file(&one, 1)[..20].to_vec(),
            Vec::new(),
        ] {
            assert!(parse_nt_file(&desc, Endianness::Little).is_err());
        }
        // A count that fits but no paths after the table.
        let mut desc = nt_file(&one, 1);
        desc.truncate(16 + 24);
        let maps = parse_nt_file(&desc, Endianness::Little).expect("an empty path is a path");
        assert_eq!(maps[0].path, Path::new(""));
    }

    #[test]
    fn short_prstatus_is_an_error() {
        assert!(parse_prstatus(&[0u8; 200], Endianness::Little).is_err());
        let mut desc = vec![0u8; 336];
        desc[32..36].copy_from_slice(&77u32.to_le_bytes());
        desc[112 + 16 * 8..112 + 17 * 8].copy_from_slice(&0xdead_u64.to_le_bytes());
        let thread = parse_prstatus(&desc, Endianness::Little).expect("full size");
        assert_eq!((thread.tid, thread.pc()), (77, 0xdead));
    }

    #[test]
    fn prpsinfo_is_decoded_and_short_ones_are_errors() {
        assert!(parse_prpsinfo(&[0u8; 50], Endianness::Little).is_err());
        let mut desc = vec![0u8; 136];
        desc[1] = b'S';
        desc[16..20].copy_from_slice(&1000u32.to_le_bytes());
        desc[20..24].copy_from_slice(&100u32.to_le_bytes());
        desc[24..28].copy_from_slice(&4242u32.to_le_bytes());
        desc[40..45].copy_from_slice(b"app\0\0");
        let process = parse_prpsinfo(&desc, Endianness::Little).expect("full size");
        assert_eq!(
            process,
            CoreProcess {
                pid: 4242,
                uid: 1000,
                gid: 100,
                state: 'S',
                name: "app".to_owned()
            }
        );
    }

    #[test]
    fn files_that_are_not_cores_are_errors() {
        let exe = std::env::current_exe().expect("current exe");
        let err = CoreFile::open(&exe)
            .err()
            .expect("an executable is not a core");
        assert!(matches!(err, CoreError::Parse { .. }), "{err}");
        let dir = std::env::temp_dir().join(format!("dwarfpeek-core-test-{}", std::process::id()));
        std::fs::write(&dir, b"\x7fELF garbage").expect("write");
        assert!(CoreFile::open(&dir).is_err());
        std::fs::remove_file(&dir).expect("remove");
    }

    /// A little core by hand: one dumped segment, one left to its file (`NT_FILE`), one
    /// thread. The layout is the ELF specification's, not this module's.
    fn tiny_core(mapped: &Path) -> Vec<u8> {
        fn note(kind: u32, desc: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend(5u32.to_le_bytes());
            out.extend((desc.len() as u32).to_le_bytes());
            out.extend(kind.to_le_bytes());
            out.extend(b"CORE\0\0\0\0");
            out.extend(desc);
            out.resize(out.len().next_multiple_of(4), 0);
            out
        }
        let mut prstatus = vec![0u8; 336];
        prstatus[32..36].copy_from_slice(&1234u32.to_le_bytes());
        prstatus[112 + 16 * 8..112 + 17 * 8].copy_from_slice(&0x4242u64.to_le_bytes());
        let path = mapped.to_str().expect("a UTF-8 temporary path");
        let mut notes = note(elf::NT_PRSTATUS, &prstatus);
        notes.extend(note(
            elf::NT_FILE,
            &nt_file(&[(0x20000, 0x21000, 1, path)], 1),
        ));
        let (phoff, phnum) = (64u64, 3u64);
        let notes_at = phoff + 56 * phnum;
        let data_at = notes_at + notes.len() as u64;
        let mut out = Vec::new();
        out.extend(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        out.extend(elf::ET_CORE.to_le_bytes());
        out.extend(elf::EM_X86_64.to_le_bytes());
        out.extend(1u32.to_le_bytes());
        out.extend(0u64.to_le_bytes()); // entry
        out.extend(phoff.to_le_bytes());
        out.extend(0u64.to_le_bytes()); // section headers
        out.extend(0u32.to_le_bytes()); // flags
        for half in [64u16, 56, phnum as u16, 64, 0, 0] {
            out.extend(half.to_le_bytes());
        }
        let mut header = |kind: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64| {
            out.extend(kind.to_le_bytes());
            out.extend(4u32.to_le_bytes()); // flags
            for word in [offset, vaddr, 0, filesz, memsz, 4] {
                out.extend(word.to_le_bytes());
            }
        };
        header(elf::PT_NOTE, notes_at, 0, notes.len() as u64, 0);
        header(elf::PT_LOAD, data_at, 0x10000, 16, 16);
        header(elf::PT_LOAD, 0, 0x20000, 0, 0x1000);
        out.extend(notes);
        out.extend(b"dumped, 16 bytes");
        out
    }

    #[test]
    fn reads_dumped_bytes_and_mapped_files_and_threads() {
        let dir = std::env::temp_dir().join(format!("dwarfpeek-core-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let mapped = dir.join("mapped");
        let mut contents = vec![0u8; 8192];
        contents[4096..4096 + 9].copy_from_slice(b"from file");
        std::fs::write(&mapped, &contents).expect("write mapped file");
        let bytes = tiny_core(&mapped);
        let core_path = dir.join("core");
        std::fs::write(&core_path, &bytes).expect("write core");

        let core = CoreFile::open(&core_path).expect("a valid core");
        let mut buf = [0u8; 6];
        core.read(0x10000, &mut buf).expect("dumped bytes");
        assert_eq!(&buf, b"dumped");
        let mut buf = [0u8; 9];
        core.read(0x20000, &mut buf)
            .expect("bytes from the mapped file");
        assert_eq!(&buf, b"from file");
        assert!(matches!(
            core.read(0x30000, &mut buf),
            Err(MemoryError::Unmapped { .. })
        ));
        assert!(core.read(0x1000c, &mut buf).is_err(), "runs past the dump");
        assert_eq!(core.threads().len(), 1);
        assert_eq!(
            (core.threads()[0].tid, core.threads()[0].pc()),
            (1234, 0x4242)
        );
        assert_eq!(core.file_mappings()[0].path, mapped);

        // Every truncation of the file is an error at open, and no corruption panics.
        for len in 0..bytes.len() {
            std::fs::write(&core_path, &bytes[..len]).expect("write");
            assert!(CoreFile::open(&core_path).is_err(), "cut at {len}");
        }
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0xff;
            std::fs::write(&core_path, &damaged).expect("write");
            if let Ok(core) = CoreFile::open(&core_path) {
                let _ = core.read(0x10000, &mut buf);
                let _ = core.read(0x20000, &mut buf);
            }
        }
        // A mapped file that is gone is an error naming it.
        std::fs::write(&core_path, &bytes).expect("write");
        std::fs::remove_file(&mapped).expect("remove");
        let core = CoreFile::open(&core_path).expect("still a valid core");
        let err = core.read(0x20000, &mut buf).unwrap_err();
        assert!(matches!(err, MemoryError::MappedFile { .. }), "{err}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}

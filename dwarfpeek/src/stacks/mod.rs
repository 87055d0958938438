//! Every thread of a process with a symbolized backtrace, and for a thread blocked in a futex
//! what it waits on, named from the debug info (`app::table::TABLE.inner.futex`) rather than
//! as an address. From a running process (frozen while its registers and stacks are copied,
//! then let go) or from a core file.
//!
//! The flow: memory (registers and stack copies) → unwind ([`unwind`], CFI) → names (DWARF
//! through addr2line, symbols for libraries) → [`ThreadStack`]s. Which locks matter is the
//! caller's ([`Guarded`]); nothing here knows a program. It may not leave the process
//! stopped: the freeze lets go on every path.

mod unwind;

use crate::debuginfo::{Executable, FunctionSymbols, TypeIndex};
use crate::memory::{
    maps, CoreFile, FileMapping, Freeze, FreezeError, LiveProcess, MapsError, MemorySource,
    Snapshot,
};
use crate::process::{self, ProcError, ThreadFacts};
use crate::value::layout;
use framehop::FrameAddress;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use thiserror::Error;
use unwind::Unwind;

/// Bytes of each thread's stack copied above its stack pointer (and below it, the x86-64
/// red zone); a deeper stack is cut, and its walk ends there.
const STACK_COPY: u64 = 1 << 20;
const RED_ZONE: u64 = 128;
/// x86-64's `futex(2)`.
const SYS_FUTEX: u64 = 202;

/// What can stop the threads of a live process from being read.
#[derive(Debug, Error)]
pub enum StacksError {
    #[error(transparent)]
    Proc(#[from] ProcError),
    #[error("cannot read the memory map of process {pid}: {error}")]
    Maps { pid: u32, error: MapsError },
    #[error("cannot stop process {pid} to copy its registers and stacks: {error}; try again")]
    Freeze { pid: u32, error: FreezeError },
}

/// A lock the caller cares about: a thread with a variable of type `guard_type` (as DWARF
/// names it, e.g. `MutexGuard<app::table::Table>`) in scope in one of its frames holds
/// `name`.
#[derive(Clone, Copy, Debug)]
pub struct Guarded<'a> {
    pub guard_type: &'a str,
    pub name: &'a str,
}

/// The program whose threads are walked: its executable (as opened, with its type index)
/// and the path its process maps it from.
#[derive(Clone, Copy)]
pub struct Program<'a> {
    pub exe: &'a Executable,
    pub index: &'a TypeIndex,
    pub mapped_path: &'a Path,
}

/// `user_regs_struct` on x86-64, in the kernel's order (as a core's `NT_PRSTATUS` holds it).
#[derive(Clone, Copy, Debug)]
pub struct Registers(pub [u64; crate::memory::X86_64_REGISTERS]);

impl Registers {
    fn pc(&self) -> u64 {
        self.0[16]
    }
    fn sp(&self) -> u64 {
        self.0[19]
    }
    fn fp(&self) -> u64 {
        self.0[4]
    }
    /// The system call the thread is in (`orig_rax`) and its first argument (`rdi`).
    fn syscall(&self) -> Option<(u64, u64)> {
        let number = self.0[15];
        (number as i64 >= 0).then_some((number, self.0[14]))
    }
}

/// One thread, as `stacks` shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ThreadStack {
    pub tid: u32,
    /// Empty from a core file (it keeps no thread names).
    pub name: String,
    pub state: String,
    pub frames: Vec<Frame>,
    /// What the thread waits on, when it is in `futex(2)`.
    pub blocked_on: Option<BlockedOn>,
    /// The [`Guarded`] locks it holds, as far as the debug info tells (a guard in scope in
    /// one of its frames), by name.
    pub holds: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Frame {
    pub address: u64,
    /// The file the code is in (the executable's name, `libc.so.6`).
    pub module: Option<String>,
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// An inlined call inside the next frame's function.
    pub inlined: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlockedOn {
    pub syscall: String,
    /// The futex word's address.
    pub address: u64,
    /// The static and field path that hold it, from the debug info; none for a word on the
    /// heap or a stack.
    pub name: Option<String>,
}

/// One thread's raw material: registers and identity.
struct Raw {
    facts: ThreadFacts,
    registers: Registers,
}

/// The threads of the running process `pid`, which runs `program`.
pub fn live(
    program: Program<'_>,
    pid: u32,
    guarded: &[Guarded<'_>],
) -> Result<Vec<ThreadStack>, StacksError> {
    let facts: HashMap<u32, ThreadFacts> = process::threads(pid)?
        .into_iter()
        .map(|t| (t.tid, t))
        .collect();
    let mappings = maps::read_maps(pid as i32).map_err(|error| StacksError::Maps { pid, error })?;
    let files: Vec<FileMapping> = mappings.iter().filter_map(|m| m.file()).collect();
    let live = LiveProcess::new(Pid::from_raw(pid as i32));

    let freeze = Freeze::new(Pid::from_raw(pid as i32))
        .map_err(|error| StacksError::Freeze { pid, error })?;
    // From here to the resume: registers and stack bytes only; an error drops the freeze,
    // which lets every thread go.
    let mut raws = Vec::new();
    let mut stacks = Vec::new();
    for tid in freeze.threads() {
        let Ok(regs) = nix::sys::ptrace::getregs(tid) else {
            continue;
        };
        let registers = Registers(user_regs(&regs));
        let sp = registers.sp();
        if let Some(m) = mappings.iter().find(|m| m.start <= sp && sp < m.end) {
            let start = sp.saturating_sub(RED_ZONE).max(m.start);
            let end = m.end.min(sp.saturating_add(STACK_COPY));
            let mut bytes = vec![0u8; (end - start) as usize];
            if live.read(start, &mut bytes).is_ok() {
                stacks.push((start, bytes));
            }
        }
        let tid = tid.as_raw() as u32;
        let facts = facts.get(&tid).cloned().unwrap_or(ThreadFacts {
            tid,
            name: String::new(),
            state: "?".to_owned(),
        });
        raws.push(Raw { facts, registers });
    }
    freeze
        .resume()
        .map_err(|error| StacksError::Freeze { pid, error })?;

    let memory = Snapshot::from_ranges(stacks);
    Ok(walk(program, &files, &raws, &memory, guarded))
}

/// The threads of the process `core` holds, which ran `program`.
pub fn core(program: Program<'_>, core: &CoreFile, guarded: &[Guarded<'_>]) -> Vec<ThreadStack> {
    let raws: Vec<Raw> = core
        .threads()
        .iter()
        .map(|t| Raw {
            facts: ThreadFacts {
                tid: t.tid as u32,
                name: String::new(),
                state: core
                    .process()
                    .map_or_else(|| "?".to_owned(), |p| p.state.to_string()),
            },
            registers: Registers(t.registers),
        })
        .collect();
    walk(program, core.file_mappings(), &raws, core, guarded)
}

/// Unwinds and names every thread.
fn walk(
    program: Program<'_>,
    files: &[FileMapping],
    raws: &[Raw],
    memory: &dyn MemorySource,
    guarded: &[Guarded<'_>],
) -> Vec<ThreadStack> {
    let unwind = Unwind::new(files);
    let names = &Names::new(program, &unwind);
    let mut threads: Vec<(ThreadStack, Vec<FrameAddress>)> = raws
        .iter()
        .map(|raw| {
            let r = raw.registers;
            let addresses = unwind.frames(r.pc(), r.sp(), r.fp(), memory);
            let thread = ThreadStack {
                tid: raw.facts.tid,
                name: raw.facts.name.clone(),
                state: raw.facts.state.clone(),
                frames: addresses.iter().flat_map(|a| names.frames(*a)).collect(),
                blocked_on: r.syscall().and_then(|(number, arg)| {
                    (number == SYS_FUTEX).then(|| BlockedOn {
                        syscall: "futex".to_owned(),
                        address: arg,
                        name: names.static_at(arg),
                    })
                }),
                holds: Vec::new(),
            };
            (thread, addresses)
        })
        .collect();
    // One pass over the DWARF for every frame of every thread.
    let lookups: Vec<(usize, u64)> = threads
        .iter()
        .enumerate()
        .flat_map(|(i, (_, addresses))| {
            addresses
                .iter()
                .filter_map(move |a| names.exe_address(*a).map(|svma| (i, svma)))
        })
        .collect();
    let svmas: Vec<u64> = lookups.iter().map(|(_, svma)| *svma).collect();
    for lock in guarded {
        let Ok(in_scope) = program.exe.variable_in_scope(&svmas, lock.guard_type) else {
            continue;
        };
        for ((i, _), held) in lookups.iter().zip(in_scope) {
            let holds = &mut threads[*i].0.holds;
            if held && !holds.iter().any(|h| h == lock.name) {
                holds.push(lock.name.to_owned());
            }
        }
    }
    threads.into_iter().map(|(thread, _)| thread).collect()
}

/// Names for code and data addresses of the process.
struct Names<'a> {
    program: Program<'a>,
    unwind: &'a Unwind,
    /// The executable's own placement, if its file is among the mappings.
    exe_bias: Option<u64>,
    /// Function symbols of the other files, read once each.
    libraries: HashMap<std::path::PathBuf, Option<FunctionSymbols>>,
}

impl<'a> Names<'a> {
    fn new(program: Program<'a>, unwind: &'a Unwind) -> Names<'a> {
        let exe = program.mapped_path;
        let exe_bias = unwind
            .modules
            .iter()
            .find(|m| same_file(&m.path, exe))
            .map(|m| m.bias);
        let libraries = unwind
            .modules
            .iter()
            .filter(|m| !same_file(&m.path, exe))
            .map(|m| (m.path.clone(), FunctionSymbols::of_file(&m.path)))
            .collect();
        Names {
            program,
            unwind,
            exe_bias,
            libraries,
        }
    }

    /// The source frames at one code address (inlined calls first).
    fn frames(&self, address: FrameAddress) -> Vec<Frame> {
        let (avma, lookup) = match address {
            FrameAddress::InstructionPointer(a) => (a, a),
            // A return address is the instruction after the call: look up the call itself.
            FrameAddress::ReturnAddress(a) => (a.get(), a.get() - 1),
        };
        let bare = |module: Option<String>, function: Option<String>| Frame {
            address: avma,
            module,
            function,
            file: None,
            line: None,
            inlined: false,
        };
        let Some(module) = self.unwind.module_at(lookup) else {
            return vec![bare(None, None)];
        };
        let module_name = module
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let svma = lookup.wrapping_sub(module.bias);
        if same_file(&module.path, self.program.mapped_path) {
            if let Ok(mut found) = self.program.exe.code_frames(&[svma]) {
                if let Some(frames) = found.pop() {
                    return frames
                        .into_iter()
                        .map(|f| Frame {
                            address: avma,
                            module: module_name.clone(),
                            function: f.function,
                            file: f.file,
                            line: f.line,
                            inlined: f.inlined,
                        })
                        .collect();
                }
            }
            return vec![bare(module_name, None)];
        }
        let function = self
            .libraries
            .get(&module.path)
            .and_then(|symbols| symbols.as_ref()?.name(svma));
        vec![bare(module_name, function)]
    }

    /// The link-time address in the executable that a frame's code is at (the
    /// call, for a return address), if it is the executable's own code.
    fn exe_address(&self, address: FrameAddress) -> Option<u64> {
        let lookup = match address {
            FrameAddress::InstructionPointer(a) => a,
            FrameAddress::ReturnAddress(a) => a.get() - 1,
        };
        let module = self.unwind.module_at(lookup)?;
        same_file(&module.path, self.program.mapped_path).then(|| lookup.wrapping_sub(module.bias))
    }

    /// `app::table::TABLE.inner.futex` for an address inside a static of the executable.
    fn static_at(&self, address: u64) -> Option<String> {
        let bias = self.exe_bias?;
        let (path, start) = self
            .program
            .exe
            .data_symbol_at(address.wrapping_sub(bias))?;
        let offset = address.wrapping_sub(bias) - start;
        let fields = self
            .program
            .index
            .static_type(&path)
            .map(|ty| layout::path_at(self.program.index, ty, offset))
            .unwrap_or_default();
        Some(
            std::iter::once(path)
                .chain(fields)
                .collect::<Vec<_>>()
                .join("."),
        )
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || (a.file_name() == b.file_name() && a.file_name().is_some())
}

fn user_regs(r: &nix::libc::user_regs_struct) -> [u64; crate::memory::X86_64_REGISTERS] {
    [
        r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx,
        r.rsi, r.rdi, r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss, r.fs_base, r.gs_base, r.ds,
        r.es, r.fs, r.gs,
    ]
}

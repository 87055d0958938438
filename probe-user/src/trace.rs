//! Live events from a running daemon through eBPF: computes what the uprobe program needs
//! from the daemon's own DWARF, loads the embedded program with those values, attaches it to
//! the daemon's grant function for one process, and hands out the records it writes.
//!
//! It never writes to the daemon and never stops it: a uprobe costs the daemon a trap per
//! call and nothing else. The attachment lives as long as [`GrantTrace`]; dropping it
//! detaches. What it knows of the daemon is the contract's names below, nothing more.

use crate::abi::{self, AbiError};
use crate::debuginfo::{DebugInfoError, Executable, FunctionSymbol, ParameterClass};
use aya::maps::{MapData, MapError, RingBuf};
use aya::programs::uprobe::{UProbeAttachLocation, UProbeLinkId, UProbeScope};
use aya::programs::{ProgramError, UProbe};
use aya::{Ebpf, EbpfError, EbpfLoader};
use latch_probe_common::raw::RawEvent;
use latch_probe_common::EventKind;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::num::NonZeroU32;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thiserror::Error;

/// The daemon's grant function (the probe/daemon contract, `docs/`).
pub const GRANT_FUNCTION: &str = "latch::change::grant";
/// Its parameter holding the `&mut Locker`.
pub const LOCKER_PARAMETER: &str = "locker";
/// The type that parameter points to.
pub const LOCKER_TYPE: &str = "latch::table::Locker";
/// The locker's id, a `u64` member of [`LOCKER_TYPE`].
pub const LOCKER_ID_MEMBER: &str = "id";

/// The eBPF object built by build.rs (aya-build names it after the eBPF crate's bin target).
static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/latch-probe-ebpf"));
const GRANT_PROGRAM: &str = "latch_grant";
const EVENTS_MAP: &str = "EVENTS";

#[derive(Debug, Error)]
pub enum TraceError {
    // Wrapped causes are part of each message, not `source`s, so a chain prints them once.
    #[error(transparent)]
    DebugInfo(#[from] DebugInfoError),
    #[error(transparent)]
    Abi(#[from] AbiError),
    #[error("{} is built for {architecture:?}; the eBPF program reads x86-64 registers only", path.display())]
    Architecture {
        path: PathBuf,
        architecture: object::Architecture,
    },
    #[error(
        "the DWARF at {address:#x} describes `{found}`, not `{expected}`; the symbol table and \
         the debug info of {} disagree",
        path.display()
    )]
    SubprogramMismatch {
        path: PathBuf,
        address: u64,
        expected: String,
        found: String,
    },
    #[error(
        "`{function}` in {} has no parameter `{parameter}`; the daemon's signature changed \
         (see the probe/daemon contract in docs/)",
        path.display()
    )]
    ParameterNotFound {
        path: PathBuf,
        function: String,
        parameter: String,
    },
    #[error(
        "parameter `{parameter}` of `{function}` is {class:?}, not a pointer; the daemon must \
         pass the locker by reference"
    )]
    NotAPointer {
        function: String,
        parameter: String,
        class: ParameterClass,
    },
    #[error("`{type_path}::{member}` is {size:?} bytes, not a u64")]
    NotAU64 {
        type_path: String,
        member: String,
        size: Option<u64>,
    },
    #[error("pid 0 cannot be traced; give the daemon's pid")]
    ZeroPid,
    #[error("loading the eBPF object failed: {0}; tracing needs root (CAP_BPF and CAP_PERFMON)")]
    Load(EbpfError),
    #[error("the embedded eBPF object has no {what} `{name}`; probe-ebpf and this crate disagree")]
    Missing {
        what: &'static str,
        name: &'static str,
    },
    #[error("the eBPF program `{GRANT_PROGRAM}` was rejected: {0}")]
    Program(ProgramError),
    #[error(
        "attaching the uprobe at file offset {file_offset:#x} of {} for pid {pid} failed: \
         {error}; check that the process exists and runs this executable",
        path.display()
    )]
    Attach {
        path: PathBuf,
        pid: u32,
        file_offset: u64,
        error: ProgramError,
    },
    #[error("opening the event ring buffer failed: {0}")]
    Map(MapError),
    #[error("waiting for events failed: {0}")]
    Poll(nix::Error),
    #[error("an event record of {len} bytes arrived where {expected} were expected; probe-ebpf and this crate disagree")]
    ShortRecord { len: usize, expected: usize },
}

/// Everything the grant uprobe needs, computed from one executable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantPlan {
    pub function: FunctionSymbol,
    /// The argument register (0 = first) that holds the locker pointer at entry.
    pub locker_register: u32,
    /// Where `id` sits inside the locker.
    pub locker_id_offset: u64,
}

impl GrantPlan {
    /// Reads the grant function's entry, the locker parameter's register and the id's offset
    /// from `exe`'s symbols and DWARF.
    pub fn from_executable(exe: &Executable) -> Result<Self, TraceError> {
        let architecture = exe.architecture()?;
        if architecture != object::Architecture::X86_64 {
            return Err(TraceError::Architecture {
                path: exe.path().to_owned(),
                architecture,
            });
        }
        let function = exe.function(GRANT_FUNCTION)?;
        let sub = exe.subprogram(&function)?;
        if sub.rust_path() != GRANT_FUNCTION {
            return Err(TraceError::SubprogramMismatch {
                path: exe.path().to_owned(),
                address: function.address,
                expected: GRANT_FUNCTION.to_owned(),
                found: sub.rust_path(),
            });
        }
        let (index, locker) =
            sub.parameter(LOCKER_PARAMETER)
                .ok_or_else(|| TraceError::ParameterNotFound {
                    path: exe.path().to_owned(),
                    function: GRANT_FUNCTION.to_owned(),
                    parameter: LOCKER_PARAMETER.to_owned(),
                })?;
        if locker.class != ParameterClass::Pointer {
            return Err(TraceError::NotAPointer {
                function: GRANT_FUNCTION.to_owned(),
                parameter: LOCKER_PARAMETER.to_owned(),
                class: locker.class,
            });
        }
        let locker_register = abi::argument_register(&sub, index)?;
        let id = exe.struct_member(LOCKER_TYPE, LOCKER_ID_MEMBER)?;
        if id.byte_size != Some(8) {
            return Err(TraceError::NotAU64 {
                type_path: LOCKER_TYPE.to_owned(),
                member: LOCKER_ID_MEMBER.to_owned(),
                size: id.byte_size,
            });
        }
        Ok(GrantPlan {
            function,
            locker_register,
            locker_id_offset: id.offset,
        })
    }
}

/// A grant uprobe attached to one process; dropping it detaches.
pub struct GrantTrace {
    // Field order is drop order: the ring buffer's mapping goes before the program.
    events: RingBuf<MapData>,
    ebpf: Ebpf,
    link: Option<UProbeLinkId>,
}

impl GrantTrace {
    /// Attaches to `pid`, whose executable is `target` (e.g. `/proc/PID/exe`: the very file
    /// the process runs, even if it was replaced on disk since).
    pub fn attach(plan: &GrantPlan, target: &Path, pid: u32) -> Result<Self, TraceError> {
        let pid_nz = NonZeroU32::new(pid).ok_or(TraceError::ZeroPid)?;
        let mut ebpf = EbpfLoader::new()
            .override_global("LOCKER_ARG", &plan.locker_register, true)
            .override_global("LOCKER_ID_OFFSET", &plan.locker_id_offset, true)
            .load(EBPF_OBJECT)
            .map_err(TraceError::Load)?;
        let program: &mut UProbe = ebpf
            .program_mut(GRANT_PROGRAM)
            .ok_or(TraceError::Missing {
                what: "program",
                name: GRANT_PROGRAM,
            })?
            .try_into()
            .map_err(TraceError::Program)?;
        program.load().map_err(TraceError::Program)?;
        let link = program
            .attach(
                UProbeAttachLocation::AbsoluteOffset(plan.function.file_offset),
                target,
                UProbeScope::OneProcess(pid_nz),
            )
            .map_err(|error| TraceError::Attach {
                path: target.to_owned(),
                pid,
                file_offset: plan.function.file_offset,
                error,
            })?;
        let map = ebpf.take_map(EVENTS_MAP).ok_or(TraceError::Missing {
            what: "map",
            name: EVENTS_MAP,
        })?;
        let events = RingBuf::try_from(map).map_err(TraceError::Map)?;
        Ok(GrantTrace {
            events,
            ebpf,
            link: Some(link),
        })
    }

    /// The next event, waiting at most `timeout`; `None` when none came in time.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<RawEvent>, TraceError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(item) = self.events.next() {
                return decode(&item).map(Some);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // Whole milliseconds, rounded up so a short wait does not become a busy loop.
            let ms = u16::try_from(left.as_millis().saturating_add(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.events.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(TraceError::Poll(e)),
            }
        }
    }
}

impl Drop for GrantTrace {
    fn drop(&mut self) {
        // Dropping the program would detach too; doing it first and by name makes the order
        // explicit: no event is written once the trace is gone.
        if let (Some(link), Some(program)) =
            (self.link.take(), self.ebpf.program_mut(GRANT_PROGRAM))
        {
            if let Ok(uprobe) = <&mut UProbe>::try_from(program) {
                // Nothing to do about a failed detach here; unloading the program ends it anyway.
                let _ = uprobe.detach(link);
            }
        }
    }
}

/// A ring buffer record as the eBPF program wrote it.
fn decode(bytes: &[u8]) -> Result<RawEvent, TraceError> {
    let expected = std::mem::size_of::<RawEvent>();
    if bytes.len() < expected {
        return Err(TraceError::ShortRecord {
            len: bytes.len(),
            expected,
        });
    }
    // SAFETY: the length is checked and RawEvent is plain integers, valid for any bytes.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<RawEvent>()) })
}

/// The event kind a raw record carries, if it is one this probe knows.
pub fn event_kind(raw: &RawEvent) -> Option<EventKind> {
    use EventKind::*;
    [
        LockerCreate,
        LockerDestroy,
        Incubate,
        Promote,
        Enqueue,
        Grant,
        Release,
        Cancel,
    ]
    .into_iter()
    .find(|kind| *kind as u32 == raw.kind)
}

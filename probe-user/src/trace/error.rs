//! Why tracing could not start or go on, each with what to do about it.

use crate::error::ProbeError;
use aya::maps::MapError;
use aya::programs::ProgramError;
use aya::EbpfError;
use dwarfpeek::abi::AbiError;
use dwarfpeek::debuginfo::{DebugInfoError, ParameterClass};
use dwarfpeek::value::ValueError;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TraceError {
    // Wrapped causes are part of each message, not `source`s, so a chain prints them once.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(transparent)]
    DebugInfo(#[from] DebugInfoError),
    #[error(transparent)]
    Abi(#[from] AbiError),
    #[error("{} is built for {architecture:?}; the eBPF programs read x86-64 registers only", path.display())]
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
        "`{function}` has no parameter `{parameter}`; the daemon's signature changed (see the \
         probe/daemon contract in docs/contract.md)"
    )]
    ParameterNotFound { function: String, parameter: String },
    #[error(
        "parameter `{parameter}` of `{function}` is {class:?} of {size:?} bytes, not one \
         pointer; the daemon must pass it by reference (docs/contract.md)"
    )]
    NotAPointer {
        function: String,
        parameter: String,
        class: ParameterClass,
        size: Option<u64>,
    },
    #[error("the daemon's type `{0}` is not in its DWARF; the daemon and the probe disagree on the contract (docs/contract.md)")]
    TypeNotFound(String),
    #[error("the layout of `{what}` could not be read from the DWARF: {error}")]
    Layout { what: String, error: ValueError },
    #[error(
        "the fields an event reads of `{type_name}` reach byte {size}, beyond the {max} the \
         eBPF programs can copy of it; raise BLOCK_BYTES in probe-common"
    )]
    TooLarge {
        type_name: String,
        size: u64,
        max: usize,
    },
    #[error("pid 0 cannot be traced; give the daemon's pid")]
    ZeroPid,
    #[error("loading the eBPF object failed: {0}; tracing needs root (CAP_BPF and CAP_PERFMON)")]
    Load(Box<EbpfError>),
    #[error("the embedded eBPF object has no {what} `{name}`; probe-ebpf and this crate disagree")]
    Missing {
        what: &'static str,
        name: &'static str,
    },
    #[error("the eBPF program `{program}` was rejected: {error}")]
    Program {
        program: &'static str,
        error: Box<ProgramError>,
    },
    #[error(
        "attaching the uprobe on `{function}` (file offset {file_offset:#x} of {}) for pid \
         {pid} failed: {error}; check that the process exists and runs this executable",
        path.display()
    )]
    Attach {
        function: String,
        path: PathBuf,
        pid: u32,
        file_offset: u64,
        error: Box<ProgramError>,
    },
    #[error("opening the eBPF map `{name}` failed: {error}")]
    Map {
        name: &'static str,
        error: Box<MapError>,
    },
    #[error("opening a pidfd of pid {pid} failed: {error}; check that the process exists")]
    Pidfd { pid: u32, error: std::io::Error },
    #[error("waiting for events failed: {0}")]
    Poll(nix::Error),
    #[error("the live feed's thread ended before its first snapshot; try again")]
    FeedEnded,
    #[error("an event record of {len} bytes arrived where {expected} were expected; probe-ebpf and this crate disagree")]
    ShortRecord { len: usize, expected: usize },
}

impl TraceError {
    /// The probe's documented exit code for this error.
    pub fn exit_code(&self) -> u8 {
        use crate::error::exit_code::*;
        match self {
            TraceError::Probe(e) => e.exit_code(),
            TraceError::DebugInfo(_)
            | TraceError::SubprogramMismatch { .. }
            | TraceError::ParameterNotFound { .. }
            | TraceError::NotAPointer { .. }
            | TraceError::TypeNotFound(_)
            | TraceError::Layout { .. } => NOT_A_LATCH_DAEMON,
            TraceError::ZeroPid | TraceError::Attach { .. } | TraceError::Pidfd { .. } => {
                TARGET_NOT_FOUND_OR_NOT_PERMITTED
            }
            _ => USAGE,
        }
    }
}

//! dwarfpeek: reads a process from outside, with no help from it. A running process (all
//! threads frozen with ptrace while its memory is copied) or an ELF core file; its
//! executable's symbols and DWARF; typed Rust values decoded from their DWARF shape (std
//! collections included); expressions over any static (`print`, `type`); every thread's
//! stack, unwound and named; what `/proc` says about it.
//!
//! Generic: it knows no program's names. What a caller finds interesting (a static, a lock
//! guard's type) the caller passes in; every offset, size and discriminant comes from the
//! DWARF of the exact executable being read.

#![forbid(unsafe_code)]

pub mod abi;
pub mod debuginfo;
pub mod inspect;
pub mod memory;
pub mod process;
pub mod stacks;
pub mod value;

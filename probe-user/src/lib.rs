//! The latch probe: reads a latch daemon's state from outside, with no help from the daemon.
//!
//! Everything it knows about the daemon it learns from the daemon's executable (symbols and
//! DWARF) and from the running process; it never depends on the daemon's crate.

pub mod abi;
pub mod capture;
pub mod debuginfo;
pub mod evict;
pub mod inspect;
pub mod memory;
pub mod merge;
pub mod model;
pub mod render;
pub mod stacks;
pub mod stop;
pub mod trace;
pub mod value;

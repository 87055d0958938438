//! The latch probe: reads a latch daemon's state from outside, with no help from the daemon.
//!
//! Everything it knows about the daemon it learns from the daemon's executable (symbols and
//! DWARF) and from the running process; it never depends on the daemon's crate. The generic
//! reading (memory, debug info, values, expressions, stacks, `/proc`) is [`dwarfpeek`]'s;
//! this crate holds what is latch's: the lock table's model, the trace, the merge of events
//! into a state, the renderers, eviction, the errors and exit codes, and how a target is
//! opened.

pub mod analysis;
pub mod capture;
pub mod error;
pub mod evict;
pub mod evidence;
pub mod executable;
pub mod merge;
pub mod model;
pub mod render;
pub mod stacks;
pub mod stop;
pub mod target;
pub mod trace;

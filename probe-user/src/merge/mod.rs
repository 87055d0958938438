//! The daemon's state kept current from outside with no further freezing: one snapshot, then
//! the eBPF events merged into it ([`LiveState`]), with the merge patch (RFC 7396, over the
//! keyed form of [`patch`]) of every change, and the alerts a watcher wants ([`alerts`], and
//! [`cycles`] for deadlocks).
//!
//! Documents in, documents out: it reads no process; the trace and the model feed it (and
//! the caller the process table the deadlock alert needs).

pub mod alerts;
pub mod cycles;
pub mod patch;
mod state;

pub use state::{Applied, LiveState, Misfit};

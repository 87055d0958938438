//! The daemon's state kept current from outside with no further freezing: one snapshot, then
//! the eBPF events merged into it ([`LiveState`]), with the merge patch (RFC 7396, over the
//! keyed form of [`patch`]) of every change, and the alerts a watcher wants ([`alerts`]).
//!
//! Documents in, documents out: it reads no process; the trace and the model feed it.

pub mod alerts;
pub mod patch;
mod state;

pub use state::{Applied, LiveState, Misfit};

//! The harness of the end-to-end tests: builds the real `latch` and `latch-probe` binaries
//! (once per profile), starts daemons on private sockets or loopback ports, runs commands
//! with bounded waits, and stops every process it started by its pid.
//!
//! It may not signal processes by name (no pkill/killall: other daemons on the machine are
//! not ours), wait without a bound, or leave a process behind when a test panics.

pub mod background;
pub mod bins;
pub mod clients;
pub mod command;
pub mod coredump;
pub mod daemon;
pub mod events;
pub mod fixture;
pub mod flom;
pub mod lines;
pub mod netns;
pub mod probe;
pub mod procs;
pub mod randomized;
pub mod rng;
pub mod sockets;
pub mod spawned;
pub mod state;
pub mod timeouts;
pub mod wait;

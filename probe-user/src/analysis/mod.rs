//! Who blocks whom: a state (with what is known of its client processes) analysed into a
//! verdict, `latch.report/1`. Parties are processes, not connections; deadlocks are found
//! across resources, modes, quantities and set elements; each finding carries the command
//! that acts on it.
//!
//! Pure: it reads documents (a state, a process table, a sentence from the stacks) and
//! returns one; collecting them is the caller's job. The data flows one way: [`parties`] and
//! [`conflict`] → [`blocking`] and [`deadlock`] → [`report`] → [`render`].

pub mod blocking;
pub mod conflict;
pub mod deadlock;
pub mod diff;
pub mod parties;
pub mod processes;
pub mod render;
pub mod report;

pub use processes::ProcessTable;
pub use report::{Input, Report, Verdict};

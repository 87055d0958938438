//! flom's exit statuses, which `latch` keeps for its client and reuses for "any other
//! error" everywhere else (a bad command line, a daemon that cannot start).
//!
//! Numbers only; who exits with which is the caller's business.

#![forbid(unsafe_code)]

/// The resource could be available later, but the requester can't wait (`-e no -o 0`).
pub(crate) const CANT_WAIT: i32 = 96;
/// The command could not be run (or none was given).
pub(crate) const CANT_EXEC: i32 = 97;
/// Busy (`-o 0`), or the timeout expired.
pub(crate) const BUSY: i32 = 98;
/// Any other error.
pub(crate) const ERROR: i32 = 99;

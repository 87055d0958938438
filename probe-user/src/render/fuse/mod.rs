//! `latch-probe mount`: the tree served read-only over FUSE (fuser, without libfuse), from the
//! latest capture, refreshed on an interval and whenever `DIR/.refresh` is read, with inodes
//! that stay put while their paths do.
//!
//! It serves what the captures say and nothing more: capturing is the caller's function, and
//! nothing here reads the daemon.

mod fs;
mod inodes;
mod refresh;
mod serve;
mod view;

pub use fs::CONTROL_NAME;
pub use refresh::{CaptureError, CaptureFn};
pub use serve::{serve, Ended, MountError, MountOptions};

#[cfg(test)]
mod tests;

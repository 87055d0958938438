//! Ways to show a [`Capture`](crate::capture::Capture): the tree in FLoM's VFS layout
//! ([`tree`]), written as plain files or served over FUSE ([`fuse`]).
//!
//! Renderers only read a capture: they never read the daemon's memory, and what they show is
//! exactly what the capture says, so two renderings of one capture always agree.

pub mod fuse;
pub mod tree;

#[cfg(test)]
mod fixture;

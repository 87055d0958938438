//! The tree a [`Capture`] is shown as, in memory: FLoM's `status/` layout exactly as
//! the real FLoM lays it out (docs/probe.md, "The tree"), plus `daemon/`, `threads/` and `state.json`. The FUSE
//! mount serves it and [`write_tree`] writes it as plain files, so both show the same bytes,
//! modes (0550/0440), owner (the daemon's uid/gid) and mtimes.
//!
//! Mtimes: an entry's directory and files carry its `since`, a locker's directory and files
//! its creation; a directory whose children come and go carries its newest child's time (its
//! mtime moves when a child is added, as FLoM's do); what the capture has no time for (the
//! root, `status/`, an empty incubator) carries the snapshot's time.
//!
//! Pure: building reads the capture and nothing else.

mod extras;
mod node;
mod status;
mod time;
mod write;

pub use node::{Kind, Node, NodeId, Tree, DIR_MODE, FILE_MODE};
pub use time::system_time;
pub use write::WriteError;

use crate::capture::Capture;
use std::collections::HashSet;
use std::hash::Hash;
use std::path::Path;

/// The tree of one capture.
pub fn build(capture: &Capture) -> Tree {
    let t = capture.daemon.snapshot_ns;
    let mut tree = Tree::new(capture.daemon.uid, capture.daemon.gid, t);
    status::add(&mut tree, &capture.state, t);
    extras::add_daemon(&mut tree, capture);
    extras::add_threads(&mut tree, &capture.threads, t);
    extras::add_state_json(&mut tree, capture);
    tree
}

/// Writes the capture's tree as plain files rooted at `dir` (made if missing; an existing
/// one must be empty): `latch-probe dump --tree DIR`.
pub fn write_tree(capture: &Capture, dir: &Path) -> Result<(), WriteError> {
    write::write(&build(capture), dir)
}

/// The text and FLoM's trailing newline.
fn line(text: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    bytes
}

/// The items in order, each key once (the first wins): a capture of a half-written table may
/// list an id twice, and a directory cannot.
fn unique<T, K: Eq + Hash>(items: &[T], key: impl Fn(&T) -> K) -> impl Iterator<Item = &T> {
    let mut seen = HashSet::new();
    items.iter().filter(move |item| seen.insert(key(item)))
}

#[cfg(test)]
mod tests;

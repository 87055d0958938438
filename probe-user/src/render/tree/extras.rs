//! What the tree shows beyond FLoM's `status/`: `daemon/` (which process, which binary, which
//! generation, whether the copy is torn, when it was taken), `threads/<tid>/{name,state}` and
//! `state.json` (the whole `latch.state/1` document).
//!
//! Every file is one value and a newline, so `cat` and shell scripts read them as they read
//! FLoM's. Their times are the snapshot's: they are facts about that moment.

use super::node::Tree;
use super::time::rfc3339;
use super::{line, unique};
use crate::capture::Capture;
use dwarfpeek::process::ThreadFacts;
use std::os::unix::ffi::OsStrExt;

pub(super) fn add_daemon(tree: &mut Tree, capture: &Capture) {
    let t = capture.daemon.snapshot_ns;
    let facts = &capture.daemon;
    let dir = tree.add_dir(tree.root(), "daemon", t);
    tree.add_file(dir, "pid", line(&facts.pid.to_string()), t);
    let mut exe = facts.exe.as_os_str().as_bytes().to_vec();
    exe.push(b'\n');
    tree.add_file(dir, "exe", exe, t);
    // Absent rather than empty: an executable without a build id has nothing to show.
    if let Some(build_id) = &facts.build_id {
        tree.add_file(dir, "build_id", line(build_id), t);
    }
    let state = &capture.state;
    tree.add_file(dir, "generation", line(&state.generation.to_string()), t);
    tree.add_file(dir, "torn", line(&state.torn.to_string()), t);
    // Only for a partial capture, so that its mere presence says the state is not whole.
    if !capture.problems.is_empty() {
        let text: String = capture.problems.iter().map(|p| format!("{p}\n")).collect();
        tree.add_file(dir, "problems", text.into_bytes(), t);
    }
    tree.add_file(dir, "snapshot_time", line(&rfc3339(t)), t);
}

pub(super) fn add_threads(tree: &mut Tree, threads: &[ThreadFacts], t: u64) {
    let dir = tree.add_dir(tree.root(), "threads", t);
    for thread in unique(threads, |thread| thread.tid) {
        let tid = tree.add_dir(dir, &thread.tid.to_string(), t);
        tree.add_file(tid, "name", line(&thread.name), t);
        tree.add_file(tid, "state", line(&thread.state), t);
    }
}

pub(super) fn add_state_json(tree: &mut Tree, capture: &Capture) {
    let t = capture.daemon.snapshot_ns;
    let mut json = serde_json::to_vec_pretty(&capture.state)
        .expect("a StateDoc always serializes: plain structs, string keys, no custom code");
    json.push(b'\n');
    tree.add_file(tree.root(), "state.json", json, t);
}

//! The tree against FLoM's VFS as the real program lays it out (docs/probe.md, "The tree"):
//! layout and listing order, exact bytes, modes, owner, mtimes; and the plain-file writer against the tree.

use super::*;
use crate::render::fixture::{self, SECOND, SNAPSHOT, T0};
use latch_probe_common::LockMode;
use std::os::unix::fs::MetadataExt;

fn bytes(tree: &Tree, path: &str) -> Vec<u8> {
    let id = tree.find(path).unwrap_or_else(|| panic!("{path} missing"));
    match &tree.node(id).kind {
        Kind::File(bytes) => bytes.clone(),
        Kind::Dir(_) => panic!("{path} is a directory"),
    }
}

fn mtime(tree: &Tree, path: &str) -> u64 {
    tree.node(tree.find(path).unwrap_or_else(|| panic!("{path} missing")))
        .mtime_ns
}

fn paths_under(tree: &Tree, prefix: &str) -> Vec<String> {
    tree.walk()
        .into_iter()
        .map(|(path, _)| path)
        .filter(|path| path.starts_with(prefix))
        .collect()
}

#[test]
fn status_layout_and_order_are_flom_s() {
    let tree = build(&fixture::capture());
    // FLoM's find order of locker 3 with a holder and a waiter.
    assert_eq!(
        paths_under(&tree, "status/lockers/3"),
        [
            "status/lockers/3",
            "status/lockers/3/resource_name",
            "status/lockers/3/resource_type",
            "status/lockers/3/holders",
            "status/lockers/3/holders/2",
            "status/lockers/3/holders/2/peer_name",
            "status/lockers/3/holders/2/lock_mode",
            "status/lockers/3/waitings",
            "status/lockers/3/waitings/4",
            "status/lockers/3/waitings/4/peer_name",
            "status/lockers/3/waitings/4/lock_mode",
        ]
    );
    let top: Vec<&str> = tree
        .node(tree.root())
        .children()
        .iter()
        .map(|&id| tree.node(id).name.as_str())
        .collect();
    assert_eq!(top, ["status", "daemon", "threads", "state.json"]);
    let status = tree.find("status").unwrap();
    let names: Vec<&str> = tree
        .node(status)
        .children()
        .iter()
        .map(|&id| tree.node(id).name.as_str())
        .collect();
    assert_eq!(names, ["incubator", "lockers"]);
    // Lockers in id order, as listed.
    let lockers = tree.find("status/lockers").unwrap();
    let ids: Vec<&str> = tree
        .node(lockers)
        .children()
        .iter()
        .map(|&id| tree.node(id).name.as_str())
        .collect();
    assert_eq!(ids, ["3", "6", "8", "11", "14", "16", "19", "23"]);
    // An incubated client, as FLoM shows one.
    assert_eq!(
        paths_under(&tree, "status/incubator"),
        [
            "status/incubator",
            "status/incubator/21",
            "status/incubator/21/peer_name",
            "status/incubator/21/resource_name",
            "status/incubator/21/resource_type",
        ]
    );
}

#[test]
fn file_bytes_are_flom_s() {
    let tree = build(&fixture::capture());
    let expect: &[(&str, &[u8])] = &[
        // b: simple, holder and waiter; a PR holder
        ("status/lockers/3/resource_name", b"foo\n"),
        ("status/lockers/3/resource_type", b"simple\n"),
        ("status/lockers/3/holders/2/peer_name", b"localhost/\n"),
        ("status/lockers/3/holders/2/lock_mode", b"Exclusive"),
        ("status/lockers/3/waitings/4/peer_name", b"localhost/\n"),
        ("status/lockers/3/waitings/4/lock_mode", b"Exclusive"),
        ("status/lockers/6/holders/5/lock_mode", b"ProtectedRead"),
        // f: numeric
        ("status/lockers/8/resource_name", b"num[3]\n"),
        ("status/lockers/8/resource_type", b"numeric\n"),
        ("status/lockers/8/holders/7/quantity", b"2\n"),
        ("status/lockers/8/waitings/9/quantity", b"2\n"),
        // x: sequence, timestamp, hierarchical
        ("status/lockers/11/resource_type", b"sequence\n"),
        ("status/lockers/11/holders/10/sequence_value", b"1\n"),
        ("status/lockers/14/resource_name", b"_t_%H:%M:%S#fff[1]\n"),
        ("status/lockers/14/resource_type", b"timestamp\n"),
        (
            "status/lockers/14/holders/13/timestamp_value",
            b"22:20:12.997\n",
        ),
        ("status/lockers/16/resource_name", b"/a/b\n"),
        ("status/lockers/16/resource_type", b"hierarchical\n"),
        ("status/lockers/16/holders/15/lock_mode", b"ConcurrentRead"),
        ("status/lockers/16/waitings/17/lock_mode", b"Exclusive"),
        // g: set
        ("status/lockers/19/resource_name", b"red.green.blue\n"),
        ("status/lockers/19/resource_type", b"set\n"),
        ("status/lockers/19/holders/18/peer_name", b"localhost/\n"),
        // tcp
        (
            "status/lockers/23/holders/22/peer_name",
            b"127.0.0.1/60980\n",
        ),
        // k: incubator
        ("status/incubator/21/peer_name", b"localhost/\n"),
        ("status/incubator/21/resource_name", b"x\n"),
        ("status/incubator/21/resource_type", b"simple\n"),
    ];
    for (path, want) in expect {
        assert_eq!(
            bytes(&tree, path),
            *want,
            "{path}: {:?}",
            String::from_utf8_lossy(want)
        );
    }
    // Set entries and sequence waiters show peer_name only.
    for dir in [
        "status/lockers/19/holders/18",
        "status/lockers/19/waitings/20",
        "status/lockers/11/waitings/12",
    ] {
        assert_eq!(
            paths_under(&tree, &format!("{dir}/")),
            [format!("{dir}/peer_name")]
        );
    }
}

#[test]
fn every_lock_mode_has_flom_s_long_name() {
    let mut capture = fixture::capture();
    let expected = [
        (LockMode::NL, "NullLock"),
        (LockMode::CR, "ConcurrentRead"),
        (LockMode::CW, "ConcurrentWrite"),
        (LockMode::PR, "ProtectedRead"),
        (LockMode::PW, "ProtectedWrite"),
        (LockMode::EX, "Exclusive"),
    ];
    for (mode, name) in expected {
        capture.state.lockers[0].holders[0].request.lock_mode = Some(mode);
        let tree = build(&capture);
        assert_eq!(
            bytes(&tree, "status/lockers/3/holders/2/lock_mode"),
            name.as_bytes()
        );
    }
}

#[test]
fn modes_owner_and_mtimes() {
    let tree = build(&fixture::capture());
    assert_eq!((tree.uid, tree.gid), (1001, 1002));
    for (path, id) in tree.walk() {
        let node = tree.node(id);
        let want = if node.is_dir() { 0o550 } else { 0o440 };
        assert_eq!(node.mode(), want, "{path}");
    }
    let t = |s: u64| T0 + s * SECOND;
    // A locker's directory and files: its creation; an entry's: its `since`.
    assert_eq!(mtime(&tree, "status/lockers/3"), t(0));
    assert_eq!(mtime(&tree, "status/lockers/3/resource_name"), t(0));
    assert_eq!(mtime(&tree, "status/lockers/3/waitings/4"), t(1));
    assert_eq!(mtime(&tree, "status/lockers/3/waitings/4/lock_mode"), t(1));
    // Lists: the newest child; empty, the locker's creation.
    assert_eq!(mtime(&tree, "status/lockers/3/waitings"), t(1));
    assert_eq!(mtime(&tree, "status/lockers/6/waitings"), t(1));
    assert_eq!(mtime(&tree, "status/lockers"), t(9));
    assert_eq!(mtime(&tree, "status/incubator"), t(10));
    // What the state has no time for: the snapshot.
    assert_eq!(mtime(&tree, ""), SNAPSHOT);
    assert_eq!(mtime(&tree, "status"), SNAPSHOT);
    assert_eq!(mtime(&tree, "daemon/pid"), SNAPSHOT);
    let mut empty = fixture::capture();
    empty.state.incubator.clear();
    assert_eq!(mtime(&build(&empty), "status/incubator"), SNAPSHOT);
}

#[test]
fn daemon_threads_and_state_json() {
    let capture = fixture::capture();
    let tree = build(&capture);
    assert_eq!(
        paths_under(&tree, "daemon"),
        [
            "daemon",
            "daemon/pid",
            "daemon/exe",
            "daemon/build_id",
            "daemon/generation",
            "daemon/torn",
            "daemon/snapshot_time"
        ]
    );
    assert_eq!(bytes(&tree, "daemon/pid"), b"4242\n");
    assert_eq!(bytes(&tree, "daemon/exe"), b"/usr/bin/latch\n");
    assert_eq!(bytes(&tree, "daemon/build_id"), b"0123abcd\n");
    assert_eq!(bytes(&tree, "daemon/generation"), b"40\n");
    assert_eq!(bytes(&tree, "daemon/torn"), b"false\n");
    assert_eq!(
        bytes(&tree, "daemon/snapshot_time"),
        b"2026-11-21T22:19:37.000000000Z\n"
    );
    assert_eq!(bytes(&tree, "threads/4243/name"), b"latch-admin\n");
    assert_eq!(bytes(&tree, "threads/4243/state"), b"S\n");
    let json = bytes(&tree, "state.json");
    assert_eq!(json.last(), Some(&b'\n'));
    let doc: latch_probe_common::doc::StateDoc = serde_json::from_slice(&json).unwrap();
    assert_eq!(doc, capture.state);

    assert_eq!(tree.find("daemon/problems"), None);

    // Optional facts: a build id only if the executable has one, problems only if any.
    let mut other = capture.clone();
    other.daemon.build_id = None;
    other.problems = vec!["locker 9: cut".into(), "entry 4: bad mode".into()];
    let tree = build(&other);
    assert_eq!(tree.find("daemon/build_id"), None);
    assert_eq!(
        bytes(&tree, "daemon/problems"),
        b"locker 9: cut\nentry 4: bad mode\n"
    );
}

#[test]
fn a_garbled_capture_lists_each_id_once() {
    let mut capture = fixture::capture();
    let mut twin = capture.state.lockers[0].clone();
    twin.resource_name = "twin".into();
    capture.state.lockers.push(twin);
    let first = capture.state.lockers[0].holders[0].clone();
    capture.state.lockers[0].holders.push(first);
    capture.threads.push(capture.threads[0].clone());
    let tree = build(&capture);
    assert_eq!(bytes(&tree, "status/lockers/3/resource_name"), b"foo\n");
    assert_eq!(paths_under(&tree, "status/lockers/3/holders/").len(), 3);
    assert_eq!(paths_under(&tree, "threads/").len(), 6);
}

#[test]
fn write_tree_writes_the_same_files() {
    let capture = fixture::capture();
    let tree = build(&capture);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    write_tree(&capture, &root).unwrap();
    let root_meta = std::fs::metadata(&root).unwrap();
    assert_eq!(root_meta.mode() & 0o7777, 0o550);
    assert_eq!(root_meta.mtime() as u64, SNAPSHOT / SECOND);
    for (path, id) in tree.walk() {
        let node = tree.node(id);
        let on_disk = root.join(&path);
        let meta = std::fs::symlink_metadata(&on_disk).unwrap();
        assert_eq!(meta.is_dir(), node.is_dir(), "{path}");
        assert_eq!(meta.mode() & 0o7777, u32::from(node.mode()), "{path}");
        let ns = meta.mtime() as u64 * SECOND + meta.mtime_nsec() as u64;
        assert_eq!(ns, node.mtime_ns, "{path}");
        if nix::unistd::geteuid().is_root() {
            assert_eq!((meta.uid(), meta.gid()), (1001, 1002), "{path}");
        }
        if let Kind::File(want) = &node.kind {
            assert_eq!(&std::fs::read(&on_disk).unwrap(), want, "{path}");
        }
    }
    // Only into an empty directory.
    assert!(matches!(
        write_tree(&capture, dir.path()),
        Err(WriteError::NotEmpty(_))
    ));
}

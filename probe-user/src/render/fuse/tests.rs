//! The FUSE server over a hand-built capture, mounted for real (root and /dev/fuse, as in
//! CI): the same files as the tree, FLoM's stat fields, ENOENT for vanished paths, refusals
//! of writes, `.refresh`, and inodes that stay with their paths.

use super::fs::{TreeFs, CONTROL_NAME};
use super::refresh::{CaptureFn, Latest};
use crate::render::fixture::{self, SECOND};
use crate::render::tree::{build, Kind};
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn mounted(dir: &Path, capture: CaptureFn) -> fuser::BackgroundSession {
    let latest = Arc::new(Latest::new(&fixture::capture(), capture));
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::RO,
        fuser::MountOption::DefaultPermissions,
    ];
    fuser::spawn_mount(TreeFs::new(latest), dir, &config).expect("mount (needs root and /dev/fuse)")
}

#[test]
fn serves_the_tree_and_follows_refreshes() {
    let dir = tempfile::tempdir().unwrap();
    let refreshes = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&refreshes);
    // Each refresh: the waiter on foo has been granted, one second later per refresh.
    let capture: CaptureFn = Box::new(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let mut c = fixture::capture();
        let mut waiter = c.state.lockers[0].waitings.remove(0);
        waiter.request.since_ns += n * SECOND;
        c.state.lockers[0].holders = vec![waiter];
        c.state.generation += 2 * n;
        c.daemon.snapshot_ns += n * SECOND;
        Ok(c)
    });
    let session = mounted(dir.path(), capture);
    let root = dir.path();

    // Every node, with its bytes, mode, owner and mtime; listing order as the tree's.
    let tree = build(&fixture::capture());
    for (path, id) in tree.walk() {
        let node = tree.node(id);
        let meta = std::fs::symlink_metadata(root.join(&path)).unwrap();
        assert_eq!(meta.mode() & 0o7777, u32::from(node.mode()), "{path}");
        assert_eq!((meta.uid(), meta.gid()), (1001, 1002), "{path}");
        let ns = meta.mtime() as u64 * SECOND + meta.mtime_nsec() as u64;
        assert_eq!(ns, node.mtime_ns, "{path}");
        match &node.kind {
            Kind::File(bytes) => {
                assert_eq!(meta.len(), bytes.len() as u64, "{path}");
                assert_eq!(meta.nlink(), 1, "{path}");
                assert_eq!(&std::fs::read(root.join(&path)).unwrap(), bytes, "{path}");
            }
            Kind::Dir(children) => {
                assert_eq!((meta.len(), meta.nlink()), (0, 2), "{path}");
                let listed: Vec<String> = std::fs::read_dir(root.join(&path))
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect();
                let want: Vec<&str> = children
                    .iter()
                    .map(|&c| tree.node(c).name.as_str())
                    .collect();
                assert_eq!(listed, want, "{path}");
            }
        }
    }

    // Unknown paths: ENOENT; writes: refused.
    let missing = std::fs::metadata(root.join("status/lockers/99")).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    let write = std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("status/lockers/3/resource_name"))
        .unwrap_err();
    assert_eq!(write.raw_os_error(), Some(nix::libc::EROFS), "{write}");
    assert!(std::fs::create_dir(root.join("status/x")).is_err());

    // A refresh on demand: the waiter moved to the holders, the vanished path is gone, the
    // paths that stayed kept their inodes.
    let waiter = root.join("status/lockers/3/waitings/4");
    let locker_ino = std::fs::metadata(root.join("status/lockers/3"))
        .unwrap()
        .ino();
    assert!(waiter.is_dir());
    let answer = std::fs::read(root.join(CONTROL_NAME)).unwrap();
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(
        answer,
        std::fs::read(root.join("daemon/snapshot_time")).unwrap()
    );
    assert_eq!(
        std::fs::metadata(&waiter).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        std::fs::read(root.join("status/lockers/3/holders/4/lock_mode")).unwrap(),
        b"Exclusive"
    );
    assert_eq!(
        std::fs::read(root.join("daemon/generation")).unwrap(),
        b"42\n"
    );
    assert_eq!(
        std::fs::metadata(root.join("status/lockers/3"))
            .unwrap()
            .ino(),
        locker_ino
    );
    // The control file is not listed: walking the tree takes no capture.
    let top: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!top.iter().any(|name| name == CONTROL_NAME), "{top:?}");
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);

    session.umount_and_join().unwrap();
}

#[test]
fn a_failed_refresh_keeps_the_last_view() {
    let dir = tempfile::tempdir().unwrap();
    let session = mounted(dir.path(), Box::new(|| Err("the daemon is gone".into())));
    let err = std::fs::read(dir.path().join(CONTROL_NAME)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::libc::EIO), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("status/lockers/3/resource_name")).unwrap(),
        b"foo\n"
    );
    session.umount_and_join().unwrap();
}

//! One served version of the tree: the tree of one capture, its inode numbers, and the
//! attributes FUSE reports for each node, FLoM's way (directories 0550 with size 0 and two
//! links, files 0440 with their exact length, the daemon's uid and gid, ctime = mtime).
//!
//! Immutable once built: a refresh builds a new view, and requests that began on the old one
//! (an open file, a directory listing) finish on it.

use super::inodes::{Inodes, CONTROL};
use crate::capture::Capture;
use crate::render::tree::{build, system_time, Kind, NodeId, Tree, DIR_MODE, FILE_MODE};
use fuser::{FileAttr, FileType, INodeNo};

/// What `stat` reports as the block size; nothing depends on it.
const BLOCK_SIZE: u32 = 4096;

pub(super) struct View {
    pub tree: Tree,
    pub inodes: Inodes,
}

impl View {
    pub(super) fn new(capture: &Capture) -> View {
        let tree = build(capture);
        let inodes = Inodes::new(&tree);
        View { tree, inodes }
    }

    pub(super) fn attr(&self, id: NodeId) -> FileAttr {
        let node = self.tree.node(id);
        let (kind, size, nlink) = match &node.kind {
            Kind::Dir(_) => (FileType::Directory, 0, 2),
            Kind::File(bytes) => (FileType::RegularFile, bytes.len() as u64, 1),
        };
        self.attr_with(self.inodes.ino(id), kind, size, nlink, node.mtime_ns)
    }

    /// The control file: empty (what reading it returns is made when it is opened), owned
    /// and dated like the root.
    pub(super) fn control_attr(&self) -> FileAttr {
        let root = self.tree.node(self.tree.root());
        self.attr_with(CONTROL, FileType::RegularFile, 0, 1, root.mtime_ns)
    }

    fn attr_with(
        &self,
        ino: u64,
        kind: FileType,
        size: u64,
        nlink: u32,
        mtime_ns: u64,
    ) -> FileAttr {
        let t = system_time(mtime_ns);
        let perm = match kind {
            FileType::Directory => DIR_MODE,
            _ => FILE_MODE,
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: 0,
            // FLoM reports atime 0 (1970); nothing relies on it, and the node's own time
            // surprises nobody.
            atime: t,
            mtime: t,
            ctime: t,
            crtime: t,
            kind,
            perm,
            nlink,
            uid: self.tree.uid,
            gid: self.tree.gid,
            rdev: 0,
            blksize: BLOCK_SIZE,
            flags: 0,
        }
    }

    /// The bytes of a file node (none for a directory).
    pub(super) fn bytes(&self, id: NodeId) -> Option<&[u8]> {
        match &self.tree.node(id).kind {
            Kind::File(bytes) => Some(bytes),
            Kind::Dir(_) => None,
        }
    }

    /// The text reading `.refresh` returns: the new view's `daemon/snapshot_time`.
    pub(super) fn control_text(&self) -> Vec<u8> {
        self.tree
            .find("daemon/snapshot_time")
            .and_then(|id| self.bytes(id))
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    }
}

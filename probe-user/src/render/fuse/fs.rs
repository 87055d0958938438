//! The FUSE requests, answered from the latest view: read-only, with ENOENT for a path that
//! is gone (FLoM answers a zeroed stat, a bug), EACCES for an open for writing (the mount is
//! also read-only, so the kernel refuses most writes with EROFS before they get here), and
//! `.refresh`, a control file at the root that takes a new capture when it is opened.
//!
//! An open file or directory keeps the view it was opened on, so a read or a listing that
//! spans a refresh is never torn. It never captures except for `.refresh`.

use super::inodes::{CONTROL, ROOT};
use super::refresh::Latest;
use super::view::View;
use crate::render::tree::NodeId;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, Request,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The name of the control file. Not listed, so that `find`, `ls -R` or `cp -r` over the
/// mount do not take a capture for every pass.
pub const CONTROL_NAME: &str = ".refresh";

/// No attribute or entry caching by the kernel: every lookup sees the latest view, so a
/// refresh shows at once (a lookup here is a hash lookup in memory).
const TTL: Duration = Duration::ZERO;

/// What an open handle reads from.
enum Handle {
    /// A file of the view it was opened on.
    File(Arc<View>, NodeId),
    /// A directory's entries as they were at opendir: (inode, type, name).
    Dir(Vec<(u64, FileType, String)>),
    /// The answer of a `.refresh`.
    Text(Vec<u8>),
}

pub(super) struct TreeFs {
    latest: Arc<Latest>,
    handles: Mutex<HashMap<u64, Handle>>,
    next_handle: AtomicU64,
}

impl TreeFs {
    pub(super) fn new(latest: Arc<Latest>) -> TreeFs {
        TreeFs {
            latest,
            handles: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
        }
    }

    fn keep(&self, handle: Handle) -> FileHandle {
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.handles().insert(fh, handle);
        FileHandle(fh)
    }

    fn handles(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Handle>> {
        self.handles.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn attr_of(view: &View, ino: u64) -> Option<FileAttr> {
        if ino == CONTROL {
            return Some(view.control_attr());
        }
        view.inodes.node(ino).map(|id| view.attr(id))
    }

    fn open_control(&self, reply: ReplyOpen) {
        match self.latest.refresh() {
            Ok(view) => {
                let fh = self.keep(Handle::Text(view.control_text()));
                reply.opened(fh, FopenFlags::FOPEN_DIRECT_IO);
            }
            Err(error) => {
                eprintln!("latch-probe mount: refresh failed: {error}");
                reply.error(Errno::EIO);
            }
        }
    }

    fn listing(view: &View, id: NodeId) -> Vec<(u64, FileType, String)> {
        let node = view.tree.node(id);
        let parent = node.parent.map_or(ROOT, |p| view.inodes.ino(p));
        let mut entries = vec![
            (view.inodes.ino(id), FileType::Directory, ".".to_owned()),
            (parent, FileType::Directory, "..".to_owned()),
        ];
        entries.extend(node.children().iter().map(|&child| {
            let child_node = view.tree.node(child);
            let kind = if child_node.is_dir() {
                FileType::Directory
            } else {
                FileType::RegularFile
            };
            (view.inodes.ino(child), kind, child_node.name.clone())
        }));
        entries
    }
}

impl Filesystem for TreeFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let view = self.latest.view();
        let Some(name) = name.to_str() else {
            return reply.error(Errno::ENOENT);
        };
        if parent.0 == ROOT && name == CONTROL_NAME {
            return reply.entry(&TTL, &view.control_attr(), Generation(0));
        }
        let found = view
            .inodes
            .node(parent.0)
            .and_then(|dir| view.tree.child(dir, name));
        match found {
            Some(id) => reply.entry(&TTL, &view.attr(id), Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match Self::attr_of(&self.latest.view(), ino.0) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY || flags.0 & nix::libc::O_TRUNC != 0 {
            return reply.error(Errno::EACCES);
        }
        if ino.0 == CONTROL {
            return self.open_control(reply);
        }
        let view = self.latest.view();
        match view.inodes.node(ino.0) {
            Some(id) if view.bytes(id).is_some() => {
                let fh = self.keep(Handle::File(Arc::clone(&view), id));
                // Reads come to us, not from a page cache of an older view's bytes.
                reply.opened(fh, FopenFlags::FOPEN_DIRECT_IO);
            }
            Some(_) => reply.error(Errno::EISDIR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let handles = self.handles();
        let bytes: &[u8] = match handles.get(&fh.0) {
            Some(Handle::File(view, id)) => view.bytes(*id).unwrap_or_default(),
            Some(Handle::Text(text)) => text,
            Some(Handle::Dir(_)) => return reply.error(Errno::EISDIR),
            None => return reply.error(Errno::EBADF),
        };
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let end = start.saturating_add(size as usize).min(bytes.len());
        reply.data(&bytes[start..end]);
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.handles().remove(&fh.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let view = self.latest.view();
        match view.inodes.node(ino.0) {
            Some(id) if view.tree.node(id).is_dir() => {
                let fh = self.keep(Handle::Dir(Self::listing(&view, id)));
                reply.opened(fh, FopenFlags::empty());
            }
            Some(_) => reply.error(Errno::ENOTDIR),
            None if ino.0 == CONTROL => reply.error(Errno::ENOTDIR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let handles = self.handles();
        let Some(Handle::Dir(entries)) = handles.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(skip) {
            // The offset of an entry is where the next call resumes.
            if reply.add(INodeNo(*ino), i as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.handles().remove(&fh.0);
        reply.ok();
    }
}

//! `dump --tree DIR`: the tree written as plain files, with the same layout, bytes, modes,
//! owner and mtimes the FUSE mount shows, so that one can be compared with the other (or kept
//! after the daemon is gone).
//!
//! It writes only inside the directory it is given, and only into an empty one: it never
//! merges with or overwrites an earlier dump.

use super::node::{Kind, NodeId, Tree};
use super::time::system_time;
use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{fchown, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum WriteError {
    #[error("{0} is not an empty directory: a tree is written only into an empty one")]
    NotEmpty(PathBuf),
    #[error("writing {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Writes `tree` with its root at `dir` (made if missing, else it must be empty).
pub(super) fn write(tree: &Tree, dir: &Path) -> Result<(), WriteError> {
    prepare_root(dir)?;
    write_dir(tree, tree.root(), dir)
}

fn prepare_root(dir: &Path) -> Result<(), WriteError> {
    match fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(WriteError::NotEmpty(dir.to_owned())),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| io_error(dir, e))
        }
        Err(e) => Err(io_error(dir, e)),
    }
}

fn write_dir(tree: &Tree, dir: NodeId, path: &Path) -> Result<(), WriteError> {
    for &child in tree.node(dir).children() {
        let node = tree.node(child);
        let child_path = path.join(&node.name);
        match &node.kind {
            Kind::Dir(_) => {
                fs::create_dir(&child_path).map_err(|e| io_error(&child_path, e))?;
                write_dir(tree, child, &child_path)?;
            }
            Kind::File(bytes) => {
                write_file(tree, child, bytes, &child_path).map_err(|e| io_error(&child_path, e))?
            }
        }
    }
    // Last: adding the children moved the directory's mtime, and its final mode may forbid
    // adding them.
    let handle = File::open(path).map_err(|e| io_error(path, e))?;
    set_metadata(tree, dir, &handle).map_err(|e| io_error(path, e))
}

fn write_file(tree: &Tree, id: NodeId, bytes: &[u8], path: &Path) -> Result<(), io::Error> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    set_metadata(tree, id, &file)
}

/// Times first (changing the owner or mode moves only the ctime), the mode last (it may
/// take away the writer's own access).
fn set_metadata(tree: &Tree, id: NodeId, file: &File) -> Result<(), io::Error> {
    let node = tree.node(id);
    let t = system_time(node.mtime_ns);
    file.set_times(FileTimes::new().set_accessed(t).set_modified(t))?;
    match fchown(file, Some(tree.uid), Some(tree.gid)) {
        // Only root may give a file away: anyone else's dump keeps their own ownership.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
        other => other?,
    }
    file.set_permissions(Permissions::from_mode(u32::from(node.mode())))
}

fn io_error(path: &Path, source: io::Error) -> WriteError {
    WriteError::Io {
        path: path.to_owned(),
        source,
    }
}

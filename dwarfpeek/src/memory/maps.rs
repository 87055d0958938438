//! A process's memory map (`/proc/PID/maps`): which address ranges exist, with what access,
//! and which file each one shows. It parses text only and reads no process memory.

use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum MapsError {
    #[error(
        "cannot read {}: {error}; the process may be gone, or not ours to inspect (run as root)",
        path.display()
    )]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("line {line} of {} is not a memory mapping: {text:?}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        text: String,
    },
}

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    pub readable: bool,
    pub writable: bool,
    pub executable: bool,
    /// `s`: shared with other processes (or a file), rather than copy-on-write.
    pub shared: bool,
    /// The offset in the file of the byte at `start`.
    pub offset: u64,
    /// The inode of the mapped file; 0 for anonymous memory.
    pub inode: u64,
    /// A file's path, a pseudo-name such as `[heap]` or `[stack]`, or empty. A file deleted
    /// since it was mapped keeps the kernel's ` (deleted)` suffix.
    pub name: String,
}

impl Mapping {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// The file behind the mapping, if it is a file (an inode and an absolute path).
    pub fn file(&self) -> Option<FileMapping> {
        (self.inode != 0 && self.name.starts_with('/')).then(|| FileMapping {
            start: self.start,
            end: self.end,
            offset: self.offset,
            path: PathBuf::from(&self.name),
        })
    }
}

/// A range of addresses that shows a file, from `/proc/PID/maps` or a core file's `NT_FILE`
/// note: what a PIE executable's load bias and a core's missing segments are computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMapping {
    pub start: u64,
    pub end: u64,
    /// The offset in the file of the byte at `start`.
    pub offset: u64,
    pub path: PathBuf,
}

/// The mappings of process `pid`, in address order.
pub fn read_maps(pid: i32) -> Result<Vec<Mapping>, MapsError> {
    let path = PathBuf::from(format!("/proc/{pid}/maps"));
    let text = std::fs::read_to_string(&path).map_err(|error| MapsError::Read {
        path: path.clone(),
        error,
    })?;
    parse_maps(&text, &path)
}

/// Parses the text of a `maps` file (`path` is for messages only).
pub fn parse_maps(text: &str, path: &Path) -> Result<Vec<Mapping>, MapsError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            parse_line(line).ok_or_else(|| MapsError::Parse {
                path: path.to_owned(),
                line: i + 1,
                text: line.to_owned(),
            })
        })
        .collect()
}

/// `start-end perms offset dev inode   name`, where the name may hold spaces.
fn parse_line(line: &str) -> Option<Mapping> {
    let mut rest = line;
    let mut field = || {
        let trimmed = rest.trim_start();
        let end = trimmed.find(' ').unwrap_or(trimmed.len());
        let (word, tail) = trimmed.split_at(end);
        rest = tail;
        word
    };
    let range = field();
    let perms = field().as_bytes();
    let offset = field();
    let _device = field();
    let inode = field();
    let name = rest.trim_start().to_owned();
    let (start, end) = range.split_once('-')?;
    let start = u64::from_str_radix(start, 16).ok()?;
    let end = u64::from_str_radix(end, 16).ok()?;
    if perms.len() != 4 || end < start {
        return None;
    }
    Some(Mapping {
        start,
        end,
        readable: perms[0] == b'r',
        writable: perms[1] == b'w',
        executable: perms[2] == b'x',
        shared: perms[3] == b's',
        offset: u64::from_str_radix(offset, 16).ok()?,
        inode: inode.parse().ok()?,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_files_anonymous_memory_and_odd_names() {
        let text = "\
55d0c0a00000-55d0c0a2b000 r--p 00000000 fe:01 1234                       /usr/bin/my prog
55d0c0a2b000-55d0c0b00000 r-xp 0002b000 fe:01 1234                       /usr/bin/my prog
55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000001000 rw-s 00000000 00:01 99                         /memfd:x (deleted)
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 
";
        let maps = parse_maps(text, Path::new("maps")).expect("valid maps");
        assert_eq!(maps.len(), 5);
        assert_eq!(maps[1].name, "/usr/bin/my prog");
        assert!(maps[1].executable && !maps[1].writable);
        assert_eq!(maps[1].offset, 0x2b000);
        let file = maps[1].file().expect("a file");
        assert_eq!(file.path, Path::new("/usr/bin/my prog"));
        assert_eq!(maps[2].name, "[heap]");
        assert!(maps[2].file().is_none());
        assert!(maps[3].shared);
        assert_eq!(maps[4].name, "");
        assert_eq!(maps[4].len(), 0x21000);
    }

    #[test]
    fn garbage_lines_are_errors() {
        for bad in ["x", "1-2 rw", "2-1 rw-p 0 0:0 0", "zz-1 rw-p 0 0:0 0"] {
            let err = parse_maps(bad, Path::new("maps")).unwrap_err();
            assert!(
                matches!(err, MapsError::Parse { line: 1, .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn reads_this_process() {
        let maps = read_maps(nix::unistd::getpid().as_raw()).expect("own maps");
        let here = reads_this_process as *const () as u64;
        assert!(maps
            .iter()
            .any(|m| m.start <= here && here < m.end && m.executable));
    }
}

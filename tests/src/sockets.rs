//! Another process's TCP sockets seen from the test: the ports it listens on (from /proc),
//! and their keepalive settings, read with `getsockopt` on a copy of the descriptor taken by
//! `pidfd_getfd` (root, or ptrace rights on the process).
//!
//! Reads only; the copies are closed before it returns. Loopback ports only.

use nix::sys::socket::{getpeername, getsockname, getsockopt, sockopt, SockaddrStorage};
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};

/// One connection's keepalive: on, and TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    pub on: bool,
    pub time: u32,
    pub intvl: u32,
    pub probes: u32,
}

/// Which end of a connection to look for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// A connected socket whose local port is `port` (a server's accepted connection).
    Local(u16),
    /// A connected socket whose peer's port is `port` (a client's connection).
    Peer(u16),
}

/// The keepalive of each connected TCP socket of `pid` that matches `end`.
pub fn tcp_keepalive(pid: u32, end: End) -> Vec<Keepalive> {
    let pidfd = pidfd_open(pid);
    let mut found = Vec::new();
    for (fd, _) in sockets(pid) {
        let Some(copy) = pidfd_getfd(&pidfd, fd) else {
            continue;
        };
        let port = |addr: Option<SockaddrStorage>| {
            addr.and_then(|a| {
                a.as_sockaddr_in()
                    .map(|a| a.port())
                    .or(a.as_sockaddr_in6().map(|a| a.port()))
            })
        };
        let fd = std::os::fd::AsRawFd::as_raw_fd(&copy);
        let (local, peer) = (
            port(getsockname::<SockaddrStorage>(fd).ok()),
            port(getpeername::<SockaddrStorage>(fd).ok()),
        );
        let matches = match end {
            End::Local(p) => local == Some(p) && peer.is_some(),
            End::Peer(p) => peer == Some(p),
        };
        if matches {
            let fd = copy.as_fd();
            let get = |what: &str, v: nix::Result<u32>| {
                v.unwrap_or_else(|e| panic!("getsockopt {what} on pid {pid}'s socket: {e}"))
            };
            found.push(Keepalive {
                on: getsockopt(&fd, sockopt::KeepAlive).unwrap_or_else(|e| {
                    panic!("getsockopt SO_KEEPALIVE on pid {pid}'s socket: {e}")
                }),
                time: get("TCP_KEEPIDLE", getsockopt(&fd, sockopt::TcpKeepIdle)),
                intvl: get("TCP_KEEPINTVL", getsockopt(&fd, sockopt::TcpKeepInterval)),
                probes: get("TCP_KEEPCNT", getsockopt(&fd, sockopt::TcpKeepCount)),
            });
        }
    }
    found
}

/// The TCP ports `pid` itself listens on (in its own network namespace): its socket
/// descriptors' inodes among the LISTEN entries of its /proc/PID/net/tcp and tcp6. Unlike a
/// connection, this cannot mistake another process's listener for its.
pub fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = sockets(pid).into_iter().map(|(_, inode)| inode).collect();
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        // "sl local_address rem_address st … uid timeout inode"; 0A is LISTEN.
        for fields in text
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
        {
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if let (Some(port), "0A", true) = (port, *state, inodes.iter().any(|i| i == inode)) {
                ports.push(port);
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// `pid`'s socket descriptors and their inodes (from /proc/PID/fd's `socket:[INODE]`).
fn sockets(pid: u32) -> Vec<(RawFd, String)> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|entry| {
            let fd = entry.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            let target = target.to_string_lossy();
            let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?;
            Some((fd, inode.to_owned()))
        })
        .collect()
}

fn pidfd_open(pid: u32) -> OwnedFd {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        panic!(
            "pidfd_open({pid}): {} (Linux 5.6 or later is needed)",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: a descriptor just returned to us, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// A copy of `pid`'s descriptor `fd`; `None` if it was closed meanwhile.
fn pidfd_getfd(pidfd: &OwnedFd, fd: RawFd) -> Option<OwnedFd> {
    let raw = std::os::fd::AsRawFd::as_raw_fd(pidfd);
    // SAFETY: pidfd_getfd takes a pidfd, a descriptor number and flags, and returns a new
    // descriptor or -1.
    let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, raw, fd, 0) };
    match copy {
        -1 if std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF) => None,
        -1 => panic!(
            "pidfd_getfd of descriptor {fd}: {} (root or ptrace rights are needed)",
            std::io::Error::last_os_error()
        ),
        // SAFETY: a descriptor just returned to us, owned by nobody else.
        copy => Some(unsafe { OwnedFd::from_raw_fd(copy as RawFd) }),
    }
}

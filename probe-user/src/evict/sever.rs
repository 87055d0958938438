//! Severing one client's connection from outside the daemon: a copy of the daemon's
//! descriptor (`pidfd_getfd(2)`), checked to be that client's connection, shut down both
//! ways. The daemon then sees the connection close and its own logic releases the lock (or
//! drops the wait) and grants the next waiter, exactly as if the client had died.
//!
//! It neither stops nor writes to the daemon: the shutdown acts on the socket, which the
//! copy shares with the daemon's descriptor. A descriptor that is no longer that client's
//! connection (closed and reused since the state was read) is refused, never shut down.

use nix::sys::socket::{getpeername, getsockopt, shutdown, sockopt, Shutdown, SockaddrStorage};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum EvictError {
    #[error("pidfd_open({pid}) failed: {error}; the daemon is gone, or this kernel lacks pidfds (Linux 5.3+)")]
    PidFd { pid: u32, error: nix::Error },
    #[error(
        "pidfd_getfd of descriptor {fd} of process {pid} failed: {error}; it needs \
         ptrace permission over the daemon (root, or its user with ptrace allowed) and Linux 5.6+"
    )]
    GetFd {
        pid: u32,
        fd: i32,
        error: nix::Error,
    },
    #[error(
        "descriptor {fd} of process {pid} is not the connection of conn {conn} any more \
         ({found}); the client went away meanwhile, so nothing was severed"
    )]
    NotThatConnection {
        pid: u32,
        fd: i32,
        conn: u64,
        found: String,
    },
    #[error("shutting down descriptor {fd} of process {pid} failed: {error}")]
    Shutdown {
        pid: u32,
        fd: i32,
        error: nix::Error,
    },
}

/// Who the connection must be to: the entry's peer, as the state tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub conn: u64,
    /// From SO_PEERCRED (Unix sockets).
    pub peer_pid: Option<u32>,
    /// `ADDR/PORT` over TCP (`localhost/` for Unix sockets).
    pub peer_name: String,
}

/// Shuts down descriptor `fd` of the daemon `pid`, once it is checked to be `expected`'s
/// connection.
pub fn sever(pid: u32, fd: i32, expected: &Expected) -> Result<(), EvictError> {
    let pidfd = pidfd_open(pid)?;
    let copy = pidfd_getfd(&pidfd, fd).map_err(|error| EvictError::GetFd { pid, fd, error })?;
    let found = peer_of(&copy);
    let matches = match (&found, expected.peer_pid) {
        (Peer::Unix { pid: Some(p) }, Some(want)) => *p == want,
        (Peer::Inet { name }, None) => *name == expected.peer_name,
        _ => false,
    };
    if !matches {
        return Err(EvictError::NotThatConnection {
            pid,
            fd,
            conn: expected.conn,
            found: found.describe(),
        });
    }
    shutdown(copy.as_raw_fd(), Shutdown::Both).map_err(|error| EvictError::Shutdown {
        pid,
        fd,
        error,
    })
}

/// What the other end of a socket is.
enum Peer {
    Unix { pid: Option<u32> },
    Inet { name: String },
    Other,
}

impl Peer {
    fn describe(&self) -> String {
        match self {
            Peer::Unix { pid: Some(pid) } => format!("a Unix socket to pid {pid}"),
            Peer::Unix { pid: None } => "a Unix socket to an unknown process".to_owned(),
            Peer::Inet { name } => format!("a TCP connection to {name}"),
            Peer::Other => "not a connected socket".to_owned(),
        }
    }
}

fn peer_of(socket: &OwnedFd) -> Peer {
    if let Ok(address) = getpeername::<SockaddrStorage>(socket.as_raw_fd()) {
        if let Some(v4) = address.as_sockaddr_in() {
            return Peer::Inet {
                name: format!("{}/{}", v4.ip(), v4.port()),
            };
        }
        if let Some(v6) = address.as_sockaddr_in6() {
            return Peer::Inet {
                name: format!("{}/{}", v6.ip(), v6.port()),
            };
        }
        if address.as_unix_addr().is_some() {
            let pid = getsockopt(socket, sockopt::PeerCredentials)
                .ok()
                .and_then(|c| u32::try_from(c.pid()).ok());
            return Peer::Unix { pid };
        }
    }
    Peer::Other
}

fn pidfd_open(pid: u32) -> Result<OwnedFd, EvictError> {
    // SAFETY: a plain system call; its result is a new descriptor or -1.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid as nix::libc::pid_t, 0) };
    if fd < 0 {
        return Err(EvictError::PidFd {
            pid,
            error: nix::Error::last(),
        });
    }
    // SAFETY: the kernel just gave us this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_getfd(pidfd: &OwnedFd, fd: i32) -> nix::Result<OwnedFd> {
    // SAFETY: a plain system call; its result is a new descriptor or -1.
    let copy = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if copy < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: the kernel just gave us this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(copy as i32) })
}

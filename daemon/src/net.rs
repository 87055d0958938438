//! Sockets: the listener (Unix or TCP) and an accepted stream, with what identifies the
//! peer. Thin wrappers over mio's types so the server handles both transports alike; and
//! the open-files limit that thousands of connections need.
//!
//! Moves bytes and knows who is on the other end; what the bytes mean is [`crate::wire`]'s,
//! when to read them [`crate::server`]'s.

use crate::table::Peer;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::PathBuf;

/// Where the daemon listens and clients connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String, u16),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "{}", p.display()),
            Endpoint::Tcp(a, p) => write!(f, "{a}:{p}"),
        }
    }
}

impl Endpoint {
    /// Resolves a TCP endpoint's address (first match); errors say which address failed.
    pub fn socket_addr(addr: &str, port: u16) -> io::Result<SocketAddr> {
        use std::net::ToSocketAddrs;
        (addr, port).to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no address for {addr}"))
        })
    }
}

/// TCP keepalive as flom sets it on a connection: seconds idle before the first probe,
/// seconds between probes, probes before the connection is dropped (flom's
/// `--tcp-keepalive-time`, `-intvl`, `-probes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub time: i32,
    pub intvl: i32,
    pub probes: i32,
}

impl Default for Keepalive {
    /// flom's defaults.
    fn default() -> Keepalive {
        Keepalive {
            time: 60,
            intvl: 10,
            probes: 6,
        }
    }
}

impl Keepalive {
    /// SO_KEEPALIVE with these values on a TCP socket; the kernel refuses values out of
    /// its range (a negative one, say) with EINVAL.
    pub fn apply(&self, socket: &impl AsFd) -> io::Result<()> {
        use nix::sys::socket::{setsockopt, sockopt};
        let fd = socket.as_fd();
        setsockopt(&fd, sockopt::KeepAlive, &true)?;
        let negative = || io::Error::from(io::ErrorKind::InvalidInput);
        let time = u32::try_from(self.time).map_err(|_| negative())?;
        let intvl = u32::try_from(self.intvl).map_err(|_| negative())?;
        let probes = u32::try_from(self.probes).map_err(|_| negative())?;
        setsockopt(&fd, sockopt::TcpKeepIdle, &time)?;
        setsockopt(&fd, sockopt::TcpKeepInterval, &intvl)?;
        setsockopt(&fd, sockopt::TcpKeepCount, &probes)?;
        Ok(())
    }
}

pub enum Listener {
    Unix(UnixListener),
    /// With the keepalive every accepted connection gets.
    Tcp(TcpListener, Keepalive),
}

pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Listener {
    /// Binds like FLoM: a stale Unix socket file is replaced, TCP gets SO_REUSEADDR (mio's
    /// default), and the backlog is generous for bursts of one-lock connections.
    pub fn bind(endpoint: &Endpoint) -> io::Result<Listener> {
        match endpoint {
            Endpoint::Unix(path) => {
                match std::fs::remove_file(path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                Ok(Listener::Unix(UnixListener::bind(path)?))
            }
            Endpoint::Tcp(addr, port) => Ok(Listener::Tcp(
                TcpListener::bind(Endpoint::socket_addr(addr, *port)?)?,
                Keepalive::default(),
            )),
        }
    }

    /// A second handle on the same listening socket: the admin thread accepts with it while
    /// the server thread is stalled (see [`crate::admin`]).
    pub fn try_clone(&self) -> io::Result<Listener> {
        Ok(match self {
            Listener::Unix(l) => {
                let fd = l.as_fd().try_clone_to_owned()?;
                Listener::Unix(UnixListener::from_std(fd.into()))
            }
            Listener::Tcp(l, keepalive) => {
                let fd = l.as_fd().try_clone_to_owned()?;
                Listener::Tcp(TcpListener::from_std(fd.into()), *keepalive)
            }
        })
    }

    /// Watches the listener level-triggered (mio registers everything edge-triggered): the
    /// server then accepts only as many connections as it has room for in one turn, and
    /// epoll reports the listener again while any remain, so no accept has to fail with
    /// EAGAIN to prove the backlog empty (one system call in ten for a lone client).
    pub fn register_level_triggered(
        &self,
        registry: &mio::Registry,
        token: mio::Token,
    ) -> io::Result<()> {
        self.epoll_ctl(registry, libc::EPOLL_CTL_ADD, token, true)
    }

    /// Stops (`false`) or resumes reporting the listener: level-triggered, a backlog that
    /// cannot be accepted (out of descriptors) would otherwise be reported in a busy loop.
    pub fn set_watched(
        &self,
        registry: &mio::Registry,
        token: mio::Token,
        watched: bool,
    ) -> io::Result<()> {
        self.epoll_ctl(registry, libc::EPOLL_CTL_MOD, token, watched)
    }

    fn epoll_ctl(
        &self,
        registry: &mio::Registry,
        op: libc::c_int,
        token: mio::Token,
        readable: bool,
    ) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: if readable { libc::EPOLLIN as u32 } else { 0 },
            u64: token.0 as u64,
        };
        // SAFETY: both descriptors are open for the call; `event` outlives it.
        let rc = unsafe { libc::epoll_ctl(registry.as_raw_fd(), op, self.raw_fd(), &mut event) };
        if rc == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn raw_fd(&self) -> RawFd {
        match self {
            Listener::Unix(l) => l.as_raw_fd(),
            Listener::Tcp(l, _) => l.as_raw_fd(),
        }
    }

    /// The address a TCP listener is bound to (its real port when it was asked for 0).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Unix(_) => None,
            Listener::Tcp(l, _) => l.local_addr().ok(),
        }
    }

    /// The keepalive for the TCP connections accepted from now on (none for Unix sockets).
    pub fn set_keepalive(&mut self, keepalive: Keepalive) {
        if let Listener::Tcp(_, k) = self {
            *k = keepalive;
        }
    }

    /// Accepts one connection and learns who the peer is.
    pub fn accept(&self) -> io::Result<(Stream, Peer)> {
        match self {
            Listener::Unix(l) => {
                let (s, _) = l.accept()?;
                let cred = nix::sys::socket::getsockopt(
                    &s.as_fd(),
                    nix::sys::socket::sockopt::PeerCredentials,
                )
                .ok();
                let peer = Peer {
                    fd: s.as_raw_fd(),
                    name: "localhost/".to_owned(),
                    pid: cred.as_ref().map(|c| c.pid() as u32),
                    uid: cred.as_ref().map(|c| c.uid()),
                };
                Ok((Stream::Unix(s), peer))
            }
            Listener::Tcp(l, keepalive) => {
                let (s, addr) = l.accept()?;
                s.set_nodelay(true)?;
                keepalive.apply(&s)?;
                let peer = Peer {
                    fd: s.as_raw_fd(),
                    name: format!("{}/{}", addr.ip(), addr.port()),
                    pid: None,
                    uid: None,
                };
                Ok((Stream::Tcp(s), peer))
            }
        }
    }
}

impl Stream {
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        match self {
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
        }
    }

    /// Writes as much of `output` as the socket takes now and drops it from `output`;
    /// false when the connection is dead (an error, or a write that took nothing).
    pub fn write_pending(&mut self, output: &mut Vec<u8>) -> bool {
        while !output.is_empty() {
            match self.write(output) {
                Ok(0) => return false,
                Ok(n) => {
                    output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        true
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl mio::event::Source for Stream {
    fn register(&mut self, r: &mio::Registry, t: mio::Token, i: mio::Interest) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.register(r, t, i),
            Stream::Tcp(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &mio::Registry, t: mio::Token, i: mio::Interest) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.reregister(r, t, i),
            Stream::Tcp(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &mio::Registry) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.deregister(r),
            Stream::Tcp(s) => s.deregister(r),
        }
    }
}

/// Lifts the soft open-files limit to the hard one (thousands of connections).
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

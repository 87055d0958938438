//! A blocking client connection to the daemon, over a Unix socket or TCP: what the flom
//! client, the admin client and the load generator talk through.
//!
//! Connects and moves bytes; what the bytes say is [`latch::wire`]'s or the admin API's.

#![forbid(unsafe_code)]

use latch::net::{Endpoint, Keepalive};
use std::io;
use std::time::Duration;

/// A connected client socket, blocking.
pub enum ClientStream {
    Unix(std::os::unix::net::UnixStream),
    Tcp(std::net::TcpStream),
}

/// Connects to the daemon at `endpoint` (TCP without Nagle: every message is one write).
pub fn connect(endpoint: &Endpoint) -> io::Result<ClientStream> {
    match endpoint {
        Endpoint::Unix(path) => Ok(ClientStream::Unix(std::os::unix::net::UnixStream::connect(
            path,
        )?)),
        Endpoint::Tcp(addr, port) => {
            let s = std::net::TcpStream::connect(Endpoint::socket_addr(addr, *port)?)?;
            s.set_nodelay(true)?;
            Ok(ClientStream::Tcp(s))
        }
    }
}

impl io::Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientStream::Unix(s) => s.read(buf),
            ClientStream::Tcp(s) => s.read(buf),
        }
    }
}

impl io::Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Unix(s) => s.write(buf),
            ClientStream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ClientStream {
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            ClientStream::Unix(s) => s.set_read_timeout(t),
            ClientStream::Tcp(s) => s.set_read_timeout(t),
        }
    }

    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        match self {
            ClientStream::Unix(s) => s.shutdown(how),
            ClientStream::Tcp(s) => s.shutdown(how),
        }
    }

    /// TCP keepalive on a TCP connection (a Unix socket has none).
    pub fn set_keepalive(&self, keepalive: &Keepalive) -> io::Result<()> {
        match self {
            ClientStream::Unix(_) => Ok(()),
            ClientStream::Tcp(s) => keepalive.apply(s),
        }
    }

    /// Sends one whole message with MSG_NOSIGNAL, as flom does (EPIPE is an error, not a
    /// signal).
    pub fn send_message(&self, bytes: &[u8]) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let fd = match self {
            ClientStream::Unix(s) => s.as_raw_fd(),
            ClientStream::Tcp(s) => s.as_raw_fd(),
        };
        let mut sent = 0;
        while sent < bytes.len() {
            match nix::sys::socket::send(
                fd,
                &bytes[sent..],
                nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(n) => sent += n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

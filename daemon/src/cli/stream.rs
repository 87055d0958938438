//! A blocking client connection to the daemon, over a Unix socket or TCP: what the flom
//! client, the admin client and the load generator talk through.
//!
//! Connects and moves bytes; what the bytes say is [`latch::wire`]'s or the admin API's.

#![forbid(unsafe_code)]

use latch::net::{Endpoint, Keepalive};
use latch::tls::{PeerCert, Tls, TlsError};
use std::io;
use std::io::Write;
use std::time::Duration;

/// A connected client socket, blocking.
pub(crate) enum ClientStream {
    Unix(std::os::unix::net::UnixStream),
    Tcp(std::net::TcpStream),
    /// TLS over one of the others (see [`secure`]).
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, ClientStream>>),
}

/// FLoM's switch to TLS right after connecting: the handshake, then its check of the
/// daemon's certificate; returns what that certificate says (for the peer-id check).
pub(crate) fn secure(
    stream: ClientStream,
    tls: &Tls,
) -> Result<(ClientStream, PeerCert), TlsError> {
    let mut conn = tls.connect()?;
    let mut sock = stream;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            tracing::info!("TLS handshake failed: {e}");
            return Err(TlsError::Connect);
        }
    }
    let peer = tls.check_peer(conn.peer_certificates())?;
    Ok((
        ClientStream::Tls(Box::new(rustls::StreamOwned::new(conn, sock))),
        peer,
    ))
}

/// Whether a read failed because its timeout passed (`SO_RCVTIMEO` gives `WouldBlock`).
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Connects to the daemon at `endpoint` (TCP without Nagle: every message is one write).
pub(crate) fn connect(endpoint: &Endpoint) -> io::Result<ClientStream> {
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
            // A daemon that closes without close_notify has ended the stream too.
            ClientStream::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                done => done,
            },
        }
    }
}

impl io::Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Unix(s) => s.write(buf),
            ClientStream::Tcp(s) => s.write(buf),
            ClientStream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ClientStream {
    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            ClientStream::Unix(s) => s.set_read_timeout(t),
            ClientStream::Tcp(s) => s.set_read_timeout(t),
            ClientStream::Tls(s) => s.sock.set_read_timeout(t),
        }
    }

    pub(crate) fn shutdown(&mut self, how: std::net::Shutdown) -> io::Result<()> {
        match self {
            ClientStream::Unix(s) => s.shutdown(how),
            ClientStream::Tcp(s) => s.shutdown(how),
            ClientStream::Tls(s) => {
                // TLS's half-close first, then the socket's.
                s.conn.send_close_notify();
                while s.conn.wants_write() {
                    s.conn.write_tls(&mut s.sock)?;
                }
                s.sock.shutdown(how)
            }
        }
    }

    /// TCP keepalive on a TCP connection (a Unix socket has none).
    pub(crate) fn set_keepalive(&self, keepalive: &Keepalive) -> io::Result<()> {
        match self {
            ClientStream::Unix(_) => Ok(()),
            ClientStream::Tcp(s) => keepalive.apply(s),
            ClientStream::Tls(s) => s.sock.set_keepalive(keepalive),
        }
    }

    /// Sends one whole message with MSG_NOSIGNAL, as flom does (EPIPE is an error, not a
    /// signal).
    pub(crate) fn send_message(&mut self, bytes: &[u8]) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let fd = match self {
            ClientStream::Unix(s) => s.as_raw_fd(),
            ClientStream::Tcp(s) => s.as_raw_fd(),
            // The records go out through the socket's own send_message.
            ClientStream::Tls(s) => {
                s.conn.writer().write_all(bytes)?;
                while s.conn.wants_write() {
                    let mut records = Vec::new();
                    s.conn.write_tls(&mut records)?;
                    s.sock.send_message(&records)?;
                }
                return Ok(());
            }
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

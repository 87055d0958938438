//! A client connection's TLS in the event loop: rustls over the non-blocking socket, so
//! a handshake advances with whatever bytes have arrived and never holds the loop (FLoM's
//! daemon blocks in `SSL_accept` instead). After the handshake, the peer's certificate is
//! judged as FLoM does ([`Tls::check_peer`]); its CN is kept for the peer-id check.
//!
//! Moves bytes between the socket and the plaintext the connection reads and writes;
//! what the plaintext says is [`super::conn`]'s.

use crate::net::Stream;
use crate::tls::{PeerCert, Tls, TlsError};
use std::io::{self, Read, Write};

pub(super) struct Secure {
    conn: rustls::ServerConnection,
    /// The peer's certificate, once the handshake is done and it passed the check.
    pub peer: Option<PeerCert>,
    /// Its first FLoM message passed the peer-id check (made once per connection).
    pub id_checked: bool,
}

impl Secure {
    /// A TLS connection starting with `read`, what the admin thread already read of it.
    pub(super) fn new(tls: &Tls, mut read: &[u8]) -> Result<Secure, TlsError> {
        let mut conn = tls.accept()?;
        while !read.is_empty() {
            conn.read_tls(&mut read).map_err(|_| TlsError::Accept)?;
        }
        Ok(Secure {
            conn,
            peer: None,
            id_checked: false,
        })
    }

    /// Reads plaintext into `buf`: `Ok(0)` at the end, `WouldBlock` when nothing more has
    /// arrived. Handshake records are answered on the way; a failed handshake or a peer
    /// certificate FLoM would refuse is an error (logged with FLoM's code).
    pub(super) fn read(
        &mut self,
        stream: &mut Stream,
        tls: &Tls,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        loop {
            let state = self.conn.process_new_packets();
            // The handshake's answers, or the alert telling the peer why it failed.
            if !self.flush(stream) {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            if let Err(e) = state {
                return Err(refused(TlsError::Accept, &e));
            }
            if self.peer.is_none() && !self.conn.is_handshaking() {
                let peer = tls
                    .check_peer(self.conn.peer_certificates())
                    .map_err(|e| refused(e, &"the peer's certificate"))?;
                self.peer = Some(peer);
            }
            match self.conn.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // A peer that closes without close_notify has ended too.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                done => return done,
            }
            if self.conn.read_tls(stream)? == 0 {
                return Ok(0);
            }
        }
    }

    /// Encrypts as much of `output` as rustls buffers (bounded) and drops it from
    /// `output`, then writes what the socket takes; false when the connection is dead.
    pub(super) fn write(&mut self, stream: &mut Stream, output: &mut Vec<u8>) -> bool {
        if !output.is_empty() {
            match self.conn.writer().write(output) {
                Ok(n) => {
                    output.drain(..n);
                }
                Err(_) => return false,
            }
        }
        self.flush(stream)
    }

    /// Encrypted bytes the socket has not taken yet.
    pub(super) fn pending(&self) -> bool {
        self.conn.wants_write()
    }

    /// TLS's half-close: close_notify, written if the socket takes it now.
    pub(super) fn close_notify(&mut self, stream: &mut Stream) {
        self.conn.send_close_notify();
        self.flush(stream);
    }

    fn flush(&mut self, stream: &mut Stream) -> bool {
        while self.conn.wants_write() {
            match self.conn.write_tls(stream) {
                Ok(0) => return false,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        true
    }
}

/// Logs a refused TLS connection as FLoM's daemon would report it, for the caller to close.
fn refused(e: TlsError, why: &dyn std::fmt::Display) -> io::Error {
    log::warn!("TLS connection refused: {why}: ret_cod={} ({e})", e.rc());
    io::Error::new(io::ErrorKind::PermissionDenied, e)
}

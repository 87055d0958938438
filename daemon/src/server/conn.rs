//! One FLoM client connection's life in the server: accepted (or handed back by the admin
//! thread), read and framed, each message run through the [`crate::engine`], answered,
//! closed. An admin connection (first byte `{`) is handed to [`crate::admin`] instead.
//!
//! Acts on one connection at a time; the loop that decides which is ready is in
//! [`super`], the timers in [`super::timers`].

use super::secure::Secure;
use super::{hang_forever, lock_table, Exit, Server};
use crate::engine::{self, Answer};
use crate::net::Stream;
use crate::table::{Peer, Request};
use crate::tls::TlsError;
use crate::wire::framer::Framer;
use crate::wire::{self, ClientMessage, LockMsg, Rc, WireError, STEP_FIRST_ANSWER};
use latch_probe_common::resource;
use latch_probe_common::LockMode;
use mio::{Interest, Token};
use std::io::{self, Read};
use std::sync::atomic::Ordering;

pub(super) struct Conn {
    stream: Stream,
    peer: Peer,
    framer: Framer,
    /// The id from the shared counter, taken at the first FLoM message.
    id: Option<u64>,
    /// Whether it sent its lock (one lock per connection).
    locked: bool,
    /// Whether the table still has its request (incubated, queued or held).
    in_table: bool,
    /// Answers not yet written (the socket was full).
    output: Vec<u8>,
    /// Close once `output` is written.
    closing: bool,
    /// Registered with epoll (from the end of its first turn, see `add_conn`).
    watched: bool,
    /// Registered for writability too (output was left over).
    want_write: bool,
    /// It was granted its lock (its next message is most likely the unlock).
    pub(super) holding: bool,
    /// The daemon speaks TLS: every byte in and out goes through it.
    tls: Option<Box<Secure>>,
}

impl Conn {
    /// Reads what the client sent (the plaintext, with TLS).
    fn read(&mut self, tls: Option<&crate::tls::Tls>, buf: &mut [u8]) -> io::Result<usize> {
        match (&mut self.tls, tls) {
            (Some(secure), Some(tls)) => secure.read(&mut self.stream, tls, buf),
            _ => self.stream.read(buf),
        }
    }

    /// Writes what the socket takes of `output`; false when the connection is dead.
    fn write_out(&mut self) -> bool {
        match &mut self.tls {
            Some(secure) => secure.write(&mut self.stream, &mut self.output),
            None => self.stream.write_pending(&mut self.output),
        }
    }

    /// Output is left for the socket to take.
    fn want_write(&self) -> bool {
        !self.output.is_empty() || self.tls.as_ref().is_some_and(|t| t.pending())
    }
}

impl Server {
    /// Watches a new client connection and handles what it sent; `read` is what the admin
    /// thread already read from it (when it accepted it in this thread's place); `eager`:
    /// read it now rather than wait for epoll to report it.
    pub(super) fn add_conn(
        &mut self,
        stream: Stream,
        peer: Peer,
        read: &[u8],
        eager: bool,
    ) -> Option<Exit> {
        let token = Token(self.next_token);
        self.next_token += 1;
        let mut framer = Framer::default();
        let tls = match &self.config.tls {
            Some(tls) => match Secure::new(tls, read) {
                Ok(secure) => Some(Box::new(secure)),
                Err(e) => {
                    log::warn!(
                        "cannot start TLS on a new connection: ret_cod={} ({e})",
                        e.rc()
                    );
                    return None;
                }
            },
            None => {
                framer.push(read);
                None
            }
        };
        // Bytes handed over are a TLS record to answer now.
        let eager = eager || (tls.is_some() && !read.is_empty());
        self.conns.insert(
            token,
            Conn {
                stream,
                peer,
                framer,
                id: None,
                locked: false,
                in_table: false,
                output: Vec::new(),
                closing: false,
                watched: false,
                want_write: false,
                holding: false,
                tls,
            },
        );
        self.info
            .connections
            .store(self.conns.len(), Ordering::Relaxed);
        self.lifespan.set_idle(false);
        // flom clients send their lock right after connecting: when it is here already
        // (`eager`), reading it now saves a trip through epoll. Watching the connection
        // after the answer keeps epoll's bookkeeping off the client's path; whatever
        // arrives meanwhile, epoll reports at registration.
        let exit = if eager {
            self.on_ready(token, true, false, false)
        } else {
            None
        };
        self.watch(token);
        exit
    }

    fn watch(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let want_write = conn.want_write();
        let interest = if want_write {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        match self
            .poll
            .registry()
            .register(&mut conn.stream, token, interest)
        {
            Ok(()) => {
                conn.watched = true;
                conn.want_write = want_write;
            }
            Err(e) => {
                log::warn!("cannot watch a new connection: {e}");
                self.close(token);
            }
        }
    }

    pub(super) fn on_ready(
        &mut self,
        token: Token,
        readable: bool,
        read_closed: bool,
        writable: bool,
    ) -> Option<Exit> {
        if writable && !self.flush(token) {
            self.close(token);
            return None;
        }
        if !readable && !read_closed {
            return None;
        }
        let mut eof = false;
        loop {
            let conn = self.conns.get_mut(&token)?;
            // Reused, not zeroed per call: every lock costs two or three of these reads.
            let buf = &mut self.read_buf[..];
            let drained = match conn.read(self.config.tls.as_deref(), buf) {
                Ok(0) => {
                    eof = true;
                    true
                }
                Ok(n) => {
                    if conn.id.is_none()
                        && conn.tls.is_none()
                        && !conn.locked
                        && conn.framer.pending() == 0
                        && buf[0] == b'{'
                    {
                        let read = buf[..n].to_vec();
                        return self.hand_to_admin(token, read);
                    }
                    conn.framer.push(&buf[..n]);
                    // A short read drained the socket and epoll (edge-triggered) reports
                    // anything newer. If it had already reported the peer's half-close,
                    // nothing can follow what was just read: that is the EOF, known without
                    // the read that would return 0 (a flom client half-closes after its
                    // unlock, so this saves a system call per lock).
                    // (With TLS, a short read of plaintext says nothing of the socket.)
                    let drained = n < buf.len() && conn.tls.is_none();
                    eof = drained && read_closed;
                    drained
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    eof = true;
                    true
                }
            };
            // What arrived is handled before more is read, so a client that never stops
            // sending is refused at the message bound instead of being buffered.
            if let Err(exit) = self.take_messages(token) {
                return exit;
            }
            if drained {
                break;
            }
        }
        if eof {
            // FLoM clients half-close and wait for our close: release and close now.
            self.close(token);
        } else if self
            .conns
            .get(&token)
            .is_some_and(|c| c.want_write() && !c.want_write)
        {
            // The handshake's answer did not all fit in the socket: write it when it can.
            if !self.flush(token) {
                self.close(token);
            }
        }
        None
    }

    /// Handles every whole message received on `token`; `Err` when this connection is done
    /// with (refused or closed) or the daemon must exit.
    fn take_messages(&mut self, token: Token) -> Result<(), Option<Exit>> {
        loop {
            let Some(conn) = self.conns.get_mut(&token) else {
                return Err(None);
            };
            // Parsed where it lies in the framer's buffer: no copy of it is made.
            let check_id = self.config.tls_check_peer_id;
            let parsed = match conn.framer.next_in_place() {
                Ok(Some(msg)) if check_id && conn.tls.as_ref().is_some_and(|t| !t.id_checked) => {
                    // FLoM's check of the first message's peer id against the CN.
                    let Some(secure) = conn.tls.as_mut() else {
                        return Err(None);
                    };
                    let verdict = match &secure.peer {
                        Some(peer) => peer.check_id(wire::session_peerid(msg)),
                        None => Err(TlsError::NoCertificate),
                    };
                    if let Err(e) = verdict {
                        log::warn!(
                            "TLS connection refused: its peer id is not its certificate's CN: ret_cod={} ({e})",
                            e.rc()
                        );
                        self.close(token);
                        return Err(None);
                    }
                    secure.id_checked = true;
                    wire::parse_client(msg)
                }
                Ok(Some(msg)) => wire::parse_client(msg),
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.refuse(token, &e);
                    return Err(None);
                }
            };
            if let Some(exit) = self.on_message(token, parsed) {
                return Err(Some(exit));
            }
        }
    }

    fn hand_to_admin(&mut self, token: Token, read: Vec<u8>) -> Option<Exit> {
        if let Some(mut conn) = self.conns.remove(&token) {
            if conn.watched {
                let _ = self.poll.registry().deregister(&mut conn.stream);
            }
            self.info
                .connections
                .store(self.conns.len(), Ordering::Relaxed);
            self.admin.adopt(conn.stream, read);
        }
        self.note_idle();
        None
    }

    fn on_message(
        &mut self,
        token: Token,
        parsed: Result<ClientMessage, WireError>,
    ) -> Option<Exit> {
        let conn = self.conns.get_mut(&token)?;
        match parsed {
            Ok(ClientMessage::Lock(m)) if !conn.locked => {
                conn.locked = true;
                self.on_lock(token, m);
            }
            Ok(ClientMessage::Unlock { name, rollback }) if conn.locked && conn.id.is_some() => {
                let id = conn.id?;
                let result = self.with_table(|table, journal, fx| {
                    engine::unlock(table, id, &name, rollback, journal, fx)
                });
                if let (Ok(()), Some(conn)) = (&result, self.conns.get_mut(&token)) {
                    conn.in_table = false;
                }
                if result.is_err() {
                    log::info!("conn {id}: unlock of {name:?}, which it does not hold: closing it");
                    self.close(token);
                }
            }
            Ok(ClientMessage::Shutdown { immediate: true }) => {
                log::info!("immediate shutdown requested");
                return Some(Exit::Shutdown);
            }
            Ok(ClientMessage::Shutdown { immediate: false }) => {
                self.lifespan.quiesce();
            }
            Ok(other) => {
                log::info!(
                    "unexpected {other:?} on a connection that already has a lock: closing it"
                );
                self.close(token);
            }
            Err(e) => self.refuse(token, &e),
        }
        None
    }

    /// Bad input closes that one connection (FLoM's daemon dies instead).
    fn refuse(&mut self, token: Token, e: &WireError) {
        let id = self.conns.get(&token).and_then(|c| c.id);
        log::warn!("connection {id:?}: {e}: closing it");
        if matches!(e, WireError::TooLong) {
            // Tell the client, so it does not wait for an answer that cannot come.
            self.send(token, STEP_FIRST_ANSWER, &Answer::rc(Rc::TooLong));
            if let Some(conn) = self.conns.get_mut(&token) {
                conn.closing = true;
            }
            if !self.flush(token) {
                self.close(token);
            }
            return;
        }
        self.close(token);
    }

    fn on_lock(&mut self, token: Token, m: LockMsg) {
        let Some(spec) = resource::classify(&m.name) else {
            log::info!("lock request for invalid name {:?}", m.name);
            self.send(token, STEP_FIRST_ANSWER, &Answer::rc(Rc::InvalidName));
            self.half_close(token);
            return;
        };
        let resource_type = spec.resource_type();
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        // One lock per connection: its request takes the peer's name over.
        let peer = Peer {
            name: std::mem::take(&mut conn.peer.name),
            ..conn.peer
        };
        let mut req = Box::new(Request {
            conn: 0,
            resource_type,
            lock_mode: resource_type
                .has_mode()
                .then(|| m.mode.and_then(LockMode::from_wire).unwrap_or(LockMode::EX)),
            quantity: resource_type
                .has_quantity()
                .then(|| m.quantity.map_or(1, |q| q.max(1) as u64)),
            resource_name: m.name,
            element: None,
            since_ns: 0,
            wait: m.wait,
            lifespan_ms: m.lifespan_ms.max(0) as u64,
            peer,
        });
        let mut table = lock_table();
        if self.config.hang_on_lock.as_deref() == Some(req.resource_name.as_str()) {
            log::warn!("debug feature hang-on-lock: blocking forever with the lock table held");
            hang_forever(table);
        }
        let id = table.take_id();
        req.conn = id;
        let answer = self.change(&mut table, |table, journal, fx| {
            engine::lock(table, spec, m.create, req, journal, fx)
        });
        if let Some(conn) = self.conns.get_mut(&token) {
            conn.id = Some(id);
            conn.in_table = matches!(answer.rc, Rc::Granted | Rc::Queued | Rc::Incubated);
        }
        self.by_id.insert(id, token);
        self.send(token, STEP_FIRST_ANSWER, &answer);
        match answer.rc {
            Rc::CannotWait => self.half_close(token),
            Rc::Granted
            | Rc::Queued
            | Rc::Incubated
            | Rc::Busy
            | Rc::Impossible
            | Rc::InvalidName
            | Rc::TooLong => {}
        }
    }

    pub(super) fn send(&mut self, token: Token, step: u32, answer: &Answer) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        self.answers.write(&mut conn.output, step, answer);
        conn.holding |= answer.rc == Rc::Granted;
        if !self.flush(token) {
            // Not closed here: answers are sent with the table locked.
            self.dead.push(token);
        }
    }

    /// Writes pending output; false when the connection is dead or finished.
    pub(super) fn flush(&mut self, token: Token) -> bool {
        let Some(conn) = self.conns.get_mut(&token) else {
            return false;
        };
        if !conn.write_out() {
            return false;
        }
        let want_write = conn.want_write();
        if !want_write && conn.closing {
            return false;
        }
        // Not watched yet: `watch` registers for what is left then.
        if conn.watched && want_write != conn.want_write {
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if self
                .poll
                .registry()
                .reregister(&mut conn.stream, token, interest)
                .is_err()
            {
                return false;
            }
            conn.want_write = want_write;
        }
        true
    }

    fn half_close(&mut self, token: Token) {
        if let Some(conn) = self.conns.get_mut(&token) {
            if let Some(secure) = &mut conn.tls {
                secure.close_notify(&mut conn.stream);
            }
            let _ = conn.stream.shutdown_write();
        }
    }

    /// Closes a connection; whatever it held or waited for goes.
    pub(super) fn close(&mut self, token: Token) {
        // Closing the descriptor (below) takes it out of epoll; no deregister needed.
        let Some(conn) = self.conns.remove(&token) else {
            return;
        };
        if let Some(id) = conn.id {
            self.by_id.remove(&id);
        }
        if let (Some(id), true) = (conn.id, conn.in_table) {
            self.with_table(|table, journal, fx| engine::disconnect(table, id, journal, fx));
        }
        drop(conn);
        self.resume_accepting();
        self.info
            .connections
            .store(self.conns.len(), Ordering::Relaxed);
        self.note_idle();
    }
}

//! The daemon's main loop: one thread that accepts FLoM clients, reads their messages, runs
//! them through the [`crate::engine`] with the lock table held, and writes the answers.
//! Admin connections are handed to [`crate::admin`]; timers (timestamp grains, idle
//! lockers, the daemon's own lifespan) are kept here.
//!
//! One thread for every client (an event loop, never a thread per locker): a snapshot has
//! few threads to stop, and the table's owner is one well-known thread.

use crate::admin::{self, AdminHandle, DaemonInfo, Returned, ServerHandle};
use crate::engine::{self, Answer, Effects};
use crate::hub::Hub;
use crate::journal::Journal;
use crate::net::{Endpoint, Listener, Stream};
use crate::resource;
use crate::table::{LockTable, Peer, Request, LOCK_TABLE};
use crate::timefmt::now_ns;
use crate::wire::{
    self, ClientMessage, Framer, LockMsg, Rc, WireError, STEP_FIRST_ANSWER, STEP_LATER_ANSWER,
};
use latch_probe_common::LockMode;
use mio::{Events, Interest, Poll, Token, Waker};
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;
use std::io::{self, Read};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, MutexGuard};
use std::time::{Duration, Instant};

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
/// Connections the admin thread accepted while this thread stalled, handed back.
const RETURNED: Token = Token(2);
const FIRST_CONN: usize = 3;
/// How long accepting pauses after it failed for want of resources (unless a connection
/// closes first).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// The daemon lifespan after a quiesce request (`-x`), as FLoM does.
const QUIESCE_LIFESPAN_MS: i64 = 100;
/// How long the loop keeps polling without sleeping after its last event. A flom client
/// sends its next message (the lock after connecting, the unlock after its answer) within
/// tens of microseconds: sleeping in between costs a wake-up on each side (an
/// inter-processor interrupt, slow in a VM), and reading a message after its client went
/// to sleep waiting for the answer wakes the client for nothing (the socket's write-space
/// wake-up). With one client this took latch from 0.6 to 1.0 of the floor server's rate;
/// with 8 or 32 the loop rarely runs out of events and it changes nothing
/// (docs/benchmarks.md).
const SPIN: Duration = Duration::from_micros(100);

/// How the daemon was asked to run.
#[derive(Clone, Debug)]
pub struct Config {
    pub endpoint: Endpoint,
    /// Exit after this long without clients or lockers; negative: never.
    pub lifespan_ms: i64,
    /// Test hook: the table's owner blocks forever on a lock request for this name.
    pub hang_on_lock: Option<String>,
    /// The session id put in first answers (FLoM uses the machine id).
    pub peerid: String,
}

/// Why [`Server::run`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Idle,
    Shutdown,
    Signal,
}

struct Conn {
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
    holding: bool,
}

/// One readiness event, copied out of mio's buffer so the loop can reorder them.
#[derive(Clone, Copy)]
struct Ready {
    token: Token,
    /// A connection holding its lock (handled first).
    holder: bool,
    readable: bool,
    read_closed: bool,
    writable: bool,
}

pub struct Server {
    config: Config,
    poll: Poll,
    listener: Listener,
    /// Accepting failed (e.g. out of descriptors): the listener is not watched until a
    /// connection closes or this time comes (level-triggered, it would spin meanwhile).
    accept_paused: Option<Instant>,
    /// The signal pipe's read end, registered with `poll`; kept open for the daemon's life.
    _signals: mio::net::UnixStream,
    conns: IdMap<Token, Conn>,
    by_id: IdMap<u64, Token>,
    next_token: usize,
    /// (wall-clock ns, locker id)
    timers: BTreeSet<(u64, u64)>,
    /// The earliest pending timer of each locker: one is enough, [`engine::on_timer`]
    /// asks for the next itself (without this, every release of a busy resource would add
    /// a timer).
    timer_of: IdMap<u64, u64>,
    /// When the daemon became idle (no clients, no lockers).
    idle_since: Option<Instant>,
    lifespan_ms: i64,
    admin: AdminHandle,
    returned: mpsc::Receiver<Returned>,
    read_buf: Box<[u8; 4096]>,
    /// Answers without an element, by step and rc, formatted once (a handful at most).
    answers: Vec<((u32, Rc), Vec<u8>)>,
    ready: Vec<Ready>,
    /// Connections whose output failed while the table was locked (an answer to a client
    /// that left): closed by the loop once the table is free, since closing locks it.
    dead: Vec<Token>,
    hub: Arc<Hub>,
    info: Arc<DaemonInfo>,
}

impl Server {
    /// Binds the endpoint, starts the admin thread and installs the signal handlers.
    pub fn bind(config: Config) -> io::Result<Server> {
        let poll = Poll::new()?;
        let listener = Listener::bind(&config.endpoint)?;
        listener.register_level_triggered(poll.registry(), LISTENER)?;
        let (read_end, write_end) = std::os::unix::net::UnixStream::pair()?;
        read_end.set_nonblocking(true)?;
        write_end.set_nonblocking(true)?;
        let mut signals = mio::net::UnixStream::from_std(read_end);
        for sig in [
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGHUP,
        ] {
            signal_hook::low_level::pipe::register(sig, write_end.try_clone()?)?;
        }
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let info = Arc::new(DaemonInfo {
            pid: std::process::id(),
            started: Instant::now(),
            connections: 0.into(),
            turn: 0.into(),
        });
        let hub = Arc::new(Hub::default());
        let (tx, returned) = mpsc::channel();
        let server = ServerHandle {
            tx,
            waker: Arc::new(Waker::new(poll.registry(), RETURNED)?),
        };
        let admin = admin::spawn(info.clone(), hub.clone(), listener.try_clone()?, server)?;
        // The signal pipe's write end must outlive the handlers.
        std::mem::forget(write_end);
        Ok(Server {
            lifespan_ms: config.lifespan_ms,
            config,
            poll,
            listener,
            accept_paused: None,
            _signals: signals,
            conns: IdMap::default(),
            by_id: IdMap::default(),
            next_token: FIRST_CONN,
            timers: BTreeSet::new(),
            timer_of: IdMap::default(),
            idle_since: Some(Instant::now()),
            admin,
            returned,
            read_buf: Box::new([0; 4096]),
            answers: Vec::new(),
            ready: Vec::new(),
            dead: Vec::new(),
            hub,
            info,
        })
    }

    /// Serves until idle past the lifespan, shut down, or signalled; removes a Unix socket.
    pub fn run(mut self) -> io::Result<Exit> {
        let mut events = Events::with_capacity(1024);
        let mut turn = 0u64;
        let mut last_event = Instant::now();
        let exit = loop {
            let timeout = if last_event.elapsed() < SPIN {
                Some(Duration::ZERO)
            } else {
                self.next_wakeup()
            };
            // Even while waiting, odd while handling: the admin thread watches for a stall.
            self.info.turn.store(turn, Ordering::Relaxed);
            let polled = self.poll.poll(&mut events, timeout);
            self.info.turn.store(turn + 1, Ordering::Relaxed);
            turn += 2;
            if let Err(e) = polled {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if !events.is_empty() {
                last_event = Instant::now();
            }
            let mut exit = None;
            // Holders first: a holder's unlock is the critical path of every hand-off, and
            // with one loop it would otherwise wait behind a batch of accepts and requests.
            // Taken out of `self` (and put back) so that handling can borrow `self`; the
            // buffer is reused from turn to turn.
            let mut ready = std::mem::take(&mut self.ready);
            ready.clear();
            ready.extend(events.iter().map(|ev| Ready {
                token: ev.token(),
                holder: self.conns.get(&ev.token()).is_some_and(|c| c.holding),
                readable: ev.is_readable(),
                read_closed: ev.is_read_closed(),
                writable: ev.is_writable(),
            }));
            // Stable: otherwise in epoll's order.
            ready.sort_by_key(|r| !r.holder);
            // As many accepts as the turn has events (at least one): enough to keep up
            // under load, and a lone client's accept is never followed by a failing one.
            let accepts = ready.len();
            for r in &ready {
                let result = match r.token {
                    LISTENER => self.accept_some(accepts),
                    SIGNALS => Some(Exit::Signal),
                    RETURNED => {
                        let mut result = None;
                        while let Ok((stream, peer, read)) = self.returned.try_recv() {
                            result = result.or(self.add_conn(stream, peer, &read, true));
                        }
                        result
                    }
                    token => self.on_ready(token, r.readable, r.read_closed, r.writable),
                };
                exit = exit.or(result);
            }
            self.ready = ready;
            if let Some(e) = exit {
                break e;
            }
            self.fire_timers();
            if self.accept_paused.is_some_and(|at| Instant::now() >= at) {
                self.resume_accepting();
            }
            while let Some(token) = self.dead.pop() {
                self.close(token);
            }
            if self.idle_expired() {
                break Exit::Idle;
            }
        };
        if let Endpoint::Unix(path) = &self.config.endpoint {
            let _ = std::fs::remove_file(path);
        }
        Ok(exit)
    }

    /// Accepts up to `budget` connections; the level-triggered listener is reported again
    /// at the next turn while more wait.
    fn accept_some(&mut self, budget: usize) -> Option<Exit> {
        for _ in 0..budget {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    // A connection accepted in a turn of its own was accepted the moment
                    // it connected: its lock has most likely not been sent yet, and reading
                    // now would only fail (measured: 0.8 failed reads per lock with one
                    // client). In a busy turn it most likely has.
                    if let Some(exit) = self.add_conn(stream, peer, &[], budget > 1) {
                        return Some(exit);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                // A client that left before its accept: the next may be fine.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    // EMFILE and friends: log and let the backlog wait until a connection
                    // closes (see `close`) or a while has passed; never exit.
                    log::warn!("accept failed: {e}");
                    self.pause_accepting();
                    return None;
                }
            }
        }
        None
    }

    fn pause_accepting(&mut self) {
        if let Err(e) = self
            .listener
            .set_watched(self.poll.registry(), LISTENER, false)
        {
            log::warn!("cannot stop watching the listener: {e}");
            return;
        }
        self.accept_paused = Some(Instant::now() + ACCEPT_RETRY);
    }

    /// Accepts again after a pause (a descriptor was freed, or it is time to retry).
    fn resume_accepting(&mut self) {
        if self.accept_paused.is_none() {
            return;
        }
        match self
            .listener
            .set_watched(self.poll.registry(), LISTENER, true)
        {
            Ok(()) => self.accept_paused = None,
            Err(e) => log::warn!("cannot watch the listener again: {e}"),
        }
    }

    /// Watches a new client connection and handles what it sent; `read` is what the admin
    /// thread already read from it (when it accepted it in this thread's place); `eager`:
    /// read it now rather than wait for epoll to report it.
    fn add_conn(&mut self, stream: Stream, peer: Peer, read: &[u8], eager: bool) -> Option<Exit> {
        let token = Token(self.next_token);
        self.next_token += 1;
        let mut framer = Framer::default();
        framer.push(read);
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
            },
        );
        self.info
            .connections
            .store(self.conns.len(), Ordering::Relaxed);
        self.idle_since = None;
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
        let want_write = !conn.output.is_empty();
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

    fn on_ready(
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
            let drained = match conn.stream.read(buf) {
                Ok(0) => {
                    eof = true;
                    true
                }
                Ok(n) => {
                    if conn.id.is_none()
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
                    let drained = n < buf.len();
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
            let parsed = match conn.framer.next_in_place() {
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
                log::info!("quiesce requested: lifespan now {QUIESCE_LIFESPAN_MS} ms");
                self.lifespan_ms = QUIESCE_LIFESPAN_MS;
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

    /// Runs `f` on the locked table as one change: generation odd throughout, events
    /// published and answers sent after.
    fn with_table<R>(
        &mut self,
        f: impl FnOnce(&mut LockTable, &mut Journal, &mut Effects) -> R,
    ) -> R {
        let mut table = lock_table();
        self.change(&mut table, f)
    }

    fn change<R>(
        &mut self,
        table: &mut MutexGuard<'static, LockTable>,
        f: impl FnOnce(&mut LockTable, &mut Journal, &mut Effects) -> R,
    ) -> R {
        let mut journal = Journal::new(self.hub.active(), now_ns());
        let mut fx = Effects::default();
        let result = table.changing(|table| f(table, &mut journal, &mut fx));
        self.hub.publish(&journal.events);
        for (conn, answer) in fx.replies {
            if let Some(&token) = self.by_id.get(&conn) {
                self.send(token, STEP_LATER_ANSWER, &answer);
            }
        }
        for (at, id) in fx.timers {
            match self.timer_of.get(&id) {
                Some(&pending) if pending <= at => {}
                _ => {
                    if let Some(old) = self.timer_of.insert(id, at) {
                        self.timers.remove(&(old, id));
                    }
                    self.timers.insert((at, id));
                }
            }
        }
        result
    }

    fn send(&mut self, token: Token, step: u32, answer: &Answer) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        match &answer.element {
            // Answers without an element depend only on step and rc: formatted once.
            None => {
                let key = (step, answer.rc);
                let i = match self.answers.iter().position(|(k, _)| *k == key) {
                    Some(i) => i,
                    None => {
                        let mut msg = Vec::new();
                        wire::write_answer(&mut msg, step, &self.config.peerid, answer.rc, None);
                        self.answers.push((key, msg));
                        self.answers.len() - 1
                    }
                };
                conn.output.extend_from_slice(&self.answers[i].1);
            }
            Some(element) => wire::write_answer(
                &mut conn.output,
                step,
                &self.config.peerid,
                answer.rc,
                Some(element),
            ),
        }
        conn.holding |= answer.rc == Rc::Granted;
        if !self.flush(token) {
            // Not closed here: answers are sent with the table locked.
            self.dead.push(token);
        }
    }

    /// Writes pending output; false when the connection is dead or finished.
    fn flush(&mut self, token: Token) -> bool {
        let Some(conn) = self.conns.get_mut(&token) else {
            return false;
        };
        if !conn.stream.write_pending(&mut conn.output) {
            return false;
        }
        if conn.output.is_empty() && conn.closing {
            return false;
        }
        let want_write = !conn.output.is_empty();
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
        if let Some(conn) = self.conns.get(&token) {
            let _ = conn.stream.shutdown_write();
        }
    }

    /// Closes a connection; whatever it held or waited for goes.
    fn close(&mut self, token: Token) {
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

    fn fire_timers(&mut self) {
        let now = now_ns();
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            self.timer_of.remove(&id);
            self.with_table(|table, journal, fx| engine::on_timer(table, id, journal, fx));
        }
        self.note_idle();
    }

    /// Starts the idle clock when nothing is left: no clients, no lockers.
    fn note_idle(&mut self) {
        if !self.conns.is_empty() {
            self.idle_since = None;
            return;
        }
        let empty = {
            let table = lock_table();
            table.lockers.is_empty() && table.incubator.is_empty()
        };
        if empty {
            self.idle_since.get_or_insert_with(Instant::now);
        } else {
            self.idle_since = None;
        }
    }

    /// FLoM exits about its lifespan after the last resource went, or a third of it when no
    /// resource was ever created (both recorded).
    fn idle_limit(&self) -> Option<Duration> {
        if self.lifespan_ms < 0 {
            return None;
        }
        let ever = lock_table().ever_created;
        let ms = if ever {
            self.lifespan_ms
        } else {
            self.lifespan_ms / 3
        };
        Some(Duration::from_millis(ms as u64))
    }

    fn idle_expired(&self) -> bool {
        match (self.idle_since, self.idle_limit()) {
            (Some(since), Some(limit)) => since.elapsed() >= limit,
            _ => false,
        }
    }

    fn next_wakeup(&self) -> Option<Duration> {
        let timer = self
            .timers
            .first()
            .map(|&(at, _)| Duration::from_nanos(at.saturating_sub(now_ns())));
        let idle = match (self.idle_since, self.idle_limit()) {
            (Some(since), Some(limit)) => Some(limit.saturating_sub(since.elapsed())),
            _ => None,
        };
        let retry = self
            .accept_paused
            .map(|at| at.saturating_duration_since(Instant::now()));
        [timer, idle, retry].into_iter().flatten().min()
    }
}

/// A map keyed by the daemon's own counters (tokens, ids): no client chooses them, so the
/// default hasher's resistance to chosen keys buys nothing and costs a few lookups per lock.
type IdMap<K, V> = FxHashMap<K, V>;

fn lock_table() -> MutexGuard<'static, LockTable> {
    LOCK_TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `hang-on-lock` test hook: keep the table's mutex forever, changing nothing.
fn hang_forever(table: MutexGuard<'static, LockTable>) -> ! {
    loop {
        std::thread::park();
        std::hint::black_box(&table);
    }
}

//! The daemon's main loop: one thread that accepts FLoM clients, reads their messages, runs
//! them through the [`crate::engine`] with the lock table held, and writes the answers.
//! Admin connections are handed to [`crate::admin`].
//!
//! One thread for every client (an event loop, never a thread per locker): a snapshot has
//! few threads to stop, and the table's owner is one well-known thread.
//!
//! This module is the loop (what is ready, in which order, when to sleep and to exit) and
//! the one way into the table ([`Server::change`]); a connection's life is in [`conn`], the
//! timers and the daemon's lifespan in [`timers`], the formatted answers in [`answers`].

#![forbid(unsafe_code)]

mod answers;
mod conn;
mod secure;
mod timers;

use crate::admin::{self, AdminHandle, DaemonInfo, Returned, ServerHandle};
use crate::discovery::{self, Group, Listening};
use crate::engine::{self, Effects};
use crate::hub::Hub;
use crate::journal::Journal;
use crate::net::{Endpoint, Keepalive, Listener};
use crate::table::{LockTable, LOCK_TABLE};
use crate::timefmt::now_ns;
use crate::tls::Tls;
use crate::wire::STEP_LATER_ANSWER;
use answers::AnswerCache;
use conn::Conn;
use mio::{Events, Interest, Poll, Token, Waker};
use rustc_hash::FxHashMap;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, MutexGuard};
use std::time::{Duration, Instant};
use timers::{Lifespan, Timers};

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);
/// Connections the admin thread accepted while this thread stalled, handed back.
const RETURNED: Token = Token(2);
const FIRST_CONN: usize = 3;
/// How long accepting pauses after it failed for want of resources (unless a connection
/// closes first).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
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
    /// Set on every accepted TCP connection.
    pub tcp_keepalive: Keepalive,
    /// The multicast group to answer discovery on (TCP endpoints only).
    pub discovery: Option<Group>,
    /// Every connection speaks TLS (FLoM's, when its three files are given).
    pub tls: Option<Arc<Tls>>,
    /// Refuse a TLS client whose first message's peer id is not its certificate's CN.
    pub tls_check_peer_id: bool,
}

/// Why [`Server::run`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Idle,
    Shutdown,
    Signal,
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
    timers: Timers,
    lifespan: Lifespan,
    admin: AdminHandle,
    returned: mpsc::Receiver<Returned>,
    read_buf: Box<[u8; 4096]>,
    answers: AnswerCache,
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
        let mut listener = Listener::bind(&config.endpoint)?;
        listener.set_keepalive(config.tcp_keepalive);
        listener.register_level_triggered(poll.registry(), LISTENER)?;
        if let Some(group) = &config.discovery {
            discovery::spawn(group, &listening(&config.endpoint, &listener)?)?;
        }
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
        // A TLS daemon's connections are never accepted by the admin thread (see there).
        let stand_in = match config.tls {
            None => Some(listener.try_clone()?),
            Some(_) => None,
        };
        let admin = admin::spawn(info.clone(), hub.clone(), stand_in, server)?;
        // The signal pipe's write end must outlive the handlers.
        std::mem::forget(write_end);
        Ok(Server {
            timers: Timers::default(),
            lifespan: Lifespan::new(config.lifespan_ms),
            answers: AnswerCache::new(config.peerid.clone()),
            config,
            poll,
            listener,
            accept_paused: None,
            _signals: signals,
            conns: IdMap::default(),
            by_id: IdMap::default(),
            next_token: FIRST_CONN,
            admin,
            returned,
            read_buf: Box::new([0; 4096]),
            ready: Vec::new(),
            dead: Vec::new(),
            hub,
            info,
        })
    }

    /// Where the daemon listens on TCP, its real port (asked for 0, the kernel chose one).
    pub fn tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.listener.tcp_addr()
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
            self.timers.ask(at, id);
        }
        result
    }

    /// Runs the engine's due timers, each as a change of its own.
    fn fire_timers(&mut self) {
        let now = now_ns();
        while let Some(id) = self.timers.pop_due(now) {
            self.with_table(|table, journal, fx| engine::on_timer(table, id, journal, fx));
        }
        self.note_idle();
    }

    /// Starts the idle clock when nothing is left: no clients, no lockers.
    fn note_idle(&mut self) {
        let idle = self.conns.is_empty() && {
            let table = lock_table();
            table.lockers.is_empty() && table.incubator.is_empty()
        };
        self.lifespan.set_idle(idle);
    }

    /// How long until the daemon should exit, if it is idle and mortal.
    // Inlined as the code it replaced was: the loop asks on every turn.
    #[inline]
    fn lifespan_left(&self) -> Option<Duration> {
        self.lifespan.time_left(|| lock_table().ever_created)
    }

    fn idle_expired(&self) -> bool {
        self.lifespan_left().is_some_and(|left| left.is_zero())
    }

    fn next_wakeup(&self) -> Option<Duration> {
        let timer = self
            .timers
            .next_ns()
            .map(|at| Duration::from_nanos(at.saturating_sub(now_ns())));
        let retry = self
            .accept_paused
            .map(|at| at.saturating_duration_since(Instant::now()));
        [timer, self.lifespan_left(), retry]
            .into_iter()
            .flatten()
            .min()
    }
}

/// What discovery answers say about `listener`: the address as configured, unless it is
/// every address (FLoM sends none then), and the real port.
fn listening(endpoint: &Endpoint, listener: &Listener) -> io::Result<Listening> {
    let (Endpoint::Tcp(address, _), Some(bound)) = (endpoint, listener.tcp_addr()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "multicast discovery needs a TCP endpoint (-a, or none with -A), not a Unix socket",
        ));
    };
    // Without the scope of a link-local address (`-n`'s): FLoM sends the address alone,
    // the client takes the scope from the answer's source.
    let unscoped = address.split('%').next().unwrap_or_default();
    Ok(Listening {
        address: (!bound.ip().is_unspecified()).then(|| unscoped.to_owned()),
        port: bound.port(),
    })
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

//! The admin API, served by its own thread: newline-delimited JSON requests and replies on
//! the daemon's socket, for connections whose first byte is `{` (FLoM messages start with
//! `<`, so flom clients never meet it).
//!
//! Requests: `{"op":"ping"}`, `{"op":"status"}`, `{"op":"state"}`, `{"op":"events"}` (then a
//! stream of `latch.event/1` lines). Admin connections take no id, never appear in the
//! state and never change the table: this thread only reads it, and when the table's owner
//! is wedged it blocks on the table's mutex in plain sight (`latch-probe stacks`).
//!
//! The server thread accepts every connection and hands admin ones over. When it stalls
//! (one turn of its loop lasting longer than [`STALL_CHECK`], e.g. wedged on the table),
//! this thread accepts in its place, so that an admin request still reaches it (and then
//! blocks on the table's mutex); FLoM clients it accepted go back to the server thread.

#![forbid(unsafe_code)]

use crate::hub::{Hub, Reader};
use crate::net::{Listener, Stream};
use crate::snapshot;
use crate::table::{Peer, LOCK_TABLE, VERSION};
use latch_probe_common::doc::{DroppedDoc, DROPPED_SCHEMA};
use mio::{Events, Interest, Poll, Token, Waker};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAKER: Token = Token(0);
/// A request line longer than this closes the connection.
const MAX_REQUEST: usize = 64 * 1024;
/// Output held for a slow events reader before we stop draining its queue (which then
/// overflows and drops it).
const MAX_BACKLOG: usize = 4 * 1024 * 1024;
/// How often the server thread's progress is checked; a turn of its loop that outlasts
/// one whole check makes this thread accept connections in its place.
pub const STALL_CHECK: Duration = Duration::from_millis(250);

/// What the admin thread reports about the daemon.
pub struct DaemonInfo {
    pub pid: u32,
    pub started: Instant,
    /// Open FLoM client connections, kept by the server thread.
    pub connections: AtomicUsize,
    /// The server loop's turn: even while it waits for events, odd while it handles them.
    pub turn: AtomicU64,
}

/// A connection this thread accepted that turned out to be a FLoM client: its stream,
/// peer and the bytes already read from it.
pub type Returned = (Stream, Peer, Vec<u8>);

/// The admin thread's way back to the server thread, for [`Returned`] connections.
pub struct ServerHandle {
    pub tx: mpsc::Sender<Returned>,
    pub waker: Arc<Waker>,
}

#[derive(Deserialize)]
struct AdminRequest {
    op: String,
}

/// The server thread's end: hands over connections that turned out to be admin ones.
pub struct AdminHandle {
    tx: mpsc::Sender<(Stream, Vec<u8>)>,
    waker: Arc<Waker>,
}

impl AdminHandle {
    /// Passes a connection (and the bytes already read from it) to the admin thread.
    pub fn adopt(&self, stream: Stream, read: Vec<u8>) {
        if self.tx.send((stream, read)).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

struct Conn {
    stream: Stream,
    input: Vec<u8>,
    output: Vec<u8>,
    events: Option<Arc<Reader>>,
    /// Close once the output is written.
    closing: bool,
    /// Accepted here (the server thread stalled) and not yet known to be an admin
    /// connection: the peer, should it be a FLoM client to return.
    undecided: Option<Peer>,
}

/// Starts the admin thread; `listener` is a second handle on the server's listening socket
/// (accepted from only while the server thread stalls; none for a TLS daemon, whose
/// connections all start with a handshake this thread does not make).
pub fn spawn(
    info: Arc<DaemonInfo>,
    hub: Arc<Hub>,
    listener: Option<Listener>,
    server: ServerHandle,
) -> io::Result<AdminHandle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (tx, rx) = mpsc::channel();
    let notify_waker = waker.clone();
    hub.set_notify(Box::new(move || {
        let _ = notify_waker.wake();
    }));
    std::thread::Builder::new()
        .name("latch-admin".into())
        .spawn(move || run(poll, rx, info, hub, listener, server))?;
    Ok(AdminHandle { tx, waker })
}

fn run(
    mut poll: Poll,
    rx: mpsc::Receiver<(Stream, Vec<u8>)>,
    info: Arc<DaemonInfo>,
    hub: Arc<Hub>,
    listener: Option<Listener>,
    server: ServerHandle,
) {
    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next = 1usize;
    let mut events = Events::with_capacity(256);
    let mut last_check = Instant::now();
    let mut last_turn = info.turn.load(Ordering::Relaxed);
    loop {
        if let Err(e) = poll.poll(&mut events, Some(STALL_CHECK)) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            log::error!("admin: poll failed: {e}");
            return;
        }
        let mut touched: Vec<Token> = Vec::new();
        for ev in events.iter() {
            if ev.token() == WAKER {
                while let Ok((stream, input)) = rx.try_recv() {
                    touched.extend(adopt(&poll, &mut conns, &mut next, stream, input, None));
                }
                // Events may have arrived for every streaming reader.
                touched.extend(
                    conns
                        .iter()
                        .filter(|(_, c)| c.events.is_some())
                        .map(|(t, _)| *t),
                );
            } else {
                touched.push(ev.token());
            }
        }
        if last_check.elapsed() >= STALL_CHECK {
            let turn = info.turn.load(Ordering::Relaxed);
            if let (true, Some(listener)) = (turn % 2 == 1 && turn == last_turn, &listener) {
                // The server thread has been handling one batch of events since the last
                // check: accept in its place.
                accept_pending(listener, &poll, &mut conns, &mut next, &mut touched);
            }
            last_turn = turn;
            last_check = Instant::now();
        }
        touched.sort_unstable();
        touched.dedup();
        for token in touched {
            let Some(conn) = conns.get_mut(&token) else {
                continue;
            };
            if conn.undecided.is_some() {
                match sniff(conn) {
                    Sniffed::Waiting => continue,
                    Sniffed::Admin => conn.undecided = None,
                    Sniffed::Flom | Sniffed::Gone => {
                        if let Some(mut conn) = conns.remove(&token) {
                            let _ = poll.registry().deregister(&mut conn.stream);
                            if let (false, Some(peer)) = (conn.input.is_empty(), conn.undecided) {
                                let returned = (conn.stream, peer, conn.input);
                                if server.tx.send(returned).is_ok() {
                                    let _ = server.waker.wake();
                                }
                            }
                        }
                        continue;
                    }
                }
            }
            let keep = serve(conn, &info, &hub) && flush(conn, poll.registry(), token);
            if !keep {
                if let Some(mut conn) = conns.remove(&token) {
                    if let Some(reader) = &conn.events {
                        hub.unsubscribe(reader);
                    }
                    let _ = poll.registry().deregister(&mut conn.stream);
                }
            }
        }
    }
}

/// Watches a connection this thread now serves; `undecided` for one it accepted itself
/// (see [`Conn::undecided`]). Returns its token, or `None` if epoll refused it.
fn adopt(
    poll: &Poll,
    conns: &mut HashMap<Token, Conn>,
    next: &mut usize,
    mut stream: Stream,
    input: Vec<u8>,
    undecided: Option<Peer>,
) -> Option<Token> {
    let token = Token(*next);
    *next += 1;
    poll.registry()
        .register(&mut stream, token, Interest::READABLE)
        .ok()?;
    let conn = Conn {
        stream,
        input,
        output: Vec::new(),
        events: None,
        closing: false,
        undecided,
    };
    conns.insert(token, conn);
    Some(token)
}

/// Accepts every pending connection (the server thread is stalled), to be sniffed.
fn accept_pending(
    listener: &Listener,
    poll: &Poll,
    conns: &mut HashMap<Token, Conn>,
    next: &mut usize,
    touched: &mut Vec<Token>,
) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                touched.extend(adopt(poll, conns, next, stream, Vec::new(), Some(peer)));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // WouldBlock: none left. Anything else (EMFILE...): try again at the next check.
            Err(_) => return,
        }
    }
}

enum Sniffed {
    /// Nothing sent yet.
    Waiting,
    Admin,
    Flom,
    /// Closed before sending anything.
    Gone,
}

/// Reads the first bytes of a connection accepted here, to tell an admin client from a
/// FLoM one (whose bytes go back to the server thread with it).
fn sniff(conn: &mut Conn) -> Sniffed {
    let mut buf = [0u8; 4096];
    loop {
        match conn.stream.read(&mut buf) {
            Ok(0) => return Sniffed::Gone,
            Ok(n) => {
                conn.input.extend_from_slice(&buf[..n]);
                return if conn.input[0] == b'{' {
                    Sniffed::Admin
                } else {
                    Sniffed::Flom
                };
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Sniffed::Waiting,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Sniffed::Gone,
        }
    }
}

/// Reads what is there, answers whole request lines, moves queued events to the output.
/// Returns false when the connection should close now.
fn serve(conn: &mut Conn, info: &DaemonInfo, hub: &Hub) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match conn.stream.read(&mut buf) {
            Ok(0) => {
                // The peer closed its side; finish writing only if nothing streams.
                if conn.events.is_some() || conn.output.is_empty() {
                    return false;
                }
                conn.closing = true;
                break;
            }
            Ok(n) if conn.events.is_none() => conn.input.extend_from_slice(&buf[..n]),
            Ok(_) => {} // an events stream ignores further requests
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    while let Some(end) = conn.input.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = conn.input.drain(..=end).collect();
        answer(conn, &line, info, hub);
    }
    if conn.input.len() > MAX_REQUEST {
        reply_error(conn, "request line too long");
        conn.closing = true;
    }
    if let Some(reader) = conn.events.clone() {
        let mut q = reader.lock();
        while conn.output.len() < MAX_BACKLOG {
            let Some(line) = q.lines.pop_front() else {
                break;
            };
            conn.output.extend_from_slice(line.as_bytes());
            conn.output.push(b'\n');
        }
        // Once: the record is written after what the output already holds.
        if q.dropped && !conn.closing {
            // Cut off now, not when (if ever) it catches up: what is still queued is
            // missed too, and its memory goes at once.
            q.missed += q.lines.len() as u64;
            q.lines.clear();
            let missed = q.missed;
            // Unlocked first: `Hub::publish` takes the hub's lock, then the queue's.
            drop(q);
            hub.unsubscribe(&reader);
            let dropped = DroppedDoc {
                schema: DROPPED_SCHEMA.to_owned(),
                missed,
            };
            push_json(conn, &dropped);
            conn.closing = true;
            log::warn!("admin: dropped an events reader that fell {missed} events behind");
        }
    }
    true
}

fn answer(conn: &mut Conn, line: &[u8], info: &DaemonInfo, hub: &Hub) {
    let op = match serde_json::from_slice::<AdminRequest>(line) {
        Ok(r) => r.op,
        Err(e) => {
            return reply_error(
                conn,
                &format!("not a request ({e}); send e.g. {{\"op\":\"ping\"}}"),
            )
        }
    };
    match op.as_str() {
        "ping" => push_json(
            conn,
            &serde_json::json!({"pong": true, "pid": info.pid, "version": VERSION}),
        ),
        "status" => {
            let table = LOCK_TABLE.lock().unwrap_or_else(|e| e.into_inner());
            let uptime = info.started.elapsed().as_millis() as u64;
            let s = snapshot::status(
                &table,
                info.pid,
                VERSION,
                uptime,
                info.connections.load(Ordering::Relaxed),
            );
            drop(table);
            push_json(conn, &s);
        }
        "state" => {
            let table = LOCK_TABLE.lock().unwrap_or_else(|e| e.into_inner());
            let doc = snapshot::state_doc(&table, info.pid, VERSION);
            drop(table);
            push_json(conn, &doc);
        }
        "events" => conn.events = Some(hub.subscribe()),
        other => reply_error(
            conn,
            &format!("unknown op {other:?}; ops: ping, status, state, events"),
        ),
    }
}

fn reply_error(conn: &mut Conn, message: &str) {
    push_json(conn, &serde_json::json!({"error": message}));
}

fn push_json<T: serde::Serialize>(conn: &mut Conn, value: &T) {
    if let Ok(mut line) = serde_json::to_vec(value) {
        line.push(b'\n');
        conn.output.extend_from_slice(&line);
    }
}

/// Writes what it can; asks for writability while output remains. False: close it.
fn flush(conn: &mut Conn, registry: &mio::Registry, token: Token) -> bool {
    if !conn.stream.write_pending(&mut conn.output) {
        return false;
    }
    if conn.output.is_empty() && conn.closing {
        return false;
    }
    let interest = if conn.output.is_empty() {
        Interest::READABLE
    } else {
        Interest::READABLE | Interest::WRITABLE
    };
    registry
        .reregister(&mut conn.stream, token, interest)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Endpoint;
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    use std::path::PathBuf;

    /// An admin thread on a fresh Unix socket, for a server whose loop is at `turn`.
    fn admin_for(turn: u64, name: &str) -> (PathBuf, Listener, mpsc::Receiver<Returned>) {
        let dir = std::env::temp_dir().join(format!("latch-admin-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let path = dir.join("sock");
        let listener = Listener::bind(&Endpoint::Unix(path.clone())).expect("bind");
        let info = Arc::new(DaemonInfo {
            pid: std::process::id(),
            started: Instant::now(),
            connections: 0.into(),
            turn: turn.into(),
        });
        let server_poll = Poll::new().expect("poll");
        let (tx, returned) = mpsc::channel();
        let waker = Arc::new(Waker::new(server_poll.registry(), Token(0)).expect("waker"));
        let clone = listener.try_clone().expect("clone the listener");
        // The thread outlives the test, idle in its poll.
        spawn(
            info,
            Arc::new(Hub::default()),
            Some(clone),
            ServerHandle { tx, waker },
        )
        .expect("spawn");
        (path, listener, returned)
    }

    #[test]
    fn accepts_in_place_of_a_stalled_server() {
        // Odd and never changing: the server is stuck in one turn of its loop.
        let (path, _listener, returned) = admin_for(1, "stalled");
        let mut admin = UnixStream::connect(&path).expect("connect");
        admin
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        admin.write_all(b"{\"op\":\"ping\"}\n").expect("send");
        let mut reply = String::new();
        BufReader::new(&admin)
            .read_line(&mut reply)
            .expect("a reply");
        assert!(reply.contains("\"pong\":true"), "{reply}");
        // A FLoM client goes back to the server, with what it sent and who it is.
        let mut flom = UnixStream::connect(&path).expect("connect");
        flom.write_all(b"<msg").expect("send");
        let (_, peer, read) = returned
            .recv_timeout(Duration::from_secs(5))
            .expect("the FLoM client returned");
        assert_eq!(read, b"<msg");
        assert_eq!(peer.pid, Some(std::process::id()));
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn leaves_connections_to_a_server_that_is_not_stalled() {
        // Even: the server waits for events, so it accepts by itself.
        let (path, listener, returned) = admin_for(2, "waiting");
        let _client = UnixStream::connect(&path).expect("connect");
        std::thread::sleep(STALL_CHECK * 3);
        assert!(returned.try_recv().is_err());
        assert!(
            listener.accept().is_ok(),
            "the admin thread took the connection"
        );
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }
}

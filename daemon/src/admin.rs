//! The admin API, served by its own thread: newline-delimited JSON requests and replies on
//! the daemon's socket, for connections whose first byte is `{` (FLoM messages start with
//! `<`, so flom clients never meet it).
//!
//! Requests: `{"op":"ping"}`, `{"op":"status"}`, `{"op":"state"}`, `{"op":"events"}` (then a
//! stream of `latch.event/1` lines). Admin connections take no id, never appear in the
//! state and never change the table: this thread only reads it, and when the table's owner
//! is wedged it blocks on the table's mutex in plain sight (`latch-probe stacks`).

use crate::hub::{Hub, Reader};
use crate::net::Stream;
use crate::snapshot;
use crate::table::{LOCK_TABLE, VERSION};
use latch_probe_common::doc::{DroppedDoc, DROPPED_SCHEMA};
use mio::{Events, Interest, Poll, Token, Waker};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

const WAKER: Token = Token(0);
/// A request line longer than this closes the connection.
const MAX_REQUEST: usize = 64 * 1024;
/// Output held for a slow events reader before we stop draining its queue (which then
/// overflows and drops it).
const MAX_BACKLOG: usize = 4 * 1024 * 1024;

/// What the admin thread reports about the daemon.
pub struct DaemonInfo {
    pub pid: u32,
    pub started: Instant,
    /// Open FLoM client connections, kept by the server thread.
    pub connections: AtomicUsize,
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
}

pub fn spawn(info: Arc<DaemonInfo>, hub: Arc<Hub>) -> io::Result<AdminHandle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (tx, rx) = mpsc::channel();
    let notify_waker = waker.clone();
    hub.set_notify(Box::new(move || {
        let _ = notify_waker.wake();
    }));
    std::thread::Builder::new()
        .name("latch-admin".into())
        .spawn(move || run(poll, rx, info, hub))?;
    Ok(AdminHandle { tx, waker })
}

fn run(
    mut poll: Poll,
    rx: mpsc::Receiver<(Stream, Vec<u8>)>,
    info: Arc<DaemonInfo>,
    hub: Arc<Hub>,
) {
    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next = 1usize;
    let mut events = Events::with_capacity(256);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            log::error!("admin: poll failed: {e}");
            return;
        }
        let mut touched: Vec<Token> = Vec::new();
        for ev in events.iter() {
            if ev.token() == WAKER {
                while let Ok((mut stream, input)) = rx.try_recv() {
                    let token = Token(next);
                    next += 1;
                    if poll
                        .registry()
                        .register(&mut stream, token, Interest::READABLE)
                        .is_err()
                    {
                        continue;
                    }
                    conns.insert(
                        token,
                        Conn {
                            stream,
                            input,
                            output: Vec::new(),
                            events: None,
                            closing: false,
                        },
                    );
                    touched.push(token);
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
        touched.sort_unstable();
        touched.dedup();
        for token in touched {
            let Some(conn) = conns.get_mut(&token) else {
                continue;
            };
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
        if q.dropped && q.lines.is_empty() {
            let dropped = DroppedDoc {
                schema: DROPPED_SCHEMA.to_owned(),
                missed: q.missed,
            };
            push_json(conn, &dropped);
            conn.closing = true;
            log::warn!(
                "admin: dropped an events reader that fell {} events behind",
                q.missed
            );
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
    while !conn.output.is_empty() {
        match conn.stream.write(&conn.output) {
            Ok(0) => return false,
            Ok(n) => {
                conn.output.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
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

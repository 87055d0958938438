//! Evicting one client of a running daemon from outside: its entry found in the decoded
//! state, the connection severed ([`sever`]), and a wait, without stopping the daemon
//! again, for the daemon to let the client go. Whether the daemon can act on a closed
//! connection at all (not when the lock table's owner is wedged) is for the caller to ask
//! first ([`LiveDaemon::wedged_owner`]).
//!
//! It reads the daemon (frozen only for the state and stack copies, never left stopped)
//! and shuts down one socket; it writes nothing else and prints nothing.

mod sever;

pub use sever::{sever, EvictError, Expected};

use crate::error::ProbeError;
use crate::model::CaptureOptions;
use crate::target::LiveDaemon;
use latch_probe_common::doc::StateDoc;
use std::time::{Duration, Instant};

/// Between two reads of the state while waiting for the daemon to let a client go.
const SETTLE_POLL: Duration = Duration::from_millis(50);

/// A client's connection, as the daemon's state tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The daemon's descriptor of it.
    pub fd: i32,
    /// The resource it holds, waits for or asked for.
    pub resource: String,
    pub expected: Expected,
}

/// Conn `conn` of `state`: a holder, a waiter or an incubated client.
pub fn connection(state: &StateDoc, conn: u64) -> Option<Connection> {
    state
        .requests()
        .find(|r| r.conn == conn)
        .map(|r| Connection {
            fd: r.fd,
            resource: r.resource_name.clone(),
            expected: Expected {
                conn,
                peer_pid: r.peer_pid,
                peer_name: r.peer_name.clone(),
            },
        })
}

/// Whether the daemon let conn `conn` go within `within`, read without stopping it.
pub fn let_go(daemon: &LiveDaemon, conn: u64, within: Duration) -> Result<bool, ProbeError> {
    let deadline = Instant::now() + within;
    let read = CaptureOptions {
        freeze: false,
        ..CaptureOptions::default()
    };
    loop {
        if connection(&daemon.capture(read)?.state, conn).is_none() {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(SETTLE_POLL);
    }
}

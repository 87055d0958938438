//! The daemon's own view of its table, as documents: `latch.state/1` and the status summary.
//!
//! Reads a locked table; changes nothing.

use crate::table::{LockTable, Request};
use latch_probe_common::doc::{
    EntryDoc, IncubatedDoc, LockerDoc, RequestDoc, Source, StateDoc, STATE_SCHEMA,
};
use serde::Serialize;

pub fn state_doc(table: &LockTable, pid: u32, version: &str) -> StateDoc {
    let lockers = table
        .lockers
        .values()
        .map(|l| LockerDoc {
            id: l.id,
            resource_name: l.resource_name.clone(),
            resource_type: l.rules.resource_type(),
            created_ns: l.created_ns,
            holders: l.holders.iter().map(|r| entry(r)).collect(),
            waitings: l.waitings.iter().map(|r| entry(r)).collect(),
        })
        .collect();
    let incubator = table
        .incubator
        .iter()
        .map(|r| IncubatedDoc {
            request: request(r),
            resource_type: r.resource_type,
        })
        .collect();
    let mut doc = StateDoc {
        schema: STATE_SCHEMA.to_owned(),
        source: Source::Daemon,
        pid,
        version: version.to_owned(),
        generation: table.generation,
        torn: table.generation % 2 == 1,
        lockers,
        incubator,
    };
    doc.canonicalize();
    doc
}

fn entry(r: &Request) -> EntryDoc {
    EntryDoc {
        request: request(r),
        element: r.element.clone(),
    }
}

/// What a state entry and an event show of `r`.
pub fn request(r: &Request) -> RequestDoc {
    RequestDoc {
        conn: r.conn,
        resource_name: r.resource_name.clone(),
        peer_name: r.peer.name.clone(),
        peer_pid: r.peer.pid,
        peer_uid: r.peer.uid,
        fd: r.peer.fd,
        lock_mode: r.lock_mode,
        quantity: r.quantity,
        since_ns: r.since_ns,
    }
}

/// `latch status --json`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub pid: u32,
    pub version: String,
    pub uptime_ms: u64,
    /// Resident set size, from /proc/self/statm.
    pub rss_bytes: u64,
    pub generation: u64,
    pub lockers: usize,
    /// FLoM client connections (admin connections not counted).
    pub connections: usize,
    pub holders: usize,
    pub waiters: usize,
    pub incubated: usize,
}

pub fn status(
    table: &LockTable,
    pid: u32,
    version: &str,
    uptime_ms: u64,
    connections: usize,
) -> Status {
    Status {
        pid,
        version: version.to_owned(),
        uptime_ms,
        rss_bytes: rss_bytes(),
        generation: table.generation,
        lockers: table.lockers.len(),
        connections,
        holders: table.lockers.values().map(|l| l.holders.len()).sum(),
        waiters: table.lockers.values().map(|l| l.waitings.len()).sum(),
        incubated: table.incubator.len(),
    }
}

fn rss_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64;
    pages * page
}

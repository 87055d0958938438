//! The lock table: every locker, holder, waiter and incubated request, behind one static.
//!
//! This is the structure the daemon decides with, and the one `latch-probe` reads from
//! outside through DWARF: [`LOCK_TABLE`] and the names of the types and fields below are the
//! probe/daemon contract (`docs/contract.md`, checked by a test). Rename with care.
//!
//! This module holds data and the read-only queries on it; changes go through
//! [`crate::change`], and the decisions (who may be granted) are in [`crate::rules`].

#![forbid(unsafe_code)]

use latch_probe_common::{LockMode, ResourceType};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// The daemon's version, readable from outside (`latch --version` prints it too).
pub static VERSION: &str = env!("CARGO_PKG_VERSION");

/// The authoritative lock table. The thread that serves FLoM clients owns it for the length
/// of each message; the admin thread takes it to answer `state` and `status`.
pub static LOCK_TABLE: Mutex<LockTable> = Mutex::new(LockTable::new());

pub struct LockTable {
    /// Odd while a change is in progress, even when the table is consistent.
    pub generation: u64,
    /// The last id handed out; one counter for the listener, connections and lockers, as in
    /// FLoM (the listener takes 1, so the first client is 2).
    pub last_id: u64,
    /// Every locker, by id.
    pub lockers: BTreeMap<u64, Box<Locker>>,
    /// Locker ids by key: the resource name, or `/first` for hierarchical resources.
    pub by_key: BTreeMap<String, u64>,
    /// Requests for resources that do not exist yet (`-e no`), in arrival order.
    pub incubator: Vec<Box<Request>>,
    /// Which locker each waiting or holding connection is in: conn id -> locker id.
    pub placements: BTreeMap<u64, u64>,
    /// Whether any locker was ever created (the daemon's idle exit depends on it).
    pub ever_created: bool,
}

/// One resource's lock state: FLoM's "locker".
pub struct Locker {
    pub id: u64,
    /// The name of the request that created this locker.
    pub resource_name: String,
    /// The resource type's own state.
    pub rules: Rules,
    /// Wall-clock Unix nanoseconds.
    pub created_ns: u64,
    /// How long the locker outlives its last client (`-i`), from the request that created it.
    pub lifespan_ms: u64,
    /// Holders, in grant order.
    pub holders: Vec<Box<Request>>,
    /// Waiters, in queue order.
    pub waitings: VecDeque<Box<Request>>,
    /// When the last client left (monotonic ns), while the locker is idle.
    pub idle_since_ns: Option<u64>,
}

/// Per resource type state; the variant names the type.
pub enum Rules {
    Simple,
    Numeric {
        total: u64,
    },
    Set {
        elements: Vec<String>,
        /// Whether each element is held.
        taken: Vec<bool>,
        /// Where the next search for a free element starts; moves by one on every grant.
        next: usize,
    },
    Hierarchical,
    Sequence {
        transactional: bool,
        max: u64,
        /// The next fresh value (values start at 1).
        next: u64,
        /// Values given back by a rollback, handed out again first (transactional only).
        returned: VecDeque<u64>,
    },
    Timestamp {
        format: String,
        max: u64,
        grain_ns: u64,
        /// The grain (wall-clock ns / grain_ns) of the last element handed out.
        last_grain: Option<u64>,
    },
}

impl Rules {
    pub fn resource_type(&self) -> ResourceType {
        match self {
            Rules::Simple => ResourceType::Simple,
            Rules::Numeric { .. } => ResourceType::Numeric,
            Rules::Set { .. } => ResourceType::Set,
            Rules::Hierarchical => ResourceType::Hierarchical,
            Rules::Sequence { .. } => ResourceType::Sequence,
            Rules::Timestamp { .. } => ResourceType::Timestamp,
        }
    }
}

/// One client's lock request: incubated, waiting or held. A connection holds at most one.
pub struct Request {
    /// The connection's id.
    pub conn: u64,
    /// The name the client asked for.
    pub resource_name: String,
    pub resource_type: ResourceType,
    /// Simple and hierarchical only.
    pub lock_mode: Option<LockMode>,
    /// Numeric only.
    pub quantity: Option<u64>,
    /// The set element, sequence value or timestamp, once granted.
    pub element: Option<String>,
    /// When the request reached its present state (wall-clock Unix ns).
    pub since_ns: u64,
    /// The client waits (`wait="1"`), i.e. it was not started with `-o 0`.
    pub wait: bool,
    /// The resource idle lifespan it asked for (`-i`).
    pub lifespan_ms: u64,
    pub peer: Peer,
}

/// Who is on the other end of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The daemon's descriptor for the connection (what `latch-probe evict` severs).
    pub fd: i32,
    /// `localhost/` for Unix sockets, `ADDR/PORT` over TCP.
    pub name: String,
    /// From SO_PEERCRED, Unix sockets only.
    pub pid: Option<u32>,
    pub uid: Option<u32>,
}

impl LockTable {
    pub const fn new() -> LockTable {
        LockTable {
            generation: 0,
            last_id: 1,
            lockers: BTreeMap::new(),
            by_key: BTreeMap::new(),
            incubator: Vec::new(),
            placements: BTreeMap::new(),
            ever_created: false,
        }
    }

    /// Runs `change` with the generation odd throughout, even again after: a reader that
    /// finds it odd, or changed between two reads, knows its view is torn.
    pub fn changing<R>(&mut self, change: impl FnOnce(&mut LockTable) -> R) -> R {
        self.generation += 1;
        let result = change(self);
        self.generation += 1;
        result
    }

    /// The next id from the shared counter.
    pub fn take_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    pub fn locker_by_key(&self, key: &str) -> Option<u64> {
        self.by_key.get(key).copied()
    }
}

impl Default for LockTable {
    fn default() -> Self {
        LockTable::new()
    }
}

/// The key a resource's locker is found by: the name, or `/first` for hierarchical paths.
pub fn locker_key(name: &str, resource_type: ResourceType) -> &str {
    if resource_type == ResourceType::Hierarchical {
        let end = name[1..].find('/').map_or(name.len(), |i| i + 1);
        &name[..end]
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generation_is_odd_during_a_change_and_even_after() {
        let mut table = LockTable::new();
        let seen = table.changing(|t| t.generation);
        assert_eq!(seen % 2, 1);
        assert_eq!(table.generation, seen + 1);
        table.changing(|_| ());
        assert_eq!(table.generation, 4);
    }
}

//! The JSON documents: `latch.state/1` (a whole lock table) and `latch.event/1` (one change).
//!
//! `latch state --json` (the daemon) and `latch-probe dump --json` (from outside) print the
//! same [`StateDoc`], so one can be checked against the other; the daemon's `events` stream
//! and the probe's `trace --json` print the same [`EventDoc`].

use crate::{EntryState, EventKind, LockMode, ResourceType};
use serde::{Deserialize, Serialize};

pub const STATE_SCHEMA: &str = "latch.state/1";
pub const EVENT_SCHEMA: &str = "latch.event/1";
/// The last record an event reader gets when it was too slow and has been dropped.
pub const DROPPED_SCHEMA: &str = "latch.dropped/1";

/// Who produced a state document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The daemon's own admin API.
    Daemon,
    /// The probe, reading a running process.
    Live,
    /// The probe, reading a core file.
    Core,
}

/// `latch.state/1`: lockers sorted by id, holders by conn, waitings in queue order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDoc {
    pub schema: String,
    pub source: Source,
    pub pid: u32,
    pub version: String,
    pub generation: u64,
    /// The generation was odd (a change in progress) and could not be waited out.
    pub torn: bool,
    pub lockers: Vec<LockerDoc>,
    pub incubator: Vec<IncubatedDoc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockerDoc {
    pub id: u64,
    /// The name of the request that created the locker (for hierarchical resources, one
    /// locker serves every path under the same first component).
    pub resource_name: String,
    pub resource_type: ResourceType,
    /// Wall-clock Unix nanoseconds.
    pub created_ns: u64,
    pub holders: Vec<EntryDoc>,
    pub waitings: Vec<EntryDoc>,
}

/// A holder or a waiter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryDoc {
    pub conn: u64,
    /// The name this client asked for.
    pub resource_name: String,
    /// `localhost/` for Unix-socket peers, `ADDR/PORT` over TCP.
    pub peer_name: String,
    /// The peer's pid and uid from SO_PEERCRED; null over TCP.
    pub peer_pid: Option<u32>,
    pub peer_uid: Option<u32>,
    /// Simple and hierarchical resources only.
    pub lock_mode: Option<LockMode>,
    /// Numeric resources only.
    pub quantity: Option<u64>,
    /// The granted set element, sequence number or timestamp; null until granted.
    pub element: Option<String>,
    /// When the entry reached its present state (wall-clock Unix nanoseconds).
    pub since_ns: u64,
}

/// A client waiting for a resource that does not exist yet (`-e no`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncubatedDoc {
    pub conn: u64,
    pub resource_name: String,
    pub resource_type: ResourceType,
    pub peer_name: String,
    pub peer_pid: Option<u32>,
    pub peer_uid: Option<u32>,
    pub lock_mode: Option<LockMode>,
    pub quantity: Option<u64>,
    pub since_ns: u64,
}

/// `latch.event/1`: one state change, with the entry's state before and after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDoc {
    pub schema: String,
    pub ts_ns: u64,
    pub kind: EventKind,
    /// Null for incubator events, which have no locker yet.
    pub locker: Option<u64>,
    pub resource_name: String,
    pub resource_type: ResourceType,
    /// Null for locker_create and locker_destroy.
    pub conn: Option<u64>,
    pub from: EntryState,
    pub to: EntryState,
    pub lock_mode: Option<LockMode>,
    pub quantity: Option<u64>,
    pub element: Option<String>,
}

/// The final record of an event stream whose reader fell behind and was dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedDoc {
    pub schema: String,
    /// How many events this reader did not get.
    pub missed: u64,
}

impl StateDoc {
    /// Puts lockers, holders and the incubator in the document's canonical order, so two
    /// documents of one state compare equal whoever made them.
    pub fn canonicalize(&mut self) {
        self.lockers.sort_by_key(|l| l.id);
        for l in &mut self.lockers {
            l.holders.sort_by_key(|h| h.conn);
        }
        self.incubator.sort_by_key(|i| i.conn);
    }
}

//! A hand-built capture for the renderers' unit tests: every resource type, holders, waiters,
//! a TCP peer and an incubated client, with ids as FLoM hands them out.

use crate::capture::{Capture, CaptureStats, DaemonFacts};
use dwarfpeek::process::ThreadFacts;
use latch_probe_common::doc::{
    EntryDoc, IncubatedDoc, LockerDoc, RequestDoc, Source, StateDoc, STATE_SCHEMA,
};
use latch_probe_common::{LockMode, ResourceType};

/// 2026-11-21T22:18:37Z: the snapshot's second.
pub(super) const T0: u64 = 1_795_299_517_000_000_000;
pub(super) const SECOND: u64 = 1_000_000_000;
pub(super) const SNAPSHOT: u64 = T0 + 60 * SECOND;

pub(super) fn entry(conn: u64, name: &str, since_ns: u64) -> EntryDoc {
    EntryDoc {
        request: request(conn, name, since_ns),
        element: None,
    }
}

/// A Unix-socket client's request, its pid and descriptor made from its conn.
fn request(conn: u64, name: &str, since_ns: u64) -> RequestDoc {
    RequestDoc {
        conn,
        resource_name: name.into(),
        peer_name: "localhost/".into(),
        peer_pid: Some(4000 + conn as u32),
        peer_uid: Some(0),
        fd: 10 + conn as i32,
        lock_mode: None,
        quantity: None,
        since_ns,
    }
}

fn with_mode(mut e: EntryDoc, mode: LockMode) -> EntryDoc {
    e.request.lock_mode = Some(mode);
    e
}

fn locker(
    id: u64,
    name: &str,
    resource_type: ResourceType,
    created_ns: u64,
    holders: Vec<EntryDoc>,
    waitings: Vec<EntryDoc>,
) -> LockerDoc {
    LockerDoc {
        id,
        resource_name: name.into(),
        resource_type,
        created_ns,
        holders,
        waitings,
    }
}

pub(super) fn capture() -> Capture {
    use ResourceType::*;
    let t = |s: u64| T0 + s * SECOND;
    let mut numeric_holder = entry(7, "num[3]", t(3));
    numeric_holder.request.quantity = Some(2);
    let mut numeric_waiter = entry(9, "num[3]", t(4));
    numeric_waiter.request.quantity = Some(2);
    let mut seq_holder = entry(10, "_s_seq[3]", t(5));
    seq_holder.element = Some("1".into());
    let mut ts_holder = entry(13, "_t_%H:%M:%S#fff[1]", t(6));
    ts_holder.element = Some("22:20:12.997".into());
    let mut set_holder = entry(18, "red.green.blue", t(8));
    set_holder.element = Some("red".into());
    let mut tcp_holder = with_mode(entry(22, "tcp", t(9)), LockMode::EX);
    tcp_holder.request.peer_name = "127.0.0.1/60980".into();
    tcp_holder.request.peer_pid = None;
    tcp_holder.request.peer_uid = None;
    let state = StateDoc {
        schema: STATE_SCHEMA.into(),
        source: Source::Live,
        pid: 4242,
        version: "0.1.0".into(),
        generation: 40,
        torn: false,
        lockers: vec![
            locker(
                3,
                "foo",
                Simple,
                t(0),
                vec![with_mode(entry(2, "foo", t(0)), LockMode::EX)],
                vec![with_mode(entry(4, "foo", t(1)), LockMode::EX)],
            ),
            locker(
                6,
                "bar",
                Simple,
                t(1),
                vec![with_mode(entry(5, "bar", t(1)), LockMode::PR)],
                vec![],
            ),
            locker(
                8,
                "num[3]",
                Numeric,
                t(3),
                vec![numeric_holder],
                vec![numeric_waiter],
            ),
            locker(
                11,
                "_s_seq[3]",
                Sequence,
                t(5),
                vec![seq_holder],
                vec![entry(12, "_s_seq[3]", t(5))],
            ),
            locker(
                14,
                "_t_%H:%M:%S#fff[1]",
                Timestamp,
                t(6),
                vec![ts_holder],
                vec![],
            ),
            locker(
                16,
                "/a/b",
                Hierarchical,
                t(7),
                vec![with_mode(entry(15, "/a/b", t(7)), LockMode::CR)],
                vec![with_mode(entry(17, "/a", t(7)), LockMode::EX)],
            ),
            locker(
                19,
                "red.green.blue",
                Set,
                t(8),
                vec![set_holder],
                vec![entry(20, "red.green.blue", t(8))],
            ),
            locker(23, "tcp", Simple, t(9), vec![tcp_holder], vec![]),
        ],
        incubator: vec![IncubatedDoc {
            request: RequestDoc {
                lock_mode: Some(LockMode::EX),
                ..request(21, "x", t(10))
            },
            resource_type: Simple,
        }],
    };
    Capture {
        state,
        daemon: DaemonFacts {
            pid: 4242,
            exe: "/usr/bin/latch".into(),
            build_id: Some("0123abcd".into()),
            uid: 1001,
            gid: 1002,
            snapshot_ns: SNAPSHOT,
        },
        threads: vec![
            ThreadFacts {
                tid: 4242,
                name: "latch".into(),
                state: "S".into(),
            },
            ThreadFacts {
                tid: 4243,
                name: "latch-admin".into(),
                state: "S".into(),
            },
        ],
        stats: CaptureStats::default(),
        problems: Vec::new(),
    }
}

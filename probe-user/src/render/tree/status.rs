//! FLoM's part of the tree, `status/`, byte for byte as the real FLoM writes it
//! (docs/probe.md, "The tree"):
//! `lockers/<id>/{resource_name,resource_type,holders/<conn>/…,waitings/<conn>/…}` and
//! `incubator/<conn>/{peer_name,resource_name,resource_type}`, with FLoM's trailing newlines,
//! long lock mode names and listing order.
//!
//! It reads the state document only; what FLoM does not show (an entry's own resource name,
//! peer pid and uid, a set element) stays out of `status/` and is left to `state.json`.

use super::node::{NodeId, Tree};
use super::{line, unique};
use latch_probe_common::doc::{EntryDoc, IncubatedDoc, LockerDoc, StateDoc};
use latch_probe_common::ResourceType;

/// Adds `status/` to the root. `unknown_ns` stands for the times the state does not record
/// (when the daemon made `status/` itself, when an emptied list was last changed).
pub(super) fn add(tree: &mut Tree, state: &StateDoc, unknown_ns: u64) {
    let status = tree.add_dir(tree.root(), "status", unknown_ns);

    let incubator = tree.add_dir(status, "incubator", unknown_ns);
    for entry in unique(&state.incubator, |e| e.request.conn) {
        add_incubated(tree, incubator, entry);
    }
    tree.set_mtime_from_children(incubator, unknown_ns);

    let lockers = tree.add_dir(status, "lockers", unknown_ns);
    for locker in unique(&state.lockers, |l| l.id) {
        add_locker(tree, lockers, locker);
    }
    tree.set_mtime_from_children(lockers, unknown_ns);
}

fn add_incubated(tree: &mut Tree, incubator: NodeId, entry: &IncubatedDoc) {
    let r = &entry.request;
    let t = r.since_ns;
    let dir = tree.add_dir(incubator, &r.conn.to_string(), t);
    tree.add_file(dir, "peer_name", line(&r.peer_name), t);
    tree.add_file(dir, "resource_name", line(&r.resource_name), t);
    tree.add_file(dir, "resource_type", line(entry.resource_type.name()), t);
}

fn add_locker(tree: &mut Tree, lockers: NodeId, locker: &LockerDoc) {
    let t = locker.created_ns;
    let dir = tree.add_dir(lockers, &locker.id.to_string(), t);
    tree.add_file(dir, "resource_name", line(&locker.resource_name), t);
    tree.add_file(dir, "resource_type", line(locker.resource_type.name()), t);
    for (name, entries, holding) in [
        ("holders", &locker.holders, true),
        ("waitings", &locker.waitings, false),
    ] {
        let list = tree.add_dir(dir, name, t);
        for entry in unique(entries, |e| e.request.conn) {
            add_entry(tree, list, locker.resource_type, entry, holding);
        }
        // An empty list was last changed when its last entry left, which a snapshot cannot
        // see; the locker's creation is the one time known to be no later than that.
        tree.set_mtime_from_children(list, t);
    }
}

fn add_entry(
    tree: &mut Tree,
    list: NodeId,
    resource_type: ResourceType,
    entry: &EntryDoc,
    holding: bool,
) {
    let t = entry.request.since_ns;
    let dir = tree.add_dir(list, &entry.request.conn.to_string(), t);
    tree.add_file(dir, "peer_name", line(&entry.request.peer_name), t);
    if let Some((name, bytes)) = type_specific(resource_type, entry, holding) {
        tree.add_file(dir, name, bytes, t);
    }
}

/// The one file after `peer_name` that depends on the resource type, if any.
fn type_specific(
    resource_type: ResourceType,
    entry: &EntryDoc,
    holding: bool,
) -> Option<(&'static str, Vec<u8>)> {
    match resource_type {
        // FLoM writes the long name without a newline (docs/probe.md).
        ResourceType::Simple | ResourceType::Hierarchical => entry
            .request
            .lock_mode
            .map(|mode| ("lock_mode", mode.long_name().as_bytes().to_vec())),
        ResourceType::Numeric => entry
            .request
            .quantity
            .map(|quantity| ("quantity", line(&quantity.to_string()))),
        // FLoM shows the value to holders only; a waiter has none yet.
        ResourceType::Sequence if holding => entry
            .element
            .as_ref()
            .map(|value| ("sequence_value", line(value))),
        ResourceType::Timestamp if holding => entry
            .element
            .as_ref()
            .map(|value| ("timestamp_value", line(value))),
        // FLoM does not expose the granted set element.
        ResourceType::Set | ResourceType::Sequence | ResourceType::Timestamp => None,
    }
}

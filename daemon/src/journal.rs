//! Collects the `latch.event/1` records of the changes made while handling one message,
//! for the admin API's `events` readers. Builds nothing when nobody is listening.

use crate::table::{Locker, Request};
use latch_probe_common::doc::{EventDoc, EVENT_SCHEMA};
use latch_probe_common::{EntryState, EventKind};

pub struct Journal {
    /// Whether anybody reads events; when not, recording is free.
    pub enabled: bool,
    /// The wall-clock time of the message being handled.
    pub now_ns: u64,
    pub events: Vec<EventDoc>,
}

impl Journal {
    pub fn new(enabled: bool, now_ns: u64) -> Journal {
        Journal {
            enabled,
            now_ns,
            events: Vec::new(),
        }
    }

    pub fn record(
        &mut self,
        kind: EventKind,
        locker: &Locker,
        req: Option<&Request>,
        from: EntryState,
        to: EntryState,
    ) {
        if !self.enabled {
            return;
        }
        let resource_type = locker.rules.resource_type();
        // Locker events are about the locker; a request's events carry what it asked for.
        let is_locker_event = matches!(kind, EventKind::LockerCreate | EventKind::LockerDestroy);
        let (resource_name, conn, lock_mode, quantity, element) = match req {
            Some(r) if !is_locker_event => (
                r.resource_name.clone(),
                Some(r.conn),
                r.lock_mode,
                r.quantity,
                r.element.clone(),
            ),
            _ => (locker.resource_name.clone(), None, None, None, None),
        };
        self.events.push(EventDoc {
            schema: EVENT_SCHEMA.to_owned(),
            ts_ns: self.now_ns,
            kind,
            locker: Some(locker.id),
            resource_name,
            resource_type,
            conn,
            from,
            to,
            lock_mode,
            quantity,
            element,
        });
    }

    /// An event of a request in the incubator, which has no locker.
    pub fn record_incubator(
        &mut self,
        kind: EventKind,
        req: &Request,
        from: EntryState,
        to: EntryState,
    ) {
        if !self.enabled {
            return;
        }
        self.events.push(EventDoc {
            schema: EVENT_SCHEMA.to_owned(),
            ts_ns: self.now_ns,
            kind,
            locker: None,
            resource_name: req.resource_name.clone(),
            resource_type: req.resource_type,
            conn: Some(req.conn),
            from,
            to,
            lock_mode: req.lock_mode,
            quantity: req.quantity,
            element: None,
        });
    }
}

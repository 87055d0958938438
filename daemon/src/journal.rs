//! Collects the `latch.event/1` records of the changes made while handling one message,
//! for the admin API's `events` readers. Builds nothing when nobody is listening.
//!
//! Records what [`crate::change`] tells it; changes nothing and sends nothing (the server
//! publishes the records through [`crate::hub`]).

#![forbid(unsafe_code)]

use crate::snapshot;
use crate::table::{Locker, Request};
use latch_probe_common::doc::EventDoc;
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
        let mut event = match req {
            Some(r) if !is_locker_event => request_event(kind, r, self.now_ns, from, to),
            _ => EventDoc {
                resource_name: locker.resource_name.clone(),
                since_ns: Some(locker.created_ns),
                ..EventDoc::new(self.now_ns, kind, from, to)
            },
        };
        event.locker = Some(locker.id);
        event.resource_type = resource_type;
        self.events.push(event);
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
        self.events
            .push(request_event(kind, req, self.now_ns, from, to));
    }
}

/// The event of a change to `req`, without a locker (the caller adds it when there is one).
fn request_event(
    kind: EventKind,
    req: &Request,
    now_ns: u64,
    from: EntryState,
    to: EntryState,
) -> EventDoc {
    let mut event = EventDoc {
        resource_type: req.resource_type,
        element: req.element.clone(),
        ..EventDoc::new(now_ns, kind, from, to)
    };
    event.set_request(snapshot::request(req));
    event
}
